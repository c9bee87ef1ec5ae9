"""The ``backfill`` flow: ``daily_retrain`` for every date of a range, oldest first.

Each date is its own ``daily_retrain`` subflow run (named ``daily-retrain-<date>`` in the UI), so
a backfill is as idempotent as a single run: re-running a date with the same inputs and config
gives the same outputs and registers no new model version. Dates run in ascending order, so the
promotion gate's recency check lets each newer date challenge the champion of the previous one.
A failed date does not stop the others; the backfill fails at the end, naming every failed date.
"""

# No `from __future__ import annotations`: a served flow run rebuilds its parameter model
# from the function's globals, which (pickled by value) lack names used only in annotations;
# real annotations need no rebuild.
import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.daily_retrain import daily_retrain
from is_core.config import IsbenchConfig
from is_core.errors import ConfigError

MAX_BACKFILL_DAYS = 366


class BackfillFailed(RuntimeError):
    """One or more dates of a backfill failed; the message lists them with their causes."""


def backfill_dates(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every date from ``start`` to ``end`` inclusive, oldest first."""
    if end < start:
        raise ConfigError(f"backfill end {end} is before its start {start}",
                          fix="give --start <= --end")
    n = (end - start).days + 1
    if n > MAX_BACKFILL_DAYS:
        raise ConfigError(f"backfill of {n} days is longer than {MAX_BACKFILL_DAYS}",
                          fix="split it into several backfills")
    return [start + dt.timedelta(days=i) for i in range(n)]


@flow(name="backfill", flow_run_name="backfill-{start}-to-{end}", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    config: IsbenchConfig = IsbenchConfig(),  # noqa: B008 - pydantic defaults are immutable
) -> list[dict[str, Any]]:
    """Run ``daily_retrain`` for each date from ``start`` to ``end``; one row per date."""
    logger = get_run_logger()
    rows: list[dict[str, Any]] = []
    for date in backfill_dates(start, end):
        state = daily_retrain(config=config, run_date=date, return_state=True)
        if state.is_completed():
            result = state.result()
            promotion = result.get("promotion") or {}
            rows.append({"run_date": date.isoformat(), "status": "completed",
                         "promoted": promotion.get("promote"), "run_dir": result["run_dir"],
                         "message": result["verdict"]["text"][:200]})
        else:
            rows.append({"run_date": date.isoformat(), "status": "failed", "promoted": False,
                         "run_dir": None, "message": (state.message or "")[:500]})
        logger.info("%s: %s", date, rows[-1]["status"])
    create_table_artifact(key="isbench-backfill", table=rows,
                          description=f"Backfill {start} to {end}")
    failed = [r for r in rows if r["status"] != "completed"]
    if failed:
        raise BackfillFailed(f"{len(failed)} of {len(rows)} date(s) failed: " + "; ".join(
            f"{r['run_date']}: {r['message']}" for r in failed))
    return rows
