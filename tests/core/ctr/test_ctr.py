"""The weighted XGBoost CTR trainer: weighted early stopping, determinism, UBJSON round trip,
metadata, and clear errors on bad labels or weights."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from is_core._validation import config_keys
from is_core.config import EvaluationConfig
from is_core.ctr.metrics import bootstrap_metrics, row_logloss
from is_core.ctr.model import WeightedCTRModel, metadata_path
from is_core.ctr.stage import EVALUATION_KEYS, TRAIN_KEYS
from is_core.data.features import FeatureSpec
from is_core.errors import ConfigError, ParameterError, TrainingError
from is_core.simulate.clicklog import ClickScenario

SCENARIO = ClickScenario(seed=11, n_users=300, n_items=60)
PARAMS = dict(numeric=SCENARIO.numeric_features, categorical=SCENARIO.categorical_features,
              n_estimators=40, early_stopping_rounds=5, n_jobs=1, random_state=3)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return SCENARIO.build().sample(4000, "source", np.random.default_rng(0))


@pytest.fixture(scope="module")
def weighted(frame) -> WeightedCTRModel:
    return WeightedCTRModel(**PARAMS).fit(frame, frame["clicked"], frame["true_weight"])


class TestTraining:
    def test_early_stopping_score_is_the_weighted_validation_logloss(self, frame, weighted):
        # Recompute the validation split the trainer draws (stratified, same seed) and the
        # weighted logloss of the kept trees on it: equal up to float32 rounding, so the
        # stopping rule used the importance weights (sample_weight_eval_set).
        y, w = frame["clicked"].to_numpy(), frame["true_weight"].to_numpy()
        _, valid = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y, random_state=3)
        p = weighted.predict_proba(frame.iloc[valid])
        expected = np.average(row_logloss(y[valid], p), weights=w[valid])
        unweighted = row_logloss(y[valid], p).mean()
        assert weighted.validation_logloss_ == pytest.approx(expected, rel=1e-4)
        assert abs(expected - unweighted) > 1e-3  # the weights do change the score
        assert weighted.n_valid_ == len(valid)

    def test_same_seed_same_model_bytes(self, frame, weighted):
        again = WeightedCTRModel(**PARAMS).fit(frame, frame["clicked"], frame["true_weight"])
        assert again.booster_.save_raw("ubj") == weighted.booster_.save_raw("ubj")

    def test_weights_change_the_model(self, frame, weighted):
        plain = WeightedCTRModel(**PARAMS).fit(frame, frame["clicked"])
        assert not np.allclose(plain.predict_proba(frame), weighted.predict_proba(frame))

    def test_unseen_category_is_scored_not_rejected(self, frame, weighted):
        rows = frame.head(5).copy()
        rows["item_id"] = "item_never_seen"
        p = weighted.predict_proba(rows)
        assert np.all((p > 0) & (p < 1))


class TestPersistence:
    def test_ubj_round_trip_predicts_identically(self, frame, weighted, tmp_path):
        path = weighted.save(tmp_path / "model.ubj", metadata={"weighting": "importance"})
        assert path.read_bytes()[:1] == b"{"  # UBJSON object marker, not a pickle
        loaded = WeightedCTRModel.load(path)
        np.testing.assert_array_equal(loaded.predict_proba(frame), weighted.predict_proba(frame))

    def test_metadata_describes_features_weighting_and_versions(self, weighted, tmp_path):
        path = weighted.save(tmp_path / "model.ubj", metadata={
            "weighting": "importance", "input_fingerprints": {"source": "ab" * 32}})
        meta = json.loads(metadata_path(path).read_text())
        assert meta["format"] == "xgboost-ubj"
        assert meta["features"]["categorical"] == SCENARIO.categorical_features
        assert set(meta["features"]["categories"]["device"]) == {"mobile", "desktop", "tablet"}
        assert meta["dtypes"]["position"] == "float32" and meta["dtypes"]["device"] == "category"
        assert meta["weighting"] == "importance"
        assert meta["input_fingerprints"] == {"source": "ab" * 32}
        assert {"xgboost", "scikit-learn", "pandas", "numpy"} <= set(meta["versions"])
        assert meta["params"]["random_state"] == 3


class TestBadInput:
    def test_negative_weight(self, frame):
        w = np.ones(len(frame))
        w[7] = -1
        with pytest.raises(TrainingError, match="negative, NaN or infinite"):
            WeightedCTRModel(**PARAMS).fit(frame, frame["clicked"], w)

    def test_weight_count_mismatch(self, frame):
        with pytest.raises(TrainingError, match="sample weights for"):
            WeightedCTRModel(**PARAMS).fit(frame, frame["clicked"], np.ones(10))

    def test_single_class(self, frame):
        with pytest.raises(TrainingError, match="every training label is 0"):
            WeightedCTRModel(**PARAMS).fit(frame, np.zeros(len(frame), dtype=int))

    def test_weights_that_zero_every_click(self, frame):
        w = (frame["clicked"] == 0).astype(float)
        with pytest.raises(TrainingError, match="zero mass on clicks"):
            WeightedCTRModel(**PARAMS).fit(frame, frame["clicked"], w)


class TestFeatureSpec:
    def test_unseen_and_missing_categories_become_missing(self):
        train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": pd.array(["a", "b", "a"], dtype="str")})
        spec = FeatureSpec(["x"], ["c"]).fit(train)
        new = pd.DataFrame({"x": [0.5, 1.5, 2.5], "c": pd.array(["b", None, "z"], dtype="str")})
        X = spec.transform(new)
        assert X["x"].dtype == np.float32
        assert list(X["c"].cat.categories) == ["a", "b"]
        assert X["c"].iloc[0] == "b" and X["c"].iloc[1:].isna().all()

    def test_an_encoded_frame_passes_through_without_a_copy(self):
        train = pd.DataFrame({"x": [1.0, 2.0], "c": pd.array(["a", "b"], dtype="str")})
        spec = FeatureSpec(["x"], ["c"]).fit(train)
        X = spec.transform(train)
        again = FeatureSpec(["x"], ["c"]).fit(X).transform(X)
        assert np.shares_memory(again["x"].to_numpy(), X["x"].to_numpy())
        pd.testing.assert_frame_equal(again, X)


class TestStageNamesTheConfigKey:
    """The model and the metrics name their own parameters; the train and evaluate stages map
    them to config keys (``is_core.ctr.stage``)."""

    def test_validation_fraction_is_checked_and_maps_to_its_train_key(self, frame):
        model = WeightedCTRModel(**{**PARAMS, "validation_fraction": 1.5})
        with pytest.raises(ParameterError, match=r"validation_fraction=1\.5 must be in \(0, 1\)"):
            model.fit(frame, frame["clicked"])
        with pytest.raises(ConfigError, match=r"train\.validation_fraction: "):
            with config_keys(TRAIN_KEYS):
                model.fit(frame, frame["clicked"])

    @pytest.mark.parametrize(("argument", "key"), [
        ({"n_boot": 1}, "evaluation.n_boot"), ({"level": 1.5}, "evaluation.ci_level"),
        ({"n_bins": 0}, "evaluation.calibration_bins")])
    def test_metric_arguments_map_to_their_evaluation_keys(self, argument, key):
        y, p = np.array([0, 1, 0, 1.0]), np.full(4, 0.5)
        with pytest.raises(ConfigError, match=rf"{key}: {next(iter(argument))}"):
            with config_keys(EVALUATION_KEYS):
                bootstrap_metrics(y, {"m": p}, **argument)
        fields = {f"evaluation.{name}" for name in EvaluationConfig.model_fields}
        assert set(EVALUATION_KEYS.values()) <= fields
