"""Reading the input contract and writing outputs atomically."""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest

from is_core.data.atomic import publish_directory, write_json_atomic, write_parquet_atomic
from is_core.data.io import (
    InputFile,
    day_window,
    fingerprint_files,
    read_input_files,
    resolve_input_files,
)
from is_core.errors import DataContractError

DAYS = [dt.date(2026, 11, 27), dt.date(2026, 11, 28)]


@pytest.fixture
def partitioned(tmp_path):
    for day in DAYS:
        write_parquet_atomic(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
                             tmp_path / "src" / f"dt={day}" / "part-0.parquet")
    return tmp_path / "src"


class TestResolve:
    def test_window_is_inclusive_and_oldest_first(self):
        assert day_window(dt.date(2026, 11, 28), 2) == DAYS

    def test_lists_one_file_per_day(self, partitioned):
        files = resolve_input_files(partitioned, DAYS, "source", "parquet")
        assert [f.day for f in files] == DAYS

    def test_missing_location_names_role_and_path(self, tmp_path):
        with pytest.raises(DataContractError, match=r"source data not found at .*nowhere"):
            resolve_input_files(tmp_path / "nowhere", DAYS, "source", "parquet")

    def test_missing_partition_names_the_day(self, partitioned):
        with pytest.raises(DataContractError, match="partition dt=2026-11-26 is missing"):
            resolve_input_files(partitioned, [dt.date(2026, 11, 26), *DAYS], "source",
                                "parquet")

    def test_empty_partition_folder(self, partitioned):
        (partitioned / "dt=2026-11-26").mkdir()
        with pytest.raises(DataContractError, match="holds no .parquet file"):
            resolve_input_files(partitioned, [dt.date(2026, 11, 26)], "source", "parquet")

    def test_single_file_is_read_whole(self, tmp_path):
        path = tmp_path / "logs.csv"
        pd.DataFrame({"a": [1, 2, 3]}).to_csv(path, index=False)
        files = resolve_input_files(path, DAYS, "target", "csv")
        assert files == [InputFile(path, None)]
        assert len(read_input_files(files)) == 3


class TestRead:
    def test_adds_partition_column_in_order(self, partitioned):
        frame = read_input_files(resolve_input_files(partitioned, DAYS, "source", "parquet"))
        assert frame["dt"].tolist() == ["2026-11-27"] * 2 + ["2026-11-28"] * 2

    def test_missing_configured_column_is_named(self, partitioned):
        files = resolve_input_files(partitioned, DAYS, "source", "parquet")
        with pytest.raises(DataContractError, match=r"lacks configured column\(s\) \['c'\]"):
            read_input_files(files, ["a", "c"], role="source")

    def test_corrupt_parquet_is_reported_with_its_path(self, partitioned):
        bad = partitioned / "dt=2026-11-28" / "part-0.parquet"
        bad.write_bytes(b"PAR1 this is not parquet")
        with pytest.raises(DataContractError, match="cannot read .*part-0.parquet"):
            read_input_files(resolve_input_files(partitioned, DAYS, "source", "parquet"))


class TestAtomicWrites:
    def test_failed_write_leaves_old_file_and_no_temp(self, tmp_path):
        path = write_json_atomic({"v": 1}, tmp_path / "r.json")

        class Boom:
            def __repr__(self):
                raise RuntimeError("serialization failed")

        with pytest.raises(RuntimeError):
            write_json_atomic({"v": Boom()}, path)
        assert path.read_text().strip().endswith("}")
        assert '"v": 1' in path.read_text()
        assert os.listdir(tmp_path) == ["r.json"]

    def test_publish_replaces_and_keeps_failure_records(self, tmp_path):
        final = tmp_path / "runs" / "2026-11-28"
        (final / "failures").mkdir(parents=True)
        (final / "failures" / "x.json").write_text("{}")
        (final / "report.json").write_text("old")
        staging = tmp_path / "runs" / ".staging" / "s1"
        staging.mkdir(parents=True)
        (staging / "report.json").write_text("new")
        publish_directory(staging, final)
        assert (final / "report.json").read_text() == "new"
        assert (final / "failures" / "x.json").exists()
        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [".staging", "2026-11-28"]

    def test_fingerprint_tracks_bytes(self, partitioned):
        files = resolve_input_files(partitioned, DAYS, "source", "parquet")
        before = fingerprint_files(files)
        assert fingerprint_files(files) == before
        write_parquet_atomic(pd.DataFrame({"a": [1, 3], "b": ["x", "y"]}), files[0].path)
        assert fingerprint_files(files) != before


def test_json_files_are_strict_json(tmp_path):
    """NaN and ±inf (an undefined AUC, an unbounded cap, k̂ = -inf) are written as null."""
    import json
    import math

    path = write_json_atomic({"auc": math.nan, "cap": [math.inf, 1.5], "k": -math.inf},
                             tmp_path / "r.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"auc": None, "cap": [None, 1.5], "k": None}
