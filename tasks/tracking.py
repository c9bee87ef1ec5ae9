"""MLflow tracking of a ``daily_retrain`` run, an option (``pip install isbench[mlflow]``).

With ``tracking.mlflow_uri`` set, :func:`track_run` logs each published run to MLflow: the config
as params (:func:`config_params`), the figures of ``report.json`` as metrics at the run date's
step (:func:`report_metrics`), tags (:func:`run_tags`), the report and the validation results as
artifacts, and, when the run promoted its challenger, the champion's model as a version of the
registered model ``tracking.mlflow_model_name`` with the alias ``champion``.

The folder registry (:mod:`is_core.release.registry`) stays the default and the source of truth:
the model logged is the registry's own copy of the promoted version, and MLflow is written only
after the run folder was published and the alias switched. An MLflow store that cannot be
reached or written is one warning in the log, never a failed run; the outcome of every run
(``logged``, ``failed`` or ``off``) is ``tracking.json`` in the run folder and, when MLflow is
on, a line of ``report.md``/``report.html`` (:func:`is_core.report.render.tracking_markdown`).

The logged model carries two flavors in one MLmodel, over the same UBJSON file: ``xgboost``
(``mlflow.xgboost.load_model`` gives the raw booster, which expects the encoded features and
knows no calibrator) and ``python_function``, whose ``loader_module`` is this module
(:func:`_load_pyfunc`): it loads the file with :meth:`WeightedCTRModel.load`, so
``mlflow.pyfunc.load_model("models:/<name>@champion").predict(frame)`` takes a raw feature frame
and returns the champion's probabilities, recalibrated when it carries a calibrator. Nothing is
pickled. Loading the pyfunc flavor needs isbench installed (its requirements say so).

``mlflow`` is imported only inside the functions that need it, so isbench runs without it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import math
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Literal, TypedDict

import xgboost as xgb
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from is_core import __version__
from is_core.config import IsbenchConfig, TrackingConfig
from is_core.ctr.model import WeightedCTRModel, metadata_path
from is_core.data.atomic import write_json_atomic, write_text_atomic
from is_core.errors import ConfigError
from is_core.release.registry import CHAMPION, MODEL_FILE
from is_core.release.stage import registry_for
from is_core.report.render import tracking_markdown, with_tracking_html

TRACKING_FILE = "tracking.json"
MLFLOW_FIX = "pip install isbench[mlflow] (or set tracking.mlflow_uri: null to run without MLflow)"
#: MLflow's length limits (``mlflow.utils.validation``: MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH)
PARAM_VALUE_LIMIT = 6000
TAG_VALUE_LIMIT = 8000
_MODEL_DATA = "isbench"  # the folder of model.ubj + model.meta.json inside the MLflow model
_CANDIDATE_FIGURES = ("auc", "calibration_ratio", "ece", "logloss_diff")
_MODEL_FIGURES = ("ne", "mean_prediction", "observed_ctr")
_WEIGHT_FIGURES = ("ess_fraction", "khat", "domain_auc", "max_weight_share", "clipped_fraction")


class MlflowOutcome(TypedDict):
    """What MLflow tracking did for one run (``tracking.json``'s ``mlflow`` entry)."""

    status: Literal["logged", "failed", "off"]
    uri: str | None
    experiment: str | None
    run_id: str | None
    model_name: str | None
    model_version: str | None
    message: str


def require_mlflow(tracking: TrackingConfig) -> None:
    """Raise :class:`ConfigError` when ``tracking.mlflow_uri`` is set but MLflow is not installed
    (called at the start of a run, before any work)."""
    if tracking.mlflow_uri is None:
        return
    try:
        importlib.import_module("mlflow")
    except ImportError as exc:
        raise ConfigError(
            f"tracking.mlflow_uri is set ({redacted(tracking.mlflow_uri)}) but MLflow is not "
            "installed", fix=MLFLOW_FIX, details={"key": "tracking.mlflow_uri"}) from exc


def redacted(uri: str) -> str:
    """``uri`` without the password of its user info (``http://u:***@host``), for logs/files."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _truncated(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit - 3] + "..."


def config_params(config: dict[str, Any], limit: int = PARAM_VALUE_LIMIT) -> dict[str, str]:
    """The config (``model_dump(mode="json")``) as MLflow params: ``section.key`` (nested
    sections dotted again), strings as they are, other values (lists, numbers, null) as JSON, an
    empty mapping as ``{}``; each value cut to ``limit`` characters."""
    out: dict[str, str] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for name, item in value.items():
                walk(item, f"{key}.{name}" if key else str(name))
            return
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        out[key] = _truncated(text, limit)

    walk(config, "")
    uri = out.get("tracking.mlflow_uri")
    if uri and uri != "null":
        out["tracking.mlflow_uri"] = redacted(uri)
    return out


def metric_step(run_date: dt.date) -> int:
    """The MLflow step of a run date: its proleptic ordinal (one step a day, so MLflow's charts
    over runs put the days evenly apart)."""
    return run_date.toordinal()


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The figures of ``report.json`` as MLflow metrics (finite numbers only):

    - per candidate: ``<candidate>.target_logloss`` (with ``_ci_low``/``_ci_high``), ``.auc``,
      ``.calibration_ratio``, ``.ece``, ``.logloss_diff`` (to the unweighted baseline), and where
      the report has them ``.ne``, ``.mean_prediction``, ``.observed_ctr``;
    - the weight diagnostics ``weights.ess_fraction``, ``.khat``, ``.domain_auc``,
      ``.max_weight_share``, ``.clipped_fraction``;
    - each target CTR estimate ``target_ctr.<estimator>`` (with ``_ci_low``/``_ci_high``).
    """
    out: dict[str, Any] = {}  # figures as the report has them: None and NaN dropped below
    for name, c in report.get("candidates", {}).items():
        out[f"{name}.target_logloss"] = c.get("logloss")
        low, high = c.get("logloss_ci") or (None, None)
        out[f"{name}.target_logloss_ci_low"], out[f"{name}.target_logloss_ci_high"] = low, high
        out.update({f"{name}.{k}": c.get(k) for k in _CANDIDATE_FIGURES})
        model = report.get("metrics", {}).get(name) or {}
        out.update({f"{name}.{k}": model.get(k) for k in _MODEL_FIGURES})
    weights = report.get("weights", {})
    out.update({f"weights.{k}": weights.get(k) for k in _WEIGHT_FIGURES})
    for estimator, estimate in report.get("target_ctr", {}).items():
        out[f"target_ctr.{estimator}"] = estimate.get("value")
        out[f"target_ctr.{estimator}_ci_low"] = estimate.get("ci_low")
        out[f"target_ctr.{estimator}_ci_high"] = estimate.get("ci_high")
    return {k: float(v) for k, v in out.items() if _finite(v)}


def run_tags(config: IsbenchConfig, report: dict[str, Any], flow_run_id: str | None
             ) -> dict[str, str]:
    """The MLflow run's tags: run date, pipeline, isbench version, Prefect flow run, selected
    candidate, verdict (and the verdict's text as the run's description)."""
    promotion = report.get("promotion")
    verdict = report.get("verdict", {})
    tags = {
        "isbench.run_date": report["run_date"],
        "isbench.pipeline": config.name,
        "isbench.version": str(report.get("isbench_version", __version__)),
        "prefect.flow_run_id": flow_run_id or "none",
        "isbench.selected": str(report.get("selected") or "none"),
        "isbench.verdict": str(verdict.get("logloss", "none")),
        "isbench.promoted": ("disabled" if promotion is None
                             else "yes" if promotion.get("promote") else "no"),
        "isbench.evaluated_on": str(report.get("metrics", {}).get("evaluated_on", "")),
        "mlflow.note.content": str(verdict.get("text", "")),
    }
    return {k: _truncated(v, TAG_VALUE_LIMIT) for k, v in tags.items()}


# ---------------------------------------------------------------------------- the model
class ChampionPyfunc:
    """The python_function flavor's model: a :class:`WeightedCTRModel` behind ``predict``."""

    def __init__(self, model: WeightedCTRModel) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Click probabilities of the rows of a raw feature frame (1-D array)."""
        return self.model.predict_proba(model_input)


def _load_pyfunc(data_path: str) -> ChampionPyfunc:
    """MLflow's ``loader_module`` hook: the model folder ``data_path`` holds model.ubj + its
    metadata, as the folder registry stores them."""
    return ChampionPyfunc(WeightedCTRModel.load(Path(data_path) / MODEL_FILE))


def save_mlflow_model(model_path: str | Path, out_dir: str | Path) -> Path:
    """Write the MLflow model directory of the isbench model at ``model_path`` (model.ubj and
    model.meta.json): ``xgboost`` and ``python_function`` flavors over the same file."""
    from mlflow import pyfunc
    from mlflow.models import Model

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / _MODEL_DATA
        data.mkdir()
        shutil.copy2(model_path, data / MODEL_FILE)
        shutil.copy2(metadata_path(Path(model_path)), metadata_path(data / MODEL_FILE))
        model = Model()
        model.add_flavor("xgboost", xgb_version=xgb.__version__,
                         data=f"data/{_MODEL_DATA}/{MODEL_FILE}",
                         model_class="xgboost.core.Booster", model_format="ubj", code=None)
        pyfunc.save_model(str(out_dir), loader_module=__name__, data_path=str(data),
                          mlflow_model=model,
                          pip_requirements=[f"isbench=={__version__}",
                                            f"xgboost=={xgb.__version__}"])
    return Path(out_dir)


# ---------------------------------------------------------------------------- the run
def _outcome(config: IsbenchConfig) -> MlflowOutcome:
    """The outcome before logging: status ``off``, the names the run would log under."""
    tracking = config.tracking
    return {"status": "off", "uri": None if tracking.mlflow_uri is None
            else redacted(tracking.mlflow_uri),
            "experiment": tracking.mlflow_experiment or config.name, "run_id": None,
            "model_name": tracking.mlflow_model_name or f"{config.name}-ctr",
            "model_version": None, "message": "MLflow tracking is off (tracking.mlflow_uri is "
            "null)"}


def _experiment_id(client: Any, name: str, uri: str) -> str:
    """The id of experiment ``name``, created when missing (for a ``sqlite:///`` store with its
    artifacts in ``mlartifacts/`` beside the database file, not in the worker's directory)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent
                    / "mlartifacts").as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def _log_run(client: Any, config: IsbenchConfig, run_date: dt.date, run_dir: Path,
             outcome: MlflowOutcome) -> dict[str, Any]:
    """Create the MLflow run and log params, metrics, tags and artifacts; return the report."""
    from mlflow.entities import Metric, Param, RunTag

    report = json.loads((run_dir / "report.json").read_text())
    uri = str(config.tracking.mlflow_uri)
    experiment_id = _experiment_id(client, str(outcome["experiment"]), uri)
    flow_run_id = str(flow_run.id) if flow_run.id else None
    tags = {**run_tags(config, report, flow_run_id), "isbench.run_dir": str(run_dir.resolve())}
    run = client.create_run(experiment_id, run_name=f"daily-retrain-{run_date}")
    outcome["run_id"] = run.info.run_id
    stamp = int(dt.datetime.combine(run_date, dt.time(), dt.UTC).timestamp() * 1000)
    step = metric_step(run_date)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, stamp, step) for k, v in report_metrics(report).items()],
        params=[Param(k, v) for k, v in config_params(report["config"]).items()],
        tags=[RunTag(k, v) for k, v in tags.items()])
    for name in ("report.json", "report.md", "report.html"):
        client.log_artifact(run.info.run_id, str(run_dir / name), "report")
    validation = run_dir / "validation"
    for path in (validation / "results.json", validation / "profile.json"):
        if path.is_file():
            client.log_artifact(run.info.run_id, str(path), "validation")
    if (validation / "suites").is_dir():
        client.log_artifacts(run.info.run_id, str(validation / "suites"), "validation/suites")
    return report


def _register_champion(client: Any, config: IsbenchConfig, report: dict[str, Any],
                       run_id: str, outcome: MlflowOutcome) -> str:
    """Log the promoted version's model and point the registered model's ``champion`` alias
    at it; a version with the same digest is reused (a re-run of the date). Returns what
    happened, as a sentence."""
    from mlflow.exceptions import MlflowException

    promotion = report.get("promotion")
    if promotion is None or not promotion.get("promote"):
        return ("no model version registered: the run did not promote its challenger, so the "
                "champion alias stays where it was")
    version = registry_for(config.promotion, config.output_root).get(
        promotion["challenger"]["version"])
    name = str(outcome["model_name"])
    try:
        client.create_registered_model(name, description=f"isbench CTR model of pipeline "
                                       f"{config.name}; the alias 'champion' is the promoted one")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    found = [v for v in client.search_model_versions(f"tag.isbench_digest = '{version.digest}'")
             if v.name == name]
    if found:
        registered = found[0]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            client.log_artifacts(run_id, str(save_mlflow_model(version.model_path,
                                                               Path(tmp) / "model")), "model")
        registered = client.create_model_version(
            name, f"{client.get_run(run_id).info.artifact_uri}/model", run_id=run_id,
            tags={"isbench_digest": version.digest, "isbench_registry_version":
                  version.version, "isbench_run_date": str(version.run_date),
                  "isbench_candidate": str(promotion["challenger"].get("model"))})
    client.set_registered_model_alias(name, CHAMPION, registered.version)
    outcome["model_version"] = str(registered.version)
    return (f"model {name!r} version {registered.version} (folder registry "
            f"v{version.version}) is now '{CHAMPION}'")


def _log_to_mlflow(config: IsbenchConfig, run_date: dt.date, run_dir: Path,
                   outcome: MlflowOutcome) -> None:
    """Log the run and register its champion; an MLflow run begun and not finished is left
    FAILED (as far as the store still answers)."""
    from mlflow import MlflowClient

    uri = str(config.tracking.mlflow_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        report = _log_run(client, config, run_date, run_dir, outcome)
        run_id = str(outcome["run_id"])
        registered = _register_champion(client, config, report, run_id, outcome)
    except BaseException:
        if outcome["run_id"] is not None:
            with contextlib.suppress(Exception):
                client.set_terminated(outcome["run_id"], "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    outcome["status"] = "logged"
    outcome["message"] = (f"logged to {outcome['uri']} as run {run_id} of experiment "
                          f"{outcome['experiment']!r}; {registered}")


def _failure_message(exc: BaseException, outcome: MlflowOutcome) -> str:
    cause = " ".join(str(exc).split()) or type(exc).__name__
    cause = _truncated(f"{type(exc).__name__}: {cause}", 300).rstrip(".")
    where = f" (MLflow run {outcome['run_id']} left FAILED)" if outcome["run_id"] else ""
    return (f"MLflow tracking to {outcome['uri']} failed{where}: {cause}. The run is published "
            "and the folder registry is unaffected (it stays the source of truth). Fix: check "
            f"that tracking.mlflow_uri = {outcome['uri']} is right and reachable from this "
            "worker (the server up, its credentials such as MLFLOW_TRACKING_TOKEN set, a sqlite "
            "file's folder writable), or set tracking.mlflow_uri: null to turn MLflow off")


@task(name="mlflow-tracking", cache_policy=NO_CACHE)
def track_run(config: IsbenchConfig, run_date: dt.date, run_dir: Path) -> MlflowOutcome:
    """Log the published run ``run_dir`` to MLflow when ``tracking.mlflow_uri`` is set; write
    the outcome to ``<run_dir>/tracking.json`` and, when MLflow is on, a line of the report.

    Never raises: a failure is one warning naming the URI and the fix, and status ``failed``.
    """
    logger = get_run_logger()
    run_dir = Path(run_dir)
    outcome = _outcome(config)
    if config.tracking.mlflow_uri is not None:
        try:
            _log_to_mlflow(config, run_date, run_dir, outcome)
            logger.info("MLflow: %s", outcome["message"])
        except Exception as exc:  # noqa: BLE001 - an optional integration never fails a run
            outcome["status"] = "failed"
            outcome["message"] = _failure_message(exc, outcome)
            logger.warning(outcome["message"])
    tracking = {"mlflow": outcome}
    try:
        write_json_atomic(tracking, run_dir / TRACKING_FILE)
        if outcome["status"] != "off":
            _note_in_report(run_dir, tracking)
    except OSError as exc:
        logger.warning("could not record the tracking outcome in %s: %s", run_dir, exc)
    return outcome


def _note_in_report(run_dir: Path, tracking: dict[str, Any]) -> None:
    """Append the tracking line to the published report.md and report.html (atomically)."""
    markdown, page = run_dir / "report.md", run_dir / "report.html"
    if markdown.is_file():
        write_text_atomic(markdown.read_text() + tracking_markdown(tracking), markdown)
    if page.is_file():
        write_text_atomic(with_tracking_html(page.read_text(), tracking), page)
