r"""The outcome model of the doubly robust target-CTR estimate: a cross-fitted click model.

:func:`is_core.weights.estimators.dr_estimate` needs :math:`m(x) \approx P(\text{click} \mid x)`
on every source row and every target row. A source row's prediction must come from a model that
did not see its click (cross-fitting; Chernozhukov et al. 2018): an in-sample booster fits the
rows' own noise, the residuals :math:`y - m` shrink and the estimate collapses onto the direct
method, with an interval that is too narrow. :class:`CrossFittedOutcome` splits the source into
``n_folds`` stratified folds, trains one XGBoost classifier per fold on the other folds (on at
most ``max_train_rows`` of them, a seeded sub-sample) and predicts each source row with the model
that left its fold out; target rows (which have no label) get the mean of the fold models.

The model is deliberately small and regularized (shallow trees, ``min_child_weight`` in hessian
units, so that with a click rate :math:`p` a leaf holds at least about
``min_child_weight / p`` rows): it only has to be good enough that the residual correction is
small, and the doubly robust estimate is consistent when either it or the weights are right.
It sees every feature, including exposure features such as the position: the target rows carry
them, and the estimand is the click rate over the target's features.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold

from is_core._validation import check_length
from is_core.data.features import FeatureSpec
from is_core.errors import ParameterError

__all__ = ["CrossFittedOutcome"]


class CrossFittedOutcome(BaseEstimator):
    """Cross-fitted XGBoost click model for the doubly robust estimate.

    Parameters
    ----------
    numeric, categorical : list of str
        Feature columns (categoricals use XGBoost's native support).
    n_folds : int, default 2
    n_estimators, max_depth, learning_rate, min_child_weight : XGBoost parameters
    max_train_rows : int or None, default 200_000
        Train each fold model on at most this many rows of its training folds (seeded).
    n_jobs : int or None
    random_state : int

    Attributes
    ----------
    oof_prediction_ : ndarray of shape (n_rows,)
        Each fitted row's click probability from the model that did not see it.
    estimators_ : list of xgboost.Booster
        The fold models.
    feature_spec_ : FeatureSpec
    """

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None,
                 n_folds: int = 2, n_estimators: int = 100, max_depth: int = 4,
                 learning_rate: float = 0.1, min_child_weight: float = 5.0,
                 max_train_rows: int | None = 200_000, n_jobs: int | None = None,
                 random_state: int = 0) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.n_folds = n_folds
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_weight = min_child_weight
        self.max_train_rows = max_train_rows
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> Self:
        """Fit the fold models on ``frame`` (feature columns) and 0/1 labels ``y``."""
        y = np.asarray(y, dtype=float)
        check_length(y, len(frame), parameter="y", noun="labels", per="rows")
        if not (isinstance(self.n_folds, int) and self.n_folds >= 2):
            raise ParameterError(f"n_folds={self.n_folds!r} must be an integer >= 2",
                                 fix="pass n_folds=2 or more", parameter="n_folds")
        counts = np.bincount(y.astype(int), minlength=2) if np.all((y == 0) | (y == 1)) else None
        if counts is None or counts.min() < self.n_folds:
            raise ParameterError(
                f"the outcome model needs 0/1 labels with at least n_folds={self.n_folds} rows "
                "of each class", fix="pass click labels with clicks and non-clicks", parameter="y")
        spec = FeatureSpec(list(self.numeric or []), list(self.categorical or [])).fit(frame)
        X = spec.transform(frame)
        rng = np.random.default_rng(self.random_state)
        oof = np.empty(len(y))
        self.estimators_ = []
        for train, test in StratifiedKFold(self.n_folds, shuffle=True,
                                           random_state=self.random_state).split(X, y):
            if self.max_train_rows is not None and train.size > self.max_train_rows:
                train = np.sort(rng.choice(train, self.max_train_rows, replace=False))
            booster = self._classifier().fit(X.iloc[train], y[train]).get_booster()
            self.estimators_.append(booster)
            oof[test] = booster.predict(xgb.DMatrix(X.iloc[test], enable_categorical=True))
        self.oof_prediction_ = oof
        self.feature_spec_ = spec
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The fold models' mean click probability on each row of ``frame``."""
        dmat = xgb.DMatrix(self.feature_spec_.transform(frame), enable_categorical=True)
        return np.mean([b.predict(dmat) for b in self.estimators_], axis=0)

    def _classifier(self) -> xgb.XGBClassifier:
        return xgb.XGBClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth,
            learning_rate=self.learning_rate, min_child_weight=self.min_child_weight,
            enable_categorical=True, tree_method="hist", objective="binary:logistic",
            n_jobs=self.n_jobs, random_state=self.random_state)
