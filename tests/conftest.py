"""Shared fixtures: Prefect in ephemeral mode under a temporary PREFECT_HOME, small datasets."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

# Before Prefect is imported anywhere: a throw-away home, no telemetry.
if "PREFECT_HOME" not in os.environ or not os.environ["PREFECT_HOME"].startswith(
    tempfile.gettempdir()
):
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="isbench-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import pytest  # noqa: E402

from is_core.config import IsbenchConfig  # noqa: E402
from is_core.simulate.clicklog import ClickScenario, write_scenario  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_DATE = dt.date(2026, 11, 28)
SMALL_ROWS = {"source": 4_000, "target": 1_500, "holdout": 1_500}


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness (temporary database and API) for every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def small_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-day scenario dataset (read-only for tests: copy it before corrupting it)."""
    root = tmp_path_factory.mktemp("data")
    write_scenario(root, ClickScenario(seed=3), end_date=RUN_DATE, n_days=3,
                   rows_per_day=SMALL_ROWS)
    return root


def small_config(data_root: Path, output_root: Path, **overrides) -> IsbenchConfig:
    """A fast config over ``data_root``: 3-day window, few trees, 3 folds."""
    raw = {
        "data": {"root": str(data_root), "window_days": 3},
        "proposal": {"n_folds": 3},
        "train": {"n_estimators": 60, "early_stopping_rounds": 10, "n_jobs": 2},
        "output_root": str(output_root),
    }
    for key, value in overrides.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return IsbenchConfig.model_validate(raw)


@pytest.fixture(scope="session")
def cluster():
    """One Dask LocalCluster (2 worker processes of one thread) for the Dask engine's tests;
    a module that harms its workers (tests/flows/test_dask_engine.py kills one) has its own."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as local:
        yield local
