"""Inputs from other writers through the real flow (issue 20, items 1 and 4a).

One day of the window written by another writer: pandas with categoricals (Parquet
dictionary-encoded strings) and float32 numbers, pyarrow with ``pa.dictionary`` columns, or
Spark (INT96 timestamps, read as ``timestamp[ns]`` next to pandas' ``timestamp[us]``, 32-bit
integers, no pandas metadata). The same logical type is no schema change: both runs over that day
(one comparing it with the day before, one with the day after and with it as the reference day)
pass. A real change in such a file still fails, naming the column, both days and both types, and
leaves the earlier outputs and the champion byte-identical (the helpers of
``tests/flows/test_bad_inputs.py``). Day folders named ``date=YYYY-MM-DD`` fail at load naming
what was found and ``data.partition_key``, and run with ``data.partition_key: date``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.daily_retrain import daily_retrain
from is_core.config import DEFAULT_CATEGORICAL
from is_core.data.io import InputFile, read_schema_of
from tests.conftest import RUN_DATE, small_config
from tests.flows import test_bad_inputs
from tests.flows.test_bad_inputs import DAY, PREVIOUS, assert_names, edit, run_broken

pytestmark = pytest.mark.usefixtures("prefect_harness")

# the bad-input catalogue's fixtures: its tiny dataset, and two good runs with a champion
tiny_root = test_bad_inputs.tiny_root
earlier = test_bad_inputs.earlier

ROLES = ("source", "target", "holdout")
FLOATS = ["user_f0", "user_f1", "user_f2", "user_f3", "item_price", "item_popularity"]
Writer = Callable[[pd.DataFrame, Path], None]


# ---------------------------------------------------------------------------- writers
def pandas_categoricals(frame: pd.DataFrame, path: Path) -> None:
    """pandas with its categoricals as ``category`` (Parquet dictionary-encoded strings, read
    back as ``dictionary<values=string>``) and its measurements as float32."""
    frame.astype({c: "category" for c in DEFAULT_CATEGORICAL if c in frame}
                 ).astype({c: "float32" for c in FLOATS if c in frame}
                          ).to_parquet(path, index=False)


def arrow_dictionary(frame: pd.DataFrame, path: Path) -> None:
    """pyarrow with the text columns as ``pa.dictionary(int16, string)`` and the position as
    uint8."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    types = {"position": pa.uint8(),
             **{c: pa.dictionary(pa.int16(), pa.string()) for c in DEFAULT_CATEGORICAL}}
    for col, type_ in types.items():
        table = table.set_column(table.schema.get_field_index(col), col,
                                 table[col].cast(type_))
    pq.write_table(table, path)


def spark(frame: pd.DataFrame, path: Path) -> None:
    """Spark: INT96 timestamps, IntegerType (int32) position and label, plain ``string``
    columns and no pandas metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    types = {"position": pa.int32(), "clicked": pa.int32(),
             **{c: pa.string() for c in DEFAULT_CATEGORICAL}}
    table = table.cast(pa.schema([pa.field(f.name, types.get(f.name, f.type))
                                  for f in table.schema]))
    pq.write_table(table, path, use_deprecated_int96_timestamps=True)


def rewrite(data: Path, day: str, writer: Writer, change: Callable[[pd.DataFrame], pd.DataFrame]
            = lambda f: f, roles: tuple[str, ...] = ROLES) -> None:
    """Rewrite ``day`` of ``roles`` with ``writer`` (after ``change``)."""
    for role in roles:
        path = data / role / f"dt={day}" / "part-0.parquet"
        writer(change(pd.read_parquet(path)), path)


FIRST_DAY = PREVIOUS - dt.timedelta(days=1)
STORED_AS = {  # (role, day): what pyarrow reads back from a file of each writer
    ("source", PREVIOUS): {  # pandas_categoricals
        "device": "dictionary<values=string, indices=int8, ordered=0>", "item_price": "float",
        "ts": "timestamp[us]", "clicked": "int8"},
    ("target", PREVIOUS): {  # arrow_dictionary
        "item_id": "dictionary<values=string, indices=int16, ordered=0>", "position": "uint8",
        "user_f0": "double"},
    ("source", RUN_DATE): {  # spark
        "ts": "timestamp[ns]", "position": "int32", "clicked": "int32", "device": "string"},
    ("source", FIRST_DAY): {  # as the simulator writes it
        "ts": "timestamp[us]", "position": "int64", "clicked": "int8", "device": "string"},
}


def _fresh_copy(tiny_root: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(tiny_root, data)
    return data


def _run_days(data_root: Path, out: Path, days: list[dt.date], **data) -> list[dict]:
    """Run ``days`` in turn over ``data_root`` (2-day window) into ``out``."""
    config = small_config(data_root, out, data={"window_days": 2, **data},
                          train={"n_estimators": 20, "early_stopping_rounds": 5},
                          validation={"data_docs": False})
    return [daily_retrain(config=config, run_date=day) for day in days]


def _assert_validation_passed(result: dict) -> None:
    report = json.loads((Path(result["run_dir"]) / "report.json").read_text())
    for role, summary in report["validation"].items():
        assert summary["success"], (role, [r for r in summary["results"] if not r["success"]])


@pytest.fixture(scope="module")
def writers_root(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset with PREVIOUS written by pandas (source) and pyarrow (target, holdout),
    RUN_DATE by Spark; the first day as the simulator wrote it."""
    data = _fresh_copy(tiny_root, tmp_path_factory.mktemp("writers"))
    rewrite(data, PREVIOUS.isoformat(), pandas_categoricals, roles=("source",))
    rewrite(data, PREVIOUS.isoformat(), arrow_dictionary, roles=("target", "holdout"))
    rewrite(data, DAY, spark)
    return data


@pytest.fixture(scope="module")
def writers_runs(writers_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """PREVIOUS (plain first day against the pandas/pyarrow day), then RUN_DATE (that day
    against the Spark day, and as its reference day)."""
    return _run_days(writers_root, tmp_path_factory.mktemp("writers_runs"),
                     [PREVIOUS, RUN_DATE])


# ---------------------------------------------------------------------------- logical types
class TestAnotherWriterIsNoSchemaChange:
    def test_the_files_hold_the_types_under_test(self, writers_root):
        for (role, day), stored in STORED_AS.items():
            schema = read_schema_of(InputFile(
                writers_root / role / f"dt={day}" / "part-0.parquet", day))
            assert {c: schema[c] for c in stored} == stored, (role, day)

    def test_both_runs_pass_validation_and_publish(self, writers_runs):
        assert [r["run_date"] for r in writers_runs] == [PREVIOUS.isoformat(), DAY]
        for result in writers_runs:
            _assert_validation_passed(result)
            assert (Path(result["run_dir"]) / "model.ubj").is_file()

    def test_the_model_has_one_level_per_text(self, writers_runs, tiny_root):
        # a dictionary-encoded "item_00017" and a plain one are the same level
        meta = json.loads((Path(writers_runs[1]["run_dir"]) / "model.meta.json").read_text())
        levels = meta["features"]["categories"]["item_id"]
        plain = pd.concat([pd.read_parquet(tiny_root / "source" / f"dt={day}")
                           for day in (PREVIOUS, RUN_DATE)])
        assert set(levels) <= set(plain["item_id"].astype(str))
        assert len(levels) == len(set(levels))


class TestARealChangeStillFails:
    def test_prices_as_text_in_a_spark_day(self, earlier, tiny_root, tmp_path):
        # INT96 timestamps and int32 labels are the same types; prices as text are not
        text, record = run_broken(earlier, tiny_root, tmp_path, lambda d: rewrite(
            d, DAY, spark, lambda f: f.assign(item_price=f["item_price"].astype(str)),
            roles=("source",)))
        assert_names(text, "stage 'validate'", "'item_price'",
                     "expect_schema_unchanged_across_days",
                     f"text (string) in dt={DAY}", f"float (double) (as in dt={PREVIOUS})",
                     "expect_schema_unchanged_since_reference_day")
        assert record["error"] == "DataValidationError"
        assert "'ts'" not in text and "'clicked'" not in text

    def test_timestamps_as_text(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "target", DAY, lambda f: f.assign(ts=f["ts"].dt.strftime("%Y-%m-%d %H:%M:%S"))))
        assert_names(text, "[target]", "'ts'", "expect_schema_unchanged_across_days",
                     f"text (string) in dt={DAY}",
                     f"timestamp (timestamp[us]) (as in dt={PREVIOUS})")

    def test_ids_as_text(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "holdout", DAY, lambda f: f.assign(impression_id=f["impression_id"].astype(str))))
        assert_names(text, "[holdout]", "'impression_id'", "expect_schema_unchanged_across_days",
                     f"text (string) in dt={DAY}", f"integer (int64) (as in dt={PREVIOUS})")


# ---------------------------------------------------------------------------- partition key
def _rename_partitions(data: Path, key: str = "date") -> None:
    for role in ROLES:
        for part in sorted((data / role).glob("dt=*")):
            part.rename(part.with_name(part.name.replace("dt=", f"{key}=", 1)))


class TestPartitionKey:
    def test_date_folders_fail_naming_what_was_found_and_the_setting(
            self, earlier, tiny_root, tmp_path):
        text, record = run_broken(earlier, tiny_root, tmp_path, _rename_partitions)
        assert_names(text, "stage 'load'", f"source partition dt={PREVIOUS} is missing",
                     f"3 date=YYYY-MM-DD folder(s) (date={PREVIOUS - dt.timedelta(days=1)} "
                     f"to date={DAY})", "set `data.partition_key: date`",
                     "rename the folders to dt=YYYY-MM-DD")
        assert record["error"] == "DataContractError"
        assert record["details"]["other_partition_keys"] == ["date"]

    def test_date_folders_run_with_the_partition_key(self, tiny_root, tmp_path):
        data = _fresh_copy(tiny_root, tmp_path)
        _rename_partitions(data)
        (result,) = _run_days(data, tmp_path / "runs", [RUN_DATE], partition_key="date")
        _assert_validation_passed(result)
        weights = pd.read_parquet(Path(result["run_dir"]) / "weights.parquet")
        assert sorted(weights["dt"].unique()) == [PREVIOUS.isoformat(), DAY]

    def test_records_name_the_days_by_the_partition_key(self, earlier, tiny_root, tmp_path):
        def renamed_with_text_prices(d: Path) -> None:
            edit(d, "source", DAY, lambda f: f.assign(item_price=f["item_price"].astype(str)))
            _rename_partitions(d)

        text, _ = run_broken(earlier, tiny_root, tmp_path, renamed_with_text_prices,
                             data={"partition_key": "date"})
        assert_names(text, "'item_price'", f"text (string) in date={DAY}",
                     f"(as in date={PREVIOUS})")
