"""Prefect tasks around the stages of :mod:`is_core.weights.stage`: retries, logging, artifacts.

No maths here. Tasks exchange paths and small summaries, never frames.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, TypedDict

from prefect import Task, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import RetryConditionCallable, StateHookCallable

from is_core.config import IsbenchConfig
from is_core.ctr.stage import Evaluation, TrainedModels, candidate_names
from is_core.ctr.stage import evaluate_models as _evaluate
from is_core.ctr.stage import train_models as _train
from is_core.data.atomic import write_json_atomic, write_text_atomic
from is_core.data.io import release_memory
from is_core.data.stage import Inputs, locate_inputs
from is_core.errors import DataValidationError, IsbenchError, WeightDiagnosticsError
from is_core.report.content import build_report, metrics_table, weight_profile_from_file
from is_core.report.render import render_html, render_markdown
from is_core.weights.stage import ProposalResult, WeightsResult
from is_core.weights.stage import compute_weights as _weights
from is_core.weights.stage import fit_proposal as _proposal
from tasks.caching import StageOutputs, copy_outputs, run_in_cache_dir, stage_dependencies
from tasks.events import emit_gate_events, emit_validation_failed


def _dask_engine() -> Any:
    """The Dask engine's stages (:mod:`is_core.engine.stage`), imported when a run uses it (the
    local engine never imports Dask)."""
    from is_core.engine import stage

    return stage


def is_transient(error: BaseException) -> bool:
    """Whether a retry can succeed where the first try failed: an allow-list of one, the
    :class:`OSError` (a dropped connection, a timeout, a file system or NFS hiccup), unless it is
    an :class:`IsbenchError`. Everything else fails the same way every time: bad input or
    config, a failed gate, NaN weights, the ``ValueError`` of a bug; retrying it only delays
    the alert."""
    return isinstance(error, OSError) and not isinstance(error, IsbenchError)


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only when its exception
    :func:`is_transient`."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the failure itself, classified here
        return is_transient(exc)
    return False


class RetryOptions(TypedDict):
    """The retry options of ``@task`` (a subset of :class:`prefect.tasks.TaskOptions` with its
    field types as ``task()`` takes them: ``TaskOptions`` itself cannot be unpacked into
    ``task()`` under a type checker, its fields are optional and it has keys ``task()`` lacks)."""

    retries: int
    retry_delay_seconds: list[float]
    retry_condition_fn: RetryConditionCallable


class HookOptions(TypedDict):
    """The state hooks of ``@task`` (as :class:`RetryOptions`, a typed subset of
    ``TaskOptions``)."""

    on_completion: list[StateHookCallable]
    on_failure: list[StateHookCallable]


IO_RETRIES: RetryOptions = {"retries": 2, "retry_delay_seconds": [2, 10],
                            "retry_condition_fn": retry_if_transient}


def release_stage_memory(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> None:
    """Task hook: once a stage that held frames ends, hand their memory back to the operating
    system, so that the next stage does not stack its peak on this one's leftovers
    (:func:`is_core.data.io.release_memory`)."""
    release_memory()


FREE_MEMORY: HookOptions = {"on_completion": [release_stage_memory],
                            "on_failure": [release_stage_memory]}


@task(name="load", **IO_RETRIES)
def load_inputs(config: IsbenchConfig, run_date: dt.date) -> Inputs:
    """Locate and fingerprint the source, target and holdout files of the window."""
    inputs = locate_inputs(config.data, config.columns, run_date)
    logger = get_run_logger()
    for role, info in inputs["roles"].items():
        logger.info("%s: %d file(s), fingerprint %s", role, len(info["files"]),
                    info["fingerprint"][:12])
    return inputs


@task(name="validate", **IO_RETRIES, **FREE_MEMORY)
def validate_inputs(config: IsbenchConfig, inputs: Inputs, staging: Path | None = None,
                    cluster: str | None = None) -> dict[str, Any]:
    """Validate every role (schema, GX suites, drift against the reference day); fail with every
    broken expectation. Results, suites, Data Docs and the day profile go to
    ``<staging>/validation/``; in quarantine mode the kept rows replace the inputs
    (:func:`tasks.gx.window.inputs_after_quarantine`)."""
    import tempfile

    from tasks.gx.partitioned import validate_window as dask_validate_window
    from tasks.gx.window import validate_window  # GX import is slow: only when validating

    logger = get_run_logger()
    out_dir = Path(staging) if staging is not None else Path(tempfile.mkdtemp(prefix="isbench-"))
    try:
        summaries = (validate_window(config, inputs, out_dir) if cluster is None  # engine
                     else dask_validate_window(config, inputs, out_dir, cluster))
    except DataValidationError as exc:
        _validation_artifacts(config, exc.failures, inputs["run_date"],
                              exc.details.get("validation_dir"))
        emit_validation_failed(config, exc, inputs["run_date"])
        raise
    _validation_artifacts(config, [r for s in summaries.values() for r in s["results"]],
                          inputs["run_date"], None)
    for role, s in summaries.items():
        if s["quarantine"] and s["quarantine"]["dropped"]:
            q = s["quarantine"]
            logger.warning("%s: quarantined %d of %d rows (%.2f %%): %s", role, q["dropped"],
                           q["rows"], 100 * q["share"], q["by_rule"])
    logger.info("validation passed: %s", {r: s["evaluated"] for r, s in summaries.items()})
    return summaries


def _validation_artifacts(config: IsbenchConfig, records: list[dict[str, Any]], run_date: str,
                          failure_dir: str | None) -> None:
    """Table artifact of every check (or every failure) and a link to the Data Docs."""
    create_table_artifact(
        key="isbench-validation",
        table=[{"role": r["role"], "column": r["column"], "rule": r["rule"],
                "observed": str(r["observed"])[:120], "expected": str(r["expected"])[:120],
                "result": "pass" if r["success"] else "FAIL"} for r in records],
        description=f"Validation of run date {run_date}: "
        + ("every failed check" if failure_dir else "every check, observed vs expected"),
    )
    if config.validation.data_docs:
        # a passing run's staging folder is published to <output_root>/<run_date>/
        folder = Path(failure_dir) if failure_dir else (
            Path(config.output_root) / run_date / "validation")
        docs = folder / "data_docs" / "index.html"
        create_link_artifact(key="isbench-data-docs", link=docs.resolve().as_uri(),
                             link_text=f"Great Expectations Data Docs, run date {run_date}",
                             description="Data Docs load their CSS from a CDN; offline, read "
                             "the validation table of the run report instead.")


@task(name="fit-proposal", retries=1, retry_condition_fn=retry_if_transient, **FREE_MEMORY,
      cache_policy=StageOutputs(stage="proposal"), result_serializer="json")
def fit_proposal(config: IsbenchConfig, inputs: Inputs, cluster: str | None = None
                 ) -> ProposalResult:
    """Fit the cross-fitted domain classifier (target vs source).

    Cached by input fingerprints + config (:mod:`tasks.caching`): the log ratios go to the
    stage's content-addressed folder, and only the small summary is a Prefect result.
    """
    out = run_in_cache_dir("proposal", config, inputs,
                           lambda out_dir: _proposal(config.proposal, config.columns, inputs,
                                                     out_dir, random_state=config.random_state,
                                                     n_jobs=config.train.n_jobs)
                           if cluster is None else _dask_engine().fit_proposal(  # the Dask engine
                               config.proposal, config.columns, inputs, out_dir,
                               random_state=config.random_state, n_jobs=config.train.n_jobs,
                               cluster=cluster))
    get_run_logger().info("domain AUC %.4f (%d source, %d target rows) in %.1f s",
                          out["domain_auc"], out["n_source"], out["n_target"], out["seconds"])
    return out


@task(name="weights", retries=1, retry_condition_fn=retry_if_transient, **FREE_MEMORY)
def compute_weights(config: IsbenchConfig, inputs: Inputs, proposal: ProposalResult,
                    staging: Path, cluster: str | None = None) -> WeightsResult:
    """Clip, normalize and diagnose the importance weights; estimate the target CTR.

    Enforces the weight gates: a failed gate raises :class:`WeightDiagnosticsError` (the flow
    fails and records it); a warning is logged and kept in ``diagnostics.gates`` for the report.
    """
    logger = get_run_logger()
    try:
        out = (_weights(config.weights, config.columns, inputs, proposal, staging,
                        random_state=config.random_state, n_jobs=config.train.n_jobs)
               if cluster is None else _dask_engine().compute_weights(  # the Dask engine
                   config.weights, config.columns, inputs, proposal, staging,
                   random_state=config.random_state, n_jobs=config.train.n_jobs,
                   cluster=cluster))
    except WeightDiagnosticsError as exc:
        _gates_artifact(exc.details.get("gates", []), inputs["run_date"])
        emit_gate_events(config, exc.details.get("gates", []), inputs["run_date"])
        logger.error("weight gates failed: %s", exc.what)
        raise
    d = out["diagnostics"]
    logger.info("ESS/n %.3f, k-hat %s, clipped %.2f %% (%s), SNIS target CTR %.5f",
                d["ess_fraction"], d["khat"], 100 * d["clipped_fraction"], d["clip_method"],
                out["target_ctr"]["snis"]["value"])
    for message in d["warnings"]:
        logger.warning("weight gate warning: %s", message)
    _gates_artifact(d["gates"], inputs["run_date"])
    emit_gate_events(config, d["gates"], inputs["run_date"])
    create_table_artifact(
        key="isbench-weight-diagnostics",
        table=[{"diagnostic": k, "value": v} for k, v in d.items()
               if not isinstance(v, dict | list)],
        description=f"Importance-weight diagnostics, run date {inputs['run_date']}",
    )
    return out


def _gates_artifact(gates: list[dict[str, Any]], run_date: str) -> None:
    create_table_artifact(
        key="isbench-weight-gates",
        table=[{"gate": g["gate"], "value": g["value"], "status": g["status"],
                "warn_threshold": g["warn_threshold"], "fail_threshold": g["fail_threshold"]}
               for g in gates],
        description=f"Importance-weight gates (pass/warn/fail), run date {run_date}",
    )


@task(name="train", retries=1, retry_condition_fn=retry_if_transient, **FREE_MEMORY,
      cache_policy=StageOutputs(stage="train"), result_serializer="json")
def train_models(config: IsbenchConfig, inputs: Inputs, weights: WeightsResult,
                 cluster: str | None = None) -> TrainedModels:
    """Train the candidate CTR models: weighted, unweighted baseline, recalibrated baseline.

    Cached by input fingerprints + config like :func:`fit_proposal` (and, for
    ``train.sampling: loss``, the champion whose scores draw the sample:
    :func:`~tasks.caching.stage_dependencies`); :func:`collect_outputs` then puts the model
    files into the run's staging folder.
    """
    champion = (stage_dependencies("train", config) or {}).get("champion_path")
    out = run_in_cache_dir("train", config, inputs,
                           lambda out_dir: _train(
                               config.train, config.columns, inputs, weights, out_dir,
                               random_state=config.random_state,
                               metadata={"weights_config": config.weights.model_dump(),
                                         "proposal_config": config.proposal.model_dump()},
                               champion=champion)
                           if cluster is None else _dask_engine().train_models(  # the Dask engine
                               config.train, config.columns, inputs, weights, out_dir,
                               random_state=config.random_state,
                               metadata={"weights_config": config.weights.model_dump(),
                                         "proposal_config": config.proposal.model_dump()},
                               cluster=cluster, champion=champion))
    sampling = out.get("sampling")
    if sampling is not None:
        get_run_logger().info("sampling %s: kept %d of %d training rows (%s = %.4g), ESS/n of "
                              "the combined weights %.3f%s", sampling["applied"],
                              sampling["kept_rows"], sampling["n_rows"], sampling["rate_name"],
                              sampling["rate"], sampling["ess_fraction"],
                              f"; {sampling['fallback']}" if sampling["fallback"] else "")
    for name in candidate_names(out):
        info = out[name]
        assert info is not None  # candidate_names lists the trained ones
        get_run_logger().info("%s model: %d trees in %.1f s", name, info["best_iteration"] + 1,
                              info["seconds"])
    return out


@task(name="collect-models", **IO_RETRIES)
def collect_outputs(models: TrainedModels, staging: Path) -> TrainedModels:
    """Link the (possibly cached) model files into the run's staging folder."""
    return copy_outputs(models, staging)


@task(name="evaluate", **IO_RETRIES, **FREE_MEMORY)
def evaluate_models(config: IsbenchConfig, inputs: Inputs, models: TrainedModels,
                    weights: WeightsResult, staging: Path, cluster: str | None = None
                    ) -> Evaluation:
    """Score every candidate model on the target holdout."""
    if cluster is not None:  # the Dask engine
        return _dask_engine().evaluate_models(config.evaluation, config.columns, inputs, models,
                                      weights, staging, random_state=config.random_state,
                                      cluster=cluster)
    return _evaluate(config.evaluation, config.columns, inputs, models, weights, staging,
                     random_state=config.random_state)


@task(name="report", **IO_RETRIES)
def write_report(config: IsbenchConfig, run_date: dt.date, staging: Path,
                 promotion: dict[str, Any] | None = None, **parts: Any) -> dict[str, Any]:
    """Write report.json and report.md into the staging folder and publish artifacts.

    ``promotion`` (the champion/challenger decision, or None when promotion is disabled) goes
    to report.json under ``promotion``.
    """
    report = build_report(run_date=run_date.isoformat(), config=config.model_dump(mode="json"),
                          weight_profile=weight_profile_from_file(parts["weights"]["path"]),
                          promotion=promotion, **parts)
    report["promotion"] = promotion
    write_json_atomic(report, staging / "report.json")
    markdown = render_markdown(report)
    write_text_atomic(markdown, staging / "report.md")
    write_text_atomic(render_html(report), staging / "report.html")
    # the staging folder is published as <output_root>/<run_date>/ when the run succeeds
    html_path = (Path(config.output_root) / run_date.isoformat() / "report.html").resolve()
    create_link_artifact(key="isbench-report-html", link=html_path.as_uri(),
                         link_text=f"HTML report, run date {run_date}",
                         description="Self-contained (opens offline): verdict, metrics with "
                         "intervals, weight histogram, ESS/k-hat against the clip level, "
                         "reliability curves")
    create_markdown_artifact(key="isbench-report", markdown=markdown,
                             description=f"isbench report, run date {run_date}")
    on = report["metrics"]["evaluated_on"]
    create_table_artifact(key="isbench-metrics", table=metrics_table(report),
                          description=f"Weighted vs unweighted on {on}")
    get_run_logger().info(report["verdict"]["text"])
    return {"verdict": report["verdict"], "metrics": metrics_table(report),
            "promotion": None if promotion is None else
            {k: promotion[k] for k in ("promote", "reason")}}
