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
* ``auto``: the cap (among the raw weights' order statistics) that minimizes the estimated MSE
  of the self-normalized target-CTR estimate, :func:`auto_clip`.
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
           "clip_log_weights", "clip_none", "clip_psis", "clip_quantile"]


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


def auto_clip(log_w: np.ndarray, y: np.ndarray, n_candidates: int = 40) -> ClipResult:
    r"""Cap minimizing the estimated MSE of the SNIS target-CTR estimate.

    Candidate caps are the raw log weights' order statistics :math:`l_{(m)}` that clip the
    :math:`m` largest weights, :math:`m \in \{0\} \cup` a geometric grid up to :math:`n/2`.
    For each, with :math:`\hat\mu_c` the SNIS estimate under the clipped weights and
    :math:`\hat\mu_0` the unclipped one,

    .. math::

        \widehat{MSE}(c) = \max\{(\hat\mu_c - \hat\mu_0)^2 - \hat V_{c-0},\ 0\} + \hat V_c,

    where :math:`\hat V_c` is the jackknife variance of :math:`\hat\mu_c` and
    :math:`\hat V_{c-0}` that of the difference :math:`\hat\mu_c - \hat\mu_0` (the bias
    estimate's own noise is subtracted, so a noisy unclipped estimate does not pass as bias).
    The jackknife, not the delta method, because a single dominating weight sits on its own
    residual and makes the delta variance of the unclipped estimate vanish exactly when it is
    largest. Ties keep the smaller clip. Uses the labels ``y`` of the source rows.
    """
    log_w = check_log_weights(log_w)
    y = np.asarray(y, dtype=float)
    check_length(y, log_w.size, parameter="y", noun="labels", per="log weights")
    n = log_w.size
    sorted_desc = np.sort(log_w)[::-1]
    grid = np.unique(np.round(np.geomspace(1, max(n // 2, 1), n_candidates)).astype(int))
    w0 = np.exp(log_w - log_w.max())
    mu0 = float(w0 @ y / w0.sum())
    loo0 = _jackknife_snis(w0, y)
    best = (_jackknife_variance(loo0), float("inf"))
    n_tried = 1
    for m in grid[grid < n]:
        cap = sorted_desc[m]
        wc = np.exp(np.minimum(log_w, cap) - log_w.max())
        mu = float(wc @ y / wc.sum())
        loo = _jackknife_snis(wc, y)
        var = _jackknife_variance(loo)
        bias2 = max((mu - mu0) ** 2 - _jackknife_variance(loo - loo0), 0.0)
        n_tried += 1
        if bias2 + var < best[0]:
            best = (bias2 + var, float(cap))
    return _capped(log_w, best[1], "auto", estimated_mse=best[0], candidates=n_tried)


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
