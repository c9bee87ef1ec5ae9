"""The weighted XGBoost CTR model: training, saving as UBJSON with metadata, loading.

Training minimizes the importance-weighted logloss
:math:`\\sum_i \\tilde w_i \\ell(y_i, f(x_i))`, whose expectation under the source equals the
target risk when :math:`\\tilde w = p/q`. Early stopping uses a validation split of the source,
weighted with the same final weights (``sample_weight_eval_set``), so the stopping rule also
targets the target distribution. Models are stored as XGBoost UBJSON, never pickled.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold, train_test_split

from is_core._validation import check_length, check_sample_weight
from is_core.ctr.recalibration import WeightedCalibrator
from is_core.data.atomic import write_bytes_atomic, write_json_atomic
from is_core.data.features import FeatureSpec
from is_core.errors import ParameterError, TrainingError

#: The booster attribute holding a recalibrated model's calibrator (JSON).
CALIBRATOR_ATTR = "isbench_calibrator"


class WeightedCTRModel(BaseEstimator):
    """XGBoost binary classifier of clicks with sample weights and native categoricals.

    Parameters
    ----------
    numeric, categorical : list of str
    n_estimators, learning_rate, max_depth, min_child_weight, max_cat_to_onehot : XGBoost params
    early_stopping_rounds : int
    validation_fraction : float
        Share of the rows held out (stratified by label) for early stopping.
    n_jobs : int or None
    random_state : int
        Seeds the validation split and XGBoost.

    Attributes
    ----------
    booster_ : xgboost.Booster
    feature_spec_ : FeatureSpec
    best_iteration_ : int
    validation_logloss_ : float
        Weighted logloss on the validation split at the best iteration.
    """

    def __init__(
        self,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
        n_estimators: int = 400,
        learning_rate: float = 0.1,
        max_depth: int = 6,
        min_child_weight: float = 1.0,
        max_cat_to_onehot: int = 8,
        early_stopping_rounds: int = 30,
        validation_fraction: float = 0.1,
        n_jobs: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.max_cat_to_onehot = max_cat_to_onehot
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, frame: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None
            ) -> Self:
        """Fit on ``frame`` (feature columns), labels ``y`` and optional ``sample_weight``."""
        if not 0 < self.validation_fraction < 1:
            raise ParameterError(
                f"validation_fraction={self.validation_fraction!r} must be in (0, 1)",
                fix="pass the share of rows held out for early stopping, e.g. 0.1",
                parameter="validation_fraction")
        y, w = _check_training_data(frame, y, sample_weight)
        spec = FeatureSpec(list(self.numeric or []), list(self.categorical or [])).fit(frame)
        X = spec.transform(frame)
        idx_train, idx_valid = train_test_split(
            np.arange(len(y)), test_size=self.validation_fraction, stratify=y,
            random_state=self.random_state,
        )
        model = xgb.XGBClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            max_cat_to_onehot=self.max_cat_to_onehot,
            early_stopping_rounds=self.early_stopping_rounds,
            enable_categorical=True,
            tree_method="hist",
            objective="binary:logistic",
            eval_metric="logloss",
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        model.fit(
            X.iloc[idx_train], y[idx_train], sample_weight=w[idx_train],
            eval_set=[(X.iloc[idx_valid], y[idx_valid])],
            sample_weight_eval_set=[w[idx_valid]],
            verbose=False,
        )
        self.booster_ = model.get_booster()
        self.feature_spec_ = spec
        self.best_iteration_ = int(model.best_iteration)
        self.validation_logloss_ = float(model.best_score)
        self.n_train_, self.n_valid_ = len(idx_train), len(idx_valid)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Click probability of each row of ``frame`` (1-D array), recalibrated when the model
        carries a calibrator (:meth:`with_calibrator`)."""
        X = self.feature_spec_.transform(frame)
        dmat = xgb.DMatrix(X, enable_categorical=True)
        p = self.booster_.predict(dmat, iteration_range=(0, self.best_iteration_ + 1))
        calibrator = getattr(self, "calibrator_", None)
        return p if calibrator is None else calibrator.transform(p)

    def with_calibrator(self, calibrator: WeightedCalibrator) -> WeightedCTRModel:
        """A copy of this fitted model whose predictions go through ``calibrator``; saved and
        loaded as one model (the calibrator is stored inside the UBJSON booster)."""
        out = copy.copy(self)
        out.booster_ = self.booster_.copy()
        out.calibrator_ = calibrator
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write the booster as UBJSON at ``path`` and its metadata at ``<path>.meta.json``."""
        path = Path(path)
        calibrator = getattr(self, "calibrator_", None)
        # the calibrator lives in the booster's own attributes, so the model bytes (and their
        # digest in the registry) cannot be separated from it
        self.booster_.set_attr(**{CALIBRATOR_ATTR: None if calibrator is None
                                  else json.dumps(calibrator.to_dict(), sort_keys=True)})
        raw = self.booster_.save_raw(raw_format="ubj")
        write_bytes_atomic(bytes(raw), path)
        meta = {
            "calibrator": None if calibrator is None else calibrator.to_dict(),
            "format": "xgboost-ubj",
            "features": self.feature_spec_.to_dict(),
            "dtypes": {**{c: "float32" for c in self.feature_spec_.numeric},
                       **{c: "category" for c in self.feature_spec_.categorical}},
            "n_train": self.n_train_,
            "n_valid": self.n_valid_,
            "best_iteration": self.best_iteration_,
            "validation_logloss": self.validation_logloss_,
            "params": self.get_params(),
            "versions": library_versions(),
            **(metadata or {}),
        }
        write_json_atomic(meta, metadata_path(path))
        return path

    @classmethod
    def load(cls, path: str | Path) -> WeightedCTRModel:
        """Load a model written by :meth:`save` (UBJSON + metadata; nothing is unpickled)."""
        path = Path(path)
        meta = json.loads(metadata_path(path).read_text())
        model = cls(**meta["params"])
        model.booster_ = xgb.Booster()
        model.booster_.load_model(bytearray(path.read_bytes()))
        model.feature_spec_ = FeatureSpec.from_dict(meta["features"])
        model.best_iteration_ = int(meta["best_iteration"])
        model.validation_logloss_ = float(meta["validation_logloss"])
        model.n_train_ = int(meta.get("n_train", 0))
        model.n_valid_ = int(meta.get("n_valid", 0))
        stored = model.booster_.attr(CALIBRATOR_ATTR)
        if (stored is None) != (meta.get("calibrator") is None):
            raise TrainingError(f"{path} and its metadata disagree on whether the model is "
                                "recalibrated", fix="re-run the date that wrote the model")
        model.calibrator_ = (None if stored is None
                             else WeightedCalibrator.from_dict(json.loads(stored)))
        return model


def _check_training_data(frame: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int8 and weights as float, or a :class:`TrainingError` saying what is wrong."""
    y = np.asarray(y)
    try:
        check_length(y, len(frame), parameter="y", noun="labels", per="feature rows")
        w = check_sample_weight(sample_weight, len(y))
    except ParameterError as exc:
        raise TrainingError(exc.what, fix="train on one click label and one final weight "
                            "(clipped, normalized: finite and non-negative) per feature row",
                            details=exc.details) from exc
    if not np.isin(y, (0, 1)).all():
        raise TrainingError("click labels must be 0 or 1",
                            fix="map the label column to 0/1 before training")
    if y.min() == y.max():
        raise TrainingError(f"every training label is {int(y[0])}",
                            fix="a CTR model needs clicks and non-clicks in its training rows")
    if sample_weight is None:
        return y.astype("int8"), w
    if not (w[y == 1].sum() > 0 and w[y == 0].sum() > 0):
        raise TrainingError("the sample weights put zero mass on clicks or on non-clicks",
                            fix="check the weights: clipping or a degenerate proposal model "
                            "zeroed one class")
    return y.astype("int8"), w


def metadata_path(model_path: str | Path) -> Path:
    """``model.ubj`` → ``model.meta.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".meta.json")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that determine a model's bytes and numbers."""
    return {"xgboost": xgb.__version__, "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__, "numpy": np.__version__}


def out_of_fold_predictions(template: WeightedCTRModel, frame: pd.DataFrame, y: np.ndarray,
                            n_folds: int = 2, random_state: int = 0,
                            sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Each row's click probability from a copy of ``template`` fitted (unweighted, or with
    ``sample_weight``: the sampling weights of a subsample) on the other ``n_folds - 1``
    stratified folds: the scores an importance-weighted calibrator is fitted on
    (:mod:`is_core.ctr.recalibration`)."""
    y = np.asarray(y)
    oof = np.empty(len(y))
    for train, test in StratifiedKFold(n_folds, shuffle=True,
                                       random_state=random_state).split(np.zeros(len(y)), y):
        model = clone(template).fit(frame.iloc[train], y[train], sample_weight=(
            None if sample_weight is None else sample_weight[train]))
        oof[test] = model.predict_proba(frame.iloc[test])
    return oof
