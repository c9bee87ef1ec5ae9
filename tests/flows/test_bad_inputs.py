"""The bad-input catalogue: one test per way the daily inputs break.

Each kind must end in a clear error (the message names the column/partition/parameter and the
rule) or a failing gate, and must leave every earlier output untouched: the bytes of the two
earlier runs' folders (model.ubj, report.json, ...) and of the model registry (champion alias)
are compared before and after. Most kinds run the real flow on a corrupted copy of a tiny dataset;
they fail at load or validation, before any training, so each costs about a second. Kinds that
only a later stage can see (disjoint support, heavy-tailed weights) call that stage directly or
run the flow once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.daily_retrain import StageFailed, daily_retrain
from is_core.config import IsbenchConfig
from is_core.data.stage import locate_inputs
from is_core.errors import ConfigError, WeightDiagnosticsError
from is_core.release.registry import ModelRegistry
from is_core.simulate.clicklog import ClickScenario, write_scenario
from is_core.weights.stage import compute_weights
from tests.conftest import RUN_DATE, small_config

pytestmark = pytest.mark.usefixtures("prefect_harness")

DAY = RUN_DATE.isoformat()
PREVIOUS = RUN_DATE - dt.timedelta(days=1)
TINY_ROWS = {"source": 1_500, "target": 600, "holdout": 600}


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days ending at RUN_DATE; read-only (tests corrupt a copy)."""
    root = tmp_path_factory.mktemp("tiny")
    write_scenario(root, ClickScenario(seed=5), end_date=RUN_DATE, n_days=3,
                   rows_per_day=TINY_ROWS)
    shutil.rmtree(root / "truth")
    return root


@pytest.fixture(scope="module")
def earlier(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two good runs (the day before RUN_DATE, then RUN_DATE) with a champion in the registry.

    The first run is the reference day of the second and of every broken run below, so the
    drift checks are active as in production.
    """
    out = tmp_path_factory.mktemp("runs")
    config = small_config(tiny_root, out, data={"window_days": 2},
                          train={"n_estimators": 20, "early_stopping_rounds": 5})
    for day in (PREVIOUS, RUN_DATE):
        daily_retrain(config=config, run_date=day)
    assert ModelRegistry(config.promotion.registry_root(config.output_root)).champion()
    return config


def snapshot(output_root: str | Path) -> dict[str, str]:
    """SHA-256 of every published file under ``output_root``: run folders and the registry.

    Failure records (``*/failures/``) are what a failed run is supposed to add; dot-folders
    (staging, locks, caches) are internal.
    """
    root = Path(output_root)
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0].startswith(".") or "failures" in rel.parts:
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def edit(data: Path, role: str, day: str | None, change: Callable[[pd.DataFrame], pd.DataFrame]
         ) -> None:
    """Rewrite ``role``'s partition ``day`` (every day when None) with ``change(frame)``."""
    parts = [data / role / f"dt={day}"] if day else sorted((data / role).glob("dt=*"))
    for part in parts:
        path = part / "part-0.parquet"
        change(pd.read_parquet(path)).to_parquet(path, index=False)


def run_broken(earlier: IsbenchConfig, tiny_root: Path, tmp_path: Path,
               corrupt: Callable[[Path], None] | None = None, **overrides) -> tuple[str, dict]:
    """Run RUN_DATE on a corrupted copy; return the error text and the failure record.

    Asserts that the run failed with :class:`StageFailed`, that nothing published changed and
    that exactly one failure record was written (it is removed afterwards).
    """
    data = tmp_path / "data"
    shutil.copytree(tiny_root, data)
    if corrupt:
        corrupt(data)
    raw = earlier.model_dump(mode="json")
    raw["data"]["root"] = str(data)
    raw["validation"]["data_docs"] = False  # 1.4 s each; built in the tests that look at them
    for key, value in overrides.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    config = IsbenchConfig.model_validate(raw)
    before = snapshot(earlier.output_root)
    registry = ModelRegistry(earlier.promotion.registry_root(earlier.output_root))
    champion = registry.alias()
    with pytest.raises(StageFailed) as info:
        daily_retrain(config=config, run_date=RUN_DATE)
    assert snapshot(earlier.output_root) == before, "a failed run changed published outputs"
    assert registry.alias() == champion
    failures = Path(earlier.output_root) / DAY / "failures"
    records = sorted(failures.glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    kept = record["details"].get("validation_dir")
    if kept:  # the validation results (and Data Docs) of a failed run stay beside its record
        assert (Path(kept) / "results.json").is_file()
        if config.validation.data_docs:
            assert (Path(kept) / "data_docs" / "index.html").is_file()
    shutil.rmtree(failures)
    cause = info.value.__cause__  # the stage's error in full, as the CLI prints it
    return f"{info.value}\n{getattr(cause, 'message', '')}", record


def assert_names(text: str, *needles: str) -> None:
    for needle in needles:
        assert needle in text, f"{needle!r} not in the error:\n{text}"


# ---------------------------------------------------------------------------- schema
class TestSchema:
    def test_missing_column(self, earlier, tiny_root, tmp_path):
        text, record = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: f.drop(columns=["item_price"])))
        assert_names(text, "stage 'load'", "['item_price']", f"dt={DAY}")
        assert record["error"] == "DataContractError"

    def test_unexpected_column(self, earlier, tiny_root, tmp_path):
        text, record = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: f.assign(debug_score=1.0)),
                                  validation={"data_docs": True})
        assert_names(text, "stage 'validate'", "'debug_score'", "expect_no_unexpected_columns",
                     "validation.extra_columns")
        assert record["error"] == "DataValidationError"

    def test_wrong_dtype(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", None, lambda f: f.assign(position=f["position"].astype(str))))
        assert_names(text, "'position'", "expect_column_values_to_be_in_type_list")

    def test_schema_changed_between_days(self, earlier, tiny_root, tmp_path):
        # prices exported as text on one day: caught per file, naming both days and both types
        # (float32 one day is the same logical type, no change: tests/flows/test_inputs_writers.py)
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: f.assign(item_price=f["item_price"].astype(str))))
        assert_names(text, "'item_price'", "expect_schema_unchanged_across_days",
                     f"text (string) in dt={DAY}", f"float (double) (as in dt={PREVIOUS})")

    def test_categorical_int_one_day_and_text_another(self, earlier, tiny_root, tmp_path):
        # ids exported as int64 from today on, as text before: a schema change (an int 17 and a
        # text "17" are one level, but a text column may hold "017"), named with day and fix
        def int_ids(f):
            return f.assign(item_id=f["item_id"].str.removeprefix("item_").astype("int64"))
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             lambda d: edit(d, "source", DAY, int_ids))
        assert_names(text, "'item_id'", "expect_schema_unchanged_across_days",
                     f"number (int64) in dt={DAY}", "text (string)",
                     "cast it to one type upstream")

    def test_holdout_without_labels(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "holdout", None, lambda f: f.drop(columns=["clicked"])))
        assert_names(text, "stage 'load'", "holdout", "['clicked']")


# ---------------------------------------------------------------------------- labels
class TestLabels:
    def test_nan_label(self, earlier, tiny_root, tmp_path):
        def nan_labels(f):
            f["clicked"] = f["clicked"].astype(float)
            f.loc[:4, "clicked"] = np.nan
            return f
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             lambda d: edit(d, "source", DAY, nan_labels))
        assert_names(text, "'clicked'", "expect_column_values_to_not_be_null")

    def test_label_outside_0_1(self, earlier, tiny_root, tmp_path):
        def twos(f):
            f.loc[:9, "clicked"] = 2
            return f
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(d, "source", DAY, twos))
        assert_names(text, "'clicked'", "expect_column_values_to_be_in_set", "10 unexpected")

    def test_all_labels_zero(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", None, lambda f: f.assign(clicked=np.int8(0))))
        assert_names(text, "'clicked'", "expect_column_mean_to_be_between", "observed 0.0")


# ---------------------------------------------------------------------------- row counts
class TestRowCounts:
    def test_empty_source(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", None, lambda f: f.iloc[:0]))
        assert_names(text, "[source]", "expect_table_row_count_to_be_between", "observed 0")

    def test_empty_target(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "target", None, lambda f: f.iloc[:0]))
        assert_names(text, "[target]", "expect_table_row_count_to_be_between", "observed 0")

    def test_partial_day_against_the_reference_day(self, earlier, tiny_root, tmp_path):
        # 10 % of a day arrived: within the static bounds, outside the reference-day bound
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: f.iloc[: len(f) // 10]))
        assert_names(text, "[source]", "expect_table_row_count_to_be_between", "observed 150",
                     "reference_day: none")


# ---------------------------------------------------------------------------- values
class TestValues:
    def test_nan_feature_under_the_strict_contract(self, earlier, tiny_root, tmp_path):
        # by default a NaN feature runs (tests/flows/test_input_types.py); the strict contract
        # of `validation.allow_missing_features: false` refuses it
        def nan_feature(f):
            f.loc[:2, "user_f0"] = np.nan
            return f
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             lambda d: edit(d, "target", DAY, nan_feature),
                             validation={"allow_missing_features": False})
        assert_names(text, "[target]", "'user_f0'", "expect_column_values_to_not_be_null",
                     "allow_missing_features")

    def test_null_share_jump_in_a_categorical(self, earlier, tiny_root, tmp_path):
        # a broken join from today on: 20 % of `device` missing, none on the reference day
        def lost_devices(f):
            f.loc[: len(f) // 5 - 1, "device"] = None
            return f
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             lambda d: edit(d, "source", DAY, lost_devices))
        assert_names(text, "[source]", "'device'", "expect_column_values_to_not_be_null",
                     "300 unexpected value(s) (20 %)", "from 0.00% on the reference day",
                     "validation.reference_day: none")

    def test_inf_feature(self, earlier, tiny_root, tmp_path):
        def inf_feature(f):
            f.loc[:2, "item_popularity"] = np.inf
            return f
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             lambda d: edit(d, "source", DAY, inf_feature))
        assert_names(text, "'item_popularity'", "expect_column_values_to_be_between", "inf")

    @pytest.mark.parametrize("bad", [0.0, -0.1, 1.5], ids=["zero", "negative", "above_one"])
    def test_propensity_outside_0_1(self, earlier, tiny_root, tmp_path, bad):
        def propensity(f):
            f.loc[:2, "logging_propensity"] = bad
            return f
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             lambda d: edit(d, "source", DAY, propensity))
        assert_names(text, "'logging_propensity'", "expect_column_values_to_be_between",
                     "3 unexpected", "strict_min")

    def test_duplicate_impression_ids(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: pd.concat([f, f.iloc[:100]], ignore_index=True)))
        assert_names(text, "'impression_id'", "expect_column_values_to_be_unique",
                     "200 unexpected")

    def test_unseen_categories_at_evaluation(self, earlier, tiny_root, tmp_path):
        def new_items(f):
            f.loc[: len(f) // 5, "item_id"] = "item_new"
            return f
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             lambda d: edit(d, "holdout", DAY, new_items))
        assert_names(text, "[holdout]", "'item_id'", "expect_categories_seen_in_source",
                     "item_new")

    def test_categorical_cardinality_explosion(self, earlier, tiny_root, tmp_path):
        # a row id leaked into `device`: 1500 distinct values against 3 on the reference day
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: f.assign(device=[f"d{i}" for i in range(len(f))])))
        assert_names(text, "'device'", "expect_column_unique_value_count_to_be_between",
                     "observed 1500")

    def test_drift_against_the_reference_day(self, earlier, tiny_root, tmp_path):
        # prices logged in cents from today on: every row plausible, the mean moved 100-fold
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: f.assign(item_price=f["item_price"] * 100)))
        assert_names(text, "'item_price'", "expect_column_mean_to_be_between",
                     "reference day", "validation.reference_day: none")


# ---------------------------------------------------------------------------- partitions
class TestPartitions:
    def test_corrupt_parquet(self, earlier, tiny_root, tmp_path):
        def garbage(d):
            (d / "target" / f"dt={DAY}" / "part-0.parquet").write_bytes(b"PAR1 not really")
        text, record = run_broken(earlier, tiny_root, tmp_path, garbage)
        assert_names(text, "stage 'load'", "cannot read", f"dt={DAY}", "re-export")
        assert record["error"] == "DataContractError"

    def test_empty_partition_folder(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: (
            d / "holdout" / f"dt={DAY}" / "part-0.parquet").unlink())
        assert_names(text, "stage 'load'", f"dt={DAY}", "holds no .parquet file")

    def test_missing_date_partition(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: shutil.rmtree(
            d / "source" / f"dt={DAY}"))
        assert_names(text, "stage 'load'", f"source partition dt={DAY} is missing")

    def test_stale_partition(self, earlier, tiny_root, tmp_path):
        # the run date's partition holds events of three days earlier (a re-exported old day)
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "target", DAY, lambda f: f.assign(ts=f["ts"] - pd.Timedelta(days=3))))
        assert_names(text, "[target]", "'ts'", "expect_column_max_to_be_between",
                     "validation.freshness_hours")

    def test_events_after_the_run_date(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path, lambda d: edit(
            d, "source", DAY, lambda f: f.assign(ts=f["ts"] + pd.Timedelta(hours=30))))
        assert_names(text, "[source]", "'ts'", "expect_column_max_to_be_between")


# ---------------------------------------------------------------------------- configuration
class TestConfiguration:
    def test_config_naming_an_unknown_column(self, earlier, tiny_root, tmp_path):
        text, _ = run_broken(earlier, tiny_root, tmp_path,
                             columns={"numeric": ["user_f0", "user_f9"]})
        assert_names(text, "stage 'load'", "['user_f9']", "correct `columns`")

    def test_validation_bounds_naming_an_unknown_column(self):
        with pytest.raises(ConfigError, match=r"numeric_ranges names \['pricee'\]"):
            IsbenchConfig.from_mapping({"validation": {"numeric_ranges": {"pricee": [0, None]}}})

    @pytest.mark.parametrize("weights", [{"clip_quantile": 0.3}, {"clip": "sqrt"}],
                             ids=["quantile_below_half", "unknown_method"])
    def test_invalid_clip_parameters(self, weights):
        with pytest.raises(ConfigError, match=r"weights\.clip"):
            IsbenchConfig.from_mapping({"weights": weights})


# ---------------------------------------------------------------------------- weights
class TestWeights:
    def test_disjoint_source_target_support(self, earlier, tiny_root, tmp_path):
        # the target lives where the source never goes: validation has no reference (to let
        # the data through to the proposal), and the domain-AUC gate refuses the weights
        def shift(d):
            for role in ("target", "holdout"):
                edit(d, role, None, lambda f: f.assign(user_f0=f["user_f0"] + 40.0))
        text, record = run_broken(earlier, tiny_root, tmp_path, shift,
                                  validation={"reference_day": "none"})
        assert_names(text, "stage 'weights'", "domain_auc")
        assert record["error"] == "WeightDiagnosticsError"

    def test_extreme_weights_fail_the_khat_gate(self, earlier, tiny_root, tmp_path):
        # weights with a Pareto(alpha = 1.1) tail: true k = 1/alpha = 0.91 > 0.7. PSIS fits the
        # largest M = 3 sqrt(S) = 164 of S = 3000 draws; k-hat's standard error is about
        # k / sqrt(M) = 0.07, so k-hat > 0.7 (3 standard errors below k) fails with ~0.1 %
        # probability for a random seed; this seed is fixed.
        inputs = locate_inputs(earlier.data, earlier.columns, RUN_DATE)
        n = 2 * TINY_ROWS["source"]
        rng = np.random.default_rng(11)
        log_w = np.log(rng.pareto(1.1, size=n) + 1.0)
        path = tmp_path / "log_ratio.parquet"
        pd.DataFrame({"row_id": np.arange(n), "log_w": log_w}).to_parquet(path)
        before = snapshot(earlier.output_root)
        with pytest.raises(WeightDiagnosticsError, match="khat") as info:
            compute_weights(earlier.weights, earlier.columns, inputs,
                            {"path": str(path), "domain_auc": 0.7},  # type: ignore[typeddict-item]
                            tmp_path, random_state=earlier.random_state)
        assert "heavy a tail" in str(info.value)
        assert snapshot(earlier.output_root) == before


# ---------------------------------------------------------------------------- quarantine
class TestQuarantineLimit:
    def test_more_bad_rows_than_the_quarantine_share(self, earlier, tiny_root, tmp_path):
        def bad_rows(f):
            f.loc[:59, "user_f1"] = np.nan  # 60 of 1500 rows of the day = 2 % of the window
            return f
        text, record = run_broken(earlier, tiny_root, tmp_path,
                                  lambda d: edit(d, "source", DAY, bad_rows),
                                  validation={"mode": "quarantine", "max_quarantine_share": 0.01,
                                              "allow_missing_features": False})
        assert_names(text, "quarantine_share_at_most", "'user_f1'", "60 of 3000 rows")
        assert Path(record["details"]["validation_dir"]).parent.name == "failures"
