"""Input storage types and missing values through the real flow (issue 11, items 3 and 4).

One tiny dataset stores its categoricals every supported way (``item_id`` as int64,
``item_category`` as integers with nulls, which pandas reads as float64, ``device`` as a pandas
``category`` with 0.3 % nulls, ``user_segment`` as text, a boolean ``returning_user``) and has a
few NaNs in a numeric feature. Two runs (the day before RUN_DATE, then RUN_DATE against it as
the reference day, so the null-share drift checks are active) must pass; the same data stored
as text must give identical weights and predictions (one level per level text); the strict
contract (``validation.allow_missing_features: false``) must refuse the missing values.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.daily_retrain import StageFailed, daily_retrain
from is_core.ctr.model import WeightedCTRModel
from is_core.simulate.clicklog import ClickScenario, write_scenario
from tests.conftest import RUN_DATE, small_config

pytestmark = pytest.mark.usefixtures("prefect_harness")

PREVIOUS = RUN_DATE - dt.timedelta(days=1)
TINY_ROWS = {"source": 1_500, "target": 600, "holdout": 600}
CATEGORICAL = ["user_segment", "device", "item_id", "item_category", "returning_user"]


def _typed(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The frame with its categoricals stored as int, int-with-nulls, category and bool, and
    a few missing values in ``device`` (0.3 %) and ``user_f0`` (0.5 %)."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    category = frame["item_category"].str.removeprefix("cat_").astype("int64")
    device = frame["device"].mask(rng.random(n) < 0.003)
    return frame.assign(
        item_id=frame["item_id"].str.removeprefix("item_").astype("int64"),
        item_category=pd.array(category.mask(rng.random(n) < 0.01), dtype="Int64"),
        device=device.astype("category"),
        returning_user=frame["user_f1"] > 0,
        user_f0=frame["user_f0"].mask(rng.random(n) < 0.005),
    )


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The typed frame with every categorical written as text: 17 → "17", 3.0 (an integer
    read with nulls) → "3", True → "True"; missing values stay missing."""
    def text(value: object) -> str | None:
        if pd.isna(value):
            return None
        return str(int(value)) if isinstance(value, float) else str(value)

    return frame.assign(**{col: pd.Series([text(v) for v in frame[col].astype(object)],
                                          index=frame.index, dtype="str")
                           for col in CATEGORICAL})


def _rewrite(root: Path, change) -> None:
    """Rewrite every file with ``change(frame, k)``, without pandas' schema metadata, as a
    warehouse export writes it (so an integer column with nulls reads back as float64)."""
    for k, path in enumerate(sorted(root.glob("*/dt=*/part-0.parquet"))):
        table = pa.Table.from_pandas(change(pd.read_parquet(path), k), preserve_index=False)
        pq.write_table(table.replace_schema_metadata(None), path)


@pytest.fixture(scope="module")
def typed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("typed")
    write_scenario(root, ClickScenario(seed=5), end_date=RUN_DATE, n_days=3,
                   rows_per_day=TINY_ROWS)
    shutil.rmtree(root / "truth")
    _rewrite(root, lambda frame, k: _typed(frame, seed=k))
    return root


def _config(data: Path, out: Path, **overrides):
    return small_config(data, out, data={"window_days": 2},
                        train={"n_estimators": 20, "early_stopping_rounds": 5},
                        columns={"categorical": CATEGORICAL},
                        validation={"data_docs": False, **overrides})


@pytest.fixture(scope="module")
def typed_runs(typed_root: Path, tmp_path_factory: pytest.TempPathFactory):
    config = _config(typed_root, tmp_path_factory.mktemp("typed_runs"))
    results = [daily_retrain(config=config, run_date=day) for day in (PREVIOUS, RUN_DATE)]
    return config, results


class TestTypedInputsRun:
    def test_the_files_hold_the_types_under_test(self, typed_root):
        frame = pd.read_parquet(typed_root / "source" / f"dt={RUN_DATE}" / "part-0.parquet")
        assert frame["item_id"].dtype == "int64"
        assert frame["item_category"].dtype == "float64"  # int64 with nulls, as pandas reads it
        assert isinstance(frame["device"].dtype, pd.CategoricalDtype)
        assert frame["device"].isna().any() and frame["user_f0"].isna().any()
        assert frame["returning_user"].dtype == bool
        assert frame["user_segment"].dtype == "str"

    def test_both_days_pass_validation_and_publish(self, typed_runs):
        _, results = typed_runs
        for result in results:
            report = json.loads((Path(result["run_dir"]) / "report.json").read_text())
            for role, summary in report["validation"].items():
                assert summary["success"], (role, [r for r in summary["results"]
                                                   if not r["success"]])
        report = json.loads((Path(results[1]["run_dir"]) / "report.json").read_text())
        null_drift = [r for r in report["validation"]["source"]["results"]
                      if r["rule"] == "expect_column_values_to_not_be_null"
                      and r["column"] == "device"]
        assert null_drift and all(r["success"] for r in null_drift)  # checked, and stable

    def test_weights_are_finite_and_the_model_has_level_texts(self, typed_runs, typed_root):
        _, results = typed_runs
        run_dir = Path(results[1]["run_dir"])
        weights = pd.read_parquet(run_dir / "weights.parquet")
        assert np.isfinite(weights["final_weight"]).all()
        meta = json.loads((run_dir / "model.meta.json").read_text())
        categories = meta["features"]["categories"]
        assert categories["returning_user"] == ["False", "True"]
        assert not any("." in level for level in categories["item_category"])  # no "3.0"
        assert all(level.isdigit() for level in categories["item_id"])
        holdout = pd.read_parquet(typed_root / "holdout" / f"dt={RUN_DATE}" / "part-0.parquet")
        p = WeightedCTRModel.load(run_dir / "model.ubj").predict_proba(holdout)
        assert np.all((p > 0) & (p < 1))


class TestStorageTypeDoesNotChangeTheCodes:
    def test_the_same_data_as_text_gives_identical_weights_and_predictions(
            self, typed_runs, typed_root, tmp_path):
        config, results = typed_runs
        text_root = tmp_path / "text"
        shutil.copytree(typed_root, text_root)
        _rewrite(text_root, lambda frame, _: _as_text(frame))
        text_config = _config(text_root, tmp_path / "runs")
        text_dir = Path(daily_retrain(config=text_config, run_date=PREVIOUS)["run_dir"])
        typed_dir = Path(results[0]["run_dir"])
        pd.testing.assert_frame_equal(pd.read_parquet(typed_dir / "weights.parquet"),
                                      pd.read_parquet(text_dir / "weights.parquet"))
        holdout = pd.read_parquet(typed_root / "holdout" / f"dt={PREVIOUS}" / "part-0.parquet")
        as_text = _as_text(holdout)
        typed_model = WeightedCTRModel.load(typed_dir / "model.ubj")
        text_model = WeightedCTRModel.load(text_dir / "model.ubj")
        np.testing.assert_array_equal(typed_model.predict_proba(holdout),
                                      text_model.predict_proba(as_text))
        np.testing.assert_array_equal(typed_model.predict_proba(holdout),
                                      typed_model.predict_proba(as_text))


class TestStrictContract:
    def test_allow_missing_features_false_refuses_the_missing_values(self, typed_root,
                                                                     tmp_path):
        config = _config(typed_root, tmp_path / "runs", allow_missing_features=False,
                         reference_day="none")
        with pytest.raises(StageFailed) as info:
            daily_retrain(config=config, run_date=RUN_DATE)
        cause = info.value.__cause__  # the stage's error in full, as the CLI prints it
        text = f"{info.value}\n{getattr(cause, 'message', cause)}"
        for needle in ("stage 'validate'", "'user_f0'", "'device'", "'item_category'",
                       "expect_column_values_to_not_be_null", "allow_missing_features"):
            assert needle in text, f"{needle!r} not in the error:\n{text}"
