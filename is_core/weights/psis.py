r"""Pareto-smoothed importance sampling (PSIS) and the Pareto :math:`\hat k` diagnostic.

Vehtari, Simpson, Gelman, Yao & Gabry, *Pareto smoothed importance sampling*, JMLR 25 (2024)
(arXiv:1507.02646). With :math:`S` weights, the :math:`M = \lfloor\min(S/5, 3\sqrt S)\rfloor`
largest are modelled as exceedances over the :math:`(M+1)`-th largest, :math:`u`, by a generalized
Pareto distribution :math:`GPD(u, \sigma, k)` fitted with the empirical-Bayes method of Zhang &
Stephens (2009, *Technometrics* 51:316) and a weakly informative prior that shrinks :math:`\hat k`
towards 0.5 (``(M k + 10 \cdot 0.5) / (M + 10)``). PSIS replaces the :math:`M` largest weights, in
order, by the GPD quantiles at :math:`(z - 1/2)/M`, :math:`z = 1..M`, capped at the largest raw
weight. :math:`\hat k` estimates the tail shape of the weight distribution: the variance of the
weights is infinite for :math:`k \ge 1/2`, and estimates are unreliable once
:math:`\hat k > \min(1 - 1/\log_{10} S, 0.7)`.

This mirrors ``arviz_stats`` 0.8.0 (``_psislw``/``_gpdfit``, relative efficiency 1); the tests
compare against its output. It is reimplemented here (60 lines) rather than imported so that
``is_core`` keeps its dependency list.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

PRIOR_K_STRENGTH = 10
PRIOR_K_CENTRE = 0.5


def khat_threshold(n: int) -> float:
    """:math:`\\min(1 - 1/\\log_{10} S, 0.7)`: above it, PSIS estimates are unreliable."""
    if n <= 10:
        return 0.0
    return float(min(1.0 - 1.0 / np.log10(n), 0.7))


def n_tail(n: int) -> int:
    """Number of tail draws :math:`M` fitted by the GPD (relative efficiency 1)."""
    return int(np.floor(3 * np.sqrt(n))) if n > 225 else int(np.floor(n / 5))


def gpd_fit(exceedances: np.ndarray) -> tuple[float, float]:
    """Zhang–Stephens empirical-Bayes GPD fit of sorted positive ``exceedances``: (k, sigma).

    :math:`\\hat k` includes the weakly informative prior towards 0.5.
    """
    x = np.sort(np.asarray(exceedances, dtype=float))
    n = x.size
    if n < 5 or not x[int(n / 4 + 0.5) - 1] > 0:
        # a quarter or more of the tail ties with the threshold: no continuous tail to fit
        return float("-inf"), 0.0
    m = 30 + int(np.sqrt(n))
    b = 1 - np.sqrt(m / (np.arange(1, m + 1, dtype=float) - 0.5))
    b /= 3 * x[int(n / 4 + 0.5) - 1]
    b += 1 / x[-1]
    k = np.mean(np.log1p(-b[:, None] * x), axis=1)
    log_lik = n * (np.log(-b / k) - k - 1)
    weights = np.exp(log_lik - logsumexp(log_lik))
    keep = weights >= 10 * np.finfo(float).eps
    weights, b = weights[keep] / weights[keep].sum(), b[keep]
    b_post = float(np.sum(b * weights))
    k_post = float(np.mean(np.log1p(-b_post * x)))
    sigma = -k_post / b_post
    k_post = (n * k_post + PRIOR_K_STRENGTH * PRIOR_K_CENTRE) / (n + PRIOR_K_STRENGTH)
    return k_post, sigma


def _gpd_quantile(p: np.ndarray, k: float, sigma: float) -> np.ndarray:
    if k == 0:
        return -sigma * np.log1p(-p)
    return sigma * np.expm1(-k * np.log1p(-p)) / k


def psis_log_weights(log_w: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smooth ``log_w``; return the smoothed log weights (same scale) and :math:`\\hat k`.

    Returns ``k̂ = -inf`` and the input unchanged when there are fewer than 5 tail draws or the
    tail is flat (all tail weights equal: nothing to smooth).
    """
    log_w = np.asarray(log_w, dtype=float)
    n = log_w.size
    m = n_tail(n)
    if m < 5:
        return log_w.copy(), float("-inf")
    shift = log_w.max()
    lw = log_w - shift
    order = np.argsort(lw, kind="stable")
    tail_idx = order[n - m:]
    smoothed, k = smooth_tail(lw[tail_idx], lw[order[n - m - 1]])
    out = log_w.copy()
    if smoothed is not None:
        out[tail_idx] = smoothed + shift
    return out, k


def smooth_tail(tail: np.ndarray, cutoff: float) -> tuple[np.ndarray | None, float]:
    r"""The smoothed tail of :func:`psis_log_weights` and :math:`\hat k`, from the ``M``
    largest log weights ``tail`` (ascending, shifted by the largest: ``<= 0``) and the
    ``(M+1)``-th largest, ``cutoff``. None (and ``k̂ = -inf`` for a flat tail) when nothing is
    smoothed. Needs only the tail, so a partitioned window gathers just its top ``M + 1``."""
    m = tail.size
    if tail.max() - tail.min() < np.finfo(float).tiny:
        return None, float("-inf")
    # exceedances on the weight scale, relative to the largest weight (no overflow)
    k, sigma = gpd_fit(np.exp(tail) - np.exp(cutoff))
    if not (np.isfinite(k) and sigma > 0):
        return None, float(k)
    p = np.arange(0.5, m) / m
    smoothed = np.log(np.exp(cutoff) + _gpd_quantile(p, k, sigma))
    return np.minimum(smoothed, tail.max()), float(k)


def pareto_khat(log_w: np.ndarray) -> float:
    """Pareto :math:`\\hat k` of the right tail of the weights ``exp(log_w)``."""
    return psis_log_weights(log_w)[1]
