r"""The proposal model: importance weights from a probabilistic domain classifier.

Label target rows 1 and source rows 0 and fit a classifier :math:`c(x) = P(\text{target} \mid x)`.
By Bayes' rule, with :math:`n_s` source and :math:`n_t` target rows,

.. math::

    w(x) = \frac{p(x)}{q(x)} = \frac{c(x)}{1 - c(x)} \cdot \frac{n_s}{n_t},
    \qquad
    \log w(x) = \operatorname{logit} c(x) + \log\frac{n_s}{n_t}.

Everything is computed in log space: the classifier's decision function *is* the logit, so no
probability is ever clipped on the way to a weight.

**Cross-fitting.** The data are split into K stratified folds; a source row's weight comes from
the classifier fitted on the other K-1 folds, so no row is weighted by a model that saw it (an
in-sample classifier overfits exactly the rows it then up-weights). The out-of-fold scores also
give an honest **domain AUC**: 0.5 means no detectable shift, 1 means disjoint support.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from is_core.errors import ProposalFitError
from is_core.features import finite_numeric_mask

MISSING_CATEGORY = "__missing__"


class DomainClassifierRatio(BaseEstimator):
    """Cross-fitted logistic-regression density-ratio estimator, target vs source.

    Parameters
    ----------
    numeric, categorical : list of str
        Feature columns. Numerics are standardized; categoricals are one-hot encoded with at most
        ``max_categories`` levels per column (rarer levels are pooled, unseen ones map to the pool).
    n_folds : int, default 5
        Cross-fitting folds (stratified by domain).
    C : float, default 1.0
        Inverse L2 regularization strength of the logistic regression.
    max_categories : int, default 200
    random_state : int or None
        Seeds the fold split.

    Attributes
    ----------
    log_ratio_source_ : ndarray of shape (n_source,)
        Cross-fitted :math:`\\log w` of each source row, in the order given to :meth:`fit`.
    domain_auc_ : float
        Out-of-fold ROC AUC of the domain classifier.
    estimators_ : list of Pipeline
        The K fold classifiers; :meth:`log_ratio` averages their logits on new rows.
    n_source_, n_target_ : int
    """

    def __init__(
        self,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        n_folds: int = 5,
        C: float = 1.0,
        max_categories: int = 200,
        random_state: int | None = None,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.n_folds = n_folds
        self.C = C
        self.max_categories = max_categories
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, source: pd.DataFrame, target: pd.DataFrame) -> Self:
        """Fit the K fold classifiers on ``source`` (label 0) and ``target`` (label 1) rows."""
        numeric, categorical = list(self.numeric or []), list(self.categorical or [])
        self._check_inputs(source, target, numeric, categorical)
        n_s, n_t = len(source), len(target)
        X = pd.concat([self._frame(source), self._frame(target)], ignore_index=True)
        y = np.r_[np.zeros(n_s, dtype=int), np.ones(n_t, dtype=int)]
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
        logit = np.empty(n_s + n_t)
        self.estimators_ = []
        template = self._pipeline(numeric, categorical)
        for train_idx, test_idx in folds.split(X, y):
            est = clone(template).fit(X.iloc[train_idx], y[train_idx])
            logit[test_idx] = est.decision_function(X.iloc[test_idx])
            self.estimators_.append(est)
        self.n_source_, self.n_target_ = n_s, n_t
        self.log_prior_correction_ = float(np.log(n_s / n_t))
        self.log_ratio_source_ = logit[:n_s] + self.log_prior_correction_
        self.domain_auc_ = float(roc_auc_score(y, logit))
        return self

    def log_ratio(self, frame: pd.DataFrame) -> np.ndarray:
        """:math:`\\log w(x)` of new rows: the fold classifiers' mean logit plus the prior term."""
        X = self._frame(frame)
        logits = np.mean([est.decision_function(X) for est in self.estimators_], axis=0)
        return logits + self.log_prior_correction_

    # ------------------------------------------------------------------ helpers
    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        numeric, categorical = list(self.numeric or []), list(self.categorical or [])
        out = frame[numeric].astype("float64").copy()
        for col in categorical:
            out[col] = frame[col].astype("str").where(frame[col].notna(), MISSING_CATEGORY)
        return out

    def _pipeline(self, numeric: list[str], categorical: list[str]) -> Pipeline:
        encode = ColumnTransformer(
            [
                ("numeric", StandardScaler(), numeric),
                (
                    "categorical",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=self.max_categories,
                        sparse_output=True,
                    ),
                    categorical,
                ),
            ],
            sparse_threshold=1.0,
        )
        model = LogisticRegression(C=self.C, max_iter=1000)
        return Pipeline([("encode", encode), ("classify", model)])

    def _check_inputs(
        self, source: pd.DataFrame, target: pd.DataFrame, numeric: list[str], categorical: list[str]
    ) -> None:
        if not numeric and not categorical:
            raise ProposalFitError("no feature columns given", fix="pass numeric/categorical")
        for role, frame in (("source", source), ("target", target)):
            if len(frame) < self.n_folds:
                raise ProposalFitError(
                    f"the {role} sample has {len(frame)} rows, fewer than n_folds={self.n_folds}",
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
