"""Categorical level text and codes, missing numerics (issue 11): an integer 17, a float 17.0 (an
integer column with nulls), a text "17" and a ``category`` 17 are one level wherever codes are
computed; NaN is a missing value, ±inf a bad one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from is_core.data.features import (
    FeatureSpec,
    category_codes,
    category_levels,
    finite_numeric_mask,
    level_text,
)

#: One categorical column stored every supported way: levels "17", "3", missing.
REPRESENTATIONS = {
    "int64": pd.Series([17, 3, 17, 3]),
    "int8": pd.Series(np.array([17, 3, 17, 3], dtype="int8")),
    "uint16": pd.Series(np.array([17, 3, 17, 3], dtype="uint16")),
    "float64 with nulls": pd.Series([17.0, 3.0, np.nan, 3.0]),
    "Int64 with nulls": pd.Series(pd.array([17, 3, None, 3], dtype="Int64")),
    "str": pd.Series(["17", "3", "17", "3"], dtype="str"),
    "object text with nulls": pd.Series(["17", "3", None, "3"], dtype=object),
    "category of ints": pd.Series(pd.Categorical([17, 3, None, 3])),
    "category of text": pd.Series(pd.Categorical(["17", "3", "17", "3"])),
    "ints and text mixed": pd.Series([17, "3", 17, 3], dtype=object),
}


class TestLevelText:
    @pytest.mark.parametrize("name", list(REPRESENTATIONS))
    def test_identical_codes_across_representations(self, name):
        column = REPRESENTATIONS[name]
        codes = category_codes(column, ["17", "3"], missing=-9)
        expected = np.where(column.isna().to_numpy(), -9, [0, 1, 0, 1])
        np.testing.assert_array_equal(codes, expected)
        assert category_levels(column) == ["17", "3"]

    def test_booleans_print_as_python_does(self):
        for column in (pd.Series([True, False, True]),
                       pd.Series(pd.array([True, False, None], dtype="boolean")),
                       pd.Series([True, False, None], dtype=object),
                       pd.Series(pd.Categorical([True, False, True]))):
            assert category_levels(column) == ["False", "True"]
            np.testing.assert_array_equal(category_codes(column, ["False", "True"])[:2], [1, 0])

    def test_whole_floats_are_integers_other_floats_are_their_text(self):
        assert list(level_text(pd.Index([17.0, -2.0, 1.5, 1e20]))) == [
            "17", "-2", "1.5", "1e+20"]  # 1e20 is beyond exact integers: its float text
        assert list(level_text(pd.Index([np.int64(7), np.float32(7.0), "7"], dtype=object))) \
            == ["7", "7", "7"]

    def test_text_is_kept_as_is(self):
        assert list(level_text(pd.Index(["017", " 17", "a"]))) == ["017", " 17", "a"]


class TestFeatureSpec:
    def test_a_spec_fitted_on_ints_codes_text_and_category_alike(self):
        train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "item": [17, 3, 17]})
        spec = FeatureSpec(["x"], ["item"]).fit(train)
        assert spec.categories == {"item": ["17", "3"]}
        for column in (pd.Series(["3", "17", None], dtype="str"),
                       pd.Series([3.0, 17.0, np.nan]),
                       pd.Series(pd.Categorical([3, 17, None]))):
            out = spec.transform(pd.DataFrame({"x": [1.0, np.nan, 2.0], "item": column}))
            np.testing.assert_array_equal(out["item"].cat.codes, [1, 0, -1])
            assert list(out["item"].cat.categories) == ["17", "3"]
            assert np.isnan(out["x"].iloc[1])  # XGBoost takes the NaN natively

    def test_an_int_column_with_nulls_has_no_float_levels(self):
        # regression: str(17.0) is "17.0", a level no other day (nor the text "17") has
        spec = FeatureSpec([], ["item"]).fit(pd.DataFrame({"item": [17.0, np.nan, 3.0]}))
        assert spec.categories == {"item": ["17", "3"]}

    def test_unseen_share_ignores_missing_values_and_the_storage_type(self):
        spec = FeatureSpec([], ["item"]).fit(pd.DataFrame({"item": ["17", "3"]}))
        frame = pd.DataFrame({"item": pd.array([17, 3, 99, None], dtype="Int64")})
        assert spec.unseen_share(frame) == {"item": pytest.approx(1 / 3)}


class TestFiniteNumericMask:
    FRAME = pd.DataFrame({"a": [1.0, np.nan, np.inf, 2.0], "b": [1.0, 2.0, 3.0, -np.inf]})

    def test_strict_refuses_nan_and_inf(self):
        np.testing.assert_array_equal(finite_numeric_mask(self.FRAME, ["a", "b"]),
                                      [True, False, False, False])

    def test_allowing_missing_values_still_refuses_inf(self):
        np.testing.assert_array_equal(
            finite_numeric_mask(self.FRAME, ["a", "b"], allow_missing=True),
            [True, True, False, False])
        nullable = pd.DataFrame({"a": pd.array([1.0, None], dtype="Float64")})
        np.testing.assert_array_equal(finite_numeric_mask(nullable, ["a"], allow_missing=True),
                                      [True, True])
