r"""The proposal-aware SNIS interval on Dask: the local engine's
:mod:`is_core.weights.intervals`, its source sums taken partition by partition.

The interval needs two kinds of terms (:mod:`is_core.weights.intervals`, *Partitions*). Those
over the proposal's fitting sample (the fold Hessians, each fitting row's term through the fit)
are computed on the client: the sample is the local engine's seeded draw of at most
``proposal.max_fit_rows`` rows, collected from the partitions as the proposal stage collects it
(:func:`is_core.engine.partitions.gather_rows`), and the design is refitted on it from the
stored linear state (:meth:`DomainClassifierRatio.from_linear_sample`), so it is the design
the fold models were fitted on. Those over every source row are sums: each source partition
reads its features on its worker, puts them through the same design in chunks of
:data:`CHUNK_ROWS` rows and returns its :class:`~is_core.weights.intervals.SourceSums` around
the window's SNIS value and weight sum (from the weights stage's SNIS sums): the per-fold
sums of :math:`g_i \tilde x_i`, the moments of the terms of its rows outside the fitting sample
and the terms of its rows inside it. That is done for the final weights (a row capped by
clipping has no gradient) and, when the weights are clipped, for the unclipped ones: the
bias-guarded hull of the local engine (:func:`is_core.weights.estimators._guarded`). The client
holds the fitting sample's design and its terms, never the window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from is_core.data.io import InputFile
from is_core.engine.partitions import Partitions, gather_rows, read_partition, safe_map
from is_core.errors import DataContractError
from is_core.weights.domain import DomainClassifierRatio
from is_core.weights.estimators import Estimate, _guarded
from is_core.weights.intervals import (
    SourceSums,
    fitting_sample,
    proposal_aware_from_sums,
    source_sums,
)

#: Rows put through the design at once on a worker (the proposal stage scores in chunks of the
#: same size).
CHUNK_ROWS = 100_000


def partition_sums(piece: dict[str, Any], file: InputFile, design: Any, columns: list[str],
                   fit_rows: np.ndarray, fit_fold: np.ndarray, n_folds: int,
                   centres: list[tuple[str, float, float]]) -> list[SourceSums]:
    """One source partition's :class:`SourceSums`, one per weight set of ``centres`` (the
    piece's field, the window's SNIS value and weight sum); ``fit_rows``/``fit_fold``: the
    fitting sample's source rows (global row ids, sorted) and their folds."""
    frame = read_partition(file, columns, "source")
    n, first = piece["y"].size, piece["first"]
    if len(frame) != n:
        raise DataContractError(f"{file.path} has {len(frame)} rows, not the {n} the weights "
                                "stage read", fix="the inputs changed during the run; re-run "
                                "the date")
    inside = (fit_rows >= first) & (fit_rows < first + n)
    fold = np.full(n, -1, dtype=int)
    fold[fit_rows[inside] - first] = fit_fold[inside]
    capped = piece["cl"] < piece["lw"]
    if n == 0:
        k1 = int(design.n_features_out_) + 1
        empty = SourceSums(np.zeros((n_folds, k1)), np.zeros(k1), (0, 0.0, 0.0), np.empty(0))
        return [empty for _ in centres]
    parts: list[list[SourceSums]] = [[] for _ in centres]
    for start in range(0, n, CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        x = design.transform(frame.iloc[rows])
        for k, (field, mu, total) in enumerate(centres):
            parts[k].append(source_sums(x, piece["y"][rows], piece[field][rows], fold[rows], mu,
                                        total, n_folds,
                                        capped[rows] if field == "final" else None))
    return [SourceSums.merge(p) for p in parts]


def proposal_aware_estimate(client: Any, pieces: list[Any], source: Partitions,
                            target: Partitions, state: dict[str, Any],
                            parts: list[dict[str, Any]], clipped: bool, level: float = 0.95
                            ) -> Estimate:
    """:func:`is_core.weights.intervals.proposal_aware_snis_from_model` of the stored linear
    proposal ``state`` over the source ``pieces`` (the weights stage's, with their final
    weights; ``parts``: their :func:`is_core.engine.weights.final_stats`), bias-guarded by
    the unclipped weights' interval when ``clipped`` (module docstring)."""
    fit_source, fit_target = DomainClassifierRatio(**state["params"])._fit_rows(
        source.n_rows, target.n_rows)
    columns = [*state["numeric"], *state["categorical"]]
    frame = pd.concat([gather_rows(client, source, columns, fit_source)[columns],
                       gather_rows(client, target, columns, fit_target)[columns]],
                      ignore_index=True)
    model = DomainClassifierRatio.from_linear_sample(state, frame, source.n_rows,
                                                     target.n_rows)
    sample = fitting_sample(model, frame)
    # the SNIS sums (rows, w, wy, w2, w2y, w2y2, non-binary rows) of each weight set
    sums = {field: np.sum([p[field] for p in parts], axis=0)
            for field in (("final", "unclipped") if clipped else ("final",))}
    centres = [(field, float(s[2] / s[1]), float(s[1])) for field, s in sums.items()]
    n_folds = int(sample.fold.max()) + 1
    design = client.scatter(model.design_, broadcast=True)
    merged = client.gather(safe_map(client, partition_sums, pieces, list(source.files),
                                    [design] * len(pieces), columns=columns,
                                    fit_rows=fit_source, fit_fold=sample.fold[:len(fit_source)],
                                    n_folds=n_folds, centres=centres))
    estimates = [
        proposal_aware_from_sums(
            SourceSums.merge([m[k] for m in merged]), sample, n_source=source.n_rows,
            n_target=target.n_rows, mu=mu, n_effective=float(s[1] ** 2 / s[3]),
            binary=bool(s[6] == 0), C=model.C_, level=level)
        for k, ((_, mu, _), s) in enumerate(zip(centres, sums.values(), strict=True))]
    return estimates[0] if len(estimates) == 1 else _guarded(estimates[0], estimates[1])
