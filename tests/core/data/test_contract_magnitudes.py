"""Numeric magnitudes (issue 20, item 4b): a sentinel such as 1e200 or -999999 in a numeric
feature surfaced as a weight gate failure ("clip harder"); the contract now names the column,
the share of rows and the ranges, before any weight is fitted."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pytest

from is_core.config import IsbenchConfig
from is_core.data.contract import (
    PROFILE_SCHEMA_VERSION,
    day_profile,
    reference_range,
    reference_range_records,
    sanity_bound_records,
)
from is_core.simulate.clicklog import ROLE_CODES, ClickScenario
from tests.conftest import REPO_ROOT

CONFIG = IsbenchConfig.model_validate({"columns": {"numeric": ["price"], "categorical": []}})
DAY = "2026-11-27"


def _prices(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"price": np.round(np.exp(rng.normal(3.0, 0.8, n)), 2)})


def _with(frame: pd.DataFrame, value: float, rows: int) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[: rows - 1, "price"] = value
    return frame


def _failed(records: list[dict]) -> list[dict]:
    return [r for r in records if not r["success"]]


class TestProfile:
    def test_numeric_profile_has_robust_quantiles(self):
        profile = day_profile(_prices(), CONFIG, "source", day=DAY)
        stats = profile["numeric"]["price"]
        x = _prices()["price"]
        assert profile["schema_version"] == PROFILE_SCHEMA_VERSION == 3
        assert stats["q01"] == pytest.approx(x.quantile(0.01))
        assert stats["median"] == pytest.approx(x.median())
        assert stats["q99"] == pytest.approx(x.quantile(0.99))
        assert {"mean", "std"} <= set(stats)  # the drift bounds' statistics stay

    def test_range_follows_the_documented_formula(self):
        assert reference_range({"q01": 1.0, "median": 5.0, "q99": 10.0}, 10) == (-89.0, 100.0)
        # a feature constant on the reference day: the spread is max(|median|, 1)
        assert reference_range({"q01": 4.0, "median": 4.0, "q99": 4.0}, 10) == (-36.0, 44.0)
        assert reference_range({"q01": 0.0, "median": 0.0, "q99": 0.0}, 2) == (-2.0, 2.0)

    def test_profile_before_version_3_has_no_range(self):
        # an old run's profile: mean and std only; the range check is skipped, nothing fails
        old = {"schema_version": 2, "day": DAY, "rows": 3000,
               "numeric": {"price": {"mean": 27.0, "std": 25.0}}}
        assert reference_range(old["numeric"]["price"], 10) is None
        assert reference_range_records(_with(_prices(), -999999, 30), CONFIG, "source",
                                       old) == []


class TestSentinels:
    def test_1e200_fails_without_a_reference_day_even_in_one_row(self):
        failed = _failed(sanity_bound_records(_with(_prices(), 1e200, 1), CONFIG, "source"))
        assert len(failed) == 1
        record = failed[0]
        assert record["column"] == "price"
        assert record["rule"] == "expect_column_abs_values_below_sanity_bound"
        assert record["observed"].startswith("1 of 3000 rows (0.03%) outside")
        assert record["observed"].endswith(", 1e+200]")
        assert record["expected"] == "no finite value beyond ±1e+12"
        assert "validation.max_abs_value" in record["fix"]

    def test_minus_999999_fails_against_the_reference_day(self):
        reference = day_profile(_prices(seed=1), CONFIG, "source", day=DAY)
        today = _with(_prices(seed=2), -999999, 30)
        assert all(r["success"] for r in sanity_bound_records(today, CONFIG, "source"))
        failed = _failed(reference_range_records(today, CONFIG, "source", reference))
        assert [r["column"] for r in failed] == ["price"]
        record = failed[0]
        assert record["rule"] == "expect_column_values_within_reference_range"
        assert record["observed"].startswith("30 of 3000 rows (1.00%) outside, observed range "
                                              "[-999999, ")
        lo, hi = reference_range(reference["numeric"]["price"], 10)
        assert record["expected"].startswith(f"<= 0.10% of rows outside [{lo:.6g}, {hi:.6g}] "
                                             f"(reference day {DAY}: q01 ")
        assert "validation.reference_day: none" in record["fix"]

    def test_the_days_of_the_rows_outside_are_named(self):
        frame = _with(_prices(), 1e200, 2).assign(dt=["2026-11-28"] * 2 + [DAY] * 2998)
        record = _failed(sanity_bound_records(frame, CONFIG, "target"))[0]
        assert " outside on 2026-11-28, " in record["observed"]

    def test_a_share_under_the_threshold_passes(self):
        reference = day_profile(_prices(seed=1), CONFIG, "source", day=DAY)
        today = _with(_prices(seed=2), -999999, 3)  # 0.1 %: at the limit, not above it
        assert not _failed(reference_range_records(today, CONFIG, "source", reference))
        assert _failed(reference_range_records(_with(today, -999999, 4), CONFIG, "source",
                                               reference))

    def test_thresholds_come_from_the_config(self):
        loose = IsbenchConfig.model_validate({
            "columns": {"numeric": ["price"], "categorical": []},
            "validation": {"max_abs_value": None, "max_magnitude_outlier_share": 0.05,
                           "magnitude_widening": 1.0}})
        assert sanity_bound_records(_with(_prices(), 1e200, 1), loose, "source") == []
        reference = day_profile(_prices(seed=1), loose, "source", day=DAY)
        record = reference_range_records(_with(_prices(seed=2), -999999, 30), loose, "source",
                                         reference)[0]
        assert record["success"]  # 1 % of rows: under the 5 % allowed
        assert "widened by 1 x (q99 - q01)" in record["expected"]

    def test_missing_and_infinite_values_are_other_rules(self):
        frame = _prices()
        frame.loc[:9, "price"] = np.nan
        frame.loc[10:12, "price"] = np.inf
        reference = day_profile(_prices(seed=1), CONFIG, "source", day=DAY)
        assert all(r["success"] for r in sanity_bound_records(frame, CONFIG, "source"))
        assert all(r["success"] for r in reference_range_records(frame, CONFIG, "source",
                                                                 reference))


class TestNoFalseAlarms:
    def test_the_demo_days_pass_against_each_other(self):
        # the 7 days of `isbench demo` (configs/demo.yaml, ClickScenario(seed=0), 20,000 source
        # and 5,000 target and holdout rows a day), each day's profile the reference of each
        # other day, per role
        config = IsbenchConfig.from_file(REPO_ROOT / "configs" / "demo.yaml")
        world = ClickScenario(seed=0).build()
        end = dt.date(2026, 11, 28)
        days = [end - dt.timedelta(days=d) for d in range(7)]
        rows = {"source": 20_000, "target": 5_000, "holdout": 5_000}
        for role, n in rows.items():
            frames = {day: world.sample(n, role, np.random.default_rng(np.random.SeedSequence(
                [0, ROLE_CODES[role], day.toordinal()])), day=day) for day in days}
            profiles = {day: day_profile(frame, config, role, day=day.isoformat())
                        for day, frame in frames.items()}
            for frame in frames.values():
                assert not _failed(sanity_bound_records(frame, config, role))
            for ref, day in itertools.permutations(days, 2):
                failed = _failed(reference_range_records(frames[day], config, role,
                                                         profiles[ref]))
                assert not failed, (role, ref, day, failed)

    @pytest.mark.parametrize("sample", [
        lambda rng, n: rng.normal(0, 1, n),
        lambda rng, n: rng.exponential(1, n),
        lambda rng, n: np.exp(rng.normal(3, 1.5, n)),
        lambda rng, n: (rng.random(n) < 0.03).astype(float),  # a 0/1 flag, IQR 0
        lambda rng, n: rng.pareto(1.5, n),
    ], ids=["normal", "exponential", "lognormal", "flag", "pareto_1_5"])
    def test_common_shapes_pass_day_after_day(self, sample):
        config = IsbenchConfig.model_validate(
            {"columns": {"numeric": ["x"], "categorical": []}})
        rng = np.random.default_rng(0)
        days = [pd.DataFrame({"x": sample(rng, 20_000)}) for _ in range(5)]
        for ref, day in itertools.permutations(days, 2):
            reference = day_profile(ref, config, "source", day=DAY)
            assert not _failed(reference_range_records(day, config, "source", reference))
