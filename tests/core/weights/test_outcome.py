"""The doubly robust estimate's cross-fitted click model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from is_core.errors import ParameterError
from is_core.weights.outcome import CrossFittedOutcome


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.random.Generator]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "noise": rng.normal(size=n),
                          "cat": rng.choice(["a", "b", "c"], size=n)})
    return frame, rng


def test_source_predictions_come_from_models_that_did_not_see_the_row():
    # labels independent of the features: an in-sample booster fits their noise (positive
    # correlation with y), an out-of-fold prediction cannot (|corr| within 4/sqrt(n) of 0)
    frame, rng = _frame(4000, 0)
    y = (rng.random(4000) < 0.3).astype(float)
    model = CrossFittedOutcome(["x", "noise"], ["cat"], n_estimators=200, max_depth=6,
                               min_child_weight=0.1, random_state=0).fit(frame, y)
    assert model.fit(frame, y) is model
    in_sample = model.predict(frame)
    n = len(y)
    assert np.corrcoef(in_sample, y)[0, 1] > 8 / np.sqrt(n)
    assert abs(np.corrcoef(model.oof_prediction_, y)[0, 1]) < 4 / np.sqrt(n)


def test_recovers_a_known_click_model():
    frame, rng = _frame(20_000, 1)
    p = expit(-2.0 + 1.2 * frame["x"].to_numpy() + 0.5 * (frame["cat"] == "b").to_numpy())
    y = (rng.random(len(p)) < p).astype(float)
    model = CrossFittedOutcome(["x", "noise"], ["cat"], random_state=0).fit(frame, y)
    oof = model.oof_prediction_
    # calibrated in the large: mean prediction within 4 binomial SE of the click rate
    assert abs(oof.mean() - y.mean()) < 4 * np.sqrt(y.mean() * (1 - y.mean()) / len(y))
    # and close to the true probabilities (RMSE well under the spread of p itself)
    assert np.sqrt(np.mean((oof - p) ** 2)) < 0.25 * p.std()
    new, _ = _frame(2000, 2)
    pred = model.predict(new)
    assert pred.shape == (2000,) and np.all((pred > 0) & (pred < 1))


@pytest.mark.parametrize("y, match", [(np.full(100, 0.5), "0/1 labels"),
                                      (np.r_[np.ones(1), np.zeros(99)], "at least n_folds")])
def test_labels_it_cannot_fit_are_named(y, match):
    frame, _ = _frame(100, 3)
    with pytest.raises(ParameterError, match=match) as info:
        CrossFittedOutcome(["x"], ["cat"]).fit(frame, y)
    assert info.value.parameter == "y"
