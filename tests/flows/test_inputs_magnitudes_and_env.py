"""Issue 20, item 4, at the flow: sentinel values stop at validation (b), an output folder that
cannot be written is an :class:`OutputFolderError` naming it (d).

A sentinel (1e200, -999999) from an upstream unit bug reached the weights and surfaced as a
gate failure ("clip harder"); now the validate stage fails naming the column, the share of rows,
the observed and the reference range, and the earlier outputs and the champion keep their bytes
(:func:`tests.flows.test_bad_inputs.run_broken` asserts it). A read-only output root ended in a
raw ``[Errno 30]``; now nothing runs and the error names the folder and the fix.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from flows.daily_retrain import daily_retrain
from is_core.data import atomic
from is_core.errors import OutputFolderError
from tasks.stages import is_transient
from tests.flows import test_bad_inputs as bad_inputs
from tests.flows.test_bad_inputs import (
    DAY,
    PREVIOUS,
    RUN_DATE,
    assert_names,
    edit,
    run_broken,
    snapshot,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")

# the bad-input catalogue's fixtures: its tiny dataset and two good runs with a champion
tiny_root = bad_inputs.tiny_root
earlier = bad_inputs.earlier


def _sentinel(column: str, value: float, rows: int):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(float)
        frame.loc[: rows - 1, column] = value
        return frame
    return change


# ---------------------------------------------------------------------------- sentinels (b)
class TestSentinels:
    def test_1e200_fails_at_validation_naming_column_share_and_range(self, earlier, tiny_root,
                                                                      tmp_path):
        text, record = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, _sentinel("item_price", 1e200, 30)))
        assert_names(text, "stage 'validate'", "'item_price'",
                     "expect_column_abs_values_below_sanity_bound",
                     "30 of 3000 rows (1.00%) outside on " + DAY, ", 1e+200]",
                     "beyond ±1e+12", "validation.max_abs_value",
                     # and against the reference day: the share of the run date's rows
                     "expect_column_values_within_reference_range", "30 of 1500 rows (2.00%)")
        assert record["error"] == "DataValidationError" and record["stage"] == "validate"

    def test_minus_999999_fails_against_the_reference_range(self, earlier, tiny_root,
                                                             tmp_path):
        text, record = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "target", DAY, _sentinel("user_f1", -999999, 15)))
        assert_names(text, "stage 'validate'", "[target]", "'user_f1'",
                     "expect_column_values_within_reference_range",
                     f"15 of 600 rows (2.50%) outside on {DAY}, observed range [-999999, ",
                     "<= 0.10% of rows outside [", f"(reference day {PREVIOUS}: q01 ",
                     "validation.magnitude_widening")
        failed = {f["rule"] for f in record["details"]["failures"] if f["column"] == "user_f1"}
        assert "expect_column_abs_values_below_sanity_bound" not in failed  # within ±1e12

    def test_1e200_fails_on_a_first_run_without_a_reference_day(self, earlier, tiny_root,
                                                                 tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "holdout", DAY, _sentinel("user_f0", 1e200, 1)),
                             validation={"reference_day": "none"})
        assert_names(text, "stage 'validate'", "[holdout]", "'user_f0'",
                     "expect_column_abs_values_below_sanity_bound", "1 of 1200 rows (0.08%)")
        assert "expect_column_values_within_reference_range" not in text

    def test_good_days_pass(self, earlier):
        # `earlier` ran two good days, the second against the first as its reference day; the
        # magnitude records are in its results, all passed
        results = Path(earlier.output_root) / DAY / "validation" / "results.json"
        summary = json.loads(results.read_text())
        rules = [(r["rule"], r["success"]) for role in summary.values()
                 for r in role["results"]]
        for rule in ("expect_column_abs_values_below_sanity_bound",
                     "expect_column_values_within_reference_range"):
            checked = [ok for name, ok in rules if name == rule]
            assert len(checked) == 3 * 7 and all(checked), rule  # 3 roles x 7 numerics


# ---------------------------------------------------------------------------- output folder (d)
class TestOutputFolder:
    def test_an_unwritable_output_root_stops_before_anything_ran(self, earlier, tmp_path):
        (tmp_path / "a_file").write_text("")  # a folder below a file: refused even to root
        root = tmp_path / "a_file" / "runs"
        config = earlier.model_copy(update={"output_root": str(root)})
        with pytest.raises(OutputFolderError) as info:
            daily_retrain(config=config, run_date=RUN_DATE)
        assert f"cannot write the output folder {root}" in info.value.message
        assert "point `output_root`" in info.value.fix
        assert not is_transient(info.value)  # not retried: a read-only folder stays so

    def test_a_full_disk_while_validating_is_not_retried(self, earlier, tiny_root, tmp_path,
                                                          monkeypatch):
        # the validation results cannot be written: the validate task fails once (no retry),
        # the earlier outputs keep their bytes
        real = os.replace
        calls = []

        def full(src, dst, *args, **kwargs):
            parts = Path(dst).parts
            if "validation" in parts and ".staging" in parts:
                calls.append(dst)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
            return real(src, dst, *args, **kwargs)

        monkeypatch.setattr(atomic.os, "replace", full)
        before = snapshot(earlier.output_root)
        with pytest.raises(Exception) as info:
            daily_retrain(config=earlier, run_date=RUN_DATE)
        cause = info.value.__cause__
        assert isinstance(cause, OutputFolderError), info.value
        assert "stage 'validate'" in str(info.value) and "No space left" in cause.what
        assert cause.fix.startswith("free space on the disk of ")
        assert len(calls) == 1  # one try: an OutputFolderError is never retried
        assert snapshot(earlier.output_root) == before
        for record in (Path(earlier.output_root) / DAY / "failures").glob("*.json"):
            record.unlink()

    def test_a_transient_oserror_is_still_retried(self):
        assert is_transient(OSError(errno.EIO, "Input/output error"))
        assert not is_transient(OutputFolderError("cannot write x", fix="y"))

