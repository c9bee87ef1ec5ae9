"""The shared choices and argument checks (``is_core._validation``): one definition of each list
of choices for the config and the estimators, one implementation of each check."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from is_core import _validation as v
from is_core.config import ProposalConfig, WeightsConfig
from is_core.errors import ConfigError, InvalidWeightsError, ParameterError

finite_or_minus_inf = st.floats(allow_nan=False, max_value=700, min_value=-700) | st.just(
    -np.inf)


class TestChoices:
    def test_config_and_estimators_share_one_definition(self):
        fields = {**ProposalConfig.model_fields, **WeightsConfig.model_fields}
        assert fields["clip"].annotation is v.ClipMethod
        assert fields["learner"].annotation is v.ProposalLearner
        assert fields["numeric_basis"].annotation is v.NumericBasis
        assert fields["normalize_per"].annotation is v.NormalizePer

    def test_tuples_are_derived_from_the_aliases(self):
        assert v.CLIP_METHODS == get_args(v.ClipMethod)
        assert v.literal_values(v.ProposalLearner) == (
            "auto", "logistic", "xgboost", "logged_propensity")
        assert v.literal_values(v.NumericBasis) == ("auto", "linear", "quadratic", "spline")
        assert v.literal_values(v.Calibration | None) == ("sigmoid", "isotonic", None)

    def test_literal_values_refuses_a_non_literal(self):
        with pytest.raises(ParameterError, match="not a Literal alias"):
            v.literal_values(str)

    @given(st.sampled_from(v.CLIP_METHODS))
    def test_every_choice_is_accepted(self, method):
        v.check_choice(method, v.ClipMethod, parameter="method")

    @given(st.text().filter(lambda s: s not in v.CLIP_METHODS))
    def test_anything_else_is_refused_naming_parameter_and_choices(self, method):
        with pytest.raises(ParameterError) as info:
            v.check_choice(method, v.ClipMethod, parameter="method")
        assert info.value.parameter == "method"
        assert f"method={method!r}" in info.value.what
        assert str(list(v.CLIP_METHODS)) in info.value.what

    def test_label_names_what_the_value_is(self):
        with pytest.raises(ParameterError, match=r"unknown clip method 'x': method must be one"):
            v.check_choice("x", v.ClipMethod, parameter="method", label="clip method")

    def test_none_is_a_choice_only_when_the_alias_allows_it(self):
        v.check_choice(None, v.Calibration | None, parameter="calibration")
        with pytest.raises(ParameterError, match="calibration=None"):
            v.check_choice(None, v.Calibration, parameter="calibration")


class TestLogWeights:
    @given(arrays(float, st.integers(1, 50), elements=finite_or_minus_inf))
    def test_valid_log_weights_pass_unchanged(self, log_w):
        out = v.check_log_weights(log_w)
        assert out.dtype == float
        np.testing.assert_array_equal(out, log_w)

    @given(arrays(float, st.integers(1, 50), elements=finite_or_minus_inf),
           st.sampled_from([np.nan, np.inf]), st.data())
    def test_nan_or_plus_inf_anywhere_is_refused(self, log_w, bad, data):
        log_w[data.draw(st.integers(0, log_w.size - 1))] = bad
        with pytest.raises(InvalidWeightsError, match=r"NaN or \+inf") as info:
            v.check_log_weights(log_w)
        assert "proposal model" in info.value.fix

    @pytest.mark.parametrize("log_w", [np.array([]), np.zeros((2, 2)), np.float64(1.0)],
                             ids=["empty", "2-d", "scalar"])
    def test_shape_must_be_non_empty_1d(self, log_w):
        with pytest.raises(InvalidWeightsError, match="non-empty 1-d array"):
            v.check_log_weights(log_w)

    def test_the_error_is_a_value_error(self):
        with pytest.raises(ValueError, match="NaN"):
            v.check_log_weights([0.0, float("nan")])


class TestSampleWeight:
    @given(arrays(float, st.integers(1, 30), elements=st.floats(0, 1e6)))
    def test_finite_non_negative_weights_pass(self, w):
        np.testing.assert_array_equal(v.check_sample_weight(w, w.size), w)

    def test_none_is_all_ones(self):
        np.testing.assert_array_equal(v.check_sample_weight(None, 3), np.ones(3))

    @pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
    def test_negative_nan_or_infinite_is_refused(self, bad):
        with pytest.raises(ParameterError, match="1 sample weight.*finite and non-negative"
                           ) as info:
            v.check_sample_weight(np.array([1.0, bad, 2.0]), 3)
        assert info.value.parameter == "sample_weight"

    def test_wrong_length_is_refused(self):
        with pytest.raises(ParameterError, match=r"2 sample weights for 3 rows"):
            v.check_sample_weight(np.ones(2), 3)


class TestLength:
    @given(st.integers(0, 20), st.integers(0, 20))
    def test_only_the_expected_length_passes(self, size, n):
        values = np.zeros(size)
        if size == n:
            v.check_length(values, n, parameter="y", noun="labels", per="log weights")
            return
        with pytest.raises(ParameterError, match=rf"{size} labels for {n} log weights "
                           rf"\(y has shape \({size},\), expected \({n},\)\)"):
            v.check_length(values, n, parameter="y", noun="labels", per="log weights")

    def test_a_column_vector_is_not_1d(self):
        with pytest.raises(ParameterError, match=r"shape \(3, 1\)"):
            v.check_length(np.zeros((3, 1)), 3, parameter="y", noun="labels", per="rows")


class TestConfigKeys:
    def test_a_mapped_parameter_becomes_a_config_error_naming_the_key(self):
        with pytest.raises(ConfigError, match=r"weights\.clip_max_weight: .*max_weight") as info:
            with v.config_keys({"max_weight": "weights.clip_max_weight"}):
                raise ParameterError("max_weight must be positive", fix="pass a positive cap",
                                     parameter="max_weight")
        assert isinstance(info.value.__cause__, ParameterError)
        assert info.value.details["config_key"] == "weights.clip_max_weight"
        assert "correct weights.clip_max_weight in the config" in info.value.fix

    def test_other_errors_pass_unchanged(self):
        with pytest.raises(ParameterError) as info:
            with v.config_keys({"max_weight": "weights.clip_max_weight"}):
                raise ParameterError("level must be in (0, 1)", parameter="level")
        assert not isinstance(info.value, ConfigError)
        with pytest.raises(InvalidWeightsError):
            with v.config_keys({"max_weight": "weights.clip_max_weight"}):
                v.check_log_weights([np.nan])

    def test_works_as_a_decorator(self):
        @v.config_keys({"n_boot": "evaluation.n_boot"})
        def evaluate(n_boot: int) -> int:
            if n_boot < 2:
                raise ParameterError("n_boot must be at least 2", parameter="n_boot")
            return n_boot

        assert evaluate(3) == 3 and evaluate(4) == 4  # a fresh context per call
        with pytest.raises(ConfigError, match=r"evaluation\.n_boot"):
            evaluate(1)
