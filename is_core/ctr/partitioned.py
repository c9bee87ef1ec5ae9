r"""CTR metrics from per-partition statistics (the Dask engine's evaluation).

Each partition bins its predictions on a fine grid of the logit (:data:`FINE_BINS` bins of
width 0.001 over [-17, 17]: predictions are clipped to :math:`[10^{-7}, 1 - 10^{-7}]`, whose
logits are ±16.1) and sums, per bin, :math:`w`, :math:`w y`, :math:`w p`, :math:`w^2` and
:math:`w^2 y`; the merged sums give every metric of :func:`is_core.ctr.metrics.ctr_metrics`:

* **AUC** from the binned positives and negatives, ties within a bin counting one half (the
  AUC of logits rounded to 0.001; :func:`is_core.weights.partitioned.histogram_auc`);
* **logloss**, **NE**, **calibration ratio**: exact, from sums;
* **ECE** over equal-weight bins whose edges are fine-bin boundaries (the weighted quantiles of
  the predictions, rounded to the grid), and the reliability curve with each bin's SNIS
  interval from its sums.

The **bootstrap** is a Poisson bootstrap (Hanley & MacGibbon 2006): each row is drawn
:math:`\mathrm{Poisson}(1)` times, independently per partition, the same counts for every model
(paired), so each replicate's sums add up over partitions. Its AUC uses a coarser grid
(:data:`COARSE_BINS` bins) shifted by the fine grid's point difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from is_core.ctr.metrics import METRICS, PROB_EPS, binary_entropy, row_logloss
from is_core.weights.estimators import poisson_one
from is_core.weights.partitioned import histogram_auc, snis_from_sums

LOGIT_RANGE = 17.0
FINE_BINS = 34_001
COARSE_BINS = 1_024
#: The per-bin sums of :func:`binned_sums`, in order.
BIN_SUMS = ("w", "wy", "wp", "w2", "w2y", "rows")


def logit_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin (0 … n_bins-1) of each prediction's logit on a grid over ±:data:`LOGIT_RANGE`."""
    p = np.clip(np.asarray(p, dtype=float), PROB_EPS, 1 - PROB_EPS)
    logit = np.log(p) - np.log1p(-p)
    index = np.floor((logit + LOGIT_RANGE) / (2 * LOGIT_RANGE) * n_bins)
    return np.clip(index, 0, n_bins - 1).astype(np.int64)


def binned_sums(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    """One partition's statistics of one model: per fine bin the :data:`BIN_SUMS`, and the
    totals of :math:`w`, :math:`w y`, :math:`w p` and :math:`w \\ell` (logloss)."""
    y, p, w = (np.asarray(a, dtype=float) for a in (y, p, w))
    b = logit_bins(p, FINE_BINS)
    bins = np.stack([np.bincount(b, weights=v, minlength=FINE_BINS)
                     for v in (w, w * y, w * p, w * w, w * w * y, np.ones_like(w))])
    coarse = logit_bins(p, COARSE_BINS)
    return {"bins": bins, "n": y.size, "w": w.sum(), "wy": w @ y, "wp": w @ p,
            "wloss": w @ row_logloss(y, p),
            "coarse": np.stack([np.bincount(coarse, weights=v, minlength=COARSE_BINS)
                                for v in (w * y, w * (1 - y))])}


def merge_sums(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The window's :func:`binned_sums` (or :func:`replicate_sums`) from the partitions'."""
    return {k: sum(p[k] for p in parts) for k in parts[0]}


def calibration_edges(sums: dict[str, Any], n_bins: int) -> np.ndarray:
    """Fine-bin indices where the equal-weight calibration bins end: the fine bins in which the
    cumulative weight first reaches each of ``n_bins - 1`` cut points (as
    :func:`is_core.ctr.metrics.calibration_bins` cuts the sorted predictions)."""
    cum = np.cumsum(sums["bins"][0])
    cuts = cum[-1] * np.arange(1, n_bins) / n_bins
    return np.unique(np.minimum(np.searchsorted(cum, cuts), FINE_BINS - 1))


def calibration_of_fine_bins(edges: np.ndarray) -> np.ndarray:
    """The calibration bin of every fine bin (a fine bin at an edge closes its bin)."""
    return np.searchsorted(edges, np.arange(FINE_BINS), side="left")


def point_metrics(sums: dict[str, Any], n_bins: int) -> dict[str, Any]:
    """:func:`is_core.ctr.metrics.ctr_metrics` from merged :func:`binned_sums`."""
    w, wy, wp = sums["bins"][0], sums["bins"][1], sums["bins"][2]
    total = sums["w"]
    observed, mean_pred = sums["wy"] / total, sums["wp"] / total
    logloss = sums["wloss"] / total
    group = calibration_of_fine_bins(calibration_edges(sums, n_bins))
    bw, bp, by = (np.bincount(group, weights=v) for v in (w, wp, wy))
    ece = float(np.sum(np.abs(bp - by)) / total)
    return {"n": int(sums["n"]), "auc": histogram_auc(wy, w - wy), "logloss": float(logloss),
            "ne": float(logloss / binary_entropy(observed)), "ece": ece,
            "calibration_ratio": float(mean_pred / observed) if observed > 0 else float("nan"),
            "mean_prediction": float(mean_pred), "observed_ctr": float(observed)}


def reliability(sums: dict[str, Any], n_bins: int, level: float) -> list[dict[str, float]]:
    """:func:`is_core.ctr.metrics.reliability_curve` from merged :func:`binned_sums`."""
    group = calibration_of_fine_bins(calibration_edges(sums, n_bins))
    per = np.stack([np.bincount(group, weights=v, minlength=n_bins) for v in sums["bins"]])
    out = []
    for b in np.flatnonzero(per[0] > 0):
        w, wy, wp, w2, w2y, rows = per[:, b]
        obs = snis_from_sums(np.array([rows, w, wy, w2, w2y, w2y, 0.0]), level)
        out.append({"bin": int(b), "n": int(round(rows)), "weight_share": float(w / sums["w"]),
                    "mean_prediction": float(wp / w), "observed_ctr": obs.value,
                    "ci_low": obs.ci_low, "ci_high": obs.ci_high})
    return out


def replicate_sums(y: np.ndarray, predictions: dict[str, np.ndarray], w: np.ndarray,
                   groups: dict[str, tuple[np.ndarray, int]], n_boot: int,
                   rng: np.random.Generator, chunk_cells: int = 2_000_000) -> dict[str, Any]:
    r"""One partition's Poisson-bootstrap sums for every model (the same counts for all): per
    replicate :math:`\sum c w`, :math:`\sum c w y`, :math:`\sum c w p`, :math:`\sum c w
    \ell`, per calibration bin (``groups``: each row's, per model) :math:`\sum c w`,
    :math:`\sum c w p`, :math:`\sum c w y`, and per coarse logit bin the positive and negative
    weight (the replicate's AUC). ``groups``: per model, each row's calibration bin and the
    number of bins."""
    y, w = np.asarray(y, dtype=float), np.asarray(w, dtype=float)
    out: dict[str, Any] = {}
    for name in predictions:
        n_groups = groups[name][1]
        out[name] = {"tot": np.zeros((4, n_boot)), "cal": np.zeros((3, n_boot, n_groups)),
                     "auc": np.zeros((2, n_boot, COARSE_BINS))}
    step = max(1, chunk_cells // max(n_boot, 1))
    for start in range(0, y.size, step):
        rows = slice(start, min(start + step, y.size))
        counts = poisson_one(rng, (n_boot, rows.stop - start)).astype(float) * w[rows]
        yk = y[rows]
        for name, p in predictions.items():
            pk = np.asarray(p, dtype=float)[rows]
            o = out[name]
            o["tot"] += np.stack([counts.sum(axis=1), counts @ yk, counts @ pk,
                                  counts @ row_logloss(yk, pk)])
            cal = _onehot(groups[name][0][rows], o["cal"].shape[2])
            for k, v in enumerate((np.ones_like(pk), pk, yk)):
                o["cal"][k] += np.asarray((cal.multiply(v[:, None]).T @ counts.T).T)
            coarse = _onehot(logit_bins(pk, COARSE_BINS), COARSE_BINS)
            for k, v in enumerate((yk, 1 - yk)):
                o["auc"][k] += np.asarray((coarse.multiply(v[:, None]).T @ counts.T).T)
    return out


def _onehot(index: np.ndarray, width: int) -> sparse.csr_matrix:
    n = len(index)
    return sparse.csr_matrix((np.ones(n), (np.arange(n), index)), shape=(n, width))


def replicate_metrics(boot: dict[str, Any], auc_shift: float) -> dict[str, np.ndarray]:
    """Each replicate's metrics of one model from merged :func:`replicate_sums`; the coarse
    AUC shifted by ``auc_shift`` (the fine point AUC minus the coarse one)."""
    total, wy, wp, wloss = boot["tot"]
    with np.errstate(divide="ignore", invalid="ignore"):
        observed, mean_pred, logloss = wy / total, wp / total, wloss / total
        bw, bp, by = boot["cal"]
        ece = np.abs(bp - by).sum(axis=1) / total
        pos, neg = boot["auc"]
        below = np.cumsum(neg, axis=1) - neg
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg) + auc_shift
        ratio = np.where(observed > 0, mean_pred / observed, np.nan)
    return {"auc": auc, "logloss": logloss, "ne": logloss / binary_entropy(observed),
            "ece": ece, "calibration_ratio": ratio}


def coarse_auc(sums: dict[str, Any]) -> float:
    """The point AUC of merged :func:`binned_sums` on the coarse grid (for the shift)."""
    return histogram_auc(sums["coarse"][0], sums["coarse"][1])


__all__ = ["BIN_SUMS", "COARSE_BINS", "FINE_BINS", "METRICS", "binned_sums",
           "calibration_edges", "calibration_of_fine_bins", "coarse_auc", "logit_bins",
           "merge_sums", "point_metrics", "reliability", "replicate_metrics", "replicate_sums"]
