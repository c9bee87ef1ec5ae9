r"""The proposal model: importance weights from a probabilistic domain classifier.

Label target rows 1 and source rows 0 and fit a classifier :math:`c(x) = P(\text{target} \mid x)`.
By Bayes' rule, with :math:`n_s` source and :math:`n_t` target rows,

.. math::

    w(x) = \frac{p(x)}{q(x)} = \frac{c(x)}{1 - c(x)} \cdot \frac{n_s}{n_t},
    \qquad
    \log w(x) = \operatorname{logit} c(x) + \log\frac{n_s}{n_t}.

Everything is computed in log space: the classifier's decision function *is* the logit, so no
probability is clipped on the way to a weight (the one exception, isotonic calibration, is
documented in :mod:`is_core.weights._calibration`).

**Learners.** ``"logistic"``: L2 logistic regression on
:class:`is_core.weights._design.DomainDesign` (one-hot categoricals, numerics through a
``"linear"``, ``"quadratic"`` or ``"spline"`` basis), or ``"auto"``: cross-fit ``linear`` and
``quadratic`` and keep the simplest whose out-of-fold log-loss is within one standard error of
the best (each candidate is scored on rows it never saw; the one-SE rule keeps the linear basis
unless the quadratic one is detectably better).
``"xgboost"``: gradient-boosted trees with native categoricals; its raw margins are usually
over-confident, hence ``calibration``.

``"auto"`` (the pipeline's default) scores three candidates, simplest first, by out-of-fold
domain log-loss (a proper scoring rule, so the best-scoring classifier is the best estimate of
:math:`c(x)`, hence of the log ratio) and keeps the simplest within one standard error of the
best (:func:`_one_standard_error_choice`): ``"logistic"`` (the numeric basis as above, its L2
strength ``C`` picked from :data:`C_GRID` by the same out-of-fold log-loss),
``"logistic_crosses"`` (the same plus one-hot pairs of categorical features, see
:mod:`is_core.weights._design`: user × item effects) and ``"xgboost"`` (shallow, subsampled,
``min_child_weight``-regularized trees, early-stopped on an inner split of each training fold,
with cross-fitted sigmoid calibration). The candidates are scored on a seeded sub-sample of at
most ``max_selection_rows`` rows (half per domain) of the fitting sample, cross-fitted on their
own folds; the chosen one is then cross-fitted on the whole fitting sample.

**Cross-fitting.** The data are split into K stratified folds; a source row's weight comes from
the classifier fitted on the other K-1 folds, so no row is weighted by a model that saw it (an
in-sample classifier overfits exactly the rows it then up-weights). The out-of-fold scores also
give an honest **domain AUC**: 0.5 means no detectable shift, 1 means disjoint support.

**Calibration** (``"sigmoid"``, Platt 1999; ``"isotonic"``, Zadrozny & Elkan 2002) is cross-fitted
too: the map applied to fold k's scores is fitted on the out-of-fold scores of the other folds.
The diagnostic ``calibration_slope_`` is the slope of a logistic regression of the domain label on
the uncalibrated out-of-fold logit (1 = calibrated, < 1 = over-confident logits, i.e. too extreme
weights); ``calibration_error_`` is the expected calibration error (10 equal-frequency bins) of the
final out-of-fold probabilities.

The estimator's default (``learner="logistic"``, ``numeric_basis="auto"``, no calibration) was
chosen by measurement (``benchmarks/weights_accuracy.py``): as accurate as the linear logistic
ratio on a mean shift, an order of magnitude better on a variance shift, far better than
uncalibrated XGBoost (whose margins are over-confident and piecewise constant) on both. The
pipeline's default (``proposal.learner``) is ``"auto"``: on click logs, where user × item effects
matter, it cut the weight NMSE of the fixed ``C = 1`` logistic from 0.39 to 0.23 at 5,000 rows
per domain (the demo scenario, ``is_core.simulate.clicklog``). ``C``
tuned on the selection sample is used unchanged on the fitting sample: the L2 penalty is a fixed
prior on the coefficients, which more rows outweigh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from is_core._validation import Basis, Calibration, Learner, NumericBasis, check_choice
from is_core.data.features import finite_numeric_mask
from is_core.errors import ProposalFitError, ProposalParameterError
from is_core.weights._calibration import apply_calibrator, fit_calibrator
from is_core.weights._design import MISSING_CATEGORY, DomainDesign, category_text, level_codes

__all__ = ["MISSING_CATEGORY", "DomainClassifierRatio"]
AUTO_BASES: tuple[Basis, ...] = ("linear", "quadratic")  # numeric_basis="auto" picks one
#: The candidates of ``learner="auto"``, simplest first.
AUTO_LEARNERS: tuple[str, ...] = ("logistic", "logistic_crosses", "xgboost")
#: Inverse L2 strengths of the logistic candidates of ``learner="auto"``.
C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


@dataclass(frozen=True)
class _Candidate:
    """One fully specified domain classifier (a fixed learner, or a candidate of ``auto``)."""

    name: str  # "logistic", "logistic_crosses" or "xgboost"
    basis: Basis | None = None  # logistic only
    C: float = 1.0
    calibration: Calibration | None = None
    regularized: bool = False  # xgboost: the small-sample settings of learner="auto"

    @property
    def linear(self) -> bool:
        return self.name != "xgboost"


class DomainClassifierRatio(BaseEstimator):
    """Cross-fitted, optionally calibrated domain-classifier density-ratio estimator.

    Parameters
    ----------
    numeric, categorical : list of str
        Feature columns. Constant columns (one value over source and target) carry no
        information about the shift and are dropped (listed in ``dropped_features_``).
        A numeric value may be missing (NaN): the logistic learners' design gives it a missing
        indicator and the fitting sample's mean (:mod:`is_core.weights._design`), XGBoost takes
        it natively; ±inf is refused (:class:`ProposalFitError`). Categoricals may be text,
        integers, booleans or ``category``, coded by their level text
        (:func:`is_core.data.features.level_text`); a missing one is its own level.
    learner : {"logistic", "xgboost", "auto"}, default "logistic"
        ``"auto"`` picks a candidate by out-of-fold log-loss (see the module docstring).
    n_folds : int, default 5
        Cross-fitting folds (stratified by domain).
    calibration : {None, "sigmoid", "isotonic"}, default None
    numeric_basis : {"auto", "linear", "quadratic", "spline"}, default "auto"
        Logistic learner only (see the module docstring); ``n_knots`` quantile knots for splines.
    n_knots : int, default 5
    C : float, default 1.0
        Inverse L2 regularization strength of the logistic regression.
    max_categories : int, default 200
        One-hot levels kept per categorical column (rarer levels are pooled, unseen ones map to
        the pool).
    n_estimators, max_depth, learning_rate : XGBoost learner's trees.
    solver : str, default "lbfgs"
        Solver of the logistic regression.
    n_jobs : int or None
        Threads for XGBoost.
    random_state : int or None
        Seeds the fold split, the fitting sample and XGBoost.
    max_fit_rows : int or None, default None
        Fit the fold classifiers on at most ``max_fit_rows // 2`` rows per domain (a seeded
        sample); the other rows are scored by all K fold models, which never saw them. None fits
        on every row.
    max_selection_rows : int or None, default 20_000
        ``learner="auto"``: score the candidates on at most this many rows of the fitting sample
        (half per domain, seeded). None: on the whole fitting sample.

    Attributes
    ----------
    log_ratio_source_ : ndarray of shape (n_source,)
        Cross-fitted, prior-corrected :math:`\\log w` of each source row, in input order.
    log_ratio_target_ : ndarray of shape (n_target,)
        The same for the target rows (useful for balance checks).
    domain_auc_ : float
        Out-of-fold ROC AUC of the domain classifier.
    calibration_slope_, calibration_error_, brier_score_ : float
        Calibration diagnostics of the out-of-fold domain probabilities (see module docstring).
    log_prior_correction_ : float
        :math:`\\log(n_s / n_t)` of the rows the classifiers were fitted on.
    n_fit_source_, n_fit_target_ : int
        Rows of each domain in the fitting sample.
    estimators_ : list
        The K fold classifiers; :meth:`log_ratio` averages their logits on new rows.
    numeric_basis_ : str
        The basis used (``"auto"`` resolved); ``basis_log_loss_`` holds each candidate's
        out-of-fold log-loss.
    learner_ : str
        The learner used: ``learner``, or the candidate ``"auto"`` chose.
    candidate_log_loss_, candidate_log_loss_se_ : dict of str to float
        ``"auto"``: each candidate's out-of-fold log-loss on the selection sample, and the
        standard error of its paired difference from the best one.
    C_, calibration_ : the inverse L2 strength and the calibration used.
    domain_reliability_ : dict of str to list of float
        Reliability curve of the out-of-fold P(target): per decile of the prediction, its mean
        (``mean_predicted``), the observed target share (``observed``) and the rows (``rows``).
    dropped_features_ : list of str
    n_source_, n_target_ : int
    """

    def __init__(
        self,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        learner: Learner = "logistic",
        n_folds: int = 5,
        calibration: Calibration | None = None,
        numeric_basis: NumericBasis = "auto",
        n_knots: int = 5,
        C: float = 1.0,
        max_categories: int = 200,
        n_estimators: int = 200,
        max_depth: int = 4,
        learning_rate: float = 0.1,
        n_jobs: int | None = None,
        random_state: int | None = None,
        solver: str = "lbfgs",
        max_fit_rows: int | None = None,
        max_selection_rows: int | None = 20_000,
    ) -> None:
        self.max_selection_rows = max_selection_rows
        self.max_fit_rows = max_fit_rows
        self.solver = solver
        self.numeric = numeric
        self.categorical = categorical
        self.learner = learner
        self.n_folds = n_folds
        self.calibration = calibration
        self.numeric_basis = numeric_basis
        self.n_knots = n_knots
        self.C = C
        self.max_categories = max_categories
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, source: pd.DataFrame, target: pd.DataFrame) -> Self:
        """Fit the K fold classifiers on ``source`` (label 0) and ``target`` (label 1) rows."""
        self._check_params()
        numeric, categorical = list(self.numeric or []), list(self.categorical or [])
        self._check_inputs(source, target, numeric, categorical)
        self._select_features(source, target, numeric, categorical)
        columns = [*self.numeric_, *self.categorical_]
        n_s, n_t = len(source), len(target)
        fit_source, fit_target = self._fit_rows(n_s, n_t)
        sample = pd.concat([source[columns].iloc[fit_source], target[columns].iloc[fit_target]],
                           ignore_index=True)
        logit = self.fit_sample(sample, n_s, n_t, len(fit_source))
        del sample
        logit_source = self._logit_of_all(source, fit_source, logit[:len(fit_source)])
        logit_target = self._logit_of_all(target, fit_target, logit[len(fit_source):])
        self.log_ratio_source_ = logit_source + self.log_prior_correction_
        self.log_ratio_target_ = logit_target + self.log_prior_correction_
        self.domain_auc_ = float(roc_auc_score(np.r_[np.zeros(n_s), np.ones(n_t)],
                                               np.r_[logit_source, logit_target]))
        return self

    def fit_sample(self, sample: pd.DataFrame, n_source: int, n_target: int,
                   n_fit_source: int) -> np.ndarray:
        """Fit the fold classifiers on the fitting sample alone; return its rows' out-of-fold
        (calibrated) logits.

        ``sample`` holds the rows :meth:`_fit_rows` draws for ``n_source`` source and
        ``n_target`` target rows, its ``n_fit_source`` source rows first, in the selected
        feature columns (:meth:`set_features`). :meth:`fit` calls it; the Dask engine
        (:mod:`is_core.engine.proposal`) too, with the sample collected from the partitions,
        and scores the other rows with :meth:`log_ratio`. Sets every fitted attribute but the
        log ratios and the domain AUC, which need every row.
        """
        y = np.r_[np.zeros(n_fit_source, dtype=int),
                  np.ones(len(sample) - n_fit_source, dtype=int)]
        folds = self._folds(y)
        if self.learner == "auto":
            chosen = self._select_learner(sample, y)
            X, self.design_ = self._inputs(chosen, sample)
            raw, self.estimators_ = self._crossfit(X, y, folds, self._classifier(chosen))
        else:
            chosen, raw, self.estimators_, self.design_ = self._fit_fixed(sample, y, folds)
        self.learner_, self.C_, self.calibration_ = chosen.name, chosen.C, chosen.calibration
        logit = _crossfit_calibration(raw, y, folds, self.calibration_)
        if self.calibration_ is not None:
            self.calibrator_ = fit_calibrator(self.calibration_, raw, y)
        self.n_source_, self.n_target_ = n_source, n_target
        self.n_fit_source_, self.n_fit_target_ = n_fit_source, len(sample) - n_fit_source
        # The classifier learned the odds at the fitting sample's domain proportions.
        self.log_prior_correction_ = float(np.log(self.n_fit_source_ / self.n_fit_target_))
        self._calibration_diagnostics(raw, logit, y)
        return logit

    def _folds(self, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state
                                    ).split(np.zeros(len(y)), y))

    def _fit_fixed(self, sample: pd.DataFrame, y: np.ndarray, folds: list
                   ) -> tuple[_Candidate, np.ndarray, list[Any], DomainDesign | None]:
        """``learner="logistic"`` or ``"xgboost"``: one cross-fit per numeric basis (two with
        ``numeric_basis="auto"``, kept by the one-SE rule)."""
        candidates = AUTO_BASES if (self.learner == "logistic" and self.numeric_basis == "auto"
                                    ) else (self.numeric_basis,)
        fits: dict[str, tuple[np.ndarray, np.ndarray, list[Any], DomainDesign | None]] = {}
        for basis in candidates:
            # with the logistic learner, "auto" has been expanded into AUTO_BASES above
            spec = _Candidate(self.learner, cast(Basis, basis) if self.learner == "logistic"
                              else None, self.C, self.calibration)
            X, design = self._inputs(spec, sample)
            raw, estimators = self._crossfit(X, y, folds, self._classifier(spec))
            fits[basis] = (_row_log_loss(raw, y), raw, estimators, design)
        self.basis_log_loss_ = {b: float(f[0].mean()) for b, f in fits.items()}
        self.numeric_basis_ = _one_standard_error_choice(
            candidates, {b: f[0] for b, f in fits.items()})
        _, raw, estimators, design = fits[self.numeric_basis_]
        return (_Candidate(self.learner, None, self.C, self.calibration), raw, estimators,
                design)

    # ------------------------------------------------------------------ learner="auto"
    def _select_learner(self, sample: pd.DataFrame, y: np.ndarray) -> _Candidate:
        """Score :data:`AUTO_LEARNERS` out of fold on the selection sample; keep the simplest
        within one standard error of the best (sets ``candidate_log_loss_``)."""
        rows = self._selection_rows(y)
        sub, y_sub = sample.iloc[rows].reset_index(drop=True), y[rows]
        folds = self._folds(y_sub)
        bases: tuple[Basis, ...] = (
            AUTO_BASES if self.numeric_basis == "auto" and self.numeric_
            else ("linear" if self.numeric_basis == "auto" else self.numeric_basis,))
        plain, plain_loss, basis_loss = self._tune_logistic(sub, y_sub, folds, bases, False)
        crossed, crossed_loss, _ = self._tune_logistic(
            sub, y_sub, folds, (cast(Basis, plain.basis),), True)
        found = {plain.name: (plain, plain_loss), crossed.name: (crossed, crossed_loss)}
        trees = _Candidate("xgboost", None, calibration=self.calibration or "sigmoid",
                           regularized=True)
        raw, _ = self._crossfit(self._frame(sub), y_sub, folds, self._classifier(trees))
        found[trees.name] = (trees, _row_log_loss(
            _crossfit_calibration(raw, y_sub, folds, trees.calibration), y_sub))
        names = tuple(n for n in AUTO_LEARNERS if n in found)
        loss = {n: found[n][1] for n in names}
        best = min(names, key=lambda n: loss[n].mean())
        self.candidate_log_loss_ = {n: float(loss[n].mean()) for n in names}
        self.candidate_log_loss_se_ = {
            n: float((loss[n] - loss[best]).std(ddof=1) / np.sqrt(len(y_sub))) for n in names}
        self.basis_log_loss_, self.numeric_basis_ = basis_loss, plain.basis or "linear"
        self.n_selection_rows_ = len(y_sub)
        return found[_one_standard_error_choice(names, loss)][0]

    def _tune_logistic(self, sub: pd.DataFrame, y: np.ndarray, folds: list,
                       bases: tuple[Basis, ...], crosses: bool
                       ) -> tuple[_Candidate, np.ndarray, dict[str, float]]:
        """The logistic candidate: per basis the ``C`` of :data:`C_GRID` with the smallest
        out-of-fold log-loss (walked upward from the strongest regularization until the loss
        rises), then the basis by the one-SE rule."""
        name = "logistic_crosses" if crosses else "logistic"
        best: dict[str, tuple[_Candidate, np.ndarray]] = {}
        for basis in bases:
            X, _ = self._inputs(_Candidate(name, basis), sub)
            path = [LogisticRegression(solver=self.solver, max_iter=2000, warm_start=True)
                    for _ in folds]
            for C in C_GRID:  # ascending: each fold's fit starts from its previous C's optimum
                raw = np.empty(len(y))
                for est, (train_idx, test_idx) in zip(path, folds, strict=True):
                    est.set_params(C=C).fit(_rows(X, train_idx), y[train_idx])
                    raw[test_idx] = est.decision_function(_rows(X, test_idx))
                spec = _Candidate(name, basis, C, self.calibration)
                loss = _row_log_loss(_crossfit_calibration(raw, y, folds, spec.calibration), y)
                if basis in best and loss.mean() >= best[basis][1].mean():
                    break  # the loss has turned up: weaker regularization only overfits more
                best[basis] = (spec, loss)
        chosen = _one_standard_error_choice(bases, {b: v[1] for b, v in best.items()})
        return (*best[chosen], {b: float(v[1].mean()) for b, v in best.items()})

    def _selection_rows(self, y: np.ndarray) -> np.ndarray:
        """Positions in the fitting sample of the rows the candidates are scored on: all, or
        at most ``max_selection_rows // 2`` per domain (seeded, without replacement)."""
        if self.max_selection_rows is None or len(y) <= self.max_selection_rows:
            return np.arange(len(y))
        cap = self.max_selection_rows // 2
        rng = np.random.default_rng(self.random_state)
        parts = [np.flatnonzero(y == label) for label in (0, 1)]
        return np.sort(np.concatenate([
            p if len(p) <= cap else rng.choice(p, cap, replace=False) for p in parts]))

    def _fit_rows(self, n_source: int, n_target: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the source and target rows the classifiers are fitted on: all rows, or
        at most ``max_fit_rows // 2`` per domain drawn without replacement (seeded by
        ``random_state``). A classifier with a few hundred coefficients is estimated as well
        from 10^5 rows per domain as from 10^7, at a hundredth of the time and memory; every
        row is still weighted by models that never saw it."""
        if self.max_fit_rows is None or n_source + n_target <= self.max_fit_rows:
            return np.arange(n_source), np.arange(n_target)
        cap = self.max_fit_rows // 2
        rng = np.random.default_rng(self.random_state)
        source_rows, target_rows = (
            np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))
            for n in (n_source, n_target))
        return source_rows, target_rows

    def _logit_of_all(self, frame: pd.DataFrame, fitted: np.ndarray, oof_logit: np.ndarray
                      ) -> np.ndarray:
        """Every row's logit: out-of-fold for the fitting sample; rows left out of the sample
        were seen by no fold model and get the fold models' mean logit, as new rows do in
        :meth:`log_ratio`."""
        out = np.empty(len(frame))
        out[fitted] = oof_logit
        rest = np.ones(len(frame), dtype=bool)
        rest[fitted] = False
        if rest.any():
            out[rest] = self._mean_logit(frame.iloc[np.flatnonzero(rest)])
        return out

    def _mean_logit(self, frame: pd.DataFrame, chunk: int = 100_000) -> np.ndarray:
        """The fold models' mean (calibrated) logit of raw feature rows, scored in chunks to
        bound memory. The logistic fold models share one design, so their mean logit is the
        logit of their mean coefficients."""
        out = np.empty(len(frame))
        if self.design_ is not None:
            coef = np.mean([est.coef_[0] for est in self.estimators_], axis=0)
            intercept = float(np.mean([est.intercept_[0] for est in self.estimators_]))
        for start in range(0, len(frame), chunk):
            part = frame.iloc[start:start + chunk]
            if self.design_ is not None:  # a logistic learner
                raw = self.design_.transform(part) @ coef + intercept
            else:
                X = self._frame(part)
                raw = np.mean([self._decision(est, X) for est in self.estimators_], axis=0)
            if self.calibration_ is not None:
                raw = apply_calibrator(self.calibrator_, raw)
            out[start:start + chunk] = raw
        return out

    def _crossfit(self, X, y: np.ndarray, folds: list, template) -> tuple[np.ndarray, list]:
        raw = np.empty(len(y))
        estimators = []
        for train_idx, test_idx in folds:
            est = self._fit_one(clone(template), _rows(X, train_idx), y[train_idx])
            raw[test_idx] = self._decision(est, _rows(X, test_idx))
            estimators.append(est)
        return raw, estimators

    def _fit_one(self, est, X, y: np.ndarray):
        """Fit one fold model; an early-stopped one stops on an inner 20 % split of its own
        training rows (so the held-out fold stays unseen)."""
        if getattr(est, "early_stopping_rounds", None) is None:
            return est.fit(X, y)
        fit_idx, stop_idx = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                             random_state=self.random_state)
        return est.fit(_rows(X, fit_idx), y[fit_idx],
                       eval_set=[(_rows(X, stop_idx), y[stop_idx])], verbose=False)

    def log_ratio(self, frame: pd.DataFrame) -> np.ndarray:
        """:math:`\\log w(x)` of new rows: the fold classifiers' mean logit (calibrated with the
        map fitted on every out-of-fold score) plus the prior term."""
        return self._mean_logit(frame) + self.log_prior_correction_

    # ------------------------------------------------------------------ persistence
    def linear_state(self) -> dict[str, Any] | None:
        """The fitted linear proposal as JSON-able data, or None when it is not linear (a tree
        learner): the parameters, the learner, basis, ``C`` and calibration chosen, and each
        fold model's coefficients. :meth:`from_linear_state` rebuilds the model from it and the
        frames it was fitted on; nothing is pickled."""
        design = getattr(self, "design_", None)
        if design is None:
            return None
        return {"params": self.get_params(), "learner": self.learner_, "basis": design.basis,
                "crosses": design.crosses, "C": self.C_, "calibration": self.calibration_,
                "numeric": list(self.numeric_), "categorical": list(self.categorical_),
                "n_source": self.n_source_, "n_target": self.n_target_,
                "n_design_columns": int(design.n_features_out_),
                "coef": [est.coef_[0].tolist() for est in self.estimators_],
                "intercept": [float(est.intercept_[0]) for est in self.estimators_]}

    @classmethod
    def from_linear_state(cls, state: dict[str, Any], source: pd.DataFrame,
                          target: pd.DataFrame) -> DomainClassifierRatio:
        """The linear proposal of :meth:`linear_state`, with its design matrix and fold models
        (enough to score rows and for :mod:`is_core.weights.intervals`). The design is refitted
        on the same seeded fitting sample of ``source`` and ``target``: it uses no label, so it
        is the design the fold models were fitted on; a different column count means the
        frames are not the ones the model was fitted on."""
        fit_source, fit_target = cls(**state["params"])._fit_rows(len(source), len(target))
        columns = [*state["numeric"], *state["categorical"]]
        sample = pd.concat([source[columns].iloc[fit_source], target[columns].iloc[fit_target]],
                           ignore_index=True)
        return cls.from_linear_sample(state, sample, len(source), len(target))

    @classmethod
    def from_linear_sample(cls, state: dict[str, Any], sample: pd.DataFrame, n_source: int,
                           n_target: int) -> DomainClassifierRatio:
        """:meth:`from_linear_state` from the fitting sample alone: the rows :meth:`_fit_rows`
        draws for ``n_source`` and ``n_target`` rows, source rows first (the Dask engine
        collects them from the partitions, :mod:`is_core.engine.intervals`)."""
        model = cls(**state["params"])
        model.numeric_, model.categorical_ = state["numeric"], state["categorical"]
        model.learner_, model.C_ = state["learner"], float(state["C"])
        model.calibration_ = state["calibration"]
        model.n_source_, model.n_target_ = n_source, n_target
        if (n_source, n_target) != (state["n_source"], state["n_target"]):
            raise ProposalFitError(
                f"the proposal was fitted on {state['n_source']} source and {state['n_target']} "
                f"target rows, not {n_source} and {n_target}",
                fix="the inputs changed during the run; re-run the date")
        model.design_ = DomainDesign(
            numeric=model.numeric_, categorical=model.categorical_, basis=state["basis"],
            n_knots=model.n_knots, max_categories=model.max_categories,
            crosses=state["crosses"]).fit(sample)
        if model.design_.n_features_out_ != state["n_design_columns"]:
            raise ProposalFitError("the proposal's design does not match its coefficients",
                                   fix="the inputs changed during the run; re-run the date")
        model.estimators_ = []
        for coef, intercept in zip(state["coef"], state["intercept"], strict=True):
            est = LogisticRegression(C=model.C_)
            est.coef_, est.intercept_ = np.array([coef]), np.array([intercept])
            est.classes_ = np.array([0, 1])
            model.estimators_.append(est)
        return model

    # ------------------------------------------------------------------ diagnostics
    def _calibration_diagnostics(self, raw: np.ndarray, logit: np.ndarray, y: np.ndarray) -> None:
        slope_model = LogisticRegression(C=1e6, max_iter=1000).fit(raw[:, None], y)
        self.calibration_slope_ = float(slope_model.coef_[0, 0])
        prob = 1.0 / (1.0 + np.exp(-logit))
        self.brier_score_ = float(np.mean(np.square(prob - y)))
        bins = np.array_split(np.argsort(prob, kind="stable"), 10)
        self.calibration_error_ = float(sum(
            len(b) * abs(prob[b].mean() - y[b].mean()) for b in bins if len(b)) / len(y))
        self.domain_reliability_ = {
            "mean_predicted": [float(prob[b].mean()) for b in bins if len(b)],
            "observed": [float(y[b].mean()) for b in bins if len(b)],
            "rows": [float(len(b)) for b in bins if len(b)]}

    # ------------------------------------------------------------------ helpers
    def _select_features(self, source: pd.DataFrame, target: pd.DataFrame,
                         numeric: list[str], categorical: list[str]) -> None:
        constant = [c for c in numeric if _is_constant(source[c], target[c])] + [
            c for c in categorical  # by level text: an int 17 and a text "17" are one value
            if _is_constant(category_text(source[c]), category_text(target[c]))]
        self.set_features(numeric, categorical, constant)
        if self.learner in ("xgboost", "auto"):
            self.categories_ = {
                c: sorted(set(pd.unique(category_text(source[c])))
                          | set(pd.unique(category_text(target[c]))))
                for c in self.categorical_}

    def set_features(self, numeric: list[str], categorical: list[str], constant: list[str],
                     categories: dict[str, list[str]] | None = None) -> None:
        """Keep the feature columns that are not ``constant`` over source and target (raising
        :class:`ProposalFitError` when none is left); ``categories``: each categorical's sorted
        level texts over both (the tree learners' fixed levels). :meth:`fit` finds both from
        the frames; the Dask engine from per-partition summaries (:func:`constant_summary`)."""
        self.dropped_features_ = constant
        self.numeric_ = [c for c in numeric if c not in constant]
        self.categorical_ = [c for c in categorical if c not in constant]
        if not self.numeric_ and not self.categorical_:
            raise ProposalFitError(
                f"every feature column is constant over source and target: {constant}",
                fix="a domain classifier needs at least one varying feature; check the feature "
                "export (or, if source and target truly coincide, weighting is unnecessary)",
                details={"constant_columns": constant},
            )
        if categories is not None:
            self.categories_ = {c: categories[c] for c in self.categorical_}

    def _inputs(self, spec: _Candidate, sample: pd.DataFrame
                ) -> tuple[Any, DomainDesign | None]:
        """The classifier's input of ``sample`` and, for a logistic learner, its fitted design."""
        if not spec.linear:
            return self._frame(sample), None
        design = DomainDesign(numeric=self.numeric_, categorical=self.categorical_,
                              basis=spec.basis or "linear", n_knots=self.n_knots,
                              max_categories=self.max_categories,
                              crosses=spec.name == "logistic_crosses").fit(sample)
        return design.transform(sample), design

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The XGBoost learner's input: float64 numerics and categoricals with fixed levels."""
        out = frame[self.numeric_].astype("float64")
        for col in self.categorical_:
            levels = self.categories_[col]  # a level unseen at fit time becomes missing
            out[col] = pd.Categorical.from_codes(level_codes(frame[col], levels),
                                                 pd.Index(levels))
        return out

    def _classifier(self, spec: _Candidate):
        if spec.regularized:  # trees for a small domain sample: shallow, subsampled, stopped
            from xgboost import XGBClassifier

            return XGBClassifier(
                n_estimators=300, max_depth=3, min_child_weight=5, subsample=0.8,
                colsample_bytree=0.8, learning_rate=0.1, reg_lambda=1.0,
                early_stopping_rounds=20, eval_metric="logloss", tree_method="hist",
                enable_categorical=True, max_cat_to_onehot=8,
                n_jobs=1 if self.n_jobs is None else self.n_jobs,  # few rows: one thread
                random_state=self.random_state)
        if not spec.linear:
            from xgboost import XGBClassifier

            return XGBClassifier(
                n_estimators=self.n_estimators, max_depth=self.max_depth,
                learning_rate=self.learning_rate, tree_method="hist", enable_categorical=True,
                max_cat_to_onehot=8, n_jobs=self.n_jobs, random_state=self.random_state,
            )
        return LogisticRegression(C=spec.C, solver=self.solver, max_iter=2000)

    def _decision(self, est, X) -> np.ndarray:
        if isinstance(est, LogisticRegression):
            return est.decision_function(X)
        return est.predict(X, output_margin=True).astype("float64")

    def _check_params(self) -> None:
        for name, choices in (("learner", Learner), ("calibration", Calibration | None),
                              ("numeric_basis", NumericBasis)):
            check_choice(getattr(self, name), choices, parameter=name,
                         error=ProposalParameterError)
        if not (isinstance(self.n_folds, int) and self.n_folds >= 2):
            raise ProposalParameterError(f"n_folds={self.n_folds!r} must be an integer ≥ 2",
                                         fix="pass n_folds=2 or more (5 is the default)",
                                         parameter="n_folds")
        for name in ("max_fit_rows", "max_selection_rows"):
            value = getattr(self, name)
            if value is not None and value < 4 * self.n_folds:
                raise ProposalParameterError(
                    f"{name}={value!r} leaves too few rows per fold",
                    fix=f"pass {name}=None or at least a few thousand", parameter=name)

    def _check_inputs(
        self, source: pd.DataFrame, target: pd.DataFrame, numeric: list[str], categorical: list[str]
    ) -> None:
        if not numeric and not categorical:
            raise ProposalFitError("no feature columns given", fix="pass numeric/categorical")
        for role, frame in (("source", source), ("target", target)):
            if len(frame) < self.n_folds:
                raise ProposalFitError(
                    f"the {role} sample has {len(frame)} rows, fewer than n_folds={self.n_folds}"
                    " (a domain classifier needs rows of both domains)",
                    fix=f"check the {role} data for the run's window (it may be empty)",
                    details={"role": role, "rows": len(frame)},
                )
            missing = [c for c in (*numeric, *categorical) if c not in frame.columns]
            if missing:
                raise ProposalFitError(f"{role} lacks feature column(s) {missing}",
                                       fix="name in numeric/categorical only columns that "
                                       "both frames hold")
            # NaN is a missing value (the design's indicator and imputation); ±inf a bad one
            bad = ~finite_numeric_mask(frame, numeric, allow_missing=True)
            if bad.any():
                cols = [c for c in numeric
                        if np.isinf(frame[c].to_numpy("float64", na_value=np.nan)).any()]
                raise ProposalFitError(
                    f"{int(bad.sum())} {role} row(s) have infinite values in {cols}",
                    fix="±inf is a bad value, not a missing one: fix its upstream computation "
                    "(or write a missing value, NaN, where the value is unknown); validation "
                    "should have caught this",
                    details={"role": role, "columns": cols},
                )


def _one_standard_error_choice(candidates: tuple[str, ...], row_loss: dict[str, np.ndarray]
                               ) -> str:
    """The simplest candidate whose out-of-fold log-loss is within one standard error of the
    best (the standard error of the paired per-row loss difference): Breiman's one-SE rule,
    so that the richer basis is used only when it is detectably better, not by noise."""
    best = min(candidates, key=lambda b: row_loss[b].mean())
    for basis in candidates:  # ordered from simplest
        diff = row_loss[basis] - row_loss[best]
        se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else 0.0
        if diff.mean() <= se:
            return basis
    return best


def _row_log_loss(logit: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's log-loss of the domain label given the logit, computed in log space."""
    return np.logaddexp(0.0, logit) - y * logit


def _crossfit_calibration(raw: np.ndarray, y: np.ndarray, folds: list,
                          method: Calibration | None) -> np.ndarray:
    """Calibrated out-of-fold logits: fold k's scores mapped by the calibrator fitted on the
    other folds' out-of-fold scores (the raw scores unchanged when ``method`` is None)."""
    logit = raw.copy()
    if method is None:
        return logit
    for _, test_idx in folds:
        others = np.ones(len(y), dtype=bool)
        others[test_idx] = False
        calibrator = fit_calibrator(method, raw[others], y[others])
        logit[test_idx] = apply_calibrator(calibrator, raw[test_idx])
    return logit


def _rows(X, idx: np.ndarray):
    """Rows ``idx`` of a design matrix (array or sparse) or of a frame."""
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


def constant_summary(column: pd.Series) -> tuple[bool, Any] | None:
    """One partition's part of :func:`_is_constant`: None for no rows, else (whether it holds
    a single value, that value: its first). :func:`merge_constant` joins the partitions'."""
    if not len(column):
        return None
    return _is_constant(column), column.iloc[0]


def merge_constant(summaries: list[tuple[bool, Any] | None]) -> bool:
    """Whether the partitions of :func:`constant_summary` together hold a single value
    (missing counts as a value), as :func:`_is_constant` of their concatenation."""
    present = [s for s in summaries if s is not None]
    if not all(single for single, _ in present):
        return False
    values = pd.Series([value for _, value in present], dtype=object)
    return _is_constant(values) if len(values) else True


def _is_constant(*columns: pd.Series) -> bool:
    """Whether the columns together hold a single value (missing counts as a value)."""
    first = next((c for c in columns if len(c)), None)
    if first is None:
        return True
    value = first.iloc[0]
    for column in columns:
        if pd.isna(value):
            if not column.isna().all():
                return False
        elif column.isna().any() or not (column == value).all():
            return False
    return True
