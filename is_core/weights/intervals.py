r"""A target-CTR interval that includes the proposal model's estimation error.

:func:`is_core.weights.estimators.snis_estimate` treats the fitted weights as known. With a
small target sample the proposal's coefficients are noisy, and so are the weights: at
n_source : n_target = 16 : 1 the known-weights interval covers 83 % of the time (nominal 95 %).
:func:`proposal_aware_snis_estimate` adds that noise by M-estimation (the sandwich / influence
function of a two-step estimator: Newey & McFadden 1994, sec. 6; Tsiatis 2006, ch. 3-4), for the
linear-logistic proposal of :class:`is_core.weights.domain.DomainClassifierRatio`.

**Model.** Rows :math:`j = 1..N_F` of the fitting sample :math:`F` (source rows :math:`d_j = 0`,
target rows :math:`d_j = 1`) with design row :math:`\tilde x_j = (x_j, 1)` (the proposal's design
matrix plus the intercept). The L2 logistic regression (inverse strength :math:`C`, intercept
unpenalized, as scikit-learn's ``lbfgs``) solves
:math:`\sum_{j \in F} \psi_j(\beta) - D\beta / C = 0` with :math:`\psi_j = \tilde x_j (d_j - p_j)`,
:math:`p_j = \operatorname{expit}(\tilde x_j^\top\beta)`, :math:`D = \mathrm{diag}(1, .., 1, 0)`;
the log weight is :math:`\log w(x) = \tilde x^\top\beta + \log(n_{F,s}/n_{F,t})`. Linearizing,

.. math::

    \hat\beta - \beta \approx H^{-1} \sum_{j\in F} \psi_j, \qquad
    H = \sum_{j\in F} p_j (1 - p_j)\, \tilde x_j \tilde x_j^\top + D / C.

**SNIS.** :math:`\hat\mu = \sum_i w_i y_i / \sum_i w_i` over the :math:`n_s` source rows has
gradient :math:`g = \partial\hat\mu / \partial\beta = \sum_i w_i (y_i - \hat\mu)\, \tilde x_i /
\sum_i w_i` (the prior term and the weights' scale cancel; a row whose weight was capped by
clipping has :math:`\partial w_i / \partial\beta = 0` and is left out of :math:`g`). So

.. math::

    \hat\mu - \mu \approx \sum_{i \in S} \frac{w_i (y_i - \hat\mu)}{\sum_k w_k}
    + \sum_{j \in F} g^\top H^{-1} \psi_j
    = \sum_{r} \phi_r,

with one term per row :math:`r` of either sample: a source row contributes
:math:`\phi_i = w_i (y_i - \hat\mu)/\sum_k w_k + [i \in F]\, a^\top\psi_i`, a target row
:math:`\phi_j = [j \in F]\, a^\top\psi_j`, :math:`a = H^{-1} g`. (This is the textbook
influence :math:`w_i(y_i - \hat\mu)/\bar w + g^\top \bar H^{-1}\psi_i` over a common
:math:`N`, with :math:`\bar w` the source mean weight and :math:`\bar H = H / N_F`, written with
each sample's own normalization, :math:`1/n_s` for the SNIS term and :math:`1/N_F` for the fit,
so that no single :math:`N` has to be chosen for two samples of different sizes.) The two samples
have fixed sizes (stratified sampling: the domain label is not random), so the variance is the
sum over the two domains of the within-domain variance of the terms (Wooldridge 2001):

.. math::

    \widehat{\mathrm{Var}}(\hat\mu) = \sum_{g \in \{S, T\}} \frac{n_g}{n_g - 1}
    \sum_{r \in g} (\phi_r - \bar\phi_g)^2.

With known weights (:math:`a = 0`) this is the delta-method variance of ``snis_estimate`` (up to
the factor :math:`n_s/(n_s-1)`). The estimated-weights correction can *lower* the variance: when
the target sample is much larger than the source, the logistic fit balances the weighted source
means of :math:`\tilde x` to the target's, and the source term becomes the residual of
:math:`w(y - \mu)` after its projection on :math:`\tilde x` (the known efficiency gain of
estimated weights; Hirano, Imbens & Ridder 2003; Henmi & Eguchi 2004). When the target sample is
small the target rows' term dominates and widens the interval.

**Cross-fitting** (K folds; ``fold``). Fold model :math:`k` is fitted on the fitting rows
outside fold :math:`k`, :math:`\hat\beta_k - \beta \approx H_k^{-1}\sum_{j \in F \setminus
F_k}\psi_j` with :math:`H_k` the Hessian above over those rows; a source row of fold :math:`k` is
weighted by model :math:`k`, a row outside the fitting sample by the mean model
:math:`\bar\beta = \frac1K\sum_k\hat\beta_k`. So :math:`\hat\mu` depends on model :math:`k`
through :math:`e_k = \sum_{i \in S \cap F_k} s_i \tilde x_i + \frac1K \sum_{i \in S
\setminus F} s_i \tilde x_i`, :math:`s_i = w_i (y_i - \hat\mu)/\sum_k w_k`, and a fitting
row :math:`j` of fold :math:`m` enters through every model trained on it:
:math:`\phi_j \mathrel{+}= \big(\sum_{k \ne m} H_k^{-1} e_k\big)^\top \psi_j`. With one fold
(``fold`` all 0, or None) the single model is trained on and weights every row:
:math:`\phi_j \mathrel{+}= (H^{-1} g)^\top\psi_j`, the formula above. To first order the two
agree (:math:`e_k \approx g/K`, :math:`H_k \approx \frac{K-1}{K} H`); the fold form also keeps
the covariance between a fold's gradient and the models that did not see it.

**Partitions** (:class:`SourceSums`, :func:`proposal_aware_from_sums`). The Hessians
:math:`H_k` and the terms :math:`a^\top\psi_j` need only the fitting sample's rows; what runs
over every source row is a sum. :math:`e_k` is two sums of :math:`g_i \tilde x_i` (over
:math:`S \cap F_k` and over :math:`S \setminus F`), and in the within-domain variance a source
row outside :math:`F`, whose term is :math:`\phi_i = s_i`, enters only through the count, mean
and sum of squared deviations of those terms (merged over partitions by Chan, Golub & LeVeque's
update); a source row of :math:`F` needs its own :math:`s_i`, a target row outside :math:`F`
(:math:`\phi_j = 0`) only its count. So a window held as partitions (the Dask engine,
:mod:`is_core.engine.intervals`) takes :func:`source_sums` per partition, around the window's
:math:`\hat\mu` and :math:`\sum w` from a first pass of SNIS sums, and the rest on the fitting
sample; :func:`proposal_aware_snis_estimate` is the case of one partition.

**Approximations.** :math:`p_j` and the Hessians use the mean fold coefficients for every model
(the fold models differ from them by :math:`O(n^{-1/2})`); the penalty :math:`D/C` is each fold
model's own. A fitting sub-sample drawn from a larger source (``max_fit_rows``) is treated as an
i.i.d. part of it. The numeric basis chosen by ``numeric_basis="auto"`` is taken as fixed. The
bounds are formed on the logit scale when the labels are clicks
(:func:`is_core.weights.estimators.rate_interval`).

Cost: K weighted Gram matrices of the fitting rows' design, K solves of size :math:`k+1` and two
matrix-vector products (measured in ``tests/core/weights/test_intervals.py``: well under 2 s at
10^5 fitting rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

from is_core._validation import check_length
from is_core.errors import ParameterError
from is_core.weights.estimators import (
    Estimate,
    _guarded,
    _normal_interval,
    is_binary,
    rate_interval,
)

__all__ = ["FittingSample", "SourceSums", "fitting_sample", "proposal_aware_from_sums",
           "proposal_aware_snis_estimate", "proposal_aware_snis_from_model",
           "proposal_aware_unsupported", "source_sums"]


def _augmented_gram(design: Any, v: np.ndarray) -> np.ndarray:
    r""":math:`\sum_j v_j \tilde x_j \tilde x_j^\top` with :math:`\tilde x_j = (x_j, 1)`, for a
    dense or sparse ``design``."""
    k = design.shape[1]
    out = np.empty((k + 1, k + 1))
    if sp.issparse(design):
        scaled = sp.diags(v) @ design
        out[:k, :k] = (design.T @ scaled).toarray()
        column = np.asarray(scaled.sum(axis=0)).ravel()
    else:
        scaled = design * v[:, None]
        out[:k, :k] = design.T @ scaled
        column = scaled.sum(axis=0)
    out[:k, k] = out[k, :k] = column
    out[k, k] = v.sum()
    return out


def _augmented_t_times(design: Any, u: np.ndarray) -> np.ndarray:
    r""":math:`\sum_j u_j \tilde x_j`."""
    return np.r_[np.asarray(design.T @ u).ravel(), u.sum()]


def _check_arrays(y: np.ndarray, w: np.ndarray, design: Any, domain: np.ndarray,
                  prob: np.ndarray, fold: np.ndarray) -> None:
    n = design.shape[0]
    for values, name, noun in ((domain, "domain", "domain labels"),
                               (prob, "prob", "probabilities"), (fold, "fold", "fold indices")):
        check_length(values, n, parameter=name, noun=noun, per="design rows")
    if not np.all((domain == 0) | (domain == 1)):
        raise ParameterError("domain must hold 0 (source) or 1 (target) for every design row",
                             fix="label source rows 0 and target rows 1", parameter="domain")
    if not np.any(fold >= 0):
        raise ParameterError("no design row is marked as a fitting row (fold >= 0)",
                             fix="pass each fitting row's cross-fitting fold, -1 for the others",
                             parameter="fold")
    n_source = int(np.sum(domain == 0))
    check_length(y, n_source, parameter="y", noun="labels", per="source rows")
    check_length(w, n_source, parameter="w", noun="weights", per="source rows")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        raise ParameterError("w must be finite, non-negative and not all zero",
                             fix="pass the proposal's importance weights, e.g. exp(log_w)",
                             parameter="w")


@dataclass(frozen=True)
class FittingSample:
    """The proposal's fitting sample: each row's design (no intercept column), domain (0
    source, 1 target), :math:`P(\\text{target} \\mid x)` under the mean fold coefficients and
    cross-fitting fold (0..K-1); its source rows in the order of the source rows."""

    design: Any
    domain: np.ndarray
    prob: np.ndarray
    fold: np.ndarray


@dataclass(frozen=True)
class SourceSums:
    r"""The source rows' part of the interval, as sums over the source rows (module docstring,
    *Partitions*): one partition's (:func:`source_sums`) or the window's (:meth:`merge`).

    ``fold_gradient[k]`` is :math:`\sum_{i \in S \cap F_k} g_i \tilde x_i` and
    ``outside_gradient`` :math:`\sum_{i \in S \setminus F} g_i \tilde x_i`, with
    :math:`g_i = s_i` (0 for a row capped by clipping); ``outside_moments`` the rows, mean and
    sum of squared deviations of :math:`s_i` over :math:`S \setminus F`; ``fit_terms`` the
    :math:`s_i` of the source rows in :math:`F`, in row order.
    """

    fold_gradient: np.ndarray
    outside_gradient: np.ndarray
    outside_moments: tuple[int, float, float]
    fit_terms: np.ndarray

    @classmethod
    def merge(cls, parts: Sequence[SourceSums]) -> SourceSums:
        """The sums of consecutive partitions (in row order) added up."""
        moments: tuple[int, float, float] = (0, 0.0, 0.0)
        for part in parts:
            moments = _merge_moments(moments, part.outside_moments)
        return cls(np.sum([p.fold_gradient for p in parts], axis=0),
                   np.sum([p.outside_gradient for p in parts], axis=0), moments,
                   np.concatenate([p.fit_terms for p in parts]))


def source_sums(design: Any, y: np.ndarray, w: np.ndarray, fold: np.ndarray, mu: float,
                total: float, n_folds: int, clipped: np.ndarray | None = None) -> SourceSums:
    r"""One partition's :class:`SourceSums`: its source rows' design (no intercept column),
    labels, weights (on a scale common to the window, whose :math:`\sum w` is ``total`` and
    SNIS value ``mu``), cross-fitting folds (-1 outside the fitting sample) and, optionally,
    the flags of rows whose weight was capped by clipping."""
    snis_term = w * (y - mu) / total
    gradient = snis_term if clipped is None else np.where(clipped, 0.0, snis_term)
    outside = fold < 0
    fold_gradient = np.empty((n_folds, design.shape[1] + 1))
    for k in range(n_folds):
        own = fold == k
        fold_gradient[k] = _augmented_t_times(design[own], gradient[own])
    return SourceSums(fold_gradient, _augmented_t_times(design[outside], gradient[outside]),
                      _moments(snis_term[outside]), snis_term[~outside])


def _fold_directions(sample: FittingSample, sums: SourceSums, C: float) -> np.ndarray:
    r"""The vectors :math:`a_k = H_k^{-1} e_k`, one row per fold model (module docstring)."""
    n_folds = len(sums.fold_gradient)
    k1 = sample.design.shape[1] + 1
    grams = [_augmented_gram(sample.design[idx], sample.prob[idx] * (1.0 - sample.prob[idx]))
             for idx in (np.flatnonzero(sample.fold == m) for m in range(n_folds))]
    total = np.sum(grams, axis=0)
    penalty = np.diag(np.r_[np.full(k1 - 1, 1.0 / C), 0.0])
    shared = sums.outside_gradient / n_folds
    out = np.empty((n_folds, k1))
    for k in range(n_folds):
        hessian = (total - grams[k] if n_folds > 1 else total) + penalty
        out[k] = np.linalg.solve(hessian, sums.fold_gradient[k] + shared)
    return out


def _fit_influence(sample: FittingSample, a: np.ndarray) -> np.ndarray:
    r"""Each fitting row's term through the proposal fit, :math:`(\sum_{k \ne m} a_k)^\top
    \psi_j` for a row of fold :math:`m` (:math:`a_0^\top\psi_j` with one model)."""
    # a fitting row in fold m moves every model trained on it: all k != m (or the one model)
    row_a = a.sum(axis=0) - a if len(a) > 1 else a
    phi = np.zeros(len(sample.fold))
    for m in range(len(a)):
        rows = np.flatnonzero(sample.fold == m)
        phi[rows] = (np.asarray(sample.design[rows] @ row_a[m][:-1]).ravel()
                     + row_a[m][-1]) * (sample.domain[rows] - sample.prob[rows])
    return phi


def _moments(terms: np.ndarray) -> tuple[int, float, float]:
    """Rows, mean and sum of squared deviations of ``terms`` (two passes)."""
    if terms.size == 0:
        return 0, 0.0, 0.0
    mean = terms.mean()
    return terms.size, float(mean), float(np.sum(np.square(terms - mean)))


def _merge_moments(a: tuple[int, float, float], b: tuple[int, float, float]
                   ) -> tuple[int, float, float]:
    """The :func:`_moments` of two groups of terms together (Chan, Golub & LeVeque 1983)."""
    if a[0] == 0 or b[0] == 0:
        return a if b[0] == 0 else b
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return n, a[1] + delta * b[0] / n, a[2] + b[2] + delta * delta * a[0] * b[0] / n


def _within_sum_of_squares(moments: tuple[int, float, float]) -> float:
    r""":math:`\frac{n}{n-1}\sum (t - \bar t)^2` of one domain's terms (0 for fewer than 2)."""
    n, _, squares = moments
    if n < 2:
        return 0.0
    return n / (n - 1) * squares


def proposal_aware_from_sums(sums: SourceSums, sample: FittingSample, *, n_source: int,
                             n_target: int, mu: float, n_effective: float, binary: bool,
                             C: float = 1.0, level: float = 0.95) -> Estimate:
    r"""The proposal-aware SNIS interval from the source rows' :class:`SourceSums` and the
    fitting sample (module docstring, *Partitions*): what
    :func:`proposal_aware_snis_estimate` computes, for a window held as partitions.

    ``mu`` is the SNIS value the sums were taken around, ``n_effective`` Kish's
    :math:`(\sum w)^2 / \sum w^2` and ``binary`` whether every label is 0 or 1 (logit-scale
    bounds); ``n_source`` and ``n_target`` count every row of each domain (a target row outside
    the fitting sample has the term 0).
    """
    check_length(sums.fit_terms, int(np.sum(sample.domain == 0)), parameter="sums",
                 noun="source terms", per="source rows of the fitting sample")
    phi = _fit_influence(sample, _fold_directions(sample, sums, C))
    source = sample.domain == 0
    phi[source] += sums.fit_terms
    by_source = _merge_moments(_moments(phi[source]), sums.outside_moments)
    by_target = _merge_moments(_moments(phi[~source]),
                               (n_target - int(np.sum(~source)), 0.0, 0.0))
    if by_source[0] != n_source:
        raise ParameterError(f"the sums cover {by_source[0]} source rows, not {n_source}",
                             fix="merge the SourceSums of every source partition",
                             parameter="sums")
    se = float(np.sqrt(sum(_within_sum_of_squares(m) for m in (by_source, by_target))))
    if binary:
        return rate_interval("snis_proposal_aware", mu, se, level, n_effective)
    return _normal_interval("snis_proposal_aware", mu, se, level)


def proposal_aware_snis_estimate(
    y: np.ndarray,
    w: np.ndarray,
    design: Any,
    domain: np.ndarray,
    prob: np.ndarray,
    *,
    fold: np.ndarray | None = None,
    C: float = 1.0,
    clipped: np.ndarray | None = None,
    level: float = 0.95,
) -> Estimate:
    """SNIS target-CTR estimate with an interval that includes the proposal's fitting error.

    Parameters
    ----------
    y, w : ndarray of shape (n_source,)
        Labels and importance weights (any scale) of the source rows, in the order of the
        source rows of ``design``.
    design : ndarray or sparse matrix of shape (N, k)
        The proposal's design matrix (no intercept column) of every source and target row.
    domain : ndarray of shape (N,)
        0 for a source row, 1 for a target row.
    prob : ndarray of shape (N,)
        :math:`P(\\text{target} \\mid x)` of each row under the mean fold coefficients, at the
        fitting sample's domain proportions.
    fold : int ndarray of shape (N,), optional
        Each fitting row's cross-fitting fold (0..K-1), -1 for a row outside the fitting
        sample (scored by the mean fold model). Default: one model fitted on every row and
        used for every row (no cross-fitting); all zeros means the same on the rows given.
    C : float, default 1.0
        The logistic regression's inverse L2 strength (intercept unpenalized).
    clipped : bool ndarray of shape (n_source,), optional
        Source rows whose weight was capped by clipping (no gradient through the proposal).
    level : float, default 0.95

    Returns
    -------
    Estimate
        ``snis_proposal_aware``: the SNIS value, the influence-function standard error and
        logit-scale bounds for 0/1 labels (see the module docstring for the maths).
    """
    y, w = np.asarray(y, dtype=float), np.asarray(w, dtype=float)
    domain, prob = np.asarray(domain), np.asarray(prob, dtype=float)
    fold = (np.zeros(design.shape[0], dtype=int) if fold is None
            else np.asarray(fold, dtype=int))
    _check_arrays(y, w, design, domain, prob, fold)
    if not C > 0:
        raise ParameterError(f"C={C!r} must be positive", fix="pass the proposal's C",
                             parameter="C")
    if clipped is not None:
        clipped = np.asarray(clipped, dtype=bool)
        check_length(clipped, y.size, parameter="clipped", noun="flags", per="source rows")
    total = w.sum()
    mu = float(w @ y / total)
    source, fit = domain == 0, fold >= 0
    sums = source_sums(design[source], y, w, fold[source], mu, total, int(fold.max()) + 1,
                       clipped)
    return proposal_aware_from_sums(
        sums, FittingSample(design[fit], domain[fit], prob[fit], fold[fit]),
        n_source=int(source.sum()), n_target=int((~source).sum()), mu=mu,
        n_effective=float(total**2 / np.sum(np.square(w))), binary=is_binary(y), C=C,
        level=level)


def proposal_aware_unsupported(model: Any) -> str | None:
    """Why :func:`proposal_aware_snis_from_model` cannot use ``model`` (None when it can): the
    influence function needs linear fold models on a design matrix, without calibration."""
    if getattr(model, "design_", None) is None:
        return (f"the chosen proposal learner ({getattr(model, 'learner_', model.learner)}) "
                "is not linear on a design matrix")
    if getattr(model, "calibration_", model.calibration) is not None:
        return f"the proposal's scores are recalibrated ({model.calibration_})"
    return None


def proposal_aware_snis_from_model(model: Any, source: pd.DataFrame, target: pd.DataFrame,
                                   y: np.ndarray, w: np.ndarray | None = None,
                                   clipped: np.ndarray | None = None, level: float = 0.95,
                                   w_unclipped: np.ndarray | None = None) -> Estimate:
    r""":func:`proposal_aware_snis_estimate` with the arrays of a fitted logistic, uncalibrated
    :class:`~is_core.weights.domain.DomainClassifierRatio` (``source``/``target``: the frames it
    was fitted on).

    ``w`` defaults to its cross-fitted weights ``exp(log_ratio_source_)``; pass the weights
    actually used when they are those times a factor that does not depend on the fit (clipping,
    with ``clipped`` flagging the capped rows; a global rescaling; exact logged propensities
    multiplied by a fitted context ratio), since :math:`\partial \log w / \partial\beta` is
    then still the design row. With ``w_unclipped`` (the weights before clipping) the interval
    is bias-guarded as :func:`~is_core.weights.estimators.snis_estimate`'s: the hull with the
    unclipped weights' proposal-aware interval (the design is built once for both).
    """
    reason = proposal_aware_unsupported(model)
    if reason is not None:
        raise ParameterError(f"the proposal-aware interval needs a logistic, uncalibrated "
                             f"proposal: {reason}",
                             fix="fit DomainClassifierRatio with learner='logistic' and "
                             "calibration=None, or use snis_estimate", parameter="model")
    # the learner, C and calibration actually used (resolved when they were chosen from data)
    C = getattr(model, "C_", model.C)
    columns = [*model.numeric_, *model.categorical_]
    frame = pd.concat([source[columns], target[columns]], ignore_index=True)
    design = model.design_.transform(frame)
    logit = _mean_logit(model, design)
    n_s, n_t = model.n_source_, model.n_target_
    if w is None:
        w = np.exp(model.log_ratio_source_ - model.log_ratio_source_.max())
    domain = np.r_[np.zeros(n_s, dtype=int), np.ones(n_t, dtype=int)]
    prob, fold = expit(logit), _crossfit_folds(model)
    estimate = proposal_aware_snis_estimate(y, w, design, domain, prob, fold=fold, C=C,
                                            clipped=clipped, level=level)
    if w_unclipped is None:
        return estimate
    return _guarded(estimate, proposal_aware_snis_estimate(y, w_unclipped, design, domain, prob,
                                                           fold=fold, C=C, level=level))


def fitting_sample(model: Any, sample: pd.DataFrame) -> FittingSample:
    """The :class:`FittingSample` of a logistic, uncalibrated proposal (``sample``: its fitting
    rows' features, source rows first, as ``DomainClassifierRatio._fit_rows`` draws them)."""
    fit_source, fit_target = model._fit_rows(model.n_source_, model.n_target_)
    if len(sample) != len(fit_source) + len(fit_target):
        raise ParameterError(f"sample has {len(sample)} rows, not the proposal's "
                             f"{len(fit_source)} + {len(fit_target)} fitting rows",
                             fix="pass the rows DomainClassifierRatio._fit_rows draws, source "
                             "rows first", parameter="sample")
    design = model.design_.transform(sample[[*model.numeric_, *model.categorical_]])
    domain = np.r_[np.zeros(len(fit_source), dtype=int), np.ones(len(fit_target), dtype=int)]
    return FittingSample(design, domain, expit(_mean_logit(model, design)),
                         _sample_folds(model, domain))


def _mean_logit(model: Any, design: Any) -> np.ndarray:
    """The logit of the fold models' mean coefficients on ``design`` (no calibration)."""
    coef = np.mean([est.coef_[0] for est in model.estimators_], axis=0)
    intercept = float(np.mean([est.intercept_[0] for est in model.estimators_]))
    return np.asarray(design @ coef).ravel() + intercept


def _sample_folds(model: Any, labels: np.ndarray) -> np.ndarray:
    """Each fitting row's cross-fitting fold: the stratified split of
    ``DomainClassifierRatio.fit_sample`` of the sample's domain ``labels``."""
    sample_fold = np.empty(labels.size, dtype=int)
    for k, (_, test_idx) in enumerate(model._folds(labels)):
        sample_fold[test_idx] = k
    return sample_fold


def _crossfit_folds(model: Any) -> np.ndarray:
    """Each source-then-target row's cross-fitting fold in ``model``, -1 outside the fitting
    sample: the same seeded sample and stratified split as ``DomainClassifierRatio.fit``."""
    n_s, n_t = model.n_source_, model.n_target_
    fit_source, fit_target = model._fit_rows(n_s, n_t)
    labels = np.r_[np.zeros(len(fit_source), dtype=int), np.ones(len(fit_target), dtype=int)]
    fold = np.full(n_s + n_t, -1, dtype=int)
    fold[np.r_[fit_source, n_s + fit_target]] = _sample_folds(model, labels)
    return fold
