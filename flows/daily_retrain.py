"""The ``daily_retrain`` flow: validate → proposal → weights → train → evaluate → report.

Each stage is a retryable task from :mod:`tasks.stages`; they exchange paths and small summaries.
Outputs are written into a staging folder and published to ``runs/<run_date>/`` only when every
stage succeeded; a failed run leaves earlier outputs untouched and writes a failure record.
"""

# No `from __future__ import annotations`: a served flow run rebuilds its parameter model
# from the function's globals, which (pickled by value) lack names used only in annotations;
# real annotations need no rebuild.
import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.transactions import transaction

from is_core.config import IsbenchConfig
from is_core.ctr.stage import PREDICTIONS_FILE
from is_core.release.runs import RunFolders, run_date_for
from is_core.weights.stage import LOG_RATIO_FILE
from tasks import events
from tasks import promotion as promo
from tasks import stages as t
from tasks.gx.window import inputs_after_quarantine
from tasks.history import update_history
from tasks.tracking import require_mlflow, track_run


def open_engine(config: IsbenchConfig) -> Any:
    """``engine: dask``: the cluster of the run (:func:`is_core.engine.open_cluster`: an
    existing scheduler, or a LocalCluster started here); None for the local engine (which
    never imports Dask)."""
    if config.engine == "local":
        return None
    from is_core.engine import open_cluster

    return open_cluster(config.dask)


def close_engine(engine: Any) -> None:
    """Close what :func:`open_engine` opened (a LocalCluster stops; a remote one stays)."""
    if engine is not None:
        engine.close()


class StageFailed(RuntimeError):
    """A stage of the flow failed; the message names the stage and carries the cause."""


def resolve_run_date(run_date: dt.date | None, config: IsbenchConfig) -> dt.date:
    """The explicit ``run_date``, or the one implied by the flow run's scheduled start time."""
    if run_date is not None:
        return run_date
    scheduled = flow_run.scheduled_start_time or dt.datetime.now(dt.UTC)
    return run_date_for(scheduled, config.timezone, config.schedule_lag_days)


def _flow_run_name() -> str:
    params = flow_run.parameters or {}
    run_date = params.get("run_date")
    if run_date is None:
        config = params.get("config") or IsbenchConfig()
        if isinstance(config, dict):
            config = IsbenchConfig.model_validate(config)
        run_date = resolve_run_date(None, config)
    return f"daily-retrain-{run_date}"


@flow(name="daily_retrain", flow_run_name=_flow_run_name, log_prints=True)
def daily_retrain(
    config: IsbenchConfig = IsbenchConfig(),  # noqa: B008 - pydantic defaults are immutable
    run_date: dt.date | None = None,
) -> dict[str, Any]:
    """Retrain the importance-weighted CTR model for ``run_date`` (default: from the schedule).

    Returns a small summary: the run folder, the verdict and the metrics table.
    """
    logger = get_run_logger()
    require_mlflow(config.tracking)  # tracking.mlflow_uri set without MLflow: fail before any work
    date = resolve_run_date(run_date, config)
    folders = RunFolders.create(config.output_root, date, config.run_lock_wait_seconds)
    stage, engine = "engine", None
    try:
        # engine: dask: the scheduler address every stage gets (None: the local engine)
        engine = open_engine(config)
        cluster = engine.address if engine is not None else None
        stage = "load"
        inputs = t.load_inputs(config, date)
        stage = "validate"
        validation = t.validate_inputs(config, inputs, folders.staging, cluster=cluster)
        inputs = inputs_after_quarantine(inputs, validation)  # quarantine mode: kept rows
        stage = "fit-proposal"
        proposal = t.fit_proposal(config, inputs, cluster=cluster)
        stage = "weights"
        weights = t.compute_weights(config, inputs, proposal, folders.staging, cluster=cluster)
        stage = "train"
        models = t.collect_outputs(t.train_models(config, inputs, weights, cluster=cluster),
                                   folders.staging)
        stage = "evaluate"
        metrics = t.evaluate_models(config, inputs, models, weights, folders.staging,
                                    cluster=cluster)
        decision = None
        if config.promotion.enabled:
            stage = "promotion-gate"
            decision = promo.promotion_gate(config, inputs, validation, weights, models,
                                            metrics, folders.staging, cluster=cluster)
        stage = "report"
        summary = t.write_report(config, date, folders.staging, promotion=decision,
                                 inputs=inputs, validation=validation, proposal=proposal,
                                 weights=weights, models=models, metrics=metrics)
        stage = "publish"
        for scratch in (LOG_RATIO_FILE, PREDICTIONS_FILE):
            (folders.staging / scratch).unlink(missing_ok=True)
        # The alias switch and the publication succeed together or not at all: if publishing
        # fails, the transaction rolls back and the switch's hook restores the old champion.
        with transaction():
            if decision is not None and decision["promote"]:
                stage = "promote"
                promo.switch_champion(config, decision, folders.staging, folders.final)
                stage = "publish"
            final = folders.publish()
    except Exception as exc:
        record = folders.record_failure(exc, str(flow_run.id) if flow_run.id else None)
        logger.error("run %s failed at stage %r; failure record %s", date, stage, record)
        update_history(config)  # the failed date appears as a gap; never raises
        raise StageFailed(f"daily_retrain {date} failed at stage '{stage}': {exc}") from exc
    finally:
        close_engine(engine)
    logger.info("run %s published to %s", date, final)
    track_run(config, date, final)  # MLflow (optional), <run>/tracking.json; never raises
    update_history(config)  # <output_root>/index.html and isbench-history; never raises
    # after the publication: the champion switch (if any) has taken effect
    events.emit_run_events(config, date, summary, weights, metrics, decision, final)
    return {"run_date": date.isoformat(), "run_dir": str(final.resolve()), **summary}
