r"""CTR model metrics on labeled rows, optionally importance-weighted, with bootstrap intervals.

With row weights :math:`w_i` (all 1 on a labeled target holdout; the final importance weights on a
source split, which makes every metric a self-normalized IS estimate of its target value) and
:math:`W = \sum_i w_i`:

* **AUC** (ROC): the weighted probability that a random click is scored above a random non-click,
  ties counting one half.
* **logloss** :math:`L = -\frac{1}{W}\sum_i w_i [y_i \log p_i + (1-y_i)\log(1-p_i)]`.
* **normalized entropy** :math:`NE = L / H(\bar y)` with :math:`\bar y = \sum w_i y_i / W` and
  :math:`H(c) = -c\log c - (1-c)\log(1-c)`: the logloss relative to always predicting the observed
  CTR (He et al. 2014, "Practical lessons from predicting clicks on ads at Facebook"); < 1 is better
  than the base rate.
* **expected calibration error** :math:`ECE = \sum_b \frac{W_b}{W} |\bar p_b - \bar y_b|` over
  ``n_bins`` equal-weight bins of the predictions (weighted quantile bins, so each bin carries about
  the same weight; bin edges come from the full sample and stay fixed in the bootstrap).
* **calibration ratio** :math:`\sum w_i p_i / \sum w_i y_i` (mean prediction over observed CTR;
  1 is calibrated, > 1 over-predicts).

**Bootstrap intervals.** Rows are resampled with replacement (each row keeps its weight, so the
ratio metrics are re-normalized in every replicate), ``n_boot`` times; the interval is the
percentile interval of the replicates and ``std_error`` their standard deviation. A paired
bootstrap (the same resampled rows for two models) gives intervals for metric differences, which
are much narrower than the two marginal intervals because the rows' difficulty cancels.

Predictions are clipped to :math:`[10^{-7}, 1 - 10^{-7}]` inside logloss only, so a prediction of
exactly 0 or 1 costs a large finite loss instead of infinity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from is_core._validation import check_sample_weight
from is_core.errors import ParameterError
from is_core.weights.estimators import Estimate, snis_estimate

PROB_EPS = 1e-7
METRICS = ("auc", "logloss", "ne", "ece", "calibration_ratio")
#: The direction in which each metric is better (used by verdicts and leaderboards).
LOWER_IS_BETTER = {"auc": False, "logloss": True, "ne": True, "ece": True,
                   "calibration_ratio": None}
_MAX_CELLS = 4_000_000  # rows × replicates held in memory at once by the bootstrap


# ---------------------------------------------------------------------------- point metrics
def binary_entropy(c: np.ndarray | float) -> np.ndarray | float:
    """:math:`H(c) = -c\\log c - (1-c)\\log(1-c)` in nats (``c`` clipped like predictions)."""
    c = np.clip(c, PROB_EPS, 1 - PROB_EPS)
    return -(c * np.log(c) + (1 - c) * np.log1p(-c))


def row_logloss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row logloss :math:`-[y \\log p + (1-y) \\log(1-p)]` (``p`` clipped as above)."""
    p = np.clip(np.asarray(p, dtype=float), PROB_EPS, 1 - PROB_EPS)
    y = np.asarray(y, dtype=float)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def calibration_bins(p: np.ndarray, sample_weight: np.ndarray | None = None, n_bins: int = 10
                     ) -> np.ndarray:
    """Bin index (0 … n_bins-1) of each prediction: weighted-quantile bins of ``p``.

    Tied predictions always share a bin, so fewer than ``n_bins`` bins may be used.
    """
    if n_bins < 1:
        raise ParameterError(f"n_bins must be at least 1, got {n_bins}",
                             fix="pass the number of prediction bins, e.g. 10",
                             parameter="n_bins")
    p = np.asarray(p, dtype=float)
    w = check_sample_weight(sample_weight, p.size)
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(w[order])
    cut_weights = cum[-1] * np.arange(1, n_bins) / n_bins
    edges = np.unique(p[order][np.minimum(np.searchsorted(cum, cut_weights), p.size - 1)])
    return np.searchsorted(edges, p, side="left")


def ctr_metrics(
    y: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None = None, n_bins: int = 10
) -> dict[str, Any]:
    """AUC, logloss, NE, ECE, calibration ratio, mean prediction and observed CTR of ``p``."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = check_sample_weight(sample_weight, y.size)
    values = _MetricKernel(y, p, calibration_bins(p, w, n_bins)).evaluate(w[None, :])
    return {
        "n": int(y.size),
        **{m: float(values[m][0]) for m in METRICS},
        "mean_prediction": float(values["mean_prediction"][0]),
        "observed_ctr": float(values["observed_ctr"][0]),
    }


def reliability_curve(
    y: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None = None, n_bins: int = 10,
    level: float = 0.95,
) -> list[dict[str, float]]:
    """Reliability-diagram data: per prediction bin the mean prediction and the observed CTR.

    Each bin's observed CTR carries the self-normalized (delta-method) interval of
    :func:`is_core.weights.estimators.snis_estimate`, so weighted and unweighted curves are
    comparable.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    w = check_sample_weight(sample_weight, y.size)
    bins = calibration_bins(p, w, n_bins)
    total = w.sum()
    out = []
    for b in np.unique(bins):
        m = bins == b
        wb = w[m]
        if wb.sum() <= 0:
            continue
        obs = snis_estimate(y[m], wb, level=level)
        out.append({"bin": int(b), "n": int(m.sum()), "weight_share": float(wb.sum() / total),
                    "mean_prediction": float(wb @ p[m] / wb.sum()), "observed_ctr": obs.value,
                    "ci_low": obs.ci_low, "ci_high": obs.ci_high})
    return out


# ---------------------------------------------------------------------------- bootstrap
def bootstrap_metrics(
    y: np.ndarray, predictions: dict[str, np.ndarray], sample_weight: np.ndarray | None = None,
    *, baseline: str | None = None, n_boot: int = 200, level: float = 0.95, n_bins: int = 10,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Point metrics with percentile bootstrap intervals for each model in ``predictions``.

    Every model is scored on the *same* resampled rows. With ``baseline`` set, also returns
    ``"difference"``: for each other model, ``metric(model) - metric(baseline)`` with its paired
    bootstrap interval. Besides :data:`METRICS` it scores ``calibration_error``
    (:math:`|\text{calibration ratio} - 1|`, a promotion metric) on the same replicates.

    Returns ``{"models": {name: {metric: Estimate dict}}, "difference": {name: {metric: ...}},
    "n_boot": n_boot, "level": level}``.
    """
    y = np.asarray(y, dtype=float)
    w = check_sample_weight(sample_weight, y.size)
    if not 0 < level < 1:
        raise ParameterError(f"level must be in (0, 1), got {level}",
                             fix="pass the intervals' confidence level, e.g. 0.95",
                             parameter="level")
    if n_boot < 2:
        raise ParameterError(f"n_boot must be at least 2, got {n_boot}",
                             fix="pass the number of bootstrap replicates, e.g. 200",
                             parameter="n_boot")
    if baseline is not None and baseline not in predictions:
        raise ParameterError(f"baseline {baseline!r} is not one of {sorted(predictions)}",
                             fix="name one of the models in predictions, or pass None",
                             parameter="baseline")
    kernels = {name: _MetricKernel(y, np.asarray(p, dtype=float),
                                   calibration_bins(p, w, n_bins))
               for name, p in predictions.items()}
    point = {name: {m: float(v[0]) for m, v in k.evaluate(w[None, :]).items()}
             for name, k in kernels.items()}
    rng = np.random.default_rng(random_state)
    reps: dict[str, dict[str, list[np.ndarray]]] = {n: {m: [] for m in METRICS} for n in kernels}
    chunk = max(1, min(n_boot, _MAX_CELLS // max(y.size, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = np.stack([np.bincount(rng.integers(0, y.size, y.size), minlength=y.size)
                           for _ in range(b)])
        replicate_w = counts * w[None, :]
        for name, kernel in kernels.items():
            values = kernel.evaluate(replicate_w)
            for m in METRICS:
                reps[name][m].append(values[m])
    draws = {n: {m: np.concatenate(v) for m, v in r.items()} for n, r in reps.items()}
    for name in kernels:  # the promotion metric |calibration ratio - 1|, on the same replicates
        point[name]["calibration_error"] = abs(point[name]["calibration_ratio"] - 1.0)
        draws[name]["calibration_error"] = np.abs(draws[name]["calibration_ratio"] - 1.0)
    metrics = (*METRICS, "calibration_error")
    out: dict[str, Any] = {
        "models": {n: {m: _percentile_estimate(m, point[n][m], draws[n][m], level)
                       for m in metrics} for n in kernels},
        "n_boot": n_boot, "level": level,
    }
    if baseline is not None:
        out["difference"] = {
            n: {m: _percentile_estimate(m, point[n][m] - point[baseline][m],
                                        draws[n][m] - draws[baseline][m], level)
                for m in metrics}
            for n in kernels if n != baseline
        }
    return out


def paired_logloss_difference(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, sample_weight: np.ndarray | None = None,
    level: float = 0.95,
) -> Estimate:
    """Mean logloss of ``p_a`` minus that of ``p_b`` on the same rows, with a CI.

    The rows are paired, so the interval comes from the per-row differences
    :math:`d_i = \\ell(y_i, p_{a,i}) - \\ell(y_i, p_{b,i})`: their (weighted) mean with the
    delta-method standard error of :func:`is_core.weights.estimators.snis_estimate`. Negative means
    ``p_a`` is better.
    """
    d = row_logloss(y, p_a) - row_logloss(y, p_b)
    w = check_sample_weight(sample_weight, d.size)
    est = snis_estimate(d, w, level=level)
    return Estimate("logloss_difference", est.value, est.std_error, est.ci_low, est.ci_high, level)


# ---------------------------------------------------------------------------- internals
def _percentile_estimate(name: str, value: float, draws: np.ndarray, level: float
                         ) -> dict[str, Any]:
    finite = draws[np.isfinite(draws)]
    if finite.size < 2:
        nan = float("nan")
        return Estimate(name, value, nan, nan, nan, level).to_dict()
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(name, float(value), float(finite.std(ddof=1)), float(lo), float(hi),
                    level).to_dict()


class _MetricKernel:
    """Every metric of one model's predictions for many row-weight vectors at once.

    The predictions are ranked and binned once; a (replicates × rows) weight matrix then gives
    all metrics with matrix products, so a 200-replicate bootstrap costs a few passes over the
    data instead of 200 calls to scikit-learn.
    """

    def __init__(self, y: np.ndarray, p: np.ndarray, bins: np.ndarray) -> None:
        n = y.size
        self.y, self.p = y, p
        self.loss = row_logloss(y, p)
        # AUC: rows grouped by distinct prediction value, groups in increasing order
        _, group = np.unique(p, return_inverse=True)
        n_groups = int(group.max()) + 1 if n else 0
        self.pos = sparse.csr_matrix((y, (np.arange(n), group)), shape=(n, n_groups))
        self.neg = sparse.csr_matrix((1 - y, (np.arange(n), group)), shape=(n, n_groups))
        n_bins = int(bins.max()) + 1 if n else 0
        self.bin = sparse.csr_matrix((np.ones(n), (np.arange(n), bins)), shape=(n, n_bins))
        self.bin_p = sparse.csr_matrix((p, (np.arange(n), bins)), shape=(n, n_bins))
        self.bin_y = sparse.csr_matrix((y, (np.arange(n), bins)), shape=(n, n_bins))

    def evaluate(self, W: np.ndarray) -> dict[str, np.ndarray]:
        total = W.sum(axis=1)
        observed = W @ self.y / total
        mean_pred = W @ self.p / total
        logloss = W @ self.loss / total
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = np.asarray((self.pos.T @ W.T).T)
            neg = np.asarray((self.neg.T @ W.T).T)
            neg_below = np.cumsum(neg, axis=1) - neg
            n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
            auc = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
            auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
            bw = np.asarray((self.bin.T @ W.T).T)
            bp = np.asarray((self.bin_p.T @ W.T).T)
            by = np.asarray((self.bin_y.T @ W.T).T)
            gap = np.where(bw > 0, np.abs(bp - by) / np.where(bw > 0, bw, 1), 0.0)
            ece = (bw * gap).sum(axis=1) / total
            ratio = np.where(observed > 0, mean_pred / observed, np.nan)
        return {"auc": auc, "logloss": logloss, "ne": logloss / binary_entropy(observed),
                "ece": ece, "calibration_ratio": ratio, "mean_prediction": mean_pred,
                "observed_ctr": observed}
