"""The input contract's rules for missing feature values and categorical storage types (issue 11,
items 3 and 4): nulls are a level or NaN, their share is a drift statistic; a categorical may be
text, integers, booleans or ``category``, but its kind must not change between days."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from is_core.config import IsbenchConfig
from is_core.data.contract import (
    DRIFT_Z,
    MAX_NULL_SHARE_INCREASE,
    categorical_kind,
    categorical_type_records,
    day_profile,
    drift_bounds,
    row_problems,
    schema_checks,
    unseen_category_records,
)

CONFIG = IsbenchConfig()
STRICT = IsbenchConfig.model_validate({"validation": {"allow_missing_features": False}})
ONE_CATEGORICAL = IsbenchConfig.model_validate(
    {"columns": {"numeric": ["x"], "categorical": ["item_id"]}})


def _null_share_max(reference_share: float, n: int = 1000) -> float:
    vc = CONFIG.validation
    reference = {"day": "2026-11-27", "rows": n, "null_share": {"device": reference_share}}
    return drift_bounds(reference, vc)["null_share"]["device"]["max"]


class TestNullShareDrift:
    def test_bound_follows_the_documented_formula(self):
        # pi0 + Delta + z sqrt(pi0 (1 - pi0) (1 + r) / n0), r = 3, z = 4
        expected = 0.003 + MAX_NULL_SHARE_INCREASE + DRIFT_Z * math.sqrt(
            0.003 * 0.997 * 4 / 1000)
        assert _null_share_max(0.003) == pytest.approx(expected)
        assert _null_share_max(0.0) == pytest.approx(MAX_NULL_SHARE_INCREASE)
        assert _null_share_max(0.99) == 1.0  # capped: a share cannot exceed 1

    def test_a_jump_fails_and_a_stable_share_passes(self):
        rng = np.random.default_rng(0)

        def day(share: float, n: int = 3000) -> pd.DataFrame:
            device = pd.Series(rng.choice(["mobile", "desktop"], n), dtype="str")
            return pd.DataFrame({"device": device.mask(rng.random(n) < share)})

        reference = day_profile(day(0.003), CONFIG, "target")
        assert reference["null_share"]["device"] == pytest.approx(0.003, abs=0.003)
        most = drift_bounds(reference, CONFIG.validation)["null_share"]["device"]["max"]
        # same share: today's share has sd sqrt(0.003 / 3000) = 0.001, far under the bound
        assert day(0.003)["device"].isna().mean() <= most
        assert day(0.20)["device"].isna().mean() > most  # a broken join: 20 % missing

    def test_profile_has_each_features_null_share(self):
        frame = pd.DataFrame({"user_f0": [1.0, np.nan, 2.0, 3.0],
                              "device": pd.Series(["a", None, None, "b"], dtype="str")})
        shares = day_profile(frame, CONFIG, "target")["null_share"]
        assert shares == {"user_f0": 0.25, "device": 0.5}

    def test_an_old_profile_without_shares_gets_no_bound(self):
        reference = {"day": "2026-11-27", "rows": 100, "categorical": {"c": {"cardinality": 3}}}
        assert drift_bounds(reference, CONFIG.validation)["null_share"] == {}


class TestMissingFeatureValuesAreNotRowProblems:
    FRAME = pd.DataFrame({"user_f0": [1.0, np.nan, np.inf], "device": ["a", None, "b"],
                          "impression_id": ["i1", None, "i3"]})

    def test_by_default_only_the_impression_id_and_infinity_are_problems(self):
        problems = row_problems(self.FRAME, CONFIG, "target")
        assert "null:user_f0" not in problems and "null:device" not in problems
        assert problems["null:impression_id"].tolist() == [False, True, False]
        assert problems["not_finite_or_out_of_range:user_f0"].tolist() == [False, False, True]

    def test_the_strict_contract_refuses_missing_features(self):
        problems = row_problems(self.FRAME, STRICT, "target")
        assert problems["null:user_f0"].tolist() == [False, True, False]
        assert problems["null:device"].tolist() == [False, True, False]


class TestCategoricalKinds:
    @pytest.mark.parametrize(("type_name", "kind"), [
        ("string", "text"), ("large_string", "text"), ("str", "text"), ("object", "text"),
        ("int64", "number"), ("int8", "number"), ("uint32", "number"), ("double", "number"),
        ("float64", "number"), ("Int64", "number"), ("bool", "boolean"),
        ("dictionary<values=string, indices=int8, ordered=0>", "text"),
        ("dictionary<values=int64, indices=int16, ordered=0>", "number"),
        ("timestamp[us]", "timestamp"), ("interval", "interval"),
    ])
    def test_kind_of_each_file_type(self, type_name, kind):
        assert categorical_kind(type_name) == kind

    def test_int_one_day_and_text_another_is_a_schema_change(self):
        schemas = [("dt=2026-11-27", {"x": "double", "item_id": "string"}),
                   ("dt=2026-11-28", {"x": "double", "item_id": "int64"})]
        (record,) = schema_checks(schemas, ONE_CATEGORICAL, "source")
        assert record["rule"] == "expect_schema_unchanged_across_days" and not record["success"]
        assert record["column"] == "item_id"
        assert record["observed"] == "number (int64) in dt=2026-11-28"
        assert record["expected"] == "text (string) (as in dt=2026-11-27)"
        assert "'item_id'" in record["fix"] and "dt=2026-11-28" in record["fix"]
        assert "cast it to one type upstream" in record["fix"]

    def test_int_against_a_text_reference_day_is_a_schema_change(self):
        records = schema_checks([("dt=2026-11-28", {"item_id": "int64"})], ONE_CATEGORICAL,
                                "source", reference_schema={"item_id": "string"})
        (record,) = records
        assert record["rule"] == "expect_schema_unchanged_since_reference_day"
        assert "validation.reference_day: none" in record["fix"]

    def test_same_kind_of_another_width_is_no_schema_change(self):
        # int32 and int64 ids, a category of text and text: the same level texts
        schemas = [("dt=2026-11-27", {"item_id": "int32"}), ("dt=2026-11-28", {"item_id": "int64"})]
        assert schema_checks(schemas, ONE_CATEGORICAL, "source") == []
        text = [("dt=2026-11-27", {"item_id": "string"}),
                ("dt=2026-11-28", {"item_id": "dictionary<values=string, indices=int8, "
                                              "ordered=0>"})]
        assert schema_checks(text, ONE_CATEGORICAL, "source") == []

    def test_a_numeric_column_still_tells_integers_from_floats(self):
        # one kind for a categorical's levels, two logical types for a measurement (issue 20)
        schemas = [("dt=2026-11-27", {"x": "double"}), ("dt=2026-11-28", {"x": "int64"})]
        (record,) = schema_checks(schemas, ONE_CATEGORICAL, "source")
        assert record["observed"] == "integer (int64) in dt=2026-11-28"
        assert record["expected"] == "float (double) (as in dt=2026-11-27)"


class TestCategoricalTypes:
    @pytest.mark.parametrize("column", [
        pd.Series([17, 3]), pd.Series(["a", None], dtype="str"), pd.Series([True, False]),
        pd.Series(pd.Categorical([17, 3])), pd.Series([17.0, np.nan]),
        pd.Series(pd.array([1, None], dtype="Int64")), pd.Series([None, None], dtype=object),
    ], ids=["int", "str", "bool", "category", "ints_with_nulls", "Int64", "all_missing"])
    def test_supported_types_pass(self, column):
        (record,) = categorical_type_records(pd.DataFrame({"item_id": column}),
                                             ONE_CATEGORICAL, "source")
        assert record["success"], record

    @pytest.mark.parametrize("column", [
        pd.Series([0.1, 0.2]), pd.Series(pd.to_datetime(["2026-11-28", "2026-11-27"])),
        pd.Series([b"a", b"b"], dtype=object),
    ], ids=["fractional_floats", "dates", "bytes"])
    def test_values_without_a_stable_text_fail_naming_the_fix(self, column):
        (record,) = categorical_type_records(pd.DataFrame({"item_id": column}),
                                             ONE_CATEGORICAL, "source")
        assert not record["success"]
        assert record["rule"] == "expect_categorical_values_to_be_levels"
        assert "columns.numeric" in record["fix"]

    def test_unseen_categories_compare_level_texts(self):
        source = pd.DataFrame({"item_id": [17, 3] * 50})
        holdout = pd.DataFrame({"item_id": pd.Series(["17"] * 90 + [None] * 5 + ["99"] * 5,
                                                     dtype="str")})
        (record,) = unseen_category_records(source, holdout, ONE_CATEGORICAL, "holdout")
        assert "5.00% of rows unseen" in record["observed"] and "'99'" in record["observed"]
