"""The whole daily_retrain flow on a small generated dataset, under the Prefect test harness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.daily_retrain import StageFailed, daily_retrain
from is_core.ctr.model import WeightedCTRModel
from tests.conftest import RUN_DATE, small_config

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def finished_run(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("runs")
    config = small_config(small_data_root, out)
    result = daily_retrain(config=config, run_date=RUN_DATE)
    return config, result, out / RUN_DATE.isoformat()


class TestSuccessfulRun:
    def test_publishes_the_outputs(self, finished_run):
        _, result, run_dir = finished_run
        assert Path(result["run_dir"]) == run_dir.resolve()
        for name in ("report.json", "report.md", "weights.parquet", "model.ubj",
                     "model.meta.json", "baseline_model.ubj"):
            assert (run_dir / name).is_file(), name
        assert not (run_dir / "failures").exists()
        staging = run_dir.parent / ".staging"
        assert not staging.exists() or not any(staging.iterdir())

    def test_report_json_is_complete_and_finite(self, finished_run):
        _, _, run_dir = finished_run
        report = json.loads((run_dir / "report.json").read_text())
        assert report["run_date"] == RUN_DATE.isoformat()
        assert set(report["inputs"]["roles"]) == {"source", "target", "holdout"}
        assert all(len(v["fingerprint"]) == 64 for v in report["inputs"]["roles"].values())
        for model in ("weighted", "unweighted"):
            m = report["metrics"][model]
            for key in ("auc", "logloss", "calibration_ratio"):
                assert np.isfinite(m[key]), (model, key)
            assert 0.5 < m["auc"] <= 1.0
        assert report["metrics"]["evaluated_on"] == "target_holdout"
        assert set(report["target_ctr"]) >= {"naive", "snis"}
        assert 0 < report["weights"]["ess_fraction"] <= 1
        assert report["verdict"]["text"].startswith("Importance weighting")

    def test_every_candidate_is_reported_side_by_side(self, finished_run):
        _, _, run_dir = finished_run
        report = json.loads((run_dir / "report.json").read_text())
        candidates = report["candidates"]
        assert set(candidates) == {"weighted", "unweighted", "recalibrated"}
        for name, c in candidates.items():
            low, high = c["calibration_ratio_ci"]
            assert low <= c["calibration_ratio"] <= high, name
            assert c["logloss_ci"][0] <= c["logloss"] <= c["logloss_ci"][1], name
            assert (c["logloss_diff_ci"] is None) == (name == "unweighted")
        assert report["selected"] in candidates
        assert report["selected"] == report["promotion"]["challenger"]["model"]
        assert (run_dir / "recalibrated_model.ubj").is_file()
        meta = json.loads((run_dir / "recalibrated_model.meta.json").read_text())
        assert meta["weighting"] == "recalibration" and meta["calibrator"]["method"]
        assert "## Candidates" in (run_dir / "report.md").read_text()

    def test_weights_are_nonnegative_with_mean_one(self, finished_run):
        _, _, run_dir = finished_run
        w = pd.read_parquet(run_dir / "weights.parquet")
        assert {"row_id", "raw_weight", "final_weight"} <= set(w.columns)
        assert len(w) == 3 * 4_000
        assert (w["final_weight"] >= 0).all() and np.isfinite(w["final_weight"]).all()
        assert w["final_weight"].mean() == pytest.approx(1.0, abs=1e-9)
        assert w["impression_id"].is_unique

    def test_saved_model_loads_and_predicts(self, finished_run, small_data_root):
        config, _, run_dir = finished_run
        model = WeightedCTRModel.load(run_dir / "model.ubj")
        holdout = pd.read_parquet(next((small_data_root / "holdout").rglob("*.parquet")))
        p = model.predict_proba(holdout)
        assert p.shape == (len(holdout),)
        assert np.all((p > 0) & (p < 1))
        meta = json.loads((run_dir / "model.meta.json").read_text())
        assert meta["format"] == "xgboost-ubj"
        assert meta["weighting"] == "importance"
        assert meta["features"]["categorical"] == config.columns.categorical


class TestFailedRun:
    def test_missing_partition_fails_at_load_and_keeps_earlier_output(
        self, finished_run, small_data_root, tmp_path
    ):
        config, _, run_dir = finished_run
        data = tmp_path / "data"
        shutil.copytree(small_data_root, data)
        shutil.rmtree(data / "target" / "dt=2026-11-27")
        broken = config.model_copy(update={"data": config.data.model_copy(
            update={"root": str(data)})})
        before = (run_dir / "model.ubj").read_bytes()
        with pytest.raises(StageFailed, match=r"stage 'load'.*target partition dt=2026-11-27"):
            daily_retrain(config=broken, run_date=RUN_DATE)
        assert (run_dir / "model.ubj").read_bytes() == before
        records = list((run_dir / "failures").glob("*.json"))
        assert len(records) == 1
        record = json.loads(records[0].read_text())
        assert record["error"] == "DataContractError" and "dt=2026-11-27" in record["what"]
        shutil.rmtree(run_dir / "failures")

    def test_failed_first_run_writes_only_a_failure_record(self, small_data_root, tmp_path):
        out = tmp_path / "runs"
        config = small_config(small_data_root, out,
                              columns={"numeric": ["user_f0", "no_such_column"]})
        with pytest.raises(StageFailed, match="no_such_column"):
            daily_retrain(config=config, run_date=RUN_DATE)
        run_dir = out / RUN_DATE.isoformat()
        assert sorted(p.name for p in run_dir.iterdir()) == ["failures"]


@pytest.fixture(scope="module")
def run_without_holdout(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """The same data with ``data.holdout`` unset: no target labels to evaluate on."""
    out = tmp_path_factory.mktemp("runs-no-holdout")
    config = small_config(small_data_root, out, data={"holdout": None},
                          evaluation={"n_boot": 50})
    result = daily_retrain(config=config, run_date=RUN_DATE)
    return result, out / RUN_DATE.isoformat()


class TestRunWithoutHoldout:
    """Without a target holdout the models are scored on source rows kept out of training,
    importance-weighted with the final weights (``is_core.ctr.stage.evaluation_rows``)."""

    def test_completes_and_reads_no_holdout(self, run_without_holdout):
        result, run_dir = run_without_holdout
        assert Path(result["run_dir"]) == run_dir.resolve()
        report = json.loads((run_dir / "report.json").read_text())
        assert set(report["inputs"]["roles"]) == {"source", "target"}
        assert set(report["validation"]) == {"source", "target"}

    def test_metrics_say_they_are_weighted_source_split_estimates(self, run_without_holdout):
        _, run_dir = run_without_holdout
        m = json.loads((run_dir / "report.json").read_text())["metrics"]
        assert m["evaluated_on"] == "source_split_importance_weighted"
        assert m["evaluation_note"].startswith("no target holdout: source rows kept out of "
                                               "training, importance-weighted")
        for model in ("weighted", "unweighted"):
            assert np.isfinite(m[model]["logloss"]) and 0.5 < m[model]["auc"] <= 1.0

    def test_evaluation_rows_are_not_trained_on(self, run_without_holdout):
        _, run_dir = run_without_holdout
        report = json.loads((run_dir / "report.json").read_text())
        rows = pd.read_parquet(run_dir / "evaluation_rows.parquet")["row_id"].to_numpy()
        n_source = 3 * 4_000
        assert rows.size == len(np.unique(rows)) == report["metrics"]["n"]
        assert 0 < rows.size < n_source and rows.min() >= 0 and rows.max() < n_source
        # training (fit + early-stopping split) used exactly the other source rows
        for model in ("weighted", "unweighted"):
            info = report["models"][model]
            assert info["n_train"] + info["n_valid"] == n_source - rows.size, model

    def test_metrics_are_weighted_by_the_final_weights_of_those_rows(
        self, run_without_holdout, small_data_root
    ):
        _, run_dir = run_without_holdout
        m = json.loads((run_dir / "report.json").read_text())["metrics"]
        rows = pd.read_parquet(run_dir / "evaluation_rows.parquet")["row_id"]
        weights = pd.read_parquet(run_dir / "weights.parquet").set_index("row_id")
        source = pd.concat(pd.read_parquet(f, columns=["impression_id", "clicked"])
                           for f in sorted((small_data_root / "source").rglob("*.parquet")))
        held = weights.loc[rows].merge(source, on="impression_id", validate="one_to_one")
        assert len(held) == len(rows)
        snis_ctr = (held["final_weight"] * held["clicked"]).sum() / held["final_weight"].sum()
        for model in ("weighted", "unweighted"):
            assert m[model]["observed_ctr"] == pytest.approx(snis_ctr, rel=1e-9), model

    def test_verdict_names_the_weighted_source_split(self, run_without_holdout):
        _, run_dir = run_without_holdout
        report = json.loads((run_dir / "report.json").read_text())
        text = report["verdict"]["text"]
        assert "on an importance-weighted source split (no target holdout)" in text
        assert "target holdout logloss" not in text
        assert text in (run_dir / "report.md").read_text()


@pytest.fixture(scope="module")
def exposure_run(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("exposure-runs")
    config = small_config(small_data_root, out, columns={"exposure": ["position"]})
    daily_retrain(config=config, run_date=RUN_DATE)
    return config, out / RUN_DATE.isoformat()


class TestExposureFeatures:
    """`columns.exposure` features reach the proposal model and never a CTR model."""

    def test_no_ctr_model_sees_the_exposure_feature(self, exposure_run, small_data_root):
        _, run_dir = exposure_run
        holdout = pd.concat(pd.read_parquet(f) for f in
                            sorted((small_data_root / "holdout").rglob("*.parquet")))
        scrambled = holdout.assign(position=np.random.default_rng(0).permutation(
            holdout["position"].to_numpy()))
        for file in ("model.ubj", "baseline_model.ubj", "recalibrated_model.ubj"):
            model = WeightedCTRModel.load(run_dir / file)
            assert "position" not in model.feature_spec_.columns, file
            # scores cannot depend on a column the model never saw
            np.testing.assert_array_equal(model.predict_proba(holdout),
                                          model.predict_proba(scrambled))

    def test_the_proposal_and_the_report_use_it(self, exposure_run):
        config, run_dir = exposure_run
        report = json.loads((run_dir / "report.json").read_text())
        assert report["exposure_features"] == ["position"]
        assert "position" in config.columns.numeric  # it kept its type for the proposal
        assert report["proposal"]["dropped_features"] == [] or \
            "position" not in report["proposal"]["dropped_features"]
