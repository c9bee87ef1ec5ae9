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

__all__ = ["proposal_aware_snis_estimate", "proposal_aware_snis_from_model",
           "proposal_aware_unsupported"]


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


def _fold_directions(design: Any, domain: np.ndarray, prob: np.ndarray, fold: np.ndarray,
                     snis_gradient: np.ndarray, C: float) -> np.ndarray:
    r"""The vectors :math:`a_k = H_k^{-1} e_k`, one row per fold model (module docstring)."""
    n_folds = int(fold.max()) + 1
    k1 = design.shape[1] + 1
    grams = [_augmented_gram(design[idx], prob[idx] * (1.0 - prob[idx]))
             for idx in (np.flatnonzero(fold == m) for m in range(n_folds))]
    total = np.sum(grams, axis=0)
    penalty = np.diag(np.r_[np.full(k1 - 1, 1.0 / C), 0.0])
    source = domain == 0
    shared = _augmented_t_times(design[source & (fold < 0)],
                                snis_gradient[fold[source] < 0]) / n_folds
    out = np.empty((n_folds, k1))
    for k in range(n_folds):
        hessian = (total - grams[k] if n_folds > 1 else total) + penalty
        own = source & (fold == k)
        e_k = _augmented_t_times(design[own], snis_gradient[fold[source] == k]) + shared
        out[k] = np.linalg.solve(hessian, e_k)
    return out


def _fit_influence(design: Any, domain: np.ndarray, prob: np.ndarray, fold: np.ndarray,
                   a: np.ndarray) -> np.ndarray:
    r"""Each row's term through the proposal fit, :math:`(\sum_{k \ne m} a_k)^\top\psi_j` for
    a fitting row of fold :math:`m` (:math:`a_0^\top\psi_j` with one model), 0 elsewhere."""
    # a fitting row in fold m moves every model trained on it: all k != m (or the one model)
    row_a = a.sum(axis=0) - a if len(a) > 1 else a
    fit_rows = np.flatnonzero(fold >= 0)
    fit_design, fit_fold = design[fit_rows], fold[fit_rows]
    phi = np.zeros(design.shape[0])
    for m in range(len(a)):
        rows = fit_rows[fit_fold == m]
        phi[rows] = (np.asarray(fit_design[fit_fold == m] @ row_a[m][:-1]).ravel()
                     + row_a[m][-1]) * (domain[rows] - prob[rows])
    return phi


def _within_sum_of_squares(terms: np.ndarray) -> float:
    r""":math:`\frac{n}{n-1}\sum (t - \bar t)^2` of one domain's terms (0 for fewer than 2)."""
    if terms.size < 2:
        return 0.0
    return terms.size / (terms.size - 1) * float(np.sum(np.square(terms - terms.mean())))


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
    snis_term = w * (y - mu) / total
    gradient = snis_term if clipped is None else np.where(clipped, 0.0, snis_term)
    phi = _fit_influence(design, domain, prob, fold,
                         _fold_directions(design, domain, prob, fold, gradient, C))
    phi[domain == 0] += snis_term
    se = float(np.sqrt(sum(_within_sum_of_squares(phi[domain == label]) for label in (0, 1))))
    if is_binary(y):
        return rate_interval("snis_proposal_aware", mu, se, level,
                             float(total**2 / np.sum(np.square(w))))
    return _normal_interval("snis_proposal_aware", mu, se, level)


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
    coef = np.mean([est.coef_[0] for est in model.estimators_], axis=0)
    intercept = float(np.mean([est.intercept_[0] for est in model.estimators_]))
    logit = np.asarray(design @ coef).ravel() + intercept
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


def _crossfit_folds(model: Any) -> np.ndarray:
    """Each source-then-target row's cross-fitting fold in ``model``, -1 outside the fitting
    sample: the same seeded sample and stratified split as ``DomainClassifierRatio.fit``."""
    n_s, n_t = model.n_source_, model.n_target_
    fit_source, fit_target = model._fit_rows(n_s, n_t)
    labels = np.r_[np.zeros(len(fit_source), dtype=int), np.ones(len(fit_target), dtype=int)]
    sample_fold = np.empty(labels.size, dtype=int)
    for k, (_, test_idx) in enumerate(model._folds(labels)):
        sample_fold[test_idx] = k
    fold = np.full(n_s + n_t, -1, dtype=int)
    fold[np.r_[fit_source, n_s + fit_target]] = sample_fold
    return fold
