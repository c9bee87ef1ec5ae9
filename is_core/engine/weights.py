"""The weights stage on Dask: clip, normalize, diagnose and estimate, partition by partition.

Each source partition's log weights, labels, days and ids stay in worker memory (one small
frame per partition); the client sees sums, a few order statistics and the top of the tail:

* caps from exact order statistics (:mod:`is_core.engine.selection`): ``quantile``, and the
  candidate caps of ``auto``, whose balancing rule runs on merged jackknife sums
  (:func:`is_core.weights.partitioned.jackknife_sums`); ``ionides`` from a log-sum-exp;
* PSIS and k̂ from the exact top ``M + 1`` log weights (:func:`is_core.weights.psis.smooth_tail`);
* normalization from per-group maxima and sums; ESS, the largest share and the SNIS estimate
  from sums; the quantiles from order statistics; the Poisson bootstrap from replicate sums per
  partition (each partition its own stream, so the replicates differ from the local engine's
  draws, not in distribution).

The final weights equal the local engine's up to the rounding of sums (about 1e-15). The
proposal-aware SNIS interval takes its own per-partition sums of these pieces
(:mod:`is_core.engine.intervals`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from is_core.data.atomic import write_parquet_atomic
from is_core.data.io import InputFile
from is_core.engine.partitions import read_partition, safe_map
from is_core.errors import DataContractError, InvalidWeightsError
from is_core.weights.psis import n_tail, smooth_tail

Piece = dict[str, Any]
"""One partition's rows in worker memory: ``lw`` (raw log weights), ``y``, ``dt`` (or None),
``ids`` (or None), ``first`` (its first global row) and, once clipped, ``cl``, ``final`` and
``unclipped`` (the final weights without clipping)."""


def load_piece(file: InputFile, index: int, first: int, n: int, log_ratio: str, label: str,
               impression_id: str | None) -> Piece:
    """Read one partition's labels (and ids, days) and its log ratios."""
    frame = read_partition(file, [label, *([impression_id] if impression_id else [])],
                           "source")
    lw = pd.read_parquet(Path(log_ratio) / f"part-{index:05d}.parquet",
                         columns=["log_w"])["log_w"].to_numpy()
    if len(lw) != len(frame):
        raise DataContractError(f"log_ratio part {index} has {len(lw)} rows but {file.path} "
                                f"has {len(frame)}", fix="the inputs changed during the run; "
                                "re-run the date")
    return {"lw": lw, "y": frame[label].to_numpy(dtype=float), "first": first,
            "dt": frame["dt"].to_numpy() if "dt" in frame else None,
            "ids": frame[impression_id].to_numpy() if impression_id else None}


def summary(piece: Piece) -> dict[str, Any]:
    """Rows, NaN / +inf counts, the largest finite log weight, label sums."""
    lw, y = piece["lw"], piece["y"]
    finite = lw[np.isfinite(lw)]
    return {"n": lw.size, "nan": int(np.isnan(lw).sum()), "posinf": int(np.isposinf(lw).sum()),
            "max": float(finite.max()) if finite.size else -np.inf,
            "y": float(y.sum()), "y2": float(y @ y)}


def check_log_weights(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The merged :func:`summary`, or :func:`is_core._validation.check_log_weights`' error."""
    n = sum(p["n"] for p in parts)
    n_nan, n_inf = sum(p["nan"] for p in parts), sum(p["posinf"] for p in parts)
    if n == 0:
        raise InvalidWeightsError(
            "log weights must be a non-empty 1-d array, got shape (0,)",
            fix="pass one log weight per source row (an empty window has no rows to weight)",
            details={"shape": [0]})
    if n_nan or n_inf:
        raise InvalidWeightsError(
            f"log weights contain NaN or +inf ({n_nan} NaN, {n_inf} +inf of {n})",
            fix="the proposal model is broken upstream: check the domain classifier's inputs "
            "and calibration (or the logged propensities), then re-run the date",
            details={"nan": n_nan, "posinf": n_inf, "n": n})
    return {"n": n, "max": max(p["max"] for p in parts), "y": sum(p["y"] for p in parts),
            "y2": sum(p["y2"] for p in parts)}


def top_tail(piece: Piece, m: int, field: str = "lw") -> tuple[np.ndarray, np.ndarray]:
    """The partition's ``m`` largest values of ``key`` with their global rows, in the order of
    a stable ascending argsort (ties by row)."""
    order = np.argsort(piece[field], kind="stable")[-m:]
    return piece[field][order], order + piece["first"]


def merged_tail(tails: list[tuple[np.ndarray, np.ndarray]], m: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The window's ``m`` largest (value, row) pairs in stable ascending order."""
    values = np.concatenate([t[0] for t in tails])
    rows = np.concatenate([t[1] for t in tails])
    order = np.lexsort((rows, values))[-m:]
    return values[order], rows[order]


def psis_tail(client: Any, pieces: list[Any], n: int, shift: float
              ) -> tuple[np.ndarray | None, np.ndarray, float]:
    """:func:`is_core.weights.psis.psis_log_weights` of the window from its top ``M + 1``: the
    smoothed tail (on the input scale, or None), its rows and k̂."""
    m = n_tail(n)
    if m < 5:
        return None, np.empty(0, dtype=np.int64), float("-inf")
    values, rows = merged_tail(client.gather(safe_map(client, top_tail, pieces, m=m + 1)),
                               m + 1)
    lw = values - shift
    smoothed, k = smooth_tail(lw[1:], lw[0])
    return (None if smoothed is None else smoothed + shift), rows[1:], k


def with_clip(piece: Piece, log_cap: float, tail_rows: np.ndarray | None,
              tail_values: np.ndarray | None) -> Piece:
    """The partition with its clipped log weights ``cl``: capped at ``log_cap``, or with the
    PSIS tail's rows replaced."""
    cl = np.minimum(piece["lw"], log_cap)
    if tail_rows is not None and tail_values is not None:
        cl = piece["lw"].copy()
        inside = (tail_rows >= piece["first"]) & (tail_rows < piece["first"] + cl.size)
        cl[tail_rows[inside] - piece["first"]] = tail_values[inside]
    return {**piece, "cl": cl}


def group_labels(piece: Piece, per_day: bool) -> np.ndarray:
    """Each row's normalization group: its day, or one group for the window."""
    return piece["dt"] if per_day else np.zeros(piece["lw"].size, dtype=np.int8)


def group_max(piece: Piece, per_day: bool) -> dict[Any, tuple[int, float, float]]:
    """Per normalization group: rows, largest raw and largest clipped log weight."""
    groups = group_labels(piece, per_day)
    out = {}
    for g in np.unique(groups):
        rows = groups == g
        out[g.item() if hasattr(g, "item") else g] = (
            int(rows.sum()), float(piece["lw"][rows].max()), float(piece["cl"][rows].max()))
    return out


def group_sums(piece: Piece, per_day: bool, maxima: dict[Any, tuple[int, float, float]]
               ) -> dict[Any, tuple[float, float]]:
    """Per group: the sums of the shifted raw and clipped weights (the normalizers)."""
    groups = group_labels(piece, per_day)
    out = {}
    for g in np.unique(groups):
        key = g.item() if hasattr(g, "item") else g
        rows = groups == g
        _, raw_max, cl_max = maxima[key]
        out[key] = (float(np.exp(piece["lw"][rows] - raw_max).sum()),
                    float(np.exp(piece["cl"][rows] - cl_max).sum()))
    return out


def with_final(piece: Piece, per_day: bool, maxima: dict[Any, tuple[int, float, float]],
               sums: dict[Any, tuple[float, float]]) -> Piece:
    """The partition with its final weights (``final``) and the unclipped final weights
    (``unclipped``): :func:`is_core.weights.normalize.normalize_log_weights` per group."""
    groups = group_labels(piece, per_day)
    final, unclipped = np.empty(piece["lw"].size), np.empty(piece["lw"].size)
    for g in np.unique(groups):
        key = g.item() if hasattr(g, "item") else g
        rows = groups == g
        n_g, raw_max, cl_max = maxima[key]
        raw_sum, cl_sum = sums[key]
        final[rows] = np.exp(piece["cl"][rows] - cl_max) * (n_g / cl_sum)
        unclipped[rows] = np.exp(piece["lw"][rows] - raw_max) * (n_g / raw_sum)
    return {**piece, "final": final, "unclipped": unclipped}


def write_weights(piece: Piece, index: int, out_dir: str) -> str:
    """The partition's part of ``weights.parquet``: the local engine's columns."""
    n = piece["lw"].size
    frame = pd.DataFrame({"row_id": np.arange(piece["first"], piece["first"] + n,
                                              dtype=np.int64)})
    if piece["ids"] is not None:
        frame["impression_id"] = piece["ids"]
    if piece["dt"] is not None:
        frame["dt"] = piece["dt"]
    frame["raw_weight"] = np.exp(piece["lw"])
    frame["clipped_weight"] = np.exp(piece["cl"])
    frame["final_weight"] = piece["final"]
    path = write_parquet_atomic(frame, Path(out_dir) / f"part-{index:05d}.parquet")
    return str(path)


def vector(piece: Piece, field: str, exp: bool = False) -> np.ndarray:
    """One of the partition's vectors (``exp``: of the exponential), for the order
    statistics."""
    return np.exp(piece[field]) if exp else piece[field]


def final_stats(piece: Piece, index: int, shift: float, n_boot: int, random_state: int
                ) -> dict[str, Any]:
    """The partition's sums for the diagnostics and the target-CTR estimates."""
    from is_core.weights.partitioned import poisson_replicate_sums, snis_sums

    lw, cl, y, final = piece["lw"], piece["cl"], piece["y"], piece["final"]
    raw_scaled, clipped_scaled = np.exp(lw - shift), np.exp(cl - shift)
    with np.errstate(over="ignore", invalid="ignore"):
        terms = np.exp(lw) * y  # the IS terms, on the raw weights' own scale (as the local)
    rng = np.random.default_rng([random_state, index])
    return {
        "final": snis_sums(y, final), "unclipped": snis_sums(y, piece["unclipped"]),
        "final_max": float(final.max()), "clipped": int(np.count_nonzero(cl < lw)),
        "raw": (float(raw_scaled.sum()), float(raw_scaled @ raw_scaled)),
        "shift": (float(clipped_scaled.sum()), float(clipped_scaled @ y),
                  float(raw_scaled @ y)),
        "is": (float(terms.sum()), float(terms @ terms)),
        "boot": poisson_replicate_sums(y, [final, piece["unclipped"]], n_boot, rng),
    }


def jackknife_piece(piece: Piece, log_caps: np.ndarray, shift: float, sums: np.ndarray
                    ) -> dict[str, np.ndarray]:
    from is_core.weights.partitioned import jackknife_sums

    return jackknife_sums(piece["lw"], piece["y"], log_caps, shift, sums)


def cap_piece(piece: Piece, log_caps: np.ndarray, shift: float) -> np.ndarray:
    from is_core.weights.partitioned import cap_sums

    return cap_sums(piece["lw"], piece["y"], log_caps, shift)


def count_above(piece: Piece, log_cap: float) -> int:
    return int(np.count_nonzero(piece["lw"] > log_cap))


def logsumexp_piece(piece: Piece, shift: float) -> float:
    return float(np.exp(piece["lw"] - shift).sum())


def decide_clip(client: Any, pieces: list[Any], method: str, quantile: float,
                max_weight: float | None, stats: dict[str, Any]) -> tuple[Any, Any]:
    """The clip of :func:`is_core.weights.clipping.clip_log_weights` from the partitions:
    a :class:`ClipResult` (without the weights) and the PSIS tail (rows, values) or None."""
    from is_core.engine.selection import order_statistics, sorted_pieces
    from is_core.weights.clipping import ClipResult, clip_log_weights

    n, shift = stats["n"], stats["max"]
    # the same parameter checks and messages as the local clip, on a stand-in
    clip_log_weights(np.zeros(2), method, quantile=quantile,  # type: ignore[arg-type]
                     max_weight=max_weight, y=np.zeros(2))

    def capped(log_cap: float, name: str, **details: Any) -> ClipResult:
        above = sum(client.gather(safe_map(client, count_above, pieces, log_cap=log_cap)))
        return ClipResult(np.empty(0), name, float(log_cap), float(above / n), details)

    if method == "none":
        return ClipResult(np.empty(0), "none", float("inf"), 0.0), None
    if method == "hard":
        return capped(float(np.log(max_weight or 1.0)), "hard"), None
    if method == "quantile":
        rank = min(max(int(np.ceil(n * quantile)) - 1, 0), n - 1)
        lw = sorted_pieces(client, safe_map(client, vector, pieces, field="lw"))
        cap = order_statistics(client, lw, np.array([rank]), n)[0]
        return capped(float(cap), "quantile", quantile=quantile), None
    if method == "ionides":
        total = sum(client.gather(safe_map(client, logsumexp_piece, pieces, shift=shift)))
        log_mean = shift + np.log(total) - np.log(n)
        return capped(float(0.5 * np.log(n) + log_mean), "ionides"), None
    if method == "psis":
        values, rows, k = psis_tail(client, pieces, n, shift)
        if values is None:
            return ClipResult(np.empty(0), "psis", shift, 0.0, {"khat": k}), None
        original = merged_tail(client.gather(safe_map(client, top_tail, pieces, m=len(rows))),
                               len(rows))[0]
        changed = float(np.count_nonzero(values < original) / n)
        return (ClipResult(np.empty(0), "psis", float(values.max()), changed, {"khat": k}),
                (rows, values))
    return auto_clip(client, pieces, stats, capped), None


def unclipped_jackknife_se(client: Any, pieces: list[Any], stats: dict[str, Any]) -> float:
    """The jackknife standard error of the unclipped SNIS estimate (the share of the shift
    kept, :func:`is_core.weights.clipping.share_of_shift_kept`)."""
    from is_core.weights.partitioned import jackknife_variance_unclipped, merge_jackknife

    caps = np.array([np.inf])
    sums = np.sum(client.gather(safe_map(client, cap_piece, pieces, log_caps=caps,
                                           shift=stats["max"])), axis=0)
    jack = merge_jackknife(client.gather(safe_map(client, jackknife_piece, pieces, log_caps=caps,
                                                    shift=stats["max"], sums=sums)))
    return float(np.sqrt(jackknife_variance_unclipped(jack, stats["n"])))


def auto_clip(client: Any, pieces: list[Any], stats: dict[str, Any], capped: Any) -> Any:
    """:func:`is_core.weights.clipping.auto_clip` from order statistics and merged sums."""
    from is_core.engine.selection import order_statistics, sorted_pieces
    from is_core.weights.clipping import AUTO_CLIP_CONSTANT, _shift_share
    from is_core.weights.partitioned import (
        balancing_choice,
        jackknife_variance_unclipped,
        merge_jackknife,
    )

    n, shift = stats["n"], stats["max"]
    top_m = max(int(np.floor(0.10 * n)), 1)
    grid = np.unique(np.round(np.geomspace(1, top_m, 40)).astype(int))
    grid = grid[grid < n]
    lw = sorted_pieces(client, safe_map(client, vector, pieces, field="lw"))
    values = order_statistics(client, lw, n - 1 - grid, n)
    caps, clipped_rows = np.r_[np.inf, values], np.r_[0, grid]
    sums = np.sum(client.gather(safe_map(client, cap_piece, pieces, log_caps=caps, shift=shift)),
                  axis=0)
    jack = merge_jackknife(client.gather(safe_map(client, jackknife_piece, pieces, log_caps=caps,
                                                    shift=shift, sums=sums)))
    mu = sums[:, 1] / sums[:, 0]
    c = AUTO_CLIP_CONSTANT
    chosen = balancing_choice(mu, jack, n, c)
    se0 = float(np.sqrt(jackknife_variance_unclipped(jack, n)))
    shift_kept = _shift_share(float(mu[chosen]), float(mu[0]), stats["y"] / n, se0)
    return capped(float(caps[chosen]), "auto", constant=c,
                  clipped_rows=int(clipped_rows[chosen]), candidates=len(caps),
                  snis_unclipped=float(mu[0]), snis_clipped=float(mu[chosen]),
                  shift_kept=shift_kept)
