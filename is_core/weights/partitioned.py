r"""Statistics of the weights computed partition by partition: each function returns one
partition's contribution, a small array or tuple, and contributions add up (or merge) to the
statistic of the whole window. The Dask engine (:mod:`is_core.engine`) runs the contributions
on the workers; the formulas are the ones of the single-array functions they mirror.

* **Binned ROC AUC** (:func:`score_histogram`, :func:`histogram_auc`): each partition counts
  its (weighted) positives and negatives per bin of a fine grid of scores; the AUC of the
  merged counts, ties within a bin counting one half, is the AUC of scores rounded to the
  grid. On the logit scale with :data:`SCORE_BIN_WIDTH` = 0.001 it differs from the exact AUC
  by at most half the share of positive-negative pairs whose logits are that close.
"""

from __future__ import annotations

import numpy as np

from is_core.weights.estimators import (
    Estimate,
    _guarded,
    _normal_interval,
    bootstrap_hull,
    poisson_one,
    snis_rate_estimate,
)

#: Width of a score bin on the logit scale, and the range the grid covers (beyond: the edge
#: bins).
SCORE_BIN_WIDTH = 1e-3
SCORE_RANGE = 40.0
N_SCORE_BINS = int(round(2 * SCORE_RANGE / SCORE_BIN_WIDTH)) + 1


def score_bins(logit: np.ndarray) -> np.ndarray:
    """The bin of each logit on the fine grid (0 … :data:`N_SCORE_BINS` - 1)."""
    index = np.rint((np.asarray(logit, dtype=float) + SCORE_RANGE) / SCORE_BIN_WIDTH)
    return np.clip(np.nan_to_num(index, nan=0.0), 0, N_SCORE_BINS - 1).astype(np.int64)


def score_histogram(logit: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """One partition's (weighted) count of scores per bin of the fine logit grid."""
    return np.bincount(score_bins(logit), weights=weight, minlength=N_SCORE_BINS)


def histogram_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC from merged per-bin counts of positives and negatives (bins in increasing score
    order; ties within a bin count one half); NaN without positives or negatives."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    n_pos, n_neg = positive.sum(), negative.sum()
    if not (n_pos > 0 and n_neg > 0):
        return float("nan")
    below = np.cumsum(negative) - negative
    return float(np.sum(positive * (below + 0.5 * negative)) / (n_pos * n_neg))


# ---------------------------------------------------------------------------- SNIS from sums
#: The sums of one partition :func:`snis_sums` returns, in order.
SNIS_SUMS = ("n", "w", "wy", "w2", "w2y", "w2y2", "binary")


def snis_sums(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One partition's sums for :func:`snis_from_sums`: rows, :math:`\\sum w`, :math:`\\sum w
    y`, :math:`\\sum w^2`, :math:`\\sum w^2 y`, :math:`\\sum w^2 y^2` and the rows whose label
    is not 0/1. They add up over partitions."""
    y, w = np.asarray(y, dtype=float), np.asarray(w, dtype=float)
    w2 = np.square(w)
    return np.array([y.size, w.sum(), w @ y, w2.sum(), w2 @ y, w2 @ np.square(y),
                     np.count_nonzero((y != 0.0) & (y != 1.0))], dtype=float)


def snis_from_sums(sums: np.ndarray, level: float = 0.95,
                   unclipped: np.ndarray | None = None) -> Estimate:
    """:func:`~is_core.weights.estimators.snis_estimate` from the merged :func:`snis_sums`
    (``unclipped``: those of the weights before clipping, for the bias-guarded hull). The
    delta variance :math:`\\sum w^2 (y - \\hat\\mu)^2` is expanded into the sums, equal to the
    two-pass form up to rounding."""
    n, total, wy, w2, w2y, w2y2, not_binary = (float(v) for v in sums)
    mu = float(wy / total)
    se = float(np.sqrt(max(w2y2 - 2 * mu * w2y + mu * mu * w2, 0.0)) / total)
    if not_binary == 0:
        estimate = snis_rate_estimate(mu, se, float(total**2 / w2), level)
    else:
        estimate = _normal_interval("snis", mu, se, level)
    if unclipped is not None:
        estimate = _guarded(estimate, snis_from_sums(unclipped, level))
    return estimate


def mean_from_sums(name: str, total: float, squares: float, n: float, level: float = 0.95
                   ) -> Estimate:
    """A mean with its sample standard error (``naive``, ``is``) from :math:`\\sum x`,
    :math:`\\sum x^2` and the rows."""
    mean = total / n
    var = max(squares - total * total / n, 0.0) / (n - 1) if n > 1 else float("nan")
    return _normal_interval(name, mean, float(np.sqrt(var / n)), level)


# ---------------------------------------------------------------------------- Poisson bootstrap
def poisson_replicate_sums(y: np.ndarray, weight_sets: list[np.ndarray], n_boot: int,
                           rng: np.random.Generator, chunk_cells: int = 2_000_000
                           ) -> np.ndarray:
    """One partition's Poisson-bootstrap sums: for each weight set and replicate,
    :math:`\\sum_i c_i w_i y_i` and :math:`\\sum_i c_i w_i` with the same counts
    :math:`c_i \\sim \\mathrm{Poisson}(1)` for every set. Shape (sets, 2, n_boot). Each row is
    drawn independently, so the replicates of a window are the sums over its partitions (with
    independent streams per partition)."""
    y = np.asarray(y, dtype=float)
    out = np.zeros((len(weight_sets), 2, n_boot))
    step = max(1, chunk_cells // max(n_boot, 1))
    for start in range(0, y.size, step):
        counts = poisson_one(rng, (n_boot, min(step, y.size - start))).astype(float)
        rows = slice(start, start + counts.shape[1])
        for k, w in enumerate(weight_sets):
            wk = np.asarray(w, dtype=float)[rows]
            out[k, 0] += counts @ (wk * y[rows])
            out[k, 1] += counts @ wk
    return out


def bootstrap_from_sums(name: str, point: float, sums: np.ndarray, level: float = 0.95
                        ) -> Estimate:
    """:func:`~is_core.weights.estimators.bootstrap_estimate` of the SNIS from merged
    :func:`poisson_replicate_sums`: the percentile interval of each weight set's replicates,
    their hull (the first set's standard deviation)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = [wy / w for wy, w in sums]
    return bootstrap_hull(name, point, replicates, level)


# ---------------------------------------------------------------------------- automatic clip
def cap_sums(log_w: np.ndarray, y: np.ndarray, log_caps: np.ndarray, shift: float
             ) -> np.ndarray:
    r"""One partition's :math:`\sum_i w_{ji}` and :math:`\sum_i w_{ji} y_i` for the weights
    capped at each of ``log_caps``, :math:`w_{ji} = \exp(\min(\log w_i, c_j) - s)` with the
    window's largest log weight :math:`s` (the SNIS estimates of
    :func:`~is_core.weights.clipping.auto_clip`'s candidates). Shape (caps, 2)."""
    out = np.empty((len(log_caps), 2))
    for j, cap in enumerate(log_caps):
        w = np.exp(np.minimum(log_w, cap) - shift)
        out[j] = w.sum(), w @ y
    return out


def jackknife_sums(log_w: np.ndarray, y: np.ndarray, log_caps: np.ndarray, shift: float,
                   sums: np.ndarray, chunk: int = 50_000) -> dict[str, np.ndarray]:
    r"""One partition's part of the jackknife variances of :func:`auto_clip`'s rule.

    With the window's sums (:func:`cap_sums`) :math:`S_j, A_j` and :math:`\hat\mu_j =
    A_j/S_j`, row :math:`i`'s leave-one-out estimate under cap :math:`j` is
    :math:`(A_j - w_{ji} y_i)/(S_j - w_{ji})`; centred, :math:`L_{ji}` = that minus
    :math:`\hat\mu_j`. The rule needs :math:`\mathrm{Var}_{jk}(L_j - L_i)` for pairs of caps;
    with :math:`\delta_l = L_l - L_{l-1}`, :math:`L_j - L_i = \sum_{l=i+1}^{j} \delta_l`, so the
    Gram matrix ``G`` of the :math:`\delta` and their sums ``s`` give every pair's
    (:func:`pair_jackknife_variance`), and :math:`\delta` are small numbers (no cancellation).
    Also ``l0``: :math:`\sum L_0, \sum L_0^2` (the unclipped jackknife), and ``nan``: caps
    under which a leave-one-out estimate is undefined (one row carries all the weight)."""
    J = len(log_caps)
    S, A = sums[:, 0], sums[:, 1]
    mu = A / S
    G, s, l0 = np.zeros((J - 1, J - 1)), np.zeros(J - 1), np.zeros(2)
    nan = np.zeros(J, dtype=bool)
    for start in range(0, log_w.size, chunk):
        lw, yk = log_w[start:start + chunk], y[start:start + chunk]
        w = np.exp(np.minimum(lw[None, :], np.asarray(log_caps)[:, None]) - shift)
        rest = S[:, None] - w
        with np.errstate(invalid="ignore", divide="ignore"):
            loo = np.where(rest > 1e-300 * S[:, None], (A[:, None] - w * yk) / rest, np.nan)
        bad = np.isnan(loo)
        nan |= bad.any(axis=1)
        centred = np.where(bad, 0.0, loo - mu[:, None])
        l0 += centred[0].sum(), centred[0] @ centred[0]
        delta = np.diff(centred, axis=0)
        G += delta @ delta.T
        s += delta.sum(axis=1)
    return {"G": G, "s": s, "l0": l0, "nan": nan}


def pair_jackknife_variance(stats: dict[str, np.ndarray], i: int, j: int, n: int) -> float:
    """The jackknife variance of :math:`\\hat\\mu_j - \\hat\\mu_i` (:func:`jackknife_sums`,
    merged; ``i < j``): :math:`\\frac{n-1}{n}\\sum_k (d_k - \\bar d)^2`; inf when either
    cap's leave-one-out estimates are undefined (as :func:`_jackknife_variance`)."""
    if stats["nan"][i] or stats["nan"][j]:
        return float("inf")
    block = slice(i, j)  # delta_{i+1} ... delta_j
    total = float(stats["s"][block].sum())
    squares = float(stats["G"][block, block].sum())
    return float((n - 1) / n * max(squares - total * total / n, 0.0))


def jackknife_variance_unclipped(stats: dict[str, np.ndarray], n: int) -> float:
    """The jackknife variance of the unclipped SNIS estimate (cap 0 of :func:`jackknife_sums`)."""
    if stats["nan"][0]:
        return float("inf")
    total, squares = stats["l0"]
    return float((n - 1) / n * max(squares - total * total / n, 0.0))


def merge_jackknife(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The window's :func:`jackknife_sums` from the partitions'."""
    return {"G": sum(p["G"] for p in parts), "s": sum(p["s"] for p in parts),
            "l0": sum(p["l0"] for p in parts),
            "nan": np.logical_or.reduce([p["nan"] for p in parts])}


def balancing_choice(mu: np.ndarray, stats: dict[str, np.ndarray], n: int, c: float) -> int:
    """:func:`~is_core.weights.clipping.auto_clip`'s scan from merged sums: the last cap whose
    SNIS estimate ``mu[j]`` agrees with every weaker one's within ``c`` paired jackknife
    standard errors (plus rounding), stopping at the first that does not."""
    chosen = 0
    for j in range(1, len(mu)):
        for i in range(j):
            se = np.sqrt(pair_jackknife_variance(stats, i, j, n))
            rounding = 1e-12 * max(abs(mu[j]), abs(mu[i]))
            if not abs(mu[j] - mu[i]) <= c * se + rounding:
                return chosen
        chosen = j
    return chosen
