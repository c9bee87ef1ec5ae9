"""Importance-weighted recalibration against closed-form truth, and models that carry it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.recalibration import WeightedCalibrator
from is_core.errors import ParameterError, TrainingError


def _shifted_world(n: int, gamma: float, seed: int):
    """Source rows with an unseen binary exposure e ~ Bernoulli(1/2) and clicks
    P(y | z, e) = expit(z + gamma e); the target has e = 1 only, so w = 2 e. The booster's score
    is expit(z): the target's calibrated map is expit(gamma + z), Platt's (a, b) = (gamma, 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.0, 1.0, n)
    e = rng.random(n) < 0.5
    y = (rng.random(n) < expit(z + gamma * e)).astype(float)
    return expit(z), y, 2.0 * e, z


def _platt_se(z: np.ndarray, a: float, b: float, w: np.ndarray) -> np.ndarray:
    """Standard errors of (a, b) from the Fisher information of the rows with weight > 0 (the
    weights are 0 or 2, so the weighted fit is the ordinary MLE on the e = 1 rows)."""
    keep = w > 0
    x = np.c_[np.ones(keep.sum()), z[keep]]
    p = expit(a + b * z[keep])
    info = x.T @ (x * (p * (1 - p))[:, None])
    return np.sqrt(np.diag(np.linalg.inv(info)))


class TestWeightedPlatt:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_recovers_a_known_intercept_shift_within_its_standard_error(self, seed):
        gamma = 0.7
        p, y, w, z = _shifted_world(40_000, gamma, seed)
        cal = WeightedCalibrator("platt").fit(p, y, w)
        a, b = cal.coef_
        se = _platt_se(z, a, b, w)
        assert abs(a - gamma) < 4 * se[0]
        assert abs(b - 1.0) < 4 * se[1]

    def test_unweighted_it_finds_the_source_mixture_instead(self):
        # without the weights the map is the source's (half the rows have no shift): the
        # intercept lands well below gamma, so the weights are what moves it
        gamma = 0.7
        p, y, w, z = _shifted_world(40_000, gamma, 0)
        a_plain = WeightedCalibrator("platt").fit(p, y).coef_[0]
        a_weighted = WeightedCalibrator("platt").fit(p, y, w).coef_[0]
        se = _platt_se(z, a_weighted, 1.0, w)[0]
        assert a_weighted - a_plain > 4 * se

    def test_scale_of_the_weights_does_not_matter(self):
        p, y, w, _ = _shifted_world(5000, 0.5, 3)
        a = WeightedCalibrator("platt").fit(p, y, w).coef_
        b = WeightedCalibrator("platt").fit(p, y, 1e-3 * w).coef_
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


class TestIntercept:
    @pytest.mark.parametrize("seed", [0, 1])
    def test_recovers_a_known_intercept_shift_within_its_sandwich_error(self, seed):
        from is_core.ctr.sampling import intercept_standard_error

        gamma = 0.7
        p, y, w, _ = _shifted_world(40_000, gamma, seed)
        cal = WeightedCalibrator("intercept").fit(p, y, w)
        a, b = cal.coef_
        se = intercept_standard_error(cal.transform(p), y, w)
        assert b == 1.0 and abs(a - gamma) < 4 * se
        # the weighted mean prediction equals the weighted click rate
        assert w @ cal.transform(p) == pytest.approx(w @ y, rel=1e-9)

    def test_round_trips_and_ignores_the_scale_of_the_weights(self):
        p, y, w, _ = _shifted_world(5000, 0.5, 3)
        cal = WeightedCalibrator("intercept").fit(p, y, w)
        again = WeightedCalibrator.from_dict(cal.to_dict())
        np.testing.assert_allclose(again.transform(p), cal.transform(p))
        np.testing.assert_allclose(WeightedCalibrator("intercept").fit(p, y, 7 * w).coef_,
                                   cal.coef_, atol=1e-9)


class TestChoice:
    def test_auto_keeps_platt_when_the_map_is_logistic(self):
        p, y, w, _ = _shifted_world(20_000, 0.7, 4)
        cal = WeightedCalibrator("auto", min_isotonic_ess=100).fit(p, y, w)
        assert set(cal.heldout_logloss_) == {"platt", "isotonic"}
        assert cal.method_ == "platt"

    def test_small_weighted_samples_never_try_isotonic(self):
        p, y, w, _ = _shifted_world(2000, 0.7, 5)
        cal = WeightedCalibrator("auto").fit(p, y, w)
        assert cal.method_ == "platt" and not hasattr(cal, "heldout_logloss_")

    def test_isotonic_map_round_trips(self):
        p, y, w, _ = _shifted_world(5000, 0.7, 6)
        cal = WeightedCalibrator("isotonic").fit(p, y, w)
        again = WeightedCalibrator.from_dict(cal.to_dict())
        np.testing.assert_array_equal(again.transform(p), cal.transform(p))
        assert np.all(np.diff(cal.transform(np.sort(p))) >= 0)

    def test_labels_without_clicks_are_refused(self):
        with pytest.raises(ParameterError, match="clicks and non-clicks"):
            WeightedCalibrator().fit(np.full(10, 0.1), np.zeros(10))


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], size=3000)})
    y = (rng.random(3000) < expit(-2 + frame["x"].to_numpy())).astype(float)
    model = WeightedCTRModel(["x"], ["c"], n_estimators=20, random_state=0).fit(frame, y)
    cal = WeightedCalibrator("platt").fit(model.predict_proba(frame), y,
                                          np.where(frame["c"] == "a", 1.5, 0.5))
    return frame, model, model.with_calibrator(cal), cal


class TestModelWithCalibrator:
    def test_predictions_go_through_the_calibrator(self, fitted):
        frame, model, recalibrated, cal = fitted
        np.testing.assert_allclose(recalibrated.predict_proba(frame),
                                   cal.transform(model.predict_proba(frame)))
        assert getattr(model, "calibrator_", None) is None  # the original is unchanged

    def test_saved_and_loaded_as_one_model(self, fitted, tmp_path):
        frame, model, recalibrated, _ = fitted
        plain = model.save(tmp_path / "plain.ubj")
        path = recalibrated.save(tmp_path / "recalibrated.ubj")
        assert path.read_bytes() != plain.read_bytes()  # the calibrator is in the model bytes
        loaded = WeightedCTRModel.load(path)
        np.testing.assert_allclose(loaded.predict_proba(frame),
                                   recalibrated.predict_proba(frame), rtol=1e-6)

    def test_metadata_that_disagrees_with_the_model_is_refused(self, fitted, tmp_path):
        import json

        from is_core.ctr.model import metadata_path

        _, _, recalibrated, _ = fitted
        path = recalibrated.save(tmp_path / "m.ubj")
        meta = json.loads(metadata_path(path).read_text())
        meta["calibrator"] = None
        metadata_path(path).write_text(json.dumps(meta))
        with pytest.raises(TrainingError, match="disagree"):
            WeightedCTRModel.load(path)
