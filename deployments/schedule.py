"""The daily schedule of ``daily_retrain`` and the no-work-pool way to run it (``flow.serve``)."""

from __future__ import annotations

from typing import Any

from prefect.schedules import Cron, Schedule

from flows.daily_retrain import daily_retrain
from is_core.config import IsbenchConfig

DEPLOYMENT_NAME = "daily-retrain"
DEFAULT_CRON = "0 3 * * *"


def daily_schedule(cron: str = DEFAULT_CRON, timezone: str = "UTC") -> Schedule:
    """Every day at 03:00 (``cron``) in ``timezone``; the run date comes from this time."""
    return Cron(cron, timezone=timezone)


def serve(config: IsbenchConfig, cron: str = DEFAULT_CRON, **serve_kwargs: Any) -> None:
    """Serve ``daily_retrain`` on its schedule until interrupted (no work pool needed).

    The deployment's parameters are the pydantic config, so the Prefect UI shows it as a form.
    """
    daily_retrain.serve(
        name=DEPLOYMENT_NAME,
        schedules=[daily_schedule(cron, config.timezone)],
        parameters={"config": config.model_dump(mode="json")},
        description="Importance-weighted CTR retraining for the previous day's logs.",
        tags=["isbench"],
        **serve_kwargs,
    )
