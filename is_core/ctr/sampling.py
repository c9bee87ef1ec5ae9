r"""Importance subsampling of the CTR training rows: far fewer rows, the same expected loss.

Click logs are sparse (CTR 0.4–4 %): most rows are non-clicks the model already scores well, and
most training time goes into them. A **Poisson sample** keeps row :math:`i` independently with
probability :math:`\pi_i \in (0, 1]` (:math:`Z_i \sim \mathrm{Bernoulli}(\pi_i)`) and gives it the
**sampling weight** :math:`1/\pi_i`. For any per-row quantity :math:`a_i` (a logloss, a gradient, a
hessian, an importance weight) the Horvitz–Thompson sum is unbiased, with a known variance
(Horvitz & Thompson 1952):

.. math::

    \mathbb E\Big[\sum_i \frac{Z_i}{\pi_i} a_i\Big] = \sum_i a_i, \qquad
    \operatorname{Var}\Big[\sum_i \frac{Z_i}{\pi_i} a_i\Big] = \sum_i \frac{1-\pi_i}{\pi_i}\,a_i^2.

With :math:`a_i = w_i\,\ell(y_i, f(x_i))` (:math:`w_i` the importance weight) the weighted logloss
of the sample, with **training weight** :math:`w_i/\pi_i` (importance weight × sampling weight),
is an unbiased estimate of the full-data importance-weighted logloss for *every* model
:math:`f`, so its minimizer targets the same function and the sampling needs no analytic
re-calibration (training on a downsampled log *without* weights does: He et al. 2014 map its
predictions back with :math:`q = p / (p + (1-p)/r)`). Unbiased is not noiseless: a booster also
fits the sampling noise, and because a leaf's click rate :math:`C / (C + \sum 1/\pi)` is convex in
the sampled non-click mass, that noise pushes out-of-sample predictions up (issue 12's first
benchmark: calibration ratios 1.07–1.58 against 1.04 for the full-data fit; on a synthetic
logistic world 1.22 at :math:`r = 0.05` against 0.98). In-sample the leaves match their
weighted labels, so only rows the booster did not see show it.

**The correction slice.** Before the sample is drawn, a uniform share of the training rows
(:func:`correction_share`: :data:`CORRECTION_SHARE`, at most :data:`CORRECTION_ROWS` rows; each
partition's own seeded draw, :func:`correction_rows`) is held out of it. On that slice, which no
sampled booster has seen, the train stage measures each booster's calibration ratio and (with
``train.sampling_correction``, default ``"intercept"``) fits the correction
:func:`fit_sampling_correction`: calibration in the large, :math:`g(p) = \sigma(a +
\operatorname{logit} p)` with :math:`\sum_i w_i (y_i - g(p_i)) = 0` over the slice, with the
importance weights for the weighted booster (its calibration on the target) and without weights
for the baseline (its calibration on the source, so the baseline stays unweighted). The slice's
rows are a uniform sample of the training rows, so this is the full data's calibration
condition, estimated with a relative standard error of about :math:`1/\sqrt{\text{clicks}}`
(:func:`intercept_standard_error`). ``"platt"`` fits the slope too.

**Strategies** (``train.sampling``):

* ``"negative"`` (negative downsampling, He et al. 2014, "Practical lessons from predicting clicks
  on ads at Facebook"): :math:`\pi_i = 1` for clicks, :math:`r` for non-clicks. The expected size
  is :math:`n_1 + r\,n_0 = m`, so :math:`r = (m - n_1)/n_0` (:func:`negative_rate`); every click is
  kept, so :math:`m` must exceed the number of clicks.
* ``"loss"``: :math:`\pi_i = \min(1, c\,s_i)` with an importance score from the current champion's
  predicted click probability :math:`\hat p_i`,

  .. math:: s_i = (1-\alpha)\,g_i + \alpha\,\bar g, \qquad g_i = |y_i - \hat p_i|,

  the magnitude of the logloss gradient with respect to the logit at the champion. Why the
  gradient, with the labels: the variance of the Horvitz–Thompson estimate of a total
  :math:`\sum_i a_i` is minimized under :math:`\sum_i \pi_i = m` by :math:`\pi_i \propto |a_i|`
  (capped at 1; probability-proportional-to-size sampling, Särndal et al. 1992, §3.6), so
  :math:`\pi \propto |g|` is the minimum-variance design for the gradient sums a booster's splits
  and leaves are computed from (Zhao & Zhang 2015 and Katharopoulos & Fleuret 2018, "Not all
  samples are created equal", for SGD; LightGBM's GOSS, Ke et al. 2017, keeps the largest
  gradients and samples the rest uniformly with a reweighting; Fithian & Hastie 2014's local
  case-control sampling accepts with the same :math:`|y - \tilde p(x)|`). Every uncapped row then
  adds :math:`|g_i|/\pi_i = 1/c` to the weighted gradient sum: no kept row is negligible and none
  dominates. For a non-click the hessian :math:`\hat p(1-\hat p) \approx \hat p = g`, so the hessian
  sums get the same near-minimal variance. A click has :math:`g \approx 1` and is (almost) always
  kept; a non-click is kept in proportion to the probability the champion gave it, so the easy
  negatives go first. The label-free expected loss :math:`H(\hat p)` (binary entropy) would keep
  a click and a non-click of the same :math:`\hat p` alike, dropping the rare, informative clicks
  at the rate of the common non-clicks: just as unbiased, with a far larger variance.

  The **defensive mixture** :math:`\alpha` (``uniform_share``, Hesterberg 1995) with the mean
  gradient :math:`\bar g` keeps every :math:`\pi_i \ge c\,\alpha\,\bar g > 0` (unbiasedness needs
  every row to have a positive keep probability) and bounds every sampling weight by
  :math:`1/(c\,\alpha\,\bar g)`, whatever the champion gets wrong. The champion's probabilities
  are clipped to :math:`[10^{-7}, 1 - 10^{-7}]` first, as in the logloss, so :math:`g > 0`.
  :math:`c` solves :math:`\sum_i \min(1, c\,s_i) = m` exactly (:func:`loss_rate`). Without a
  champion the strategy falls back to ``"negative"`` (:attr:`ImportanceSubsampler.fallback_`).

**Per partition.** Each partition (an input file) draws its uniforms from its own generator,
seeded by :func:`partition_seed` ``(random_state, partition index)``; given the rate, which needs
only the click count (``negative``) or the score vector (``loss``) of the whole source, a
partition's draw depends on nothing but its own rows (:func:`draw_partition`). So partitions can
be drawn one at a time, in any order, in parallel or on Dask workers, and the sample is the
concatenation of the partitions' draws in order. The train stage draws it before the CTR design
matrix is built, reading one partition at a time, so memory falls with the sample.

**Training weights** (:func:`combined_weights`): importance weight × sampling weight, scaled to
mean 1 over the kept rows. The scale is a constant factor of the objective (its minimizer is
unchanged), but XGBoost's ``min_child_weight`` and L2 penalty are absolute hessian sums: weights
summing to the source's :math:`N` rows instead of the sample's :math:`n` would weaken both by
:math:`N/n` for a sample that carries :math:`n` rows' information.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Self

import numpy as np
from sklearn.base import BaseEstimator

from is_core._validation import SamplingStrategy, check_choice, check_length
from is_core.ctr.recalibration import WeightedCalibrator
from is_core.errors import ParameterError

__all__ = [
    "CORRECTION_ROWS",
    "CORRECTION_SHARE",
    "ImportanceSubsampler",
    "ScoreSums",
    "combined_weights",
    "correction_rows",
    "correction_share",
    "draw_partition",
    "fit_sampling_correction",
    "gradient_magnitude",
    "gradient_scores",
    "intercept_standard_error",
    "keep_probabilities",
    "loss_rate",
    "loss_rate_from_sums",
    "negative_rate",
    "partition_seed",
]

PROB_EPS = 1e-7  # the champion's probabilities are clipped as in the logloss (metrics.PROB_EPS)
#: The share of the training rows held out of an importance subsample for the sampled boosters'
#: calibration check and correction (module docstring), at most :data:`CORRECTION_ROWS` rows.
CORRECTION_SHARE = 0.1
CORRECTION_ROWS = 500_000


# ---------------------------------------------------------------------------- the maths
def negative_rate(n_rows: int, n_clicks: int, target_rows: float) -> float:
    """:math:`r = (m - n_1) / n_0`, the non-click keep rate that gives ``target_rows`` expected
    rows when every click is kept; 1 when the target is at least the number of rows.

    Raises :class:`ParameterError` (``target_rows``) when the target does not exceed the clicks.
    """
    n_neg = n_rows - n_clicks
    if target_rows >= n_rows or n_neg == 0:
        return 1.0
    if target_rows <= n_clicks:
        raise ParameterError(
            f"{target_rows:.0f} rows asked, but the rows have {n_clicks} clicks and 'negative' "
            "keeps every click",
            fix=f"keep more than the clicks (a fraction above {n_clicks / n_rows:.4g} of the "
            "rows), or sample with 'loss', which samples clicks too",
            parameter="target_rows", details={"n_rows": n_rows, "n_clicks": n_clicks})
    return (target_rows - n_clicks) / n_neg


def loss_rate(scores: np.ndarray, target_rows: float) -> float:
    r"""The :math:`c` with :math:`\sum_i \min(1, c\,s_i) = m` (``target_rows``), in closed form.

    With the scores sorted in decreasing order and the :math:`k` largest capped at 1,
    :math:`c_k = (m - k) / \sum_{j \ge k} s_{(j)}`; the solution is the first :math:`k` whose
    :math:`c_k s_{(k)} \le 1` (then :math:`c_k s_{(k-1)} > 1`, so exactly the :math:`k` largest are
    capped, and :math:`k + c_k \sum_{j \ge k} s_{(j)} = m`). Such a :math:`k < m` always exists:
    :math:`k = \lceil m \rceil - 1` satisfies it. :math:`\sum_i \min(1, c s_i)` is continuous and
    non-decreasing in :math:`c`, so this is the solution. ``scores`` must be positive.
    """
    s = np.sort(np.asarray(scores, dtype=float))[::-1]
    if s.size == 0 or not s[-1] > 0:
        raise ParameterError("importance scores must be positive and non-empty",
                             fix="pass gradient_scores(...) of the rows to sample",
                             parameter="scores")
    if target_rows >= s.size:
        return float(1.0 / s[-1])  # every row capped: keep all
    if not target_rows > 0:
        raise ParameterError(f"target_rows={target_rows!r} must be positive",
                             fix="ask for at least one row", parameter="target_rows")
    tail = np.cumsum(s[::-1])[::-1]  # tail[k] = sum of s[k:]
    k = np.arange(s.size)
    c = (target_rows - k) / tail
    first = int(np.argmax(c * s <= 1.0))
    return float(c[first])


@dataclass(frozen=True)
class ScoreSums:
    r"""What :func:`loss_rate_from_sums` needs of the scores at a trial rate :math:`c`, summed
    over partitions: how many rows :math:`c` caps (:math:`c\,s_i > 1`), the sum of the other
    rows' scores, and the smallest score."""

    capped: int
    uncapped_sum: float
    smallest: float

    @classmethod
    def of(cls, scores: np.ndarray, rate: float) -> ScoreSums:
        """One partition's sums (no rows: zero, zero and +inf)."""
        s = np.asarray(scores, dtype=float)
        capped = rate * s > 1.0
        return cls(int(capped.sum()), float(s[~capped].sum()),
                   float(s.min()) if s.size else float("inf"))

    def __add__(self, other: ScoreSums) -> ScoreSums:
        return ScoreSums(self.capped + other.capped, self.uncapped_sum + other.uncapped_sum,
                         min(self.smallest, other.smallest))


def loss_rate_from_sums(score_sums: Callable[[float], ScoreSums], target_rows: float,
                        n_rows: int) -> float:
    r""":func:`loss_rate`'s :math:`c` from partition sums only: ``score_sums(c)`` is the
    :class:`ScoreSums` of all ``n_rows`` scores at :math:`c`.

    The capped set is found by a fixed-point iteration: start with no row capped,
    :math:`c_0 = m / \sum_i s_i`; then cap the rows with :math:`c_j s_i > 1` (:math:`k_{j+1}` of
    them) and set :math:`c_{j+1} = (m - k_{j+1}) / \sum_{\text{uncapped}} s_i`, until no new
    row is capped. Every :math:`c_j` is a lower bound of the solution :math:`c^*`
    (:math:`F(c) = \sum_i \min(1, c s_i) \le k + c \sum_{\text{others}} s_i` for any set of
    :math:`k` rows, so :math:`F(c_j) \le m`), the capped set only grows, so the iteration
    stops after at most ``n_rows`` steps (a handful in practice, one pass over the partitions
    each) at the closed form :func:`loss_rate` finds: the same :math:`k` largest scores capped,
    :math:`c = (m - k) / \sum_{j \ge k} s_{(j)}`, equal up to the order of the sums.
    """
    first = score_sums(0.0)
    if not (n_rows > 0 and first.smallest > 0):
        raise ParameterError("importance scores must be positive and non-empty",
                             fix="pass gradient_scores(...) of the rows to sample",
                             parameter="scores")
    if target_rows >= n_rows:
        return float(1.0 / first.smallest)  # every row capped: keep all
    if not target_rows > 0:
        raise ParameterError(f"target_rows={target_rows!r} must be positive",
                             fix="ask for at least one row", parameter="target_rows")
    sums = first
    for _ in range(n_rows + 1):
        rate = (target_rows - sums.capped) / sums.uncapped_sum
        after = score_sums(rate)
        if after.capped == sums.capped:
            return float(rate)
        sums = after
    raise AssertionError("the capped set grows at every step: unreachable")


def gradient_scores(y: np.ndarray, p: np.ndarray, mean_gradient: float,
                    uniform_share: float) -> np.ndarray:
    r""":math:`s_i = (1-\alpha)|y_i - \hat p_i| + \alpha \bar g` (module docstring), with
    :math:`\hat p` clipped to :math:`[10^{-7}, 1 - 10^{-7}]`; ``mean_gradient`` is :math:`\bar g`
    over every row to sample (:attr:`ImportanceSubsampler.mean_gradient_`), not only this
    partition's."""
    return (1 - uniform_share) * _gradient(y, p) + uniform_share * mean_gradient


def gradient_magnitude(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:math:`|y - \\hat p|` of each row, the probabilities clipped (module docstring): the
    ``"loss"`` score before its defensive mixture; :math:`\\bar g` is its mean over every row
    to sample."""
    return _gradient(y, p)


def _gradient(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:math:`|y - \\hat p|` with the probabilities clipped (module docstring)."""
    return np.abs(np.asarray(y, dtype=float) - np.clip(np.asarray(p, dtype=float), PROB_EPS,
                                                        1 - PROB_EPS))


def keep_probabilities(strategy: SamplingStrategy, y: np.ndarray, scores: np.ndarray | None,
                       rate: float) -> np.ndarray:
    r"""Each row's :math:`\pi_i`: 1 (``"none"``); 1 for a click and ``rate`` = :math:`r` for a
    non-click (``"negative"``); :math:`\min(1, c\,s_i)` with ``rate`` = :math:`c` and ``scores``
    = :math:`s` (``"loss"``)."""
    y = np.asarray(y)
    if strategy == "none":
        return np.ones(y.size)
    if strategy == "negative":
        return np.where(y == 1, 1.0, min(rate, 1.0))
    if scores is None:
        raise ParameterError("the 'loss' strategy needs importance scores",
                             fix="pass gradient_scores(...) of the rows", parameter="scores")
    return np.minimum(1.0, rate * np.asarray(scores, dtype=float))


def partition_seed(random_state: int, partition: int) -> np.random.SeedSequence:
    """The seed of one partition's draw: ``SeedSequence([random_state, partition])``, so each
    partition's uniforms are independent of every other's and of the order they are drawn in."""
    return np.random.SeedSequence([random_state, partition])


def draw_partition(y: np.ndarray, scores: np.ndarray | None, *, strategy: SamplingStrategy,
                   rate: float, seed: np.random.SeedSequence | int
                   ) -> tuple[np.ndarray, np.ndarray]:
    r"""Draw one partition's Poisson sample: the kept rows' positions (increasing) and their
    sampling weights :math:`1/\pi_i`.

    Row :math:`i` is kept when :math:`u_i < \pi_i` for :math:`u_i` uniform on :math:`[0, 1)` from
    ``seed``'s generator, so a row with :math:`\pi_i = 1` (every click under ``"negative"``) is
    always kept. The draw depends only on these rows, the rate and the seed.
    """
    pi = keep_probabilities(strategy, y, scores, rate)
    u = np.random.default_rng(seed).random(pi.size)
    kept = np.flatnonzero(u < pi)
    return kept, 1.0 / pi[kept]


def combined_weights(importance_weight: np.ndarray | None, sampling_weight: np.ndarray
                     ) -> np.ndarray:
    """Importance weight × sampling weight of the kept rows, scaled to mean 1 (module
    docstring); the sampling weights alone when ``importance_weight`` is None."""
    w = np.asarray(sampling_weight, dtype=float)
    if importance_weight is not None:
        w = w * np.asarray(importance_weight, dtype=float)
    return w / w.mean()


# ---------------------------------------------------------------------------- the correction
def correction_share(n_rows: int, correction: str = "intercept") -> float:
    """The share of ``n_rows`` training rows held out for the correction:
    :data:`CORRECTION_SHARE`, or less so that at most :data:`CORRECTION_ROWS` rows are; 0 for
    ``correction="none"`` (``train.sampling_correction``: every row stays in the sample, and
    the sampled boosters' calibration is not measured)."""
    if correction == "none":
        return 0.0
    return min(CORRECTION_SHARE, CORRECTION_ROWS / max(n_rows, 1))


def correction_rows(n_rows: int, share: float, *, random_state: int, partition: int
                    ) -> np.ndarray:
    """Which of one partition's ``n_rows`` rows are held out for the correction (a boolean
    mask): uniforms of their own stream ``SeedSequence([random_state, partition, 2])``,
    independent of the sample's (:func:`partition_seed`), below ``share``."""
    seed = np.random.SeedSequence([random_state, partition, 2])
    return np.random.default_rng(seed).random(n_rows) < share


def fit_sampling_correction(method: Literal["intercept", "platt"], p: np.ndarray, y: np.ndarray,
                            importance_weight: np.ndarray | None = None,
                            random_state: int = 0) -> WeightedCalibrator:
    """The correction of a sampled booster (module docstring): ``method`` (``"intercept"`` or
    ``"platt"``) fitted on the booster's probabilities ``p`` of the held-out slice, its labels
    and (for the weighted booster) its importance weights."""
    return WeightedCalibrator(method, random_state=random_state).fit(p, y, importance_weight)


def intercept_standard_error(q: np.ndarray, y: np.ndarray, w: np.ndarray | None = None
                             ) -> float:
    r"""The sandwich standard error of a fitted intercept shift :math:`a`, from the corrected
    probabilities :math:`q_i = \sigma(a + \operatorname{logit} p_i)` of the rows it was fitted
    on: :math:`\sqrt{\sum_i w_i^2 (y_i - q_i)^2} / \sum_i w_i q_i (1 - q_i)` (the estimating
    equation :math:`\sum_i w_i (y_i - q_i) = 0`; Huber 1967). The same in relative terms for the
    calibration ratio it sets to 1."""
    q, y = np.asarray(q, dtype=float), np.asarray(y, dtype=float)
    w = np.ones(q.size) if w is None else np.asarray(w, dtype=float)
    return float(np.sqrt(np.sum(w**2 * (y - q) ** 2)) / np.sum(w * q * (1 - q)))


# ---------------------------------------------------------------------------- the estimator
class ImportanceSubsampler(BaseEstimator):
    """Solve the keep rate of an importance subsample, then draw it partition by partition.

    Parameters
    ----------
    strategy : {"none", "negative", "loss"}, default "negative"
        The keep probabilities (module docstring); ``"none"`` keeps every row.
    keep_fraction : float or None
        Target expected size as a share of the rows; exactly one of ``keep_fraction`` and
        ``max_rows`` (unless ``strategy="none"``).
    max_rows : int or None
        Target expected size in rows (all rows when there are fewer).
    uniform_share : float, default 0.2
        :math:`\\alpha`, the uniform share of the ``"loss"`` scores' defensive mixture, in (0, 1].
    random_state : int, default 0
        With the partition index, seeds each partition's draw (:func:`partition_seed`).

    Attributes
    ----------
    strategy_ : str
        The strategy applied: ``strategy``, or ``"negative"`` for ``"loss"`` without scores.
    fallback_ : str or None
        Why ``"loss"`` fell back to ``"negative"``; None when it did not.
    n_rows_, n_clicks_ : int
        The rows to sample and their clicks.
    target_rows_ : float
        The expected sample size asked for.
    rate_ : float
        :math:`r` (``"negative"``), :math:`c` (``"loss"``) or 1 (``"none"``).
    rate_name_ : str
        ``"r"``, ``"c"`` or ``"none"``.
    mean_gradient_ : float or None
        :math:`\\bar g` of the ``"loss"`` scores.
    """

    mean_gradient_: float | None  # set by fit: None but for "loss"

    def __init__(self, strategy: SamplingStrategy = "negative",
                 keep_fraction: float | None = None, max_rows: int | None = None,
                 uniform_share: float = 0.2, random_state: int = 0) -> None:
        self.strategy = strategy
        self.keep_fraction = keep_fraction
        self.max_rows = max_rows
        self.uniform_share = uniform_share
        self.random_state = random_state

    def fit(self, y: np.ndarray, p: np.ndarray | None = None) -> Self:
        """Solve the rate for the labels ``y`` of every row to sample and, for ``"loss"``, the
        champion's click probabilities ``p`` of the same rows (None: fall back to
        ``"negative"``)."""
        check_choice(self.strategy, SamplingStrategy, parameter="strategy")
        y = np.asarray(y)
        if not np.isin(y, (0, 1)).all():
            raise ParameterError("click labels must be 0 or 1", fix="map the label to 0/1",
                                 parameter="y")
        self._start(int(y.size), int(y.sum()), has_scores=p is not None)
        if self.strategy_ == "loss":
            assert p is not None  # the fallback of _start
            p = np.asarray(p, dtype=float)
            check_length(p, y.size, parameter="p", noun="probabilities", per="labels")
            self._check_uniform_share()
            self.mean_gradient_ = float(_gradient(y, p).mean())
            with self._size_key():
                self.rate_ = loss_rate(self.scores(y, p), self.target_rows_)
        return self

    def fit_sums(self, n_rows: int, n_clicks: int, gradient_sum: float | None = None,
                 score_sums: Callable[[ImportanceSubsampler, float], ScoreSums] | None = None
                 ) -> Self:
        r""":meth:`fit` from sums over partitions, for rows that are never held in one place
        (the Dask engine): ``n_rows`` rows to sample with ``n_clicks`` clicks; for ``"loss"``
        (None: fall back to ``"negative"``) the sum of the rows' :math:`|y - \hat p|`
        (``gradient_sum``, clipped as :func:`gradient_scores` clips) and ``score_sums``, which
        returns the :class:`ScoreSums` of every row's score under this sampler (its
        :attr:`mean_gradient_` set) at a trial rate :math:`c` (:func:`loss_rate_from_sums`).
        The same fit as :meth:`fit` of the rows, up to the order of floating-point sums."""
        check_choice(self.strategy, SamplingStrategy, parameter="strategy")
        has_scores = gradient_sum is not None and score_sums is not None
        self._start(int(n_rows), int(n_clicks), has_scores=has_scores)
        if self.strategy_ == "loss":
            assert gradient_sum is not None and score_sums is not None  # _start's fallback
            self._check_uniform_share()
            self.mean_gradient_ = float(gradient_sum / max(n_rows, 1))
            with self._size_key():
                self.rate_ = loss_rate_from_sums(lambda c: score_sums(self, c),
                                                 self.target_rows_, self.n_rows_)
        return self

    def _start(self, n_rows: int, n_clicks: int, *, has_scores: bool) -> None:
        """The counts, the strategy applied (``"loss"`` without scores falls back), the target
        size and the rate of ``"none"`` and ``"negative"`` (``"loss"``'s is solved after)."""
        self.n_rows_, self.n_clicks_ = n_rows, n_clicks
        self.strategy_, self.fallback_, self.mean_gradient_ = self.strategy, None, None
        if self.strategy == "loss" and not has_scores:
            self.strategy_ = "negative"
            self.fallback_ = "no champion scores: sampled with 'negative' instead"
        self.target_rows_ = self._target_rows()
        if self.strategy_ == "none":
            self.rate_, self.rate_name_ = 1.0, "none"
        elif self.strategy_ == "negative":
            self.rate_name_ = "r"
            with self._size_key():
                self.rate_ = negative_rate(self.n_rows_, self.n_clicks_, self.target_rows_)
        else:
            self.rate_name_ = "c"

    def _check_uniform_share(self) -> None:
        if not 0 < self.uniform_share <= 1:
            raise ParameterError(f"uniform_share={self.uniform_share!r} must be in (0, 1]",
                                 fix="pass the defensive mixture's share, e.g. 0.2",
                                 parameter="uniform_share")

    def _target_rows(self) -> float:
        """The expected sample size from ``keep_fraction`` or ``max_rows``."""
        if self.strategy_ == "none":
            return float(self.n_rows_)
        sizes = {k: v for k, v in (("keep_fraction", self.keep_fraction),
                                   ("max_rows", self.max_rows)) if v is not None}
        if len(sizes) != 1:
            raise ParameterError(
                f"strategy {self.strategy!r} needs exactly one of keep_fraction and max_rows, "
                f"got {sizes or 'neither'}", fix="give the sample's size one way",
                parameter="keep_fraction")
        if self.keep_fraction is not None:
            if not 0 < self.keep_fraction <= 1:
                raise ParameterError(f"keep_fraction={self.keep_fraction!r} must be in (0, 1]",
                                     fix="pass the share of rows to keep, e.g. 0.1",
                                     parameter="keep_fraction")
            return self.keep_fraction * self.n_rows_
        assert self.max_rows is not None
        if self.max_rows < 1:
            raise ParameterError(f"max_rows={self.max_rows!r} must be at least 1",
                                 fix="pass the number of rows to keep", parameter="max_rows")
        return float(min(self.max_rows, self.n_rows_))

    @contextmanager
    def _size_key(self) -> Iterator[None]:
        """Errors about the target size name the argument that set it."""
        try:
            yield
        except ParameterError as exc:
            if exc.parameter != "target_rows":
                raise
            key = "keep_fraction" if self.keep_fraction is not None else "max_rows"
            raise ParameterError(exc.what, fix=exc.fix, details=exc.details,
                                 parameter=key) from exc

    def scores(self, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The ``"loss"`` importance scores of rows (any partition) with this fit's
        :math:`\\bar g` (:func:`gradient_scores`)."""
        assert self.mean_gradient_ is not None, "scores need a fit with strategy 'loss'"
        return gradient_scores(y, p, self.mean_gradient_, self.uniform_share)

    def keep_probabilities(self, y: np.ndarray, p: np.ndarray | None = None) -> np.ndarray:
        """:math:`\\pi_i` of rows (any partition) under the fitted rate."""
        scores = self.scores(y, p) if self.strategy_ == "loss" and p is not None else None
        return keep_probabilities(self.strategy_, y, scores, self.rate_)

    def sample_partition(self, y: np.ndarray, p: np.ndarray | None = None, *, partition: int
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Partition ``partition``'s kept rows and sampling weights (:func:`draw_partition`,
        seeded by :func:`partition_seed` ``(random_state, partition)``)."""
        scores = self.scores(y, p) if self.strategy_ == "loss" and p is not None else None
        return draw_partition(y, scores, strategy=self.strategy_, rate=self.rate_,
                              seed=partition_seed(self.random_state, partition))

