"""The ``benchmark`` flow: every weighting strategy × clip method × scenario × seed.

Each scenario × seed is one task (:func:`tasks.benchmark.benchmark_cell`); a progress artifact
(key ``isbench-benchmark-progress``) shows how many cells are done in the Prefect UI, and each
finished cell is logged, which is the CLI's progress line. The leaderboard is published as a
table, a Markdown and a link artifact with stable keys (see :mod:`tasks.benchmark`).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from is_core.benchmark.grid import BenchmarkConfig
from tasks.benchmark import PROGRESS_ARTIFACT, benchmark_cell, benchmark_report


@flow(name="benchmark", log_prints=True)
def benchmark(
    config: BenchmarkConfig = BenchmarkConfig(),  # noqa: B008 - pydantic defaults are immutable
    command: str = "isbench benchmark",
) -> dict[str, Any]:
    """Run the weighting benchmark grid of ``config`` and write its leaderboard.

    Returns the verdict per scenario and the paths of the outputs.
    """
    logger = get_run_logger()
    cells = [(s, seed) for s in config.scenarios for seed in config.seeds]
    progress = create_progress_artifact(
        0.0, key=PROGRESS_ARTIFACT,
        description=f"Benchmark cells done of {len(cells)} (scenario × seed)")
    # a sync flow gets the artifact's id (the async variant's coroutine only in async code)
    assert isinstance(progress, UUID)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for j, (scenario, seed) in enumerate(cells, 1):
        rows += benchmark_cell(config, scenario, seed)
        update_progress_artifact(progress, 100.0 * j / len(cells))
        logger.info("[%d/%d] %s seed %d done (%.0f s elapsed)", j, len(cells), scenario, seed,
                    time.perf_counter() - started)
    return benchmark_report(config, rows, command)
