"""Validation: the contract's statistics (is_core.data.contract), the GX suites, and one quarantined
flow run end to end."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from is_core.config import IsbenchConfig
from is_core.data.contract import (
    DRIFT_Z,
    day_profile,
    drift_bounds,
    freshness_window,
    local_naive_timestamps,
    quarantine_rows,
    row_problems,
    schema_checks,
    unseen_category_records,
)
from is_core.errors import DataValidationError
from is_core.simulate.clicklog import ClickScenario
from tests.conftest import REPO_ROOT, RUN_DATE, small_config

CONFIG = IsbenchConfig()
STRICT = IsbenchConfig.model_validate({"validation": {"allow_missing_features": False}})
"""The strict contract of before issue 11: a missing feature value fails (or is quarantined)."""


def scenario_frame(n: int, role: str = "source", seed: int = 0) -> pd.DataFrame:
    """``n`` impressions of ``role`` with exactly the columns its files carry."""
    world = ClickScenario(seed=1).build()
    frame = world.sample(n, role, np.random.default_rng(seed), day=RUN_DATE)
    drop = ["true_weight", "_user", "_item", "_position0"]
    drop += ["logging_propensity"] if role != "source" else []
    drop += ["clicked"] if role == "target" else []
    return frame.drop(columns=drop)


# ---------------------------------------------------------------------------- drift bounds
class TestDriftBounds:
    def test_bounds_follow_the_documented_formula(self):
        vc = CONFIG.validation  # r = 3, k = 0.5, z = 4
        reference = {"day": "2026-11-27", "rows": 1000, "ctr": 0.03,
                     "numeric": {"x": {"mean": 2.0, "std": 0.5}},
                     "categorical": {"c": {"cardinality": 10}}}
        b = drift_bounds(reference, vc)
        assert b["rows"] == [333, 3000]
        assert b["cardinality"]["c"] == [4, 30]
        m = DRIFT_Z * math.sqrt(4 / 1000)  # z sqrt((1 + r) / n0)
        assert b["ctr"] == pytest.approx([0.0, 0.09 + m * math.sqrt(0.03 * 0.97)])
        assert b["numeric_mean"]["x"] == pytest.approx([2.0 - 0.5 * (0.5 + m),
                                                       2.0 + 0.5 * (0.5 + m)])

    def test_no_drift_day_passes_over_many_seeds(self):
        """Same distribution on both days: the drift bounds must hold for every seed.

        Per bound the false-alarm probability is below P(|Z| > 4) = 6e-5 from the noise margin
        alone (the k = 0.5 sd allowance only adds to it), so over 200 seeds x 2 bounds the chance
        of any alarm is below 2.5 %; the fixed seeds make the outcome reproducible.
        """
        alarms = 0
        for seed in range(200):
            rng = np.random.default_rng(seed)
            n0, n1 = rng.integers(50, 5000, size=2)
            ref = pd.DataFrame({"user_f0": rng.normal(1.0, 2.0, n0),
                                "clicked": (rng.random(n0) < 0.03).astype("int8")})
            today = pd.DataFrame({"user_f0": rng.normal(1.0, 2.0, n1),
                                  "clicked": (rng.random(n1) < 0.03).astype("int8")})
            b = drift_bounds(day_profile(ref, CONFIG, "source"), CONFIG.validation)
            lo, hi = b["numeric_mean"]["user_f0"]
            alarms += not lo <= today["user_f0"].mean() <= hi
            if n0 / 3 <= n1 <= 3 * n0 and b["ctr"] is not None:
                lo, hi = b["ctr"]
                alarms += not lo <= today["clicked"].mean() <= hi
        assert alarms == 0

    def test_a_one_sd_shift_is_detected(self):
        """A mean shift of one reference sd on 2,000-row days exceeds the bound
        0.5 sd + 4 sd sqrt(4/2000) = 0.68 sd by 0.32 sd, i.e. 10 standard errors of the
        difference of two day means (sd sqrt(2/2000) = 0.032 sd)."""
        rng = np.random.default_rng(0)
        ref = pd.DataFrame({"user_f0": rng.normal(0, 1, 2000)})
        b = drift_bounds(day_profile(ref, CONFIG, "source"), CONFIG.validation)
        lo, hi = b["numeric_mean"]["user_f0"]
        assert not lo <= rng.normal(1.0, 1, 2000).mean() <= hi
        assert not lo <= rng.normal(-1.0, 1, 2000).mean() <= hi

    def test_profile_of_a_scenario_day(self):
        frame = scenario_frame(3000)
        profile = day_profile(frame, CONFIG, "source", schema={"a": "double"}, day="x")
        assert profile["rows"] == 3000 and profile["day"] == "x"
        assert profile["ctr"] == pytest.approx(frame["clicked"].mean())
        assert profile["categorical"]["device"]["cardinality"] == 3
        assert profile["numeric"]["position"]["std"] == pytest.approx(frame["position"].std())
        json.dumps(profile)  # stored as the next run's reference


# ---------------------------------------------------------------------------- quarantine
class TestQuarantine:
    @pytest.fixture
    def dirty(self) -> pd.DataFrame:
        frame = scenario_frame(1000)
        frame.loc[0:2, "user_f1"] = np.nan                # 3 nulls
        frame.loc[3:4, "clicked"] = 2                     # 2 labels outside {0, 1}
        frame.loc[5, "item_popularity"] = np.inf          # 1 non-finite feature
        frame.loc[6, "logging_propensity"] = 0.0          # 1 propensity outside (0, 1]
        frame.loc[7, "user_f1"] = np.nan                  # ...
        frame.loc[7, "clicked"] = 2                       # a row breaking two rules
        frame.loc[9:10, "impression_id"] = frame.loc[8, "impression_id"]  # 2 repeats of row 8
        return frame

    def test_counts_every_rule(self, dirty):
        counts = row_problems(dirty, STRICT, "source").sum()
        assert counts["null:user_f1"] == 4
        assert counts["label_domain:clicked"] == 3
        assert counts["not_finite_or_out_of_range:item_popularity"] == 1
        assert counts["propensity_range:logging_propensity"] == 1
        assert counts["duplicate_id:impression_id"] == 2

    def test_drops_exactly_the_bad_rows_under_the_share(self, dirty):
        config = IsbenchConfig.model_validate(
            {"validation": {"mode": "quarantine", "max_quarantine_share": 0.02,
                            "allow_missing_features": False}})
        kept, summary = quarantine_rows(dirty, config, "source")
        assert summary["dropped"] == 10 and summary["rows"] == 1000  # rows 0-7, 9 and 10
        assert summary["share"] == pytest.approx(0.010)
        assert len(kept) == 990
        assert not row_problems(kept, config, "source").any().any()
        assert kept["impression_id"].is_unique

    def test_fails_over_the_share_naming_the_rules(self, dirty):
        config = IsbenchConfig.model_validate({"validation": {"max_quarantine_share": 0.005,
                                                              "allow_missing_features": False}})
        with pytest.raises(DataValidationError) as info:
            quarantine_rows(dirty, config, "source")
        message = info.value.message  # str() is the one-line summary Prefect repeats
        assert "quarantine_share_at_most" in message and "'user_f1'" in message
        assert "4 of 1000 rows break null" in message and "1.00%" in message

    def test_numeric_ranges_are_row_rules(self):
        frame = scenario_frame(200)
        config = IsbenchConfig.model_validate(
            {"validation": {"numeric_ranges": {"position": [1, 5]}}})
        expected = int((frame["position"] > 5).sum())
        counts = row_problems(frame, config, "source").sum()
        assert counts["not_finite_or_out_of_range:position"] == expected > 0


# ---------------------------------------------------------------------------- schema
class TestSchemaChecks:
    SCHEMA = {"user_f0": "double", "item_id": "string", "clicked": "int8"}

    def test_unexpected_column_fails_unless_allowed_or_ignored(self):
        schemas = [("dt=2026-11-28", {**self.SCHEMA, "debug": "double"})]
        (record,) = schema_checks(schemas, CONFIG, "source")
        assert record["column"] == "debug" and not record["success"]
        assert record["rule"] == "expect_no_unexpected_columns"
        allowed = IsbenchConfig.model_validate({"validation": {"extra_columns": ["debug"]}})
        ignored = IsbenchConfig.model_validate({"validation": {"unexpected_columns": "ignore"}})
        assert schema_checks(schemas, allowed, "source") == []
        assert schema_checks(schemas, ignored, "source") == []

    def test_type_change_between_days_and_since_the_reference_day(self):
        changed = {**self.SCHEMA, "user_f0": "string"}  # float32 would be no change (issue 20)
        schemas = [("dt=2026-11-27", self.SCHEMA), ("dt=2026-11-28", changed)]
        (record,) = schema_checks(schemas, CONFIG, "source")
        assert record["rule"] == "expect_schema_unchanged_across_days"
        assert record["observed"] == "text (string) in dt=2026-11-28"
        records = schema_checks([("dt=2026-11-28", changed)], CONFIG, "source",
                                reference_schema=self.SCHEMA)
        assert [r["rule"] for r in records] == ["expect_schema_unchanged_since_reference_day"]


# ---------------------------------------------------------------------------- other checks
class TestOtherChecks:
    def test_unseen_category_share(self):
        source = pd.DataFrame({"item_id": ["a", "b"] * 50, "device": ["m"] * 100})
        holdout = pd.DataFrame({"item_id": ["a"] * 90 + ["new"] * 10, "device": ["m"] * 100})
        config = IsbenchConfig.model_validate(
            {"columns": {"categorical": ["item_id", "device"], "numeric": []},
             "validation": {"max_unseen_category_share": 0.05}})
        records = {r["column"]: r for r in unseen_category_records(source, holdout, config,
                                                                   "holdout")}
        assert not records["item_id"]["success"] and "10.00%" in records["item_id"]["observed"]
        assert "'new'" in records["item_id"]["observed"]
        assert records["device"]["success"]

    def test_timestamps_become_local_naive(self):
        aware = pd.Series(pd.to_datetime(["2026-11-28T23:30:00Z"]))
        local = local_naive_timestamps(aware, "Europe/Berlin")
        assert local.iloc[0] == pd.Timestamp("2026-11-29 00:30:00")
        text = local_naive_timestamps(pd.Series(["2026-11-28 10:00:00"]), "UTC")
        assert text.iloc[0] == pd.Timestamp("2026-11-28 10:00:00")

    def test_freshness_window_ends_at_the_end_of_the_run_date(self):
        lo, hi = freshness_window(dt.date(2026, 11, 28), 6)
        assert (lo, hi) == (pd.Timestamp("2026-11-28 18:00"), pd.Timestamp("2026-11-29"))


# ---------------------------------------------------------------------------- GX suites
class TestGreatExpectationsImport:
    def test_importing_the_window_module_does_not_import_great_expectations(self):
        """Regression guard: the flow module imports :mod:`tasks.gx.window` (for
        ``inputs_after_quarantine``); Great Expectations takes 2 s to import, and
        ``validate_window`` imports it in a thread while it reads the window."""
        code = ("import sys, tasks.gx, tasks.gx.window; "
                "print(sorted(m for m in sys.modules if m.startswith('great_expectations')))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, cwd=REPO_ROOT)
        assert done.stdout.strip() == "[]"


class TestSuites:
    def test_versioned_suites_are_current(self):
        from deployments.cli import main

        assert main(["suites", "--check"]) == 0

    def test_check_notices_a_stale_suite_file(self, tmp_path, capsys):
        from deployments.cli import main

        assert main(["suites", "--out", str(tmp_path)]) == 0
        (tmp_path / "isbench_holdout.json").write_text("{}")
        (tmp_path / "isbench_target.json").unlink()
        capsys.readouterr()
        assert main(["suites", "--out", str(tmp_path), "--check"]) == 1
        err = capsys.readouterr().err
        assert "['isbench_target.json', 'isbench_holdout.json']" in err
        assert f"regenerate them with `isbench suites --out {tmp_path}`" in err

    def test_default_suites_folder_is_the_versioned_one(self):
        from tasks.gx.suites import SUITES_DIR

        assert SUITES_DIR == REPO_ROOT / "expectations"
        assert sorted(p.name for p in SUITES_DIR.glob("*.json")) == [
            "isbench_holdout.json", "isbench_source.json", "isbench_target.json"]

    def test_suite_covers_the_contract(self):
        from tasks.gx.runner import context_for
        from tasks.gx.suites import build_suite

        context_for()
        source = {e.expectation_type for e in build_suite(CONFIG, "source", RUN_DATE)
                  .expectations}
        assert {
            "expect_table_row_count_to_be_between", "expect_column_to_exist",
            "expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set",
            "expect_column_mean_to_be_between", "expect_column_values_to_be_in_type_list",
            "expect_column_values_to_be_between",
            "expect_column_unique_value_count_to_be_between",
            "expect_column_values_to_be_unique", "expect_column_max_to_be_between",
        } <= source
        target = [e for e in build_suite(CONFIG, "target").expectations
                  if getattr(e, "column", None) == "clicked"]
        assert target == []  # the target needs no labels

    def test_clean_scenario_frame_passes_and_every_record_is_complete(self):
        from tasks.gx.window import validate_frame

        summary = validate_frame(scenario_frame(2000), CONFIG, "source", RUN_DATE)
        assert summary["success"], summary["failures"]
        for record in summary["results"]:
            assert {"rule", "column", "observed", "expected", "fix"} <= set(record)
            json.dumps(record)

    def test_failed_expectations_name_column_rule_and_fix(self):
        from tasks.gx.window import validate_frame

        frame = scenario_frame(500)
        frame.loc[:4, "logging_propensity"] = 0.0
        frame.loc[:2, "clicked"] = 2
        summary = validate_frame(frame, CONFIG, "source", RUN_DATE)
        failed = {(r["column"], r["rule"]) for r in summary["failures"]}
        assert failed == {("logging_propensity", "expect_column_values_to_be_between"),
                          ("clicked", "expect_column_values_to_be_in_set")}
        assert all(r["fix"] and r["observed"] is not None for r in summary["failures"])

    def test_integer_categoricals_and_missing_features_pass(self):
        # regression (issue 11): int64 ids failed "categorical columns must be text", and
        # 0.3 % nulls in `device` failed the run although a missing category is a level
        from tasks.gx.window import validate_frame

        frame = scenario_frame(1000)
        frame["user_segment"] = frame["user_segment"].astype("category").cat.codes
        frame["item_id"] = frame["item_id"].str.removeprefix("item_").astype("int64")
        frame.loc[:2, "device"] = None
        frame.loc[:4, "user_f0"] = np.nan
        summary = validate_frame(frame, CONFIG, "source", RUN_DATE)
        assert summary["success"], summary["failures"]
        strict = validate_frame(frame, STRICT, "source", RUN_DATE)
        failed = {(r["column"], r["rule"]) for r in strict["failures"]}
        assert failed == {("device", "expect_column_values_to_not_be_null"),
                          ("user_f0", "expect_column_values_to_not_be_null")}
        assert all("allow_missing_features" in r["fix"] for r in strict["failures"])

    @pytest.mark.parametrize(("share", "success"), [(0.004, True), (0.10, False)],
                             ids=["stable", "jump"])
    def test_null_share_drift_fails_on_a_jump_and_passes_a_stable_share(self, share, success):
        from tasks.gx.runner import Batch, context_for, run_batches
        from tasks.gx.suites import build_drift_suite

        reference = scenario_frame(3000, "target")
        reference.loc[:8, "device"] = None  # 0.3 % missing on the reference day
        bounds = drift_bounds(day_profile(reference, CONFIG, "target", day="2026-11-27"),
                              CONFIG.validation)
        today = scenario_frame(3000, "target", seed=1)
        today.loc[: int(share * 3000) - 1, "device"] = None
        context = context_for()
        batch = Batch("target_drift", "target", build_drift_suite(CONFIG, "target", bounds),
                      today)
        results = run_batches([batch], context=context)["target_drift"]["results"]
        (record,) = [r for r in results if r["column"] == "device"
                     and r["rule"] == "expect_column_values_to_not_be_null"]
        assert record["success"] is success
        if not success:
            assert "300 unexpected value(s) (10 %)" in record["observed"]
            assert "from 0.30% on the reference day" in record["fix"]
            assert "validation.reference_day: none" in record["fix"]

    def test_the_strict_contract_adds_not_null_on_every_feature(self):
        from tasks.gx.runner import context_for
        from tasks.gx.suites import build_suite

        context_for()

        def not_null(config: IsbenchConfig) -> set[str]:
            return {e.column for e in build_suite(config, "source").expectations
                    if e.expectation_type == "expect_column_values_to_not_be_null"}

        assert not_null(CONFIG) == {"clicked", "impression_id"}
        assert not_null(STRICT) == {"clicked", "impression_id", *CONFIG.columns.features}

    def test_validated_frames_are_not_kept_alive(self):
        # Regression: GX keeps its ephemeral context as the process's current project, and the
        # context's pandas data sources cached every validated frame: a flow run held its whole
        # window (0.7 GB at 1M + 1M rows) until the process exited.
        from tasks.gx.runner import Batch, context_for, run_batches
        from tasks.gx.suites import build_suite

        context = context_for()
        frame = scenario_frame(500)
        alive = weakref.ref(frame)
        run_batches([Batch("source", "source", build_suite(CONFIG, "source"), frame)],
                    context=context)
        del frame
        assert alive() is None
        assert not list(context.data_sources.all())


# ---------------------------------------------------------------------------- quarantine run
@pytest.mark.usefixtures("prefect_harness")
class TestQuarantinedRun:
    def test_bad_rows_are_dropped_counted_and_reported(self, small_data_root, tmp_path):
        from flows.daily_retrain import daily_retrain

        data = tmp_path / "data"
        shutil.copytree(small_data_root, data, ignore=shutil.ignore_patterns("truth"))
        path = data / "source" / f"dt={RUN_DATE}" / "part-0.parquet"
        frame = pd.read_parquet(path)
        frame.loc[:39, "item_popularity"] = np.inf            # 40 of 12,000 source rows
        frame.loc[40:59, "logging_propensity"] = 0.0          # 20 more
        frame.to_parquet(path, index=False)
        config = small_config(data, tmp_path / "runs", promotion={"enabled": False},
                              validation={"mode": "quarantine", "max_quarantine_share": 0.01})
        result = daily_retrain(config=config, run_date=RUN_DATE)
        run_dir = Path(result["run_dir"])
        report = json.loads((run_dir / "report.json").read_text())
        q = report["validation"]["source"]["quarantine"]
        assert q["dropped"] == 60 and q["rows"] == 12_000
        assert q["by_rule"] == {"not_finite_or_out_of_range:item_popularity": 40,
                                "propensity_range:logging_propensity": 20}
        assert report["validation"]["target"]["quarantine"]["dropped"] == 0
        assert len(pd.read_parquet(run_dir / "weights.parquet")) == 12_000 - 60
        rejected = pd.read_parquet(run_dir / "validation" / "quarantine" / "source.parquet")
        assert len(rejected) == 60 and rejected["quarantine_rules"].str.len().min() > 0
        assert not (run_dir / ".scratch").exists()
        markdown = (run_dir / "report.md").read_text()
        assert "## Validation" in markdown and "Quarantine (source): dropped 60 of 12000" in (
            markdown)
        assert (run_dir / "validation" / "data_docs" / "index.html").is_file()
        page = (run_dir / "report.html").read_text()
        assert 'id="validation"' in page and "propensity_range:logging_propensity 20" in page
        assert (run_dir / "validation" / "profile.json").is_file()
        checks = report["validation"]["source"]["results"]
        assert len(checks) == report["validation"]["source"]["evaluated"] > 40
        self._assert_artifacts(run_dir)

    @staticmethod
    def _assert_artifacts(run_dir: Path) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        with get_client(sync_client=True) as client:
            table = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["isbench-validation"])))
            link = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["isbench-data-docs"])))
        assert table and link
        uri = (run_dir / "validation" / "data_docs" / "index.html").resolve().as_uri()
        assert any(uri in str(a.data) for a in link), [a.data for a in link]


class TestRelativeRunRoot:
    def test_data_docs_build_under_a_relative_output_root(self, small_data_root, tmp_path,
                                                          monkeypatch):
        """Regression: with the default relative ``output_root: runs`` (what ``make demo``
        uses), GX refused the relative Data Docs folder ("base_directory must be an absolute
        path") and every demo run failed at validate."""
        from is_core.data.stage import locate_inputs
        from tasks.gx.window import validate_window

        monkeypatch.chdir(tmp_path)
        config = small_config(small_data_root, Path("runs"))
        inputs = locate_inputs(config.data, config.columns, RUN_DATE)
        out_dir = Path("runs") / ".staging" / "relative"
        out_dir.mkdir(parents=True)
        summary = validate_window(config, inputs, out_dir)
        assert all(role["success"] for role in summary.values())
        assert (tmp_path / out_dir / "validation" / "data_docs" / "index.html").is_file()
