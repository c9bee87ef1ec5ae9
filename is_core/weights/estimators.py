r"""Estimators of the target CTR from labeled source rows and importance weights.

* naive: :math:`\hat\mu_{naive} = \frac1n \sum_i y_i` (ignores the shift),
* IS: :math:`\hat\mu_{IS} = \frac1n \sum_i w_i y_i` (unbiased with exact, unclipped weights),
* SNIS: :math:`\hat\mu_{SN} = \sum_i w_i y_i / \sum_i w_i` (invariant to the scale of ``w``),
* doubly robust (self-normalized residual correction of a CTR model :math:`m`, the direct
  method, averaged over the *target* rows :math:`t`):
  :math:`\hat\mu_{DR} = \frac1{n_t}\sum_t m(x_t) + \sum_i w_i (y_i - m(x_i)) / \sum_i w_i`;
  consistent if either the weights or the CTR model are right (Robins, Rotnitzky & Zhao 1994;
  Dudík, Langford & Li 2011). That additive form can leave [0, 1] (-0.0021 with 3 clicks in
  2,000 rows); for click labels :func:`dr_estimate` uses the bounded form instead: shift the
  CTR model on the logit scale, :math:`m^* = \operatorname{expit}(\operatorname{logit} m +
  \hat\varepsilon)`, with :math:`\hat\varepsilon` chosen so that
  :math:`\sum_i w_i (y_i - m^*(x_i)) = 0`; then the residual term vanishes and
  :math:`\hat\mu_{DR} = \frac1{n_t}\sum_t m^*(x_t)`, a mean of probabilities. It keeps the
  double robustness (right weights: the weighted score equation makes the residual correction
  exact; right model: :math:`\hat\varepsilon \to 0`) and the same first-order variance,
  evaluated at :math:`m^*` (the targeted maximum-likelihood step; van der Laan & Rose 2011).
  The bootstrap's ``dr`` replicates use the additive form at the given :math:`m`.

Confidence intervals are normal-approximation intervals: for the naive and IS means the sample
standard error; for SNIS the delta method (ratio estimator),
:math:`\widehat{\mathrm{Var}}(\hat\mu_{SN}) = \sum_i w_i^2 (y_i - \hat\mu_{SN})^2 / (\sum_i w_i)^2`;
for DR the sum of the direct method's variance over the target rows,
:math:`\widehat{\mathrm{Var}}_t(m)/n_t`, and the delta variance of the SNIS residual term (the
two samples are independent). :func:`bootstrap_estimate` gives percentile intervals from the
Poisson bootstrap (each row drawn :math:`\mathrm{Poisson}(1)` times; Hanley & MacGibbon 2006),
resampling source and target rows independently. All intervals treat the weights and the CTR
model as fixed: they do not include the proposal model's estimation error (for that, see
:func:`is_core.weights.intervals.proposal_aware_snis_estimate`).

**Logit-scale bounds for a click rate.** When every label is 0 or 1, :func:`snis_estimate` keeps
its point estimate and delta-method standard error but forms the bounds on the logit scale, so
they stay inside [0, 1] (a symmetric interval gave a lower bound of -0.00175 on a bandit log):
by the delta method :math:`\mathrm{se}(\operatorname{logit}\hat\mu) =
\mathrm{se}(\hat\mu) / (\hat\mu(1 - \hat\mu))`, and the bounds are
:math:`\operatorname{expit}(\operatorname{logit}\hat\mu \pm z\,\mathrm{se}/(\hat\mu(1-\hat\mu)))`
(the logit interval of a binomial proportion; Brown, Cai & DasGupta 2001). When
:math:`\hat\mu` is 0 or 1 (no click, or only clicks) the delta standard error is 0 and the
logit infinite; the bounds are then Wilson's score bounds at :math:`\hat\mu` with Kish's
effective sample size :math:`n_e = (\sum w)^2 / \sum w^2`: :math:`[0, z^2 / (n_e + z^2)]`
(or its mirror), the weighted analogue of the "rule of three". Labels that are not all 0/1
(a per-row loss difference, :mod:`is_core.ctr.metrics`) keep the symmetric bounds.

**Few effective clicks.** The delta-method standard error is computed from the clicks that
happened. When much of the target mass rests on a few large-weight rows that, at the CTR, expect
less than one click between them, the sample usually holds none of their clicks: the estimate is
then low *and* its standard error small, and the interval misses below, as the binomial's Wald
interval does at small :math:`n p` (Brown, Cai & DasGupta 2001). The size that matters is the
effective number of clicks :math:`n_e \hat\mu`, with Kish's effective sample size
:math:`n_e = (\sum w)^2 / \sum w^2`. Measured on 400 simulated Thompson-sampling bandit logs
(:class:`~is_core.simulate.bandit.BanditScenario`, 20,000 rows, exact weights, ``clip='auto'``,
183 passing the default gates): :math:`n_e \hat\mu` 0.4 to 6.3 (median 1.3), the estimate
and its standard error correlated 0.94 across worlds, and the logit-delta interval covering
0.727 ± 0.033, every miss but one below the truth by 2.5 to 15 standard errors, although the
reported standard errors were right on average (in three worlds redrawn 300 times, their root
mean square matched the estimate's sampling SD, 0.8 of the truth). For click labels
:func:`snis_estimate` therefore takes the bound on the side of the rarer label (the upper bound
when :math:`\hat\mu \le 1/2`) as the wider of the logit-delta bound and **Wilson's score bound
with** :math:`n_e` **rows**,

.. math::

    \frac{\hat\mu + z^2/(2 n_e) \pm z \sqrt{\hat\mu (1 - \hat\mu)/n_e + z^2/(4 n_e^2)}}
    {1 + z^2/n_e}.

Those are the score interval for a proportion whose variance is :math:`\mu_0 (1 - \mu_0)/n_e`,
the variance of a weighted mean when the CTR does not vary with the weight (Kish 1965, *Survey
Sampling*; for rare proportions from weighted data Korn & Graubard 1998, *Survey
Methodology* 24:193): the variance is set by the weights and the hypothesised rate, not by
which rows clicked, so it does not shrink with the missed clicks. Only that side needs it: a
large-weight click that did happen enters the delta variance and widens the interval itself.
With many effective clicks the interval is the delta one (the Gaussian ``mean_shift`` and
``no_shift`` scenarios: unchanged in 200 of 200 draws of 2,000 rows) or slightly wider where the
Wilson bound is (``variance_shift``: 2 % wider, coverage 0.920 to 0.935). On the 183 bandit
worlds it covers 0.995 ± 0.005, at a median 3.0 times the delta width: with one or two effective
clicks the target CTR is known only to a factor of a few. ``std_error`` stays the delta
method's; the bootstrap (whose replicates cannot draw the missing clicks either:
0.705 ± 0.034) and :func:`dr_estimate` keep their intervals.

**Bias-guarded intervals.** Clipping biases the estimate by an unknown amount, and a clip level
chosen from the same data (``auto``) makes the clipped estimate's own interval too narrow
(measured: 84-86 % coverage of nominal 95 % intervals on the Gaussian scenarios,
``benchmarks/weights_accuracy.py``). Given the unclipped weights, the interval reported for a
clipped estimate is the hull of the clipped and the unclipped intervals: it covers whenever the
unclipped one does, and the point estimate keeps the clipped weights' lower variance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from is_core._validation import EstimatorName, check_choice, check_sample_weight
from is_core.errors import ParameterError


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided confidence interval."""

    estimator: str
    value: float
    std_error: float
    ci_low: float
    ci_high: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _normal_interval(name: str, value: float, se: float, level: float) -> Estimate:
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return Estimate(name, float(value), float(se), float(value - z * se), float(value + z * se),
                    level)


def rate_interval(name: str, value: float, se: float, level: float, n_effective: float
                  ) -> Estimate:
    """A rate's interval with logit-scale bounds (module docstring); Wilson's score bounds with
    ``n_effective`` rows when ``value`` is 0 or 1."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    if value <= 0.0 or value >= 1.0:
        low, high = wilson_bounds(min(max(value, 0.0), 1.0), n_effective, level)
        return Estimate(name, float(value), float(se), low, high, level)
    logit = math.log(value / (1.0 - value))
    half = z * se / (value * (1.0 - value))
    return Estimate(name, float(value), float(se), _expit(logit - half), _expit(logit + half),
                    level)


def wilson_bounds(value: float, n_effective: float, level: float) -> tuple[float, float]:
    r"""Wilson's score bounds for a rate ``value`` observed on ``n_effective`` rows.

    :math:`\big(\hat\mu + z^2/(2n) \pm z\sqrt{\hat\mu(1-\hat\mu)/n + z^2/(4n^2)}\big)
    / (1 + z^2/n)` with :math:`n` = ``n_effective`` (Wilson 1927; Brown, Cai & DasGupta 2001);
    :math:`[0, z^2/(n + z^2)]` at :math:`\hat\mu = 0`. With Kish's effective sample size they
    guard the SNIS interval against few effective clicks (module docstring).
    """
    z = NormalDist().inv_cdf(0.5 + level / 2)
    c = z * z / n_effective
    centre = (value + c / 2) / (1 + c)
    half = z * math.sqrt(value * (1 - value) / n_effective + c / (4 * n_effective)) / (1 + c)
    if value <= 0.0:  # the exact edges: no rounding of the centre/half difference
        return 0.0, c / (1 + c)
    if value >= 1.0:
        return 1 / (1 + c), 1.0
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _expit(t: float) -> float:
    """The logistic function, without overflow for large ``|t|``."""
    return 1.0 / (1.0 + math.exp(-t)) if t >= 0 else math.exp(t) / (1.0 + math.exp(t))


def is_binary(y: np.ndarray) -> bool:
    """Whether every label is 0 or 1 (a click rate, whose interval is formed on the logit)."""
    return bool(np.all((y == 0.0) | (y == 1.0)))


def naive_estimate(y: np.ndarray, level: float = 0.95) -> Estimate:
    """Source mean of ``y`` with its standard error."""
    y = np.asarray(y, dtype=float)
    return _normal_interval("naive", y.mean(), y.std(ddof=1) / np.sqrt(y.size), level)


def is_estimate(y: np.ndarray, w: np.ndarray, level: float = 0.95) -> Estimate:
    """Importance-sampling mean :math:`\\frac1n\\sum w_i y_i` with its standard error."""
    terms = np.asarray(w, dtype=float) * np.asarray(y, dtype=float)
    return _normal_interval("is", terms.mean(), terms.std(ddof=1) / np.sqrt(terms.size), level)


def _guarded(estimate: Estimate, unclipped: Estimate) -> Estimate:
    """``estimate`` with its interval widened to the hull of its own and ``unclipped``'s."""
    return Estimate(estimate.estimator, estimate.value, estimate.std_error,
                    min(estimate.ci_low, unclipped.ci_low),
                    max(estimate.ci_high, unclipped.ci_high), estimate.level)


def snis_estimate(y: np.ndarray, w: np.ndarray, level: float = 0.95,
                  w_unclipped: np.ndarray | None = None) -> Estimate:
    """Self-normalized IS :math:`\\sum w_i y_i / \\sum w_i` with a delta-method interval.

    The bounds are on the logit scale when every ``y`` is 0 or 1, symmetric otherwise (module
    docstring); the standard error is the delta method's either way. For 0/1 labels the bound
    towards the rarer label is also at least Wilson's score bound with Kish's effective sample
    size (:func:`wilson_bounds`), which keeps the interval honest when the estimate rests on few
    effective clicks (module docstring). With ``w_unclipped`` (the weights before clipping) the
    interval is bias-guarded: the hull of the clipped and the unclipped intervals (see the module
    docstring).
    """
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    total = w.sum()
    mu = float(w @ y / total)
    se = float(np.sqrt(np.sum(np.square(w) * np.square(y - mu))) / total)
    if is_binary(y):
        estimate = snis_rate_estimate(mu, se, float(total**2 / np.sum(np.square(w))), level)
    else:
        estimate = _normal_interval("snis", mu, se, level)
    if w_unclipped is not None:
        estimate = _guarded(estimate, snis_estimate(y, w_unclipped, level))
    return estimate


def snis_rate_estimate(mu: float, se: float, n_effective: float, level: float = 0.95
                       ) -> Estimate:
    """The SNIS interval of a click rate ``mu`` (0/1 labels) with standard error ``se``: the
    logit-delta interval whose bound towards the rarer label is at least Wilson's score bound
    with Kish's effective sample size ``n_effective`` (:func:`snis_estimate`; both engines)."""
    delta = rate_interval("snis", mu, se, level, n_effective)
    low, high = wilson_bounds(mu, n_effective, level)
    # only the bound towards the rarer label: a large-weight click that happened widens
    # the delta interval itself; one that did not happen widens nothing
    low, high = (delta.ci_low, max(delta.ci_high, high)) if mu <= 0.5 else (
        min(delta.ci_low, low), delta.ci_high)
    return Estimate("snis", mu, se, low, high, level)


def dr_estimate(y: np.ndarray, w: np.ndarray, m_source: np.ndarray, m_target: np.ndarray,
                level: float = 0.95, w_unclipped: np.ndarray | None = None) -> Estimate:
    r"""Doubly robust estimate with the CTR model's predictions on source and target rows
    (bias-guarded interval with ``w_unclipped``, as :func:`snis_estimate`).

    For 0/1 labels and predictions inside (0, 1) it is the bounded form (module docstring,
    :func:`_logit_fluctuation`): the CTR model's logit is shifted by the :math:`\varepsilon`
    that makes the weighted source residuals sum to zero, and the estimate is the shifted
    model's mean over the target rows, so it lies in [0, 1]; its bounds are on the logit
    scale. Otherwise the additive form :math:`\bar m_t + \sum w (y - m) / \sum w`.
    """
    y, w = np.asarray(y, dtype=float), np.asarray(w, dtype=float)
    m_source, m_target = np.asarray(m_source, dtype=float), np.asarray(m_target, dtype=float)
    w = check_sample_weight(w, y.size)
    bounded = is_binary(y) and _inside_unit(m_source) and _inside_unit(m_target)
    if bounded:
        m_source, m_target = _logit_fluctuation(y, w, m_source, m_target)
    total = w.sum()
    residual = y - m_source
    correction = float(w @ residual / total)
    value = float(m_target.mean()) + correction
    var_res = float(np.sum(np.square(w) * np.square(residual - correction)) / total**2)
    var_direct = float(m_target.var(ddof=1) / m_target.size) if m_target.size > 1 else 0.0
    se = float(np.sqrt(var_res + var_direct))
    if bounded:
        estimate = rate_interval("dr", min(max(value, 0.0), 1.0), se, level,
                                 float(total**2 / np.sum(np.square(w))))
    else:
        estimate = _normal_interval("dr", value, se, level)
    if w_unclipped is not None:
        estimate = _guarded(estimate, dr_estimate(y, w_unclipped, m_source, m_target, level))
    return estimate


def _inside_unit(m: np.ndarray) -> bool:
    return bool(np.all((m > 0.0) & (m < 1.0)))


def _logit_fluctuation(y: np.ndarray, w: np.ndarray, m_source: np.ndarray,
                       m_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The CTR model shifted on the logit scale, :math:`m^* = \operatorname{expit}(
    \operatorname{logit} m + \hat\varepsilon)`, with :math:`\hat\varepsilon` the root of
    :math:`\sum_i w_i (y_i - m^*_i) = 0` (a weighted logistic regression of the clicks on the
    offset :math:`\operatorname{logit} m` with a free intercept: the targeting step of TMLE,
    van der Laan & Rose 2011, ch. 4). The sum falls strictly in :math:`\varepsilon`, so the root
    is unique; with no click (or only clicks) it is at :math:`\mp\infty` and :math:`m^*` is 0
    (or 1)."""
    clicks, total = float(w @ y), float(w.sum())
    if clicks <= 0.0 or clicks >= total:
        edge = 0.0 if clicks <= 0.0 else 1.0
        return np.full_like(m_source, edge), np.full_like(m_target, edge)
    offset_s, offset_t = _logit(m_source), _logit(m_target)

    def score(eps: float) -> float:
        return clicks - float(w @ expit(offset_s + eps))

    low, high = -1.0, 1.0
    while score(low) < 0.0:
        low *= 2.0
    while score(high) > 0.0:
        high *= 2.0
    eps = brentq(score, low, high, xtol=1e-12)
    return expit(offset_s + eps), expit(offset_t + eps)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _poisson_one_thresholds() -> np.ndarray:
    """:math:`\\lfloor 2^{32} F(k) \\rfloor` for the Poisson(1) CDF :math:`F`, k = 0, 1, ... while
    below :math:`2^{32}` (:math:`1 - F(12) \\approx 10^{-10}`, under the grid's resolution)."""
    cdf, term, out = 0.0, math.exp(-1.0), []
    for k in range(1, 40):
        cdf += term
        threshold = math.floor(cdf * 2**32)
        if threshold >= 2**32 - 1:
            break
        out.append(threshold)
        term /= k
    return np.array(out, dtype=np.uint32)


_POISSON_ONE_THRESHOLDS = _poisson_one_thresholds()


def poisson_one(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
    """Poisson(1) counts by inversion: the number of CDF thresholds a uniform 32-bit integer
    reaches, :math:`P(X \\ge k) = 1 - F(k-1)` up to :math:`2^{-32}`. Six times faster than
    ``rng.poisson`` (which the bootstrap of a million rows spends seconds in)."""
    uniform = rng.integers(0, 2**32, size=size, dtype=np.uint32)
    counts = np.zeros(size, dtype=np.uint8)
    for threshold in _POISSON_ONE_THRESHOLDS:
        counts += uniform >= threshold
    return counts


def _point(name: str, y: np.ndarray, w: np.ndarray, counts: np.ndarray,
           m_source: np.ndarray | None, m_target: np.ndarray | None,
           target_counts: np.ndarray | None) -> np.ndarray:
    """The estimator ``name`` under each row of bootstrap multiplicities ``counts``."""
    n_rows = counts.sum(axis=1)
    if name == "naive":
        return counts @ y / n_rows
    if name == "is":
        return counts @ (w * y) / n_rows
    if name == "snis":
        return counts @ (w * y) / (counts @ w)
    if m_source is None or m_target is None or target_counts is None:
        raise ParameterError("the dr estimator needs m_source, m_target and target counts",
                             fix="pass the CTR model's predictions on the source and target "
                             "rows", parameter="m_source")
    residual = y - m_source
    direct = target_counts @ m_target / target_counts.sum(axis=1)
    return direct + counts @ (w * residual) / (counts @ w)


def bootstrap_estimate(
    name: EstimatorName,
    y: np.ndarray,
    w: np.ndarray | None = None,
    m_source: np.ndarray | None = None,
    m_target: np.ndarray | None = None,
    n_boot: int = 500,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
    w_unclipped: np.ndarray | None = None,
) -> Estimate:
    """Point estimate of ``name`` with a Poisson-bootstrap percentile interval.

    ``std_error`` is the bootstrap standard deviation. Weights (and the CTR model for ``dr``)
    are held fixed across replicates. With ``w_unclipped`` the interval is bias-guarded: the
    hull of the percentile intervals under the clipped and the unclipped weights (same
    replicates).
    """
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    check_choice(name, EstimatorName, parameter="name", label="estimator")
    if name == "dr" and (m_source is None or m_target is None):
        raise ParameterError("the dr estimator needs m_source and m_target",
                             fix="pass the CTR model's predictions on the source rows "
                             "(m_source) and on the target rows (m_target)",
                             parameter="m_source" if m_source is None else "m_target")
    rng = np.random.default_rng(random_state)
    point = _full_sample_estimate(name, y, w, m_source, m_target, level)
    weight_sets = [w] if w_unclipped is None else [w, np.asarray(w_unclipped, dtype=float)]
    replicates: list[list[np.ndarray]] = [[] for _ in weight_sets]
    chunk = max(1, min(n_boot, 2_000_000 // max(y.size, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        counts = poisson_one(rng, (b, y.size)).astype(float)
        target_counts = (poisson_one(rng, (b, len(m_target))).astype(float)
                         if name == "dr" and m_target is not None else None)
        with np.errstate(invalid="ignore", divide="ignore"):
            for k, weights in enumerate(weight_sets):
                replicates[k].append(_point(name, y, weights, counts, m_source, m_target,
                                            target_counts))
    return bootstrap_hull(name, point, [np.concatenate(chunks) for chunks in replicates],
                          level)


def bootstrap_hull(name: str, point: float, replicates: list[np.ndarray], level: float
                   ) -> Estimate:
    """The percentile interval of each weight set's bootstrap ``replicates`` (non-finite ones
    dropped), their hull, and the first set's standard deviation as the standard error: the
    (clipped) weights' own; the unclipped only widen the interval. Both engines use it."""
    alpha = (1 - level) / 2
    lows, highs, sds = [], [], []
    for values in replicates:
        values = values[np.isfinite(values)]
        low, high = np.quantile(values, [alpha, 1 - alpha])
        lows.append(low)
        highs.append(high)
        sds.append(values.std(ddof=1))
    return Estimate(f"{name}_bootstrap", float(point), float(sds[0]), float(min(lows)),
                    float(max(highs)), level)


def _full_sample_estimate(name: EstimatorName, y: np.ndarray, w: np.ndarray,
                          m_source: np.ndarray | None, m_target: np.ndarray | None,
                          level: float) -> float:
    """The point estimate of ``name`` on the full sample (the bootstrap's centre)."""
    if name == "naive":
        return naive_estimate(y, level).value
    if name == "is":
        return is_estimate(y, w, level).value
    if name == "snis":
        return snis_estimate(y, w, level).value
    assert m_source is not None and m_target is not None  # checked by bootstrap_estimate
    return dr_estimate(y, w, m_source, m_target, level).value
