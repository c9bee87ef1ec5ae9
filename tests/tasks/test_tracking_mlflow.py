"""MLflow tracking (tasks/tracking.py): one daily_retrain run against a real sqlite-backed MLflow
store (params, metrics at the run date's step, artifacts, the ``champion`` alias and its
predictions), a re-run against an MLflow server that is down, the missing extra, and the names
of params and metrics.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flows.daily_retrain import daily_retrain
from is_core.config import DEFAULT_NUMERIC, IsbenchConfig
from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.recalibration import WeightedCalibrator
from is_core.errors import ConfigError
from is_core.release.registry import ModelRegistry
from is_core.report.render import tracking_markdown, with_tracking_html
from tasks import tracking
from tests.conftest import RUN_DATE, small_config

MODEL_NAME = "isbench-ctr"  # tracking.mlflow_model_name null: '<name>-ctr'
# MLflow's sqlite store against SQLAlchemy 2.1 (a third-party deprecation, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def _mlflow_env() -> Any:
    """No MLflow telemetry; one HTTP try of at most 5 s (the server-down run stays fast)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        yield


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def tracked_run(prefect_harness: None, small_data_root: Path,
                tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One daily_retrain run with ``tracking.mlflow_uri = sqlite:///<tmp>/mlruns.db``; what the
    tests read of its folder is kept here (the server-down test re-runs the date)."""
    out = tmp_path_factory.mktemp("mlflow-runs")
    store = tmp_path_factory.mktemp("mlflow-store")
    uri = f"sqlite:///{store}/mlruns.db"
    config = small_config(small_data_root, out, tracking={"mlflow_uri": uri})
    result = daily_retrain(config=config, run_date=RUN_DATE)
    run_dir = out / RUN_DATE.isoformat()
    holdout = pd.read_parquet(small_data_root / "holdout")
    champion = ModelRegistry(out / "registry").champion()
    assert champion is not None
    return SimpleNamespace(
        config=config, result=result, uri=uri, store=store, run_dir=run_dir, holdout=holdout,
        champion=champion,
        champion_proba=WeightedCTRModel.load(champion.model_path).predict_proba(holdout),
        tracking=json.loads((run_dir / tracking.TRACKING_FILE).read_text()),
        report=json.loads((run_dir / "report.json").read_text()),
        report_json=(run_dir / "report.json").read_bytes(),
        report_md=(run_dir / "report.md").read_text(),
        report_html=(run_dir / "report.html").read_text())


@pytest.fixture
def client(tracked_run: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Any:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracked_run.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", tracked_run.uri)
    return MlflowClient(tracking_uri=tracked_run.uri, registry_uri=tracked_run.uri)


@pytest.mark.slow
class TestSqliteStore:
    def test_tracking_json_records_the_logged_run_and_version(self, tracked_run):
        mlflow = tracked_run.tracking["mlflow"]
        assert mlflow["status"] == "logged", mlflow["message"]
        assert mlflow["uri"] == tracked_run.uri and mlflow["experiment"] == "isbench"
        assert mlflow["model_name"] == MODEL_NAME and mlflow["model_version"] == "1"
        assert mlflow["run_id"] in mlflow["message"] and "'champion'" in mlflow["message"]

    def test_the_config_is_logged_as_flattened_params(self, tracked_run, client):
        params = client.get_run(tracked_run.tracking["mlflow"]["run_id"]).data.params
        assert params == tracking.config_params(tracked_run.report["config"])
        assert params["train.n_estimators"] == "60" and params["data.window_days"] == "3"
        assert json.loads(params["columns.numeric"]) == DEFAULT_NUMERIC
        assert params["weights.gates.max_khat_fail"] == "auto"
        assert params["tracking.mlflow_uri"] == tracked_run.uri

    def test_tags_name_the_date_pipeline_version_flow_run_and_verdict(self, tracked_run,
                                                                      client):
        from prefect.client.orchestration import get_client

        tags = client.get_run(tracked_run.tracking["mlflow"]["run_id"]).data.tags
        report = tracked_run.report
        assert tags["isbench.run_date"] == RUN_DATE.isoformat()
        assert tags["isbench.pipeline"] == "isbench"
        assert tags["isbench.version"] == report["isbench_version"]
        assert tags["isbench.selected"] == report["selected"]
        assert tags["isbench.verdict"] == report["verdict"]["logloss"]
        assert tags["isbench.promoted"] == "yes"
        assert tags["mlflow.note.content"] == report["verdict"]["text"]
        with get_client(sync_client=True) as prefect:
            flow_run = prefect.read_flow_run(uuid.UUID(tags["prefect.flow_run_id"]))
        assert flow_run.name == f"daily-retrain-{RUN_DATE}"

    def test_metrics_are_logged_at_the_run_dates_step(self, tracked_run, client):
        run_id = tracked_run.tracking["mlflow"]["run_id"]
        report = tracked_run.report
        expected = {f"{name}.target_logloss": c["logloss"]
                    for name, c in report["candidates"].items()}
        expected |= {f"{name}.auc": c["auc"] for name, c in report["candidates"].items()}
        expected |= {"weighted.ne": report["metrics"]["weighted"]["ne"],
                     "unweighted.calibration_ratio":
                         report["metrics"]["unweighted"]["calibration_ratio"],
                     "weights.ess_fraction": report["weights"]["ess_fraction"],
                     "weights.domain_auc": report["weights"]["domain_auc"],
                     "weights.max_weight_share": report["weights"]["max_weight_share"],
                     "target_ctr.snis": report["target_ctr"]["snis"]["value"]}
        assert len(expected) == 3 * 2 + 6
        for key, value in expected.items():
            history = client.get_metric_history(run_id, key)
            assert [(m.value, m.step) for m in history] == [
                (pytest.approx(value, rel=1e-12), RUN_DATE.toordinal())], key
        logged = client.get_run(run_id).data.metrics
        assert logged == pytest.approx(tracking.report_metrics(report), rel=1e-12)

    def test_report_validation_and_model_are_artifacts(self, tracked_run, client, tmp_path):
        run_id = tracked_run.tracking["mlflow"]["run_id"]

        def names(path: str) -> set[str]:
            return {Path(f.path).name for f in client.list_artifacts(run_id, path)}

        assert names("report") == {"report.json", "report.md", "report.html"}
        assert {"results.json", "profile.json", "suites"} <= names("validation")
        assert {"MLmodel", "requirements.txt", "data"} <= names("model")
        local = client.download_artifacts(run_id, "report/report.json", str(tmp_path))
        assert Path(local).read_bytes() == tracked_run.report_json
        # the artifacts live under the sqlite store's folder, not the working directory
        run = client.get_run(run_id)
        assert run.info.artifact_uri.startswith((tracked_run.store / "mlartifacts").as_uri())
        assert run.info.status == "FINISHED"

    def test_champion_alias_predicts_the_folder_champions_probabilities(self, tracked_run,
                                                                        client):
        import mlflow
        import xgboost as xgb

        version = client.get_model_version_by_alias(MODEL_NAME, "champion")
        assert str(version.version) == tracked_run.tracking["mlflow"]["model_version"]
        assert version.tags["isbench_digest"] == tracked_run.champion.digest
        assert version.run_id == tracked_run.tracking["mlflow"]["run_id"]
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
        proba = np.asarray(model.predict(tracked_run.holdout))
        assert proba.shape == (len(tracked_run.holdout),)
        np.testing.assert_allclose(proba, tracked_run.champion_proba, rtol=0, atol=1e-7)
        booster = mlflow.xgboost.load_model(f"models:/{MODEL_NAME}@champion")
        assert isinstance(booster, xgb.Booster)

    def test_the_report_shows_the_tracking_outcome(self, tracked_run):
        run_id = tracked_run.tracking["mlflow"]["run_id"]
        last = tracked_run.report_md.rstrip().splitlines()[-1]
        assert last.startswith(f"**Tracking.** MLflow (logged): logged to {tracked_run.uri} as "
                               f"run {run_id}")
        html = tracked_run.report_html
        assert html.index("Tracking. MLflow") < html.index("</body>") and run_id in html
        assert "tracking" not in tracked_run.report  # report.json stays as the report stage wrote

    def test_logging_the_date_again_reuses_the_model_version(self, tracked_run, client):
        config = tracked_run.config
        outcome = tracking._outcome(config)
        tracking._log_to_mlflow(config, RUN_DATE, tracked_run.run_dir, outcome)
        assert outcome["status"] == "logged"
        assert outcome["run_id"] != tracked_run.tracking["mlflow"]["run_id"]
        assert outcome["model_version"] == "1"
        assert [v.version for v in client.search_model_versions(f"name = '{MODEL_NAME}'")] == [1]
        assert client.get_model_version_by_alias(MODEL_NAME, "champion").version == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_down_run(tracked_run: SimpleNamespace) -> SimpleNamespace:
    """The same date re-run (cached stages) with tracking.mlflow_uri at a closed port."""
    uri = f"http://127.0.0.1:{_closed_port()}"
    config = tracked_run.config.model_copy(
        update={"tracking": tracked_run.config.tracking.model_copy(update={"mlflow_uri": uri})})
    handler = _Records()
    logging.getLogger().addHandler(handler)
    try:
        result = daily_retrain(config=config, run_date=RUN_DATE)
    finally:
        logging.getLogger().removeHandler(handler)
    run_dir = tracked_run.run_dir
    return SimpleNamespace(uri=uri, result=result, run_dir=run_dir, records=handler.records,
                           tracking=json.loads((run_dir / tracking.TRACKING_FILE).read_text()),
                           registry=ModelRegistry(Path(config.output_root) / "registry"))


@pytest.mark.slow
class TestServerDown:
    def test_the_run_completes_and_records_failed(self, server_down_run, tracked_run):
        mlflow = server_down_run.tracking["mlflow"]
        assert Path(server_down_run.result["run_dir"]) == server_down_run.run_dir.resolve()
        assert mlflow["status"] == "failed" and mlflow["uri"] == server_down_run.uri
        assert mlflow["run_id"] is None and mlflow["model_version"] is None
        # the folder registry is untouched by the failure
        assert server_down_run.registry.champion().digest == tracked_run.champion.digest

    def test_one_warning_names_the_uri_and_the_fix(self, server_down_run):
        about_mlflow = [r for r in server_down_run.records
                        if "mlflow" in r.name.lower() or "mlflow" in r.getMessage().lower()]
        assert len(about_mlflow) == 1, [r.getMessage() for r in about_mlflow]
        message = about_mlflow[0].getMessage()
        assert message == server_down_run.tracking["mlflow"]["message"]
        assert f"MLflow tracking to {server_down_run.uri} failed" in message
        assert "Fix:" in message and "tracking.mlflow_uri: null" in message

    def test_the_report_says_so(self, server_down_run):
        text = (server_down_run.run_dir / "report.md").read_text()
        assert f"**Tracking.** MLflow (failed): MLflow tracking to {server_down_run.uri}" in text
        assert server_down_run.uri in (server_down_run.run_dir / "report.html").read_text()


class TestMissingExtra:
    def test_a_set_uri_without_mlflow_is_a_config_error_naming_key_and_fix(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` fails as uninstalled
        config = IsbenchConfig.model_validate({"tracking": {"mlflow_uri": "sqlite:///m.db"}})
        with pytest.raises(ConfigError) as caught:
            tracking.require_mlflow(config.tracking)
        assert "tracking.mlflow_uri" in str(caught.value)
        assert "pip install isbench[mlflow]" in caught.value.fix
        tracking.require_mlflow(IsbenchConfig().tracking)  # off: MLflow is not needed

    def test_the_flow_fails_before_any_work(self, prefect_harness, small_data_root, tmp_path,
                                            monkeypatch):
        monkeypatch.setitem(sys.modules, "mlflow", None)
        config = small_config(small_data_root, tmp_path / "runs",
                              tracking={"mlflow_uri": f"sqlite:///{tmp_path}/m.db"})
        with pytest.raises(ConfigError, match="tracking.mlflow_uri"):
            daily_retrain(config=config, run_date=RUN_DATE)
        assert not (tmp_path / "runs").exists()


class TestNames:
    def test_config_params_are_dotted_json_and_truncated(self):
        params = tracking.config_params(IsbenchConfig().model_dump(mode="json"), limit=40)
        assert params["name"] == "isbench" and params["data.holdout"] == "holdout"
        assert params["weights.gates.max_khat_warn"] == "0.5"
        assert params["promotion.registry"] == "null"
        assert params["validation.numeric_ranges"] == "{}"
        assert params["train.recalibrate"] == "true"
        numeric = params["columns.numeric"]
        assert len(numeric) == 40 and numeric.endswith("...")
        assert numeric[:-3] == json.dumps(DEFAULT_NUMERIC)[:37]
        assert all(len(v) <= 40 for v in params.values())

    def test_the_uri_password_is_never_logged(self):
        config = IsbenchConfig.model_validate(
            {"tracking": {"mlflow_uri": "https://ann:s3cret@mlflow.example:5000"}})
        params = tracking.config_params(config.model_dump(mode="json"))
        assert params["tracking.mlflow_uri"] == "https://ann:***@mlflow.example:5000"
        assert tracking.redacted("sqlite:///m.db") == "sqlite:///m.db"

    def test_report_figures_become_candidate_weight_and_ctr_metrics(self):
        report = {
            "candidates": {"weighted": {"logloss": 0.07, "logloss_ci": [0.06, 0.08],
                                        "auc": 0.7, "calibration_ratio": 1.1, "ece": 0.01,
                                        "logloss_diff": -0.002},
                           "unweighted": {"logloss": 0.072, "logloss_ci": [0.061, 0.083],
                                          "auc": 0.69, "calibration_ratio": 1.2, "ece": 0.02,
                                          "logloss_diff": None}},
            "metrics": {"weighted": {"ne": 0.93, "mean_prediction": 0.02,
                                     "observed_ctr": 0.015}},
            "weights": {"ess_fraction": 0.6, "khat": None, "domain_auc": 0.68,
                        "max_weight_share": 0.001, "clipped_fraction": 0.0, "n": 10},
            "target_ctr": {"snis": {"value": 0.022, "ci_low": 0.02, "ci_high": float("nan")}},
        }
        metrics = tracking.report_metrics(report)
        assert metrics["weighted.target_logloss"] == 0.07
        assert metrics["weighted.target_logloss_ci_high"] == 0.08
        assert metrics["weighted.ne"] == 0.93 and "unweighted.ne" not in metrics
        assert "unweighted.logloss_diff" not in metrics  # None: no figure, not 0
        assert metrics["weights.domain_auc"] == 0.68 and "weights.khat" not in metrics
        assert "weights.n" not in metrics
        assert metrics["target_ctr.snis"] == 0.022
        assert "target_ctr.snis_ci_high" not in metrics  # NaN is not logged
        assert len(metrics) == 10 + 6 + 4 + 2  # weighted, unweighted, weights, target_ctr

    def test_the_step_is_one_a_day_across_months_and_years(self):
        import datetime as dt

        days = [dt.date(2026, 12, 30) + dt.timedelta(days=i) for i in range(4)]
        steps = [tracking.metric_step(d) for d in days]
        assert np.diff(steps).tolist() == [1, 1, 1]

    def test_the_tracking_line_is_escaped_and_absent_when_off(self):
        off = {"mlflow": {"status": "off", "uri": None, "message": "off"}}
        assert tracking_markdown(off) == ""
        page = "<html><body><h1>r</h1></body></html>\n"
        assert with_tracking_html(page, off) == page
        failed = {"mlflow": {"status": "failed", "uri": "http://h", "message": "a <b> c"}}
        out = with_tracking_html(page, failed)
        assert out.endswith("a &lt;b&gt; c (tracking.json)</p></body></html>\n")
        assert "**Tracking.** MLflow (failed): a <b> c (tracking.json)" in tracking_markdown(failed)


class TestModelFlavors:
    def test_pyfunc_applies_the_calibrator_and_xgboost_gives_the_booster(self, tmp_path,
                                                                         monkeypatch):
        """The 'recalibrated' candidate's calibrator lives in a booster attribute; the pyfunc
        flavor must apply it (plain mlflow.xgboost pyfunc would not), without unpickling."""
        import mlflow
        import xgboost as xgb

        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"x": rng.normal(size=600),
                              "c": pd.array(rng.choice(["a", "b", "c"], 600), dtype="str")})
        y = (rng.random(600) < 1 / (1 + np.exp(2 - frame["x"]))).astype(int)
        base = WeightedCTRModel(numeric=["x"], categorical=["c"], n_estimators=8,
                                early_stopping_rounds=3).fit(frame, y)
        calibrator = WeightedCalibrator(method="platt").fit(
            np.clip(base.predict_proba(frame) * 0.5, 1e-4, 1), y)
        path = base.with_calibrator(calibrator).save(tmp_path / "recalibrated_model.ubj")
        expected = WeightedCTRModel.load(path).predict_proba(frame)
        model_dir = tracking.save_mlflow_model(path, tmp_path / "mlflow-model")

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("pickle used while loading the MLflow model")

        monkeypatch.setattr(pickle, "load", refuse)
        monkeypatch.setattr(pickle, "loads", refuse)
        proba = np.asarray(mlflow.pyfunc.load_model(str(model_dir)).predict(frame))
        np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
        booster = mlflow.xgboost.load_model(str(model_dir))
        assert isinstance(booster, xgb.Booster)
        assert booster.attr("isbench_calibrator") is not None
        raw = booster.predict(xgb.DMatrix(base.feature_spec_.transform(frame),
                                          enable_categorical=True))
        assert np.abs(raw - expected).max() > 1e-3  # the raw booster is not the champion
