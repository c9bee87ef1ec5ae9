"""The weighted booster's regularization on the scale of its effective sample."""

from __future__ import annotations

import numpy as np
import pytest

from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.stage import weighted_template


def test_min_child_weight_is_divided_by_the_ess_fraction():
    # weights 1 and 3 in equal numbers: ESS/n = (2)^2 / ((1 + 9) / 2) = 0.8
    w = np.r_[np.ones(500), np.full(500, 3.0)]
    template = WeightedCTRModel(["x"], [], min_child_weight=2.0)
    scaled = weighted_template(template, w, "ess")
    assert scaled.min_child_weight == pytest.approx(2.0 / 0.8)
    assert template.min_child_weight == 2.0  # the template is not changed
    assert weighted_template(template, w, "same").min_child_weight == 2.0


def test_equal_weights_change_nothing_whatever_their_scale():
    template = WeightedCTRModel(["x"], [], min_child_weight=1.5)
    assert weighted_template(template, np.full(10, 7.0), "ess").min_child_weight == \
        pytest.approx(1.5)
