r"""Clipping of importance weights, in log space: raw weight → clipped weight.

Each method caps (or, for PSIS, smooths) the largest weights, trading a small bias for a large
variance reduction; none ever raises a weight. All take and return **log** weights, so a raw
weight that would overflow ``exp`` is still handled.

* ``none``: :math:`w^c = w`.
* ``hard``: :math:`w^c = \min(w, c)` for a fixed cap ``c`` on the weight scale.
* ``quantile``: :math:`c` = the empirical ``quantile`` of the raw weights.
* ``ionides``: truncated importance sampling, :math:`c = \sqrt n\, \bar w` (Ionides 2008,
  *J. Comput. Graph. Stat.* 17:295): bias and variance both vanish as :math:`n \to \infty`.
* ``psis``: Pareto-smoothed IS (Vehtari et al. 2024), see :mod:`is_core.weights.psis`.
* ``auto``: the strongest cap (among the raw weights' order statistics, clipping at most 10 % of
  the rows) whose self-normalized target-CTR estimate agrees with every weaker cap's, a
  Lepski-type balancing rule, :func:`auto_clip`.

:func:`share_of_shift_kept` says how much of the correction a clip keeps (1: all, 0: the
estimate has collapsed onto the source mean).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp

from is_core._validation import (
    CLIP_METHODS,
    ClipMethod,
    check_choice,
    check_length,
    check_log_weights,
)
from is_core.errors import ParameterError
from is_core.weights.psis import psis_log_weights

__all__ = ["CLIP_METHODS", "ClipMethod", "ClipResult", "auto_clip", "clip_hard", "clip_ionides",
           "clip_log_weights", "clip_none", "clip_psis", "clip_quantile",
           "share_of_shift_kept"]


@dataclass(frozen=True)
class ClipResult:
    """Clipped log weights, the cap on the log scale (``inf``: none) and method details."""

    log_w: np.ndarray = field(repr=False)
    method: str
    log_cap: float
    clipped_fraction: float
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (without the weights)."""
        out = asdict(self)
        out.pop("log_w")
        return out


def _capped(log_w: np.ndarray, log_cap: float, method: str, **details: Any) -> ClipResult:
    clipped = np.minimum(log_w, log_cap)
    return ClipResult(clipped, method, float(log_cap), float(np.mean(log_w > log_cap)), details)


def clip_none(log_w: np.ndarray) -> ClipResult:
    """No clipping (the raw weights)."""
    log_w = check_log_weights(log_w)
    return ClipResult(log_w.copy(), "none", float("inf"), 0.0)


def clip_hard(log_w: np.ndarray, max_weight: float) -> ClipResult:
    """Cap every weight at ``max_weight`` (on the raw weight scale)."""
    if not max_weight > 0:
        raise ParameterError(f"max_weight must be positive, got {max_weight}",
                             fix="pass the cap on the raw weight, e.g. 20",
                             parameter="max_weight")
    return _capped(check_log_weights(log_w), float(np.log(max_weight)), "hard")


def clip_quantile(log_w: np.ndarray, quantile: float = 0.99) -> ClipResult:
    """Cap at the empirical ``quantile`` of the raw weights (exp is monotone, so of log w)."""
    if not 0.0 < quantile <= 1.0:
        raise ParameterError(f"quantile must be in (0, 1], got {quantile}",
                             fix="pass the share of weights left uncapped, e.g. 0.99",
                             parameter="quantile")
    log_w = check_log_weights(log_w)
    cap = float(np.quantile(log_w, quantile, method="inverted_cdf"))  # an observed weight
    return _capped(log_w, cap, "quantile", quantile=quantile)


def clip_ionides(log_w: np.ndarray) -> ClipResult:
    """Truncated IS (Ionides 2008): cap at :math:`\\sqrt n` times the mean raw weight."""
    log_w = check_log_weights(log_w)
    n = log_w.size
    log_mean = logsumexp(log_w) - np.log(n)
    return _capped(log_w, float(0.5 * np.log(n) + log_mean), "ionides")


def clip_psis(log_w: np.ndarray) -> ClipResult:
    """Pareto-smoothed IS: the largest weights become GPD quantiles (never above the max)."""
    log_w = check_log_weights(log_w)
    smoothed, khat = psis_log_weights(log_w)
    changed = float(np.mean(smoothed < log_w))
    return ClipResult(smoothed, "psis", float(smoothed.max()), changed, {"khat": khat})


def _jackknife_snis(w: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out SNIS estimates :math:`(A - w_i y_i) / (S - w_i)` (NaN if nothing is left)."""
    total, weighted = w.sum(), w @ y
    rest = total - w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rest > 1e-300 * total, (weighted - w * y) / rest, np.nan)


def _jackknife_variance(values: np.ndarray) -> float:
    if np.isnan(values).any():
        return float("inf")
    n = values.size
    return float((n - 1) / n * np.sum(np.square(values - values.mean())))


#: The constant :math:`c` of :func:`auto_clip`'s balancing rule, :math:`\sqrt 2` (see there).
AUTO_CLIP_CONSTANT = float(np.sqrt(2.0))


def _candidate_log_caps(log_w: np.ndarray, n_candidates: int, max_fraction: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``inf`` (no cap), then the order statistics clipping the m largest weights, m ascending.

    m runs over a geometric grid from 1 to ``max_fraction`` · n; returns the caps and the m.
    """
    n = log_w.size
    top_m = max(int(np.floor(max_fraction * n)), 1)
    grid = np.unique(np.round(np.geomspace(1, top_m, n_candidates)).astype(int))
    grid = grid[grid < n]
    sorted_desc = np.sort(log_w)[::-1]
    return np.r_[np.inf, sorted_desc[grid]], np.r_[0, grid]


def _snis_with_cap(log_w: np.ndarray, y: np.ndarray, log_cap: float) -> tuple[float, np.ndarray]:
    """SNIS estimate and its leave-one-out values under the weights capped at ``log_cap``."""
    w = np.exp(np.minimum(log_w, log_cap) - log_w.max())
    return float(w @ y / w.sum()), _jackknife_snis(w, y)


def _agrees_with_weaker(mu: float, loo: np.ndarray, weaker_mu: list[float],
                        weaker_loo: list[np.ndarray], c: float) -> bool:
    r""":math:`|\hat\mu_j - \hat\mu_i| \le c\, \widehat{SE}(\hat\mu_j - \hat\mu_i)` for every i."""
    for mu_i, loo_i in zip(weaker_mu, weaker_loo, strict=True):
        se = np.sqrt(_jackknife_variance(loo - loo_i))  # inf (a row carries all): never rejects
        rounding = 1e-12 * max(abs(mu), abs(mu_i))  # ties up to rounding agree: scale-invariant
        if not abs(mu - mu_i) <= c * se + rounding:
            return False
    return True


def auto_clip(log_w: np.ndarray, y: np.ndarray, n_candidates: int = 40,
              max_fraction: float = 0.10, c: float = AUTO_CLIP_CONSTANT) -> ClipResult:
    r"""The strongest cap whose SNIS estimate agrees with every weaker cap's (a balancing rule).

    Candidates, weakest first: no cap (:math:`j = 0`), then the raw log weights' order
    statistics clipping the :math:`m_j` largest weights, :math:`m_j` on a geometric grid from 1
    to ``max_fraction`` · n. With :math:`\hat\mu_j` the self-normalized (SNIS) target-CTR
    estimate under cap :math:`j`, the rule keeps the largest :math:`j` such that, for all
    :math:`i < j`,

    .. math::

        |\hat\mu_j - \hat\mu_i| \le c\, \widehat{SE}(\hat\mu_j - \hat\mu_i),

    scanning upwards and stopping at the first cap that fails. This is Lepski's balancing
    principle (Lepski 1991, *Theory Probab. Appl.* 35:454), in the form Su, Dimakopoulou,
    Krishnamurthy & Dudík (2020, "Doubly robust off-policy evaluation with shrinkage", ICML;
    and Su, Srinath & Krishnamurthy 2020, "Adaptive estimator selection for off-policy
    evaluation", SLOPE, ICML) use to pick an importance-weight truncation: stronger caps have
    less variance and more bias, and a cap is taken only while its extra bias is not detectable.

    **Paired standard error.** :math:`\widehat{SE}` is the jackknife standard error of the
    *difference* of the two estimates (the leave-one-out values are differenced row by row), not
    the standard error of either: both use the same rows, so their noise largely cancels and a
    bias of the clipped estimate is seen even when the unclipped one is noisy. (SLOPE's
    intervals of each estimate, :math:`\hat\mu_i \pm c\,\widehat{SE}(\hat\mu_i)`, measured
    2-3 times the unclipped RMSE on well-behaved weights: they are widest exactly where the
    bias of heavy clipping must be seen.) The jackknife, not the delta method, because a single
    dominating weight sits on its own residual and makes the delta variance vanish exactly when
    it is largest.

    **The constant** :math:`c = \sqrt 2`. For nested estimators whose difference is
    uncorrelated with the stronger one (clipping removes noise),
    :math:`V_i = V_j + V(\hat\mu_i - \hat\mu_j)`, so cap :math:`j` is better than :math:`i`
    when its extra squared bias is below :math:`V(\hat\mu_i - \hat\mu_j)`. The squared
    difference overestimates the squared bias by its own variance, so the noise-corrected
    comparison is :math:`(\hat\mu_j - \hat\mu_i)^2 - \hat V \le \hat V`, i.e. :math:`c = \sqrt 2`.
    Larger :math:`c` clips more eagerly (2: 1.04 × the unclipped RMSE on the Gaussian mean
    shift, ``benchmarks/weights_accuracy.py --only-clip-rmse``).

    At most ``max_fraction`` of the rows (10 %) are ever clipped: a cap that would need more is
    removing the shift rather than its noise (the ``clipped_fraction`` gate of
    :mod:`is_core.weights.diagnostics` warns about any method that does). ``details`` holds the
    chosen number of clipped rows, the candidates scanned and ``shift_kept``
    (:func:`share_of_shift_kept`). Uses the labels ``y`` of the source rows; memory: one
    n-vector per accepted candidate.
    """
    log_w = check_log_weights(log_w)
    y = np.asarray(y, dtype=float)
    check_length(y, log_w.size, parameter="y", noun="labels", per="log weights")
    caps, clipped_rows = _candidate_log_caps(log_w, n_candidates, max_fraction)
    accepted_mu: list[float] = []
    accepted_loo: list[np.ndarray] = []
    for cap in caps:
        mu, loo = _snis_with_cap(log_w, y, float(cap))
        if accepted_mu and not _agrees_with_weaker(mu, loo, accepted_mu, accepted_loo, c):
            break
        accepted_mu.append(mu)
        accepted_loo.append(loo)
    chosen = len(accepted_mu) - 1
    result = _capped(log_w, float(caps[chosen]), "auto")
    se0 = np.sqrt(_jackknife_variance(accepted_loo[0]))
    shift = _shift_share(accepted_mu[chosen], accepted_mu[0], float(np.mean(y)), se0)
    result.details.update(constant=c, clipped_rows=int(clipped_rows[chosen]),
                          candidates=len(caps),
                          snis_unclipped=accepted_mu[0], snis_clipped=accepted_mu[chosen],
                          shift_kept=shift)
    return result


def _shift_share(mu_clipped: float, mu_unclipped: float, mu_naive: float, se: float
                 ) -> float | None:
    shift = mu_unclipped - mu_naive
    if not abs(shift) > se or not np.isfinite(shift):
        return None
    return float((mu_clipped - mu_naive) / shift)


def share_of_shift_kept(log_w_raw: np.ndarray, log_w_clipped: np.ndarray, y: np.ndarray
                        ) -> float | None:
    r"""How much of the correction a clip keeps: the share of the shift kept.

    .. math:: s = (\hat\mu_c - \bar y) / (\hat\mu_0 - \bar y),

    where :math:`\hat\mu_c` and :math:`\hat\mu_0` are the SNIS target-CTR estimates under the
    clipped and the raw weights, :math:`\bar y` the naive source mean: 1 keeps the whole shift,
    0 has collapsed onto the source mean (the weights no longer correct anything). ``None`` when
    the unclipped estimate is within one (jackknife) standard error of the naive one: there is
    no detectable shift to keep.
    """
    y = np.asarray(y, dtype=float)
    log_w_raw = check_log_weights(log_w_raw)
    check_length(y, log_w_raw.size, parameter="y", noun="labels", per="log weights")
    w0 = np.exp(log_w_raw - log_w_raw.max())
    wc = np.exp(np.asarray(log_w_clipped, dtype=float) - log_w_raw.max())
    se0 = np.sqrt(_jackknife_variance(_jackknife_snis(w0, y)))
    return _shift_share(float(wc @ y / wc.sum()), float(w0 @ y / w0.sum()), float(np.mean(y)),
                        se0)


def clip_log_weights(
    log_w: np.ndarray,
    method: ClipMethod = "quantile",
    *,
    quantile: float = 0.99,
    max_weight: float | None = None,
    y: np.ndarray | None = None,
) -> ClipResult:
    """Dispatch to the clipping ``method`` (see the module docstring)."""
    check_choice(method, ClipMethod, parameter="method", label="clip method")
    if method == "none":
        return clip_none(log_w)
    if method == "hard":
        if max_weight is None:
            raise ParameterError("clip method 'hard' needs max_weight",
                                 fix="pass max_weight, the cap on the raw weight (e.g. 20)",
                                 parameter="max_weight")
        return clip_hard(log_w, max_weight)
    if method == "quantile":
        return clip_quantile(log_w, quantile)
    if method == "ionides":
        return clip_ionides(log_w)
    if method == "psis":
        return clip_psis(log_w)
    if y is None:  # method == "auto", the last choice
        raise ParameterError("clip method 'auto' needs the source labels y",
                             fix="pass y, the click labels of the weighted source rows",
                             parameter="y")
    return auto_clip(log_w, y)
