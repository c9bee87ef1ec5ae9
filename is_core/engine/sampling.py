"""The train stage's importance subsample on Dask (``train.sampling``): the local engine's sample,
drawn on the workers.

The local engine (:func:`is_core.ctr.stage.train_models`) draws the sample one input file at a
time, partition index :math:`k` the file's index; the Dask engine's partitions are the same
files in the same order, so each worker draws exactly the local rows, with the same seeds
(:mod:`is_core.ctr.sampling`). Every step is one pass of tasks over the partitions whose results
stay on the workers (futures); the client sees only what is listed:

1. each partition's training rows (all of them, or without a target holdout those the local
   engine does not keep for evaluation, :func:`~is_core.engine.training.evaluation_split`),
   their labels and, for ``loss``, the champion's click probabilities (the champion file is
   loaded by each worker, so it must be a path the workers can read; one they cannot load
   makes ``loss`` fall back to ``negative`` as a missing champion does). Client: each
   partition's count of training rows, for :func:`~is_core.ctr.sampling.correction_share`.
2. each partition's correction slice held out (:func:`~is_core.ctr.sampling.correction_rows`,
   the local seeds). Client: the rows to sample, their clicks and, for ``loss``, the sum of
   their gradients :math:`|y - \\hat p|`, from which :meth:`ImportanceSubsampler.fit_sums`
   solves :math:`r`; for ``loss`` :math:`c` by :func:`~is_core.ctr.sampling.loss_rate_from_sums`
   (a few passes of :class:`~is_core.ctr.sampling.ScoreSums` at trial rates: no score leaves its
   worker).
3. each partition's draw (:meth:`ImportanceSubsampler.sample_partition` with its index): its
   kept rows with their CTR features, label, final weight and sampling weight, and its slice.
   Client: the kept rows' :class:`~is_core.ctr.stage.SampleWeightSums` and category levels,
   and the slice itself (at most :data:`~is_core.ctr.sampling.CORRECTION_ROWS` rows, the
   rows the sampled boosters are corrected on: :class:`~is_core.ctr.stage.DrawnSample`).
4. the kept rows encoded with the :class:`FeatureSpec` of their categories (what
   ``FeatureSpec.fit`` finds on the local engine's sample), with the early-stopping split and
   the folds drawn as for the unsampled frame, and the training weights scaled to mean 1 by
   the partition sums: importance × sampling weight (:data:`~is_core.engine.training.WEIGHT`,
   the weighted booster's) and the sampling weight alone
   (:data:`~is_core.engine.training.BASELINE`, the baseline's
   and its fold boosters'). Only the kept rows are ever encoded, so memory falls with the
   sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from is_core._validation import config_keys
from is_core.config import ColumnsConfig, TrainConfig
from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.sampling import (
    ImportanceSubsampler,
    ScoreSums,
    correction_rows,
    correction_share,
    gradient_magnitude,
)
from is_core.ctr.stage import TRAIN_KEYS, DrawnSample, SampleWeightSums, _champion_scorer
from is_core.data.features import FeatureSpec, category_levels
from is_core.data.io import InputFile
from is_core.engine.partitions import Partitions, empty_frame, read_partition, safe_map
from is_core.engine.training import (
    BASELINE,
    FOLD,
    LABEL,
    VALID,
    WEIGHT,
    evaluation_split,
    read_weights,
)
from is_core.errors import ParameterError, TrainingError

#: The encoded sample's extra columns (beside :data:`~is_core.engine.training.BASELINE`): the
#: sampling weight :math:`1/\pi` itself and the row's source ``row_id``.
SAMPLING, ROW = "__sampling", "__row"
_FINAL, _POSITION = "__final", "__position"  # the raw kept rows' final weight, row in the file


@dataclass(frozen=True)
class _PartitionRows:
    """One partition's rows to sample (positions in its file), their labels and the
    champion's probabilities (None without one), and the slice held out of them; on its
    worker."""

    index: int
    first: int
    n: int
    rows: np.ndarray
    y: np.ndarray
    p: np.ndarray | None
    held: np.ndarray
    champion_error: str | None = None


def _training_labels(file: InputFile, index: int, first: int, n: int, label: str,
                     champion: str | None, champion_features: list[str], random_state: int,
                     holdout: bool) -> _PartitionRows:
    """Step 1 (module docstring); ``held`` is still empty."""
    frame = read_partition(file, [label, *champion_features], "source")
    rows = np.arange(len(frame)) if holdout else np.flatnonzero(
        ~evaluation_split(random_state, first, n))
    y = frame[label].to_numpy()
    if not np.isin(y, (0, 1)).all():
        raise ParameterError("click labels must be 0 or 1", fix="map the label to 0/1",
                             parameter="y")
    p, error = None, None
    if champion is not None:
        try:
            p = WeightedCTRModel.load(champion).predict_proba(frame)[rows]
        except (OSError, ValueError, KeyError, TrainingError) as exc:
            error = (f"a worker could not load the champion {champion} ({type(exc).__name__}: "
                     f"{exc}): sampled with 'negative' instead")
    return _PartitionRows(index, first, n, rows, y[rows], p, np.empty(0, dtype=np.int64),
                          error)


def _count(part: _PartitionRows) -> int:
    return int(part.rows.size)


def _hold_out(part: _PartitionRows, share: float, random_state: int) -> _PartitionRows:
    """Step 2: the partition's correction slice out of its rows to sample."""
    mask = correction_rows(part.rows.size, share, random_state=random_state,
                           partition=part.index)
    return _PartitionRows(part.index, part.first, part.n, part.rows[~mask], part.y[~mask],
                          None if part.p is None else part.p[~mask], part.rows[mask],
                          part.champion_error)


def _label_sums(part: _PartitionRows) -> tuple[int, int, float | None, str | None]:
    gradient = None if part.p is None else float(gradient_magnitude(part.y, part.p).sum())
    return int(part.y.size), int(part.y.sum()), gradient, part.champion_error


def _score_sums(part: _PartitionRows, sampler: ImportanceSubsampler, rate: float
                ) -> ScoreSums:
    assert part.p is not None  # only 'loss' with the champion's probabilities asks
    return ScoreSums.of(sampler.scores(part.y, part.p), rate)


@dataclass(frozen=True)
class _PartitionDraw:
    """Step 3's result on the worker: the kept rows (raw CTR features, label, final weight,
    sampling weight, row id, position in the file), the slice, their sums and levels."""

    kept: pd.DataFrame
    held_out: pd.DataFrame
    sums: SampleWeightSums
    levels: dict[str, set[str]]


def _draw(part: _PartitionRows, file: InputFile, sampler: ImportanceSubsampler,
          columns: list[str], categorical: list[str], weights_dir: str) -> _PartitionDraw:
    """Step 3 (module docstring)."""
    kept, w = sampler.sample_partition(part.y, part.p, partition=part.index)
    frame = read_partition(file, columns, "source")
    final = read_weights(weights_dir, part.index, len(frame))
    position = part.rows[kept]
    rows = frame.iloc[position].reset_index(drop=True)
    rows[_FINAL], rows[SAMPLING] = final[position], w
    rows[ROW], rows[_POSITION] = part.first + position, position
    held_out = frame.iloc[part.held].reset_index(drop=True)
    held_out[_FINAL], held_out[ROW] = final[part.held], part.first + part.held
    return _PartitionDraw(rows, held_out, SampleWeightSums.of(final[position], w),
                          {c: set(category_levels(rows[c])) for c in categorical})


def _draw_summary(draw: _PartitionDraw) -> tuple[SampleWeightSums, dict[str, set[str]]]:
    return draw.sums, draw.levels


def _held_out(draw: _PartitionDraw) -> pd.DataFrame:
    return draw.held_out


def encode_kept(kept: pd.DataFrame, index: int, n: int, spec: FeatureSpec, label: str,
                validation_fraction: float, n_folds: int, random_state: int,
                sums: SampleWeightSums) -> pd.DataFrame:
    """Step 4 for one partition's kept rows: encoded features, label, the two training
    weights of mean 1 (``sums`` over the whole sample), the early-stopping split and the fold
    of the unsampled frame's draws (:func:`~is_core.engine.training.training_partition`:
    stream ``[random_state, index]`` over all ``n`` rows of the file), sampling weight, row id."""
    out = spec.transform(kept)
    rng = np.random.default_rng([random_state, index])
    position = kept[_POSITION].to_numpy()
    valid = rng.random(n) < validation_fraction
    fold = rng.integers(0, n_folds, n).astype("int8")
    sampling = kept[SAMPLING].to_numpy()
    out[LABEL] = kept[label].to_numpy().astype("int8")
    out[WEIGHT] = kept[_FINAL].to_numpy() * sampling / (sums.combined / sums.n)
    out[VALID] = valid[position]
    out[FOLD] = fold[position]
    out[BASELINE] = sampling / (sums.sampling / sums.n)
    out[SAMPLING] = sampling
    out[ROW] = kept[ROW].to_numpy()
    return out.reset_index(drop=True)


def _encoded(draw: _PartitionDraw, index: int, n: int, **kwargs: Any) -> pd.DataFrame:
    return encode_kept(draw.kept, index, n, **kwargs)


@dataclass
class DaskSample:
    """The drawn sample: its :class:`FeatureSpec`, the encoded kept rows (a persisted
    ``dask.dataframe``, one partition per source file) and what both engines keep of it."""

    spec: FeatureSpec
    frame: Any
    drawn: DrawnSample


def _fit_sampler(client: Any, train: TrainConfig, parts: list[Any], random_state: int
                 ) -> tuple[ImportanceSubsampler, str | None]:
    """Step 2's rate, from the partitions' label (and score) sums; a worker's champion error."""
    stats = client.gather(client.map(_label_sums, parts, pure=False))
    error = next((s[3] for s in stats if s[3] is not None), None)
    gradients = [s[2] for s in stats]
    sampler = ImportanceSubsampler(train.sampling, train.keep_fraction, train.max_rows,
                                   random_state=random_state)

    def score_sums(fitted: ImportanceSubsampler, rate: float) -> ScoreSums:
        futures = safe_map(client, _score_sums, parts, sampler=fitted, rate=rate)
        out = client.gather(futures)
        return sum(out[1:], out[0])

    loss = error is None and all(g is not None for g in gradients)
    with config_keys(TRAIN_KEYS):
        sampler.fit_sums(sum(s[0] for s in stats), sum(s[1] for s in stats),
                         sum(g for g in gradients if g is not None) if loss else None,
                         score_sums if loss else None)
    return sampler, error


def draw_sample(client: Any, source: Partitions, train: TrainConfig, columns: ColumnsConfig,
                weights_dir: str, random_state: int, holdout: bool, champion: str | None
                ) -> DaskSample:
    """The local engine's importance subsample, drawn on the workers (module docstring)."""
    import dask
    import dask.dataframe as dd

    started = time.perf_counter()
    scorer, fallback = _champion_scorer(train, columns, champion)
    index = list(range(len(source)))
    sizes = [source.offsets[i + 1] - source.offsets[i] for i in index]
    labels = safe_map(client, _training_labels, list(source.files), index,
                      list(source.offsets[:-1]), sizes, label=columns.label,
                      champion=champion if scorer else None,
                      champion_features=scorer.features if scorer else [],
                      random_state=random_state, holdout=holdout)
    share = correction_share(sum(client.gather(client.map(_count, labels, pure=False))),
                             train.sampling_correction)
    parts = safe_map(client, _hold_out, labels, share=share, random_state=random_state)
    del labels
    sampler, worker_error = _fit_sampler(client, train, parts, random_state)
    features = [*columns.ctr_numeric, *columns.ctr_categorical]
    draws = safe_map(client, _draw, parts, list(source.files), sampler=sampler,
                     columns=[*features, columns.label], categorical=list(columns.ctr_categorical),
                     weights_dir=weights_dir)
    del parts
    summaries = client.gather(client.map(_draw_summary, draws, pure=False))
    sums = sum((s for s, _ in summaries[1:]), summaries[0][0])
    spec = FeatureSpec(list(columns.ctr_numeric), list(columns.ctr_categorical))
    spec.categories = {c: sorted(set().union(*(levels[c] for _, levels in summaries)))
                       for c in spec.categorical}
    held_out = pd.concat(client.gather(client.map(_held_out, draws, pure=False)),
                         ignore_index=True)
    encoding = {"spec": spec, "label": columns.label,
                "validation_fraction": train.validation_fraction,
                "n_folds": train.recalibration_folds, "random_state": random_state,
                "sums": sums}
    meta = encode_kept(_empty_kept(source, [*features, columns.label]), 0, 0, **encoding)
    encoded = safe_map(client, _encoded, draws, index, sizes, **encoding)
    with dask.config.set({"dataframe.convert-string": False}):
        frame = client.persist(dd.from_delayed(encoded, meta=meta, verify_meta=False))
    drawn = DrawnSample(
        sampler=sampler, fallback=fallback or worker_error or sampler.fallback_,
        champion=champion, sums=sums, held_out=held_out.drop(columns=[_FINAL, ROW]),
        held_out_rows=held_out[ROW].to_numpy(), held_out_weight=held_out[_FINAL].to_numpy(),
        seconds=time.perf_counter() - started)
    return DaskSample(spec=spec, frame=frame, drawn=drawn)


def _empty_kept(source: Partitions, columns: list[str]) -> pd.DataFrame:
    """The raw kept rows of no partition (the dtypes of :func:`_draw`'s)."""
    kept = empty_frame(source, columns)
    kept[_FINAL] = pd.Series([], dtype="float64")
    kept[SAMPLING] = pd.Series([], dtype="float64")
    kept[ROW] = pd.Series([], dtype="int64")
    kept[_POSITION] = pd.Series([], dtype="int64")
    return kept
