"""Each day of the window on its own, and the roles against each other (issue 20, items 2 and
3): a day far below the window's median day, a partition holding another day's events, and
holdout impression ids that are also source or target ids, each against hand-computed
expectations."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from is_core.config import IsbenchConfig, ValidationConfig
from is_core.data.contract import (
    ID_SAMPLE,
    day_row_count_records,
    event_day_records,
    id_overlap_records,
    partition_day_bounds,
    shared_ids,
    window_day_stats,
)

DAYS = ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"]
VC = ValidationConfig()


def window(rows: dict[str, int], shift: dict[str, pd.Timedelta] | None = None) -> pd.DataFrame:
    """Rows of each day (``dt`` as read_input_files gives it), events spread over the day from
    00:00 to 23:00, each day's events moved by ``shift[day]``."""
    parts = []
    for day, n in rows.items():
        ts = pd.Timestamp(day) + pd.to_timedelta(np.linspace(0, 23, n), unit="h")
        ts = ts + (shift or {}).get(day, pd.Timedelta(0))
        parts.append(pd.DataFrame({"ts": ts, "dt": day}))
    return pd.concat(parts, ignore_index=True)


def failed(records: list[dict]) -> list[dict]:
    return [r for r in records if not r["success"]]


class TestWindowDayStats:
    def test_rows_first_and_last_event_per_day(self):
        frame = window({"2026-11-24": 3, "2026-11-25": 5})
        stats = window_day_stats(frame, ["2026-11-24", "2026-11-25"], "ts")
        assert stats["rows"].tolist() == [3, 5]
        assert stats.loc["2026-11-24", "first_event"] == pd.Timestamp("2026-11-24 00:00")
        assert stats.loc["2026-11-25", "last_event"] == pd.Timestamp("2026-11-25 23:00")

    def test_a_day_without_rows_has_zero_rows_and_no_events(self):
        # a 0-row file adds no row, hence no group: the day comes from the window's days
        stats = window_day_stats(window({"2026-11-24": 4}), ["2026-11-24", "2026-11-25"], "ts")
        assert stats["rows"].tolist() == [4, 0]
        assert pd.isna(stats.loc["2026-11-25", "first_event"])

    def test_without_a_timestamp_only_the_rows(self):
        stats = window_day_stats(window({"2026-11-24": 2}).drop(columns="ts"), ["2026-11-24"])
        assert stats["rows"].tolist() == [2]
        assert pd.isna(stats["first_event"]).all()

    def test_an_unpartitioned_input_has_no_days(self):
        assert window_day_stats(window({"2026-11-24": 2}).drop(columns="dt"), DAYS, "ts").empty


class TestDayRowCount:
    def stats(self, counts: list[int]) -> pd.DataFrame:
        return pd.DataFrame({"rows": counts}, index=pd.Index(DAYS[:len(counts)], name="day"))

    def test_days_below_the_share_of_the_median_fail_naming_day_and_role(self):
        # median of [1000, 1200, 50, 1100, 0] = 1000; 0.1 x 1000 = 100: 50 and 0 fail
        records = day_row_count_records(self.stats([1000, 1200, 50, 1100, 0]), VC, "target")
        bad = failed(records)
        assert [r["observed"] for r in bad] == ["50 rows in dt=2026-11-26",
                                                "0 rows in dt=2026-11-28"]
        assert all(r["role"] == "target" for r in bad)
        assert "median day (1000 rows) = 100 rows" in bad[0]["expected"]
        assert "re-export" in bad[0]["fix"] and "validation.min_day_row_share" in bad[0]["fix"]

    def test_the_bar_is_the_median_not_the_mean(self):
        # one exploded day (100000) moves the mean to 20800 but not the median (1000): 150 rows
        # (15 % of the median) pass, 90 would not
        assert not failed(day_row_count_records(self.stats([1000, 100000, 150, 1100, 900]),
                                                VC, "source"))
        assert len(failed(day_row_count_records(self.stats([1000, 100000, 90, 1100, 900]),
                                                VC, "source"))) == 1

    def test_a_normal_window_gives_one_passing_record(self):
        records = day_row_count_records(self.stats([1000, 1200, 800, 1100, 950]), VC, "source")
        assert len(records) == 1 and records[0]["success"]
        assert records[0]["observed"] == "5 days of 800 to 1200 rows"

    def test_an_empty_day_fails_even_when_the_median_is_zero(self):
        records = day_row_count_records(self.stats([0, 0, 0, 10, 20]), VC, "holdout")
        assert len(failed(records)) == 3  # 0.1 x median 0 = 0: only "at least 1" fails them

    def test_share_zero_turns_the_check_off_and_names_the_partition_key(self):
        off = ValidationConfig(min_day_row_share=0)
        assert day_row_count_records(self.stats([1000, 0]), off, "source") == []
        records = day_row_count_records(self.stats([1000, 0]), VC, "source", "date")
        assert failed(records)[0]["observed"] == "0 rows in date=2026-11-25"


class TestEventDay:
    def test_bounds_run_from_late_hours_before_the_day_to_its_end(self):
        lo, hi = partition_day_bounds(dt.date(2026, 11, 28), 6.0)
        assert lo == pd.Timestamp("2026-11-27 18:00") and hi == pd.Timestamp("2026-11-29 00:00")

    def test_a_partition_holding_another_days_events_fails_naming_the_day(self):
        # dt=2026-11-26 holds the events of 2026-11-24 (an export to the wrong partition)
        frame = window(dict.fromkeys(DAYS, 10), {"2026-11-26": pd.Timedelta(days=-2)})
        records = event_day_records(window_day_stats(frame, DAYS, "ts"), VC, "source", "ts",
                                    timezone="Europe/Berlin")
        bad = failed(records)
        assert len(bad) == 1
        assert bad[0]["column"] == "ts"
        assert bad[0]["observed"] == ("events from 2026-11-24 00:00:00 to 2026-11-24 23:00:00 "
                                      "in dt=2026-11-26")
        assert bad[0]["expected"].startswith("[2026-11-25 18:00:00, 2026-11-27 00:00:00] "
                                             "(Europe/Berlin")
        assert "wrong partition" in bad[0]["fix"] and "late_event_hours" in bad[0]["fix"]

    @pytest.mark.parametrize(("shift", "ok"), [
        (pd.Timedelta(hours=-6), True),      # late events 6 h before the day: the tolerance
        (pd.Timedelta(hours=-6, seconds=-1), False),
        (pd.Timedelta(hours=1), True),       # last event 24:00, the day's end
        (pd.Timedelta(hours=1, seconds=1), False),  # after the day's end: never tolerated
    ], ids=["late_6h", "late_6h_1s", "at_the_end", "after_the_end"])
    def test_late_events_within_the_tolerance_pass(self, shift, ok):
        frame = window(dict.fromkeys(DAYS, 10), {"2026-11-27": shift})
        records = event_day_records(window_day_stats(frame, DAYS, "ts"), VC, "holdout", "ts")
        assert (not failed(records)) is ok

    def test_days_without_events_are_skipped_and_none_turns_it_off(self):
        frame = window({"2026-11-24": 10})
        stats = window_day_stats(frame, ["2026-11-24", "2026-11-25"], "ts")
        assert [r["success"] for r in event_day_records(stats, VC, "source", "ts")] == [True]
        off = ValidationConfig(late_event_hours=None)
        assert event_day_records(stats, off, "source", "ts") == []


class TestIdOverlap:
    def test_shared_ids_are_distinct_non_null_and_in_order(self):
        ids = pd.Series([5, 3, 3, 9, None, 1])
        assert shared_ids(ids, pd.Series([1, 3, None, 7])).tolist() == [3.0, 1.0]
        text = pd.Series(["b", "a", None], dtype="str")
        assert shared_ids(text, pd.Series(["a", None], dtype="str")).tolist() == ["a"]

    def test_holdout_ids_among_source_ids_fail_naming_roles_count_and_sample(self):
        source = pd.DataFrame({"impression_id": np.arange(0, 1000)})
        holdout = pd.DataFrame({"impression_id": np.arange(990, 1030)})  # 10 shared: 990..999
        target = pd.DataFrame({"impression_id": np.arange(5000, 5100)})
        records = id_overlap_records({"source": source, "target": target, "holdout": holdout},
                                     IsbenchConfig())
        by_other = {r["expected"]: r for r in records}
        leak = by_other["holdout ids disjoint from source ids over the window"]
        assert not leak["success"] and leak["role"] == "holdout"
        assert leak["observed"] == ("10 holdout id(s) also source ids, e.g. "
                                    f"{[str(i) for i in range(990, 990 + ID_SAMPLE)]}")
        assert "rebuild the holdout" in leak["fix"]
        assert by_other["holdout ids disjoint from target ids over the window"]["success"]

    def test_holdout_ids_among_target_ids_fail(self):
        frames = {"source": pd.DataFrame({"impression_id": ["s1", "s2"]}),
                  "target": pd.DataFrame({"impression_id": ["t1", "t2", "t3"]}),
                  "holdout": pd.DataFrame({"impression_id": ["t3", "h1"]})}
        bad = failed(id_overlap_records(frames, IsbenchConfig()))
        assert [r["observed"] for r in bad] == ["1 holdout id(s) also target ids, e.g. ['t3']"]

    def test_skipped_without_ids_a_holdout_or_when_turned_off(self):
        frames = {"source": pd.DataFrame({"impression_id": [1]}),
                  "holdout": pd.DataFrame({"impression_id": [1]}),
                  "target": pd.DataFrame({"x": [1]})}  # a target without ids: pair skipped
        assert len(id_overlap_records(frames, IsbenchConfig())) == 1
        assert id_overlap_records({"source": frames["source"]}, IsbenchConfig()) == []
        no_ids = IsbenchConfig.model_validate({"columns": {"impression_id": None}})
        assert id_overlap_records(frames, no_ids) == []
        off = IsbenchConfig.model_validate({"validation": {"disjoint_role_ids": False}})
        assert id_overlap_records(frames, off) == []
