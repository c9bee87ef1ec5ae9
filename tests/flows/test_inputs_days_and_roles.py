"""Bad inputs of one day, and of one role against another (issue 20, items 2 and 3).

A day of the window that is wrong on its own (no rows, a fraction of the other days' rows, a
partition holding another day's events) used to pass inside the window's totals, and holdout
rows that are also source rows went unnoticed (inflating the holdout's metrics). Each kind runs
the real flow on a corrupted copy of the tiny dataset of :mod:`tests.flows.test_bad_inputs` and
must fail at validation naming the day (or the two roles) and the fix, leaving the earlier runs'
files and the champion byte-for-byte unchanged (its ``run_broken`` asserts both). Late events
within ``validation.late_event_hours`` run through.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from flows.daily_retrain import daily_retrain
from is_core.config import IsbenchConfig
from tests.conftest import RUN_DATE
from tests.flows import test_bad_inputs
from tests.flows.test_bad_inputs import DAY, PREVIOUS, assert_names, edit, run_broken, snapshot

pytestmark = pytest.mark.usefixtures("prefect_harness")

# The bad-input catalogue's fixtures (module-scoped: built again for this module): the tiny
# dataset, and two good earlier runs with a champion, the reference day of every run below.
tiny_root = test_bad_inputs.tiny_root
earlier = test_bad_inputs.earlier

YESTERDAY = PREVIOUS.isoformat()
TWO_DAYS_AGO = (RUN_DATE - dt.timedelta(days=2)).isoformat()
THREE_DAYS = {"window_days": 3}  # the tiny dataset's three days: the bad day in the middle


def late_events(hours: float, rows: int = 50) -> Callable[[Path], None]:
    """Yesterday's first ``rows`` source events moved to ``hours`` before yesterday began (they
    arrived late, into the partition of the day they arrived in)."""
    def corrupt(data: Path) -> None:
        def move(f: pd.DataFrame) -> pd.DataFrame:
            f.loc[: rows - 1, "ts"] = pd.Timestamp(YESTERDAY) - pd.Timedelta(hours=hours)
            return f
        edit(data, "source", YESTERDAY, move)
    return corrupt


# ---------------------------------------------------------------------------- each day on its own
class TestDayOnItsOwn:
    def test_a_day_with_no_rows_fails_naming_the_day_and_the_role(self, earlier, tiny_root,
                                                                  tmp_path):
        # yesterday's source file holds no row: the window has 3000 rows, within every bound
        text, record = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", YESTERDAY, lambda f: f.iloc[:0]), data=THREE_DAYS)
        assert_names(text, "stage 'validate'", "[source]",
                     "expect_day_row_count_at_least_median_share",
                     f"0 rows in dt={YESTERDAY}", "median day (1500 rows)", "re-export",
                     "validation.min_day_row_share")
        assert record["error"] == "DataValidationError"

    def test_a_day_far_below_the_median_fails(self, earlier, tiny_root, tmp_path):
        # 30 of 600 target rows arrived: below 0.1 x the median day (600) = 60
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "target", YESTERDAY, lambda f: f.iloc[:30]), data=THREE_DAYS)
        assert_names(text, "[target]", "expect_day_row_count_at_least_median_share",
                     f"30 rows in dt={YESTERDAY}", "= 60 rows")

    def test_a_partition_holding_another_days_events_fails_naming_the_day(
            self, earlier, tiny_root, tmp_path):
        # the export of two days ago was written to yesterday's partition: the run date's own
        # partition is fresh, so freshness (its newest event) sees nothing
        def wrong_partition(data: Path) -> None:
            shutil.copyfile(data / "holdout" / f"dt={TWO_DAYS_AGO}" / "part-0.parquet",
                            data / "holdout" / f"dt={YESTERDAY}" / "part-0.parquet")
        text, _ = run_broken(earlier, tiny_root, tmp_path, wrong_partition)
        assert_names(text, "[holdout]", "'ts'", "expect_event_times_within_partition_day",
                     f"events from {TWO_DAYS_AGO} 00:", f"in dt={YESTERDAY}",
                     f"[{TWO_DAYS_AGO} 18:00:00, {DAY} 00:00:00] (UTC", "wrong partition",
                     "validation.late_event_hours")

    def test_late_events_beyond_the_tolerance_fail(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, late_events(hours=8))
        assert_names(text, "[source]", "expect_event_times_within_partition_day",
                     f"in dt={YESTERDAY}")

    def test_late_events_within_the_tolerance_run_through(self, earlier, tiny_root, tmp_path):
        # 50 events 5 h before yesterday began (tolerance 6 h): the run publishes
        data = tmp_path / "data"
        shutil.copytree(tiny_root, data)
        late_events(hours=5)(data)
        raw = earlier.model_dump(mode="json")
        raw["data"]["root"] = str(data)
        raw["output_root"] = str(tmp_path / "runs")
        raw["validation"]["data_docs"] = False
        before = snapshot(earlier.output_root)
        summary = daily_retrain(config=IsbenchConfig.model_validate(raw), run_date=RUN_DATE)
        results = json.loads((Path(summary["run_dir"]) / "validation" / "results.json")
                             .read_text())
        checks = [r for r in results["source"]["results"]
                  if r["rule"] == "expect_event_times_within_partition_day"]
        assert [r["success"] for r in checks] == [True]
        assert snapshot(earlier.output_root) == before


# ---------------------------------------------------------------------------- roles
def leak_source_rows(rows: int = 40) -> Callable[[Path], None]:
    """Append the run date's first ``rows`` source rows to its holdout (their ids with them)."""
    def corrupt(data: Path) -> None:
        part = f"dt={DAY}"
        source = pd.read_parquet(data / "source" / part / "part-0.parquet")
        edit(data, "holdout", DAY, lambda f: pd.concat(
            [f, source.iloc[:rows][list(f.columns)]], ignore_index=True))
    return corrupt


def leaked_ids(root: Path, count: int = 5) -> list[str]:
    source = pd.read_parquet(root / "source" / f"dt={DAY}" / "part-0.parquet")
    return [str(i) for i in source["impression_id"].iloc[:count]]


class TestAcrossRoles:
    def test_holdout_ids_among_the_source_ids_fail_naming_roles_count_and_sample(
            self, earlier, tiny_root, tmp_path):
        text, record = run_broken(earlier, tiny_root, tmp_path, leak_source_rows(40))
        assert_names(text, "stage 'validate'", "[holdout]", "'impression_id'",
                     "expect_ids_disjoint_across_roles", "40 holdout id(s) also source ids",
                     str(leaked_ids(tiny_root)), "rebuild the holdout")
        assert record["error"] == "DataValidationError"

    def test_a_leak_fails_in_quarantine_mode_too(self, earlier, tiny_root, tmp_path):
        # a table-level rule: quarantine drops bad rows, never a leak
        text, _ = run_broken(earlier, tiny_root, tmp_path, leak_source_rows(40),
                             validation={"mode": "quarantine"})
        assert_names(text, "expect_ids_disjoint_across_roles", "40 holdout id(s)")
