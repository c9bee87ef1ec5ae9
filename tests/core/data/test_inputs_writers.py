"""Inputs written by other writers (issue 20, items 1 and 4a): the same logical type stored
another way is no schema change, and day partitions named by another key are reported as such.

The flow-level counterparts, with real files, are in ``tests/flows/test_inputs_writers.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from is_core.config import DataConfig, IsbenchConfig
from is_core.data.atomic import write_parquet_atomic
from is_core.data.contract import categorical_kind, logical_type, schema_checks
from is_core.data.io import InputFile, read_input_files, read_schema_of, resolve_input_files
from is_core.errors import ConfigError, DataContractError

DAYS = [dt.date(2026, 11, 27), dt.date(2026, 11, 28)]
CONFIG = IsbenchConfig()  # user_f0 numeric, item_id categorical, clicked label, ts timestamp


# ---------------------------------------------------------------------------- logical types
class TestLogicalType:
    @pytest.mark.parametrize(("type_name", "logical"), [
        # text: Arrow's names, pandas' dtypes (CSV), a pandas category of text
        ("string", "text"), ("large_string", "text"), ("utf8", "text"), ("str", "text"),
        ("object", "text"), ("string_view", "text"),
        ("dictionary<values=string, indices=int8, ordered=0>", "text"),
        ("dictionary<values=large_string, indices=int32, ordered=1>", "text"),
        # integers of any width and sign, pandas' nullable integers
        ("int8", "integer"), ("int64", "integer"), ("uint32", "integer"), ("Int64", "integer"),
        ("UInt8", "integer"),
        # floats of any width
        ("float", "float"), ("double", "float"), ("halffloat", "float"), ("float32", "float"),
        ("float64", "float"), ("Float64", "float"),
        ("bool", "boolean"), ("boolean", "boolean"),
        ("binary", "binary"), ("large_binary", "binary"),
        ("date32[day]", "date"), ("date64[ms]", "date"),
        # timestamps of any unit (Spark's INT96 reads as ns); the time zone is kept
        ("timestamp[ns]", "timestamp"), ("timestamp[us]", "timestamp"),
        ("timestamp[ms]", "timestamp"), ("timestamp[s]", "timestamp"),
        ("datetime64[ns]", "timestamp"), ("timestamp[us, tz=UTC]", "timestamp[tz=UTC]"),
        ("datetime64[ns, UTC]", "timestamp[tz=UTC]"),
        ("timestamp[ns, tz=Europe/Berlin]", "timestamp[tz=Europe/Berlin]"),
        ("dictionary<values=timestamp[us, tz=UTC], indices=int32, ordered=0>",
         "timestamp[tz=UTC]"),
        # anything else is its own type
        ("decimal128(10, 2)", "decimal128(10, 2)"), ("null", "null"), ("interval", "interval"),
    ])
    def test_each_file_type(self, type_name, logical):
        assert logical_type(type_name) == logical

    def test_a_categorical_kind_merges_integers_and_floats_only(self):
        assert categorical_kind("int8") == categorical_kind("double") == "number"
        assert categorical_kind("large_string") == "text"
        assert categorical_kind("timestamp[ns]") == "timestamp"

    def test_the_types_real_writers_give(self, tmp_path):
        # a pandas category, a float32, an INT96 timestamp and an int8 label as pyarrow reads
        # them back, against the plain types of the same logical type
        frame = pd.DataFrame({
            "item_id": pd.Categorical(["a", "b"]), "user_f0": pd.array([1, 2], "float32"),
            "ts": pd.to_datetime(["2026-11-28 01:00", "2026-11-28 02:00"]),
            "clicked": pd.array([0, 1], "int8")})
        path = tmp_path / "part-0.parquet"
        pq.write_table(pa.Table.from_pandas(frame), path, use_deprecated_int96_timestamps=True)
        schema = read_schema_of(InputFile(path, None))
        assert schema["item_id"].startswith("dictionary<values=string")
        assert schema["ts"] == "timestamp[ns]"
        assert {c: logical_type(t) for c, t in schema.items()} == {
            "item_id": "text", "user_f0": "float", "ts": "timestamp", "clicked": "integer"}


class TestSchemaChecksByLogicalType:
    FIRST = {"user_f0": "double", "item_id": "string", "clicked": "int8",
             "ts": "timestamp[us]", "impression_id": "int64"}

    def _records(self, **changed: str) -> list[dict]:
        return schema_checks([("dt=2026-11-27", self.FIRST),
                              ("dt=2026-11-28", {**self.FIRST, **changed})], CONFIG, "source")

    @pytest.mark.parametrize("changed", [
        {"user_f0": "float"},  # float32 from one writer, float64 from another
        {"item_id": "dictionary<values=string, indices=int32, ordered=0>"},  # pandas category
        {"item_id": "large_string"},
        {"ts": "timestamp[ns]"},  # Spark's INT96
        {"clicked": "int64"}, {"impression_id": "uint64"},
    ], ids=["float32", "dictionary", "large_string", "int96", "label_width", "id_width"])
    def test_equivalent_types_pass(self, changed):
        assert self._records(**changed) == []

    @pytest.mark.parametrize(("changed", "observed", "expected"), [
        ({"user_f0": "string"}, "text (string)", "float (double)"),
        ({"user_f0": "int64"}, "integer (int64)", "float (double)"),
        ({"clicked": "string"}, "text (string)", "integer (int8)"),
        ({"clicked": "bool"}, "boolean (bool)", "integer (int8)"),
        ({"ts": "string"}, "text (string)", "timestamp (timestamp[us])"),
        ({"ts": "timestamp[us, tz=UTC]"}, "timestamp[tz=UTC] (timestamp[us, tz=UTC])",
         "timestamp (timestamp[us])"),
        ({"impression_id": "large_string"}, "text (large_string)", "integer (int64)"),
    ], ids=["float_to_text", "float_to_int", "label_to_text", "label_to_bool",
            "timestamp_to_text", "naive_to_aware", "id_to_text"])
    def test_a_real_change_names_the_column_both_days_and_both_types(self, changed, observed,
                                                                    expected):
        (record,) = self._records(**changed)
        (column,) = changed
        assert record["rule"] == "expect_schema_unchanged_across_days" and not record["success"]
        assert record["column"] == column
        assert record["observed"] == f"{observed} in dt=2026-11-28"
        assert record["expected"] == f"{expected} (as in dt=2026-11-27)"
        assert f"{column!r} holds another type of value on dt=2026-11-28 than on " \
               "dt=2026-11-27" in record["fix"]

    def test_the_reference_day_compares_logical_types_too(self):
        newest = {**self.FIRST, "user_f0": "float", "ts": "timestamp[ns]"}
        assert schema_checks([("dt=2026-11-28", newest)], CONFIG, "source",
                             reference_schema=self.FIRST) == []
        (record,) = schema_checks([("dt=2026-11-28", {**newest, "user_f0": "string"})], CONFIG,
                                  "source", reference_schema=self.FIRST)
        assert record["rule"] == "expect_schema_unchanged_since_reference_day"
        assert record["observed"] == "text (string) in dt=2026-11-28"
        assert record["expected"] == "float (double)"
        assert "the reference day" in record["fix"]
        assert "validation.reference_day: none" in record["fix"]


# ---------------------------------------------------------------------------- partition key
def _partitions(root: Path, key: str, days: list[dt.date] = DAYS) -> Path:
    for day in days:
        write_parquet_atomic(pd.DataFrame({"a": [1, 2]}),
                             root / "src" / f"{key}={day}" / "part-0.parquet")
    return root / "src"


class TestPartitionKey:
    def test_the_default_key_is_dt(self):
        assert DataConfig().partition_key == "dt"

    def test_another_key_is_read_and_the_day_column_is_still_dt(self, tmp_path):
        files = resolve_input_files(_partitions(tmp_path, "date"), DAYS, "source", "parquet",
                                    partition_key="date")
        assert [f.day for f in files] == DAYS
        assert read_input_files(files)["dt"].tolist() == ["2026-11-27"] * 2 + ["2026-11-28"] * 2

    def test_date_folders_under_the_dt_key_are_named_with_the_fix(self, tmp_path):
        with pytest.raises(DataContractError) as info:
            resolve_input_files(_partitions(tmp_path, "date"), DAYS, "source", "parquet")
        error = info.value
        assert "source partition dt=2026-11-27 is missing" in error.what
        assert "2 date=YYYY-MM-DD folder(s) (date=2026-11-27 to date=2026-11-28)" in error.what
        assert "set `data.partition_key: date`" in error.fix
        assert "rename the folders to dt=YYYY-MM-DD" in error.fix
        assert error.details["other_partition_keys"] == ["date"]

    def test_a_missing_day_without_other_folders_waits_for_the_export(self, tmp_path):
        root = _partitions(tmp_path, "dt", DAYS[1:])
        (root / "_SUCCESS").write_text("")
        (root / "notes=x").mkdir()  # not a day folder
        with pytest.raises(DataContractError) as info:
            resolve_input_files(root, DAYS, "source", "parquet")
        assert "wait for the upstream export" in info.value.fix
        assert "partition_key" not in info.value.fix

    @pytest.mark.parametrize("key", ["", "dt=", "a/b", "1dt"])
    def test_an_invalid_key_is_a_config_error(self, key):
        with pytest.raises(ConfigError, match="partition_key"):
            IsbenchConfig.from_mapping({"data": {"partition_key": key}})
