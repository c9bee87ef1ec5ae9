r"""The proposal model: importance weights from a probabilistic domain classifier.

Label target rows 1 and source rows 0 and fit a classifier :math:`c(x) = P(\text{target} \mid x)`.
By Bayes' rule, with :math:`n_s` source and :math:`n_t` target rows,

.. math::

    w(x) = \frac{p(x)}{q(x)} = \frac{c(x)}{1 - c(x)} \cdot \frac{n_s}{n_t},
    \qquad
    \log w(x) = \operatorname{logit} c(x) + \log\frac{n_s}{n_t}.

Everything is computed in log space: the classifier's decision function *is* the logit, so no
probability is clipped on the way to a weight (the one exception, isotonic calibration, is
documented in :func:`_isotonic_logit`).

**Learners.** ``"logistic"``: L2 logistic regression with one-hot categoricals (at most
``max_categories`` levels per column) and numerics entering through a basis: ``"linear"``
(standardized values: a log-linear ratio, exact for a mean shift), ``"quadratic"`` (values and
their squares: exact for a Gaussian variance shift), ``"spline"`` (cubic B-splines with quantile
knots, extrapolated linearly so weights do not explode off the data: an additive non-linear
ratio), or ``"auto"``: cross-fit ``linear`` and ``quadratic`` and keep the simplest whose
out-of-fold log-loss is within one standard error of the best (honest model selection: each
candidate is scored on rows it never saw; the one-SE rule keeps the linear basis unless the
quadratic one is detectably better).
``"xgboost"``: gradient-boosted trees with native categoricals; its raw margins are usually
over-confident, hence ``calibration``.

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

The default (``learner="logistic"``, ``numeric_basis="auto"``, no calibration) was chosen by
measurement (``benchmarks/weights_accuracy.py``): as accurate as the linear logistic ratio on a
mean shift, an order of magnitude better on a variance shift, far better than XGBoost (whose
margins are over-confident and piecewise constant) on both.
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    SplineTransformer,
    StandardScaler,
)

from is_core.errors import ProposalFitError
from is_core.features import finite_numeric_mask

MISSING_CATEGORY = "__missing__"
LEARNERS = ("logistic", "xgboost")
CALIBRATIONS = (None, "sigmoid", "isotonic")
NUMERIC_BASES = ("auto", "linear", "quadratic", "spline")
AUTO_BASES = ("linear", "quadratic")


class DomainClassifierRatio(BaseEstimator):
    """Cross-fitted, optionally calibrated domain-classifier density-ratio estimator.

    Parameters
    ----------
    numeric, categorical : list of str
        Feature columns. Constant columns (one value over source and target) carry no
        information about the shift and are dropped (listed in ``dropped_features_``).
    learner : {"logistic", "xgboost"}, default "logistic"
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
    dropped_features_ : list of str
    n_source_, n_target_ : int
    """

    def __init__(
        self,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        learner: Literal["logistic", "xgboost"] = "logistic",
        n_folds: int = 5,
        calibration: Literal["sigmoid", "isotonic"] | None = None,
        numeric_basis: Literal["auto", "linear", "quadratic", "spline"] = "auto",
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
    ) -> None:
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
        n_s, n_t = len(source), len(target)
        X_all = self._frame(pd.concat([source, target], ignore_index=True), fit=True)
        y_all = np.r_[np.zeros(n_s, dtype=int), np.ones(n_t, dtype=int)]
        fit_rows = self._fit_rows(y_all)
        X, y = X_all.iloc[fit_rows], y_all[fit_rows]
        folds = list(StratifiedKFold(self.n_folds, shuffle=True,
                                     random_state=self.random_state).split(X, y))
        candidates = AUTO_BASES if (self.learner == "logistic" and self.numeric_basis == "auto"
                                    ) else (self.numeric_basis,)
        fits = {}
        for basis in candidates:
            raw, estimators = self._crossfit(basis, X, y, folds)
            fits[basis] = (np.logaddexp(0.0, raw) - y * raw, raw, estimators)
        self.basis_log_loss_ = {b: float(f[0].mean()) for b, f in fits.items()}
        self.numeric_basis_ = _one_standard_error_choice(
            candidates, {b: f[0] for b, f in fits.items()})
        _, raw, self.estimators_ = fits[self.numeric_basis_]
        logit = raw.copy()
        if self.calibration is not None:
            for _, test_idx in folds:
                others = np.ones(len(y), dtype=bool)
                others[test_idx] = False
                calibrator = _fit_calibrator(self.calibration, raw[others], y[others])
                logit[test_idx] = _apply_calibrator(calibrator, raw[test_idx])
            self.calibrator_ = _fit_calibrator(self.calibration, raw, y)
        # Rows left out of the fitting sample were seen by no fold model: they get the fold
        # models' mean logit, as new rows do in log_ratio().
        logit_all = np.empty(n_s + n_t)
        logit_all[fit_rows] = logit
        rest = np.ones(n_s + n_t, dtype=bool)
        rest[fit_rows] = False
        if rest.any():
            logit_all[rest] = self._mean_logit(X_all.iloc[np.flatnonzero(rest)])
        self.n_source_, self.n_target_ = n_s, n_t
        self.n_fit_source_ = int(np.sum(y == 0))
        self.n_fit_target_ = int(np.sum(y == 1))
        # The classifier learned the odds at the fitting sample's domain proportions.
        self.log_prior_correction_ = float(np.log(self.n_fit_source_ / self.n_fit_target_))
        self.log_ratio_source_ = logit_all[:n_s] + self.log_prior_correction_
        self.log_ratio_target_ = logit_all[n_s:] + self.log_prior_correction_
        self.domain_auc_ = float(roc_auc_score(y_all, logit_all))
        self._calibration_diagnostics(raw, logit, y)
        return self

    def _fit_rows(self, y: np.ndarray) -> np.ndarray:
        """Indices of the rows the classifiers are fitted on: all rows, or at most
        ``max_fit_rows // 2`` per domain drawn without replacement (seeded by
        ``random_state``). A classifier with a few hundred coefficients is estimated as well
        from 10^5 rows per domain as from 10^7, at a hundredth of the time and memory; every
        row is still weighted by models that never saw it."""
        if self.max_fit_rows is None or len(y) <= self.max_fit_rows:
            return np.arange(len(y))
        cap = self.max_fit_rows // 2
        rng = np.random.default_rng(self.random_state)
        keep = []
        for domain in (0, 1):
            idx = np.flatnonzero(y == domain)
            keep.append(idx if len(idx) <= cap else rng.choice(idx, cap, replace=False))
        return np.sort(np.concatenate(keep))

    def _mean_logit(self, X: pd.DataFrame, chunk: int = 200_000) -> np.ndarray:
        """The fold models' mean (calibrated) logit, scored in chunks to bound memory."""
        out = np.empty(len(X))
        for start in range(0, len(X), chunk):
            part = X.iloc[start:start + chunk]
            raw = np.mean([self._decision(est, part) for est in self.estimators_], axis=0)
            if self.calibration is not None:
                raw = _apply_calibrator(self.calibrator_, raw)
            out[start:start + chunk] = raw
        return out

    def _crossfit(self, basis: str, X: pd.DataFrame, y: np.ndarray, folds: list
                  ) -> tuple[np.ndarray, list]:
        raw = np.empty(len(y))
        estimators = []
        template = self._classifier(basis)
        for train_idx, test_idx in folds:
            est = clone(template).fit(X.iloc[train_idx], y[train_idx])
            raw[test_idx] = self._decision(est, X.iloc[test_idx])
            estimators.append(est)
        return raw, estimators

    def log_ratio(self, frame: pd.DataFrame) -> np.ndarray:
        """:math:`\\log w(x)` of new rows: the fold classifiers' mean logit (calibrated with the
        map fitted on every out-of-fold score) plus the prior term."""
        return self._mean_logit(self._frame(frame, fit=False)) + self.log_prior_correction_

    # ------------------------------------------------------------------ diagnostics
    def _calibration_diagnostics(self, raw: np.ndarray, logit: np.ndarray, y: np.ndarray) -> None:
        slope_model = LogisticRegression(C=1e6, max_iter=1000).fit(raw[:, None], y)
        self.calibration_slope_ = float(slope_model.coef_[0, 0])
        prob = 1.0 / (1.0 + np.exp(-logit))
        self.brier_score_ = float(np.mean(np.square(prob - y)))
        bins = np.array_split(np.argsort(prob, kind="stable"), 10)
        self.calibration_error_ = float(sum(
            len(b) * abs(prob[b].mean() - y[b].mean()) for b in bins if len(b)) / len(y))

    # ------------------------------------------------------------------ helpers
    def _select_features(self, source: pd.DataFrame, target: pd.DataFrame,
                         numeric: list[str], categorical: list[str]) -> None:
        pooled = pd.concat([source[numeric + categorical], target[numeric + categorical]],
                           ignore_index=True)
        constant = [c for c in numeric + categorical if pooled[c].nunique(dropna=False) <= 1]
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
        if self.learner == "xgboost":
            self.categories_ = {c: sorted(pd.unique(self._text(pooled[c])))
                                for c in self.categorical_}

    @staticmethod
    def _text(column: pd.Series) -> pd.Series:
        return column.astype("str").where(column.notna(), MISSING_CATEGORY)

    def _frame(self, frame: pd.DataFrame, fit: bool) -> pd.DataFrame:
        out = frame[self.numeric_].astype("float64")
        for col in self.categorical_:
            text = self._text(frame[col])
            if self.learner == "xgboost":
                out[col] = pd.Categorical(text, categories=self.categories_[col])
            else:
                out[col] = text
        return out

    def _classifier(self, basis: str):
        if self.learner == "xgboost":
            from xgboost import XGBClassifier

            return XGBClassifier(
                n_estimators=self.n_estimators, max_depth=self.max_depth,
                learning_rate=self.learning_rate, tree_method="hist", enable_categorical=True,
                max_cat_to_onehot=8, n_jobs=self.n_jobs, random_state=self.random_state,
            )
        if basis == "spline":
            numeric_step = make_pipeline(
                StandardScaler(),
                SplineTransformer(n_knots=self.n_knots, degree=3, knots="quantile",
                                  extrapolation="linear", include_bias=False),
            )
        elif basis == "quadratic":
            numeric_step = make_pipeline(StandardScaler(), FunctionTransformer(_with_squares),
                                         StandardScaler())
        else:
            numeric_step = StandardScaler()
        encode = ColumnTransformer(
            [
                ("numeric", numeric_step, self.numeric_),
                ("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                              max_categories=self.max_categories,
                                              sparse_output=True), self.categorical_),
            ],
            sparse_threshold=1.0,
        )
        return Pipeline([("encode", encode),
                         ("classify", LogisticRegression(C=self.C, solver=self.solver,
                                                         max_iter=2000))])

    def _decision(self, est, X: pd.DataFrame) -> np.ndarray:
        if self.learner == "xgboost":
            return est.predict(X, output_margin=True).astype("float64")
        return est.decision_function(X)

    def _check_params(self) -> None:
        checks = [("learner", self.learner, LEARNERS), ("calibration", self.calibration,
                                                        CALIBRATIONS),
                  ("numeric_basis", self.numeric_basis, NUMERIC_BASES)]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ProposalFitError(f"{name}={value!r} is not one of {list(allowed)}",
                                       fix=f"set proposal.{name} to one of {list(allowed)}")
        if not (isinstance(self.n_folds, int) and self.n_folds >= 2):
            raise ProposalFitError(f"n_folds={self.n_folds!r} must be an integer ≥ 2",
                                   fix="set proposal.n_folds to 2 or more (5 is the default)")
        if self.max_fit_rows is not None and self.max_fit_rows < 4 * self.n_folds:
            raise ProposalFitError(
                f"max_fit_rows={self.max_fit_rows!r} leaves too few rows per fold",
                fix="set proposal.max_fit_rows to None or at least a few thousand")

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
                                       fix="correct columns.numeric/categorical in the config")
            bad = ~finite_numeric_mask(frame, numeric)
            if bad.any():
                cols = [c for c in numeric
                        if not np.isfinite(frame[c].to_numpy("float64", na_value=np.nan)).all()]
                raise ProposalFitError(
                    f"{int(bad.sum())} {role} row(s) have NaN or infinite values in {cols}",
                    fix="impute or drop them upstream; validation should have caught this",
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


def _with_squares(x: np.ndarray) -> np.ndarray:
    """Standardized numerics and their squares: a quadratic log ratio (variance shift)."""
    x = np.asarray(x, dtype=float)
    return np.hstack([x, np.square(x)])


def _fit_calibrator(method: str, score: np.ndarray, y: np.ndarray):
    if method == "sigmoid":
        return LogisticRegression(C=1e6, max_iter=1000).fit(score[:, None], y)
    isotonic = IsotonicRegression(out_of_bounds="clip").fit(score, y)
    isotonic.n_fit_ = len(score)
    return isotonic


def _apply_calibrator(calibrator, score: np.ndarray) -> np.ndarray:
    if isinstance(calibrator, LogisticRegression):
        return calibrator.decision_function(score[:, None])
    return _isotonic_logit(calibrator, score)


def _isotonic_logit(calibrator: IsotonicRegression, score: np.ndarray) -> np.ndarray:
    """Logit of an isotonic probability, clipped to :math:`[1/(m+1), m/(m+1)]`.

    An isotonic fit reaches exactly 0 or 1 on its extreme blocks, whose logit (hence weight) is
    infinite; ``m`` is the number of rows the map was fitted on, so the clip is the smallest
    probability those rows can resolve. This is the one place a probability is clipped.
    """
    eps = 1.0 / (calibrator.n_fit_ + 1)
    p = np.clip(calibrator.predict(score), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)
