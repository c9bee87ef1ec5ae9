"""Prefect tasks of the weighting benchmark: one cell (scenario × seed), and the outputs.

No maths here: :mod:`is_core.benchmark.grid` does the work. A cell returns a few dozen small dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from is_core.benchmark.grid import BenchmarkConfig, run_cell
from is_core.benchmark.outputs import write_outputs

LEADERBOARD_ARTIFACT = "isbench-benchmark-leaderboard"
REPORT_ARTIFACT = "isbench-benchmark-report"
HTML_ARTIFACT = "isbench-benchmark-html"
PROGRESS_ARTIFACT = "isbench-benchmark-progress"


@task(name="benchmark-cell", task_run_name="benchmark-{scenario}-seed-{seed}")
def benchmark_cell(config: BenchmarkConfig, scenario: str, seed: int) -> list[dict[str, Any]]:
    """Train and score every strategy × clip (and the oracle) of one scenario × seed."""
    return run_cell(config, scenario, seed)


@task(name="benchmark-report")
def benchmark_report(config: BenchmarkConfig, rows: list[dict[str, Any]], command: str
                     ) -> dict[str, Any]:
    """Write the leaderboard (CSV, Markdown, JSON, HTML) and publish it as artifacts."""
    out = write_outputs(pd.DataFrame(rows), config, config.output_dir, command=command)
    create_table_artifact(key=LEADERBOARD_ARTIFACT, table=out["table"],
                          description="Weighting benchmark: references, pipeline default and "
                          "best strategy per scenario (full table in leaderboard.md)")
    create_markdown_artifact(key=REPORT_ARTIFACT, markdown=out["markdown"],
                             description="Weighting benchmark leaderboard and verdicts")
    html_path = Path(out["paths"]["html"]).resolve()
    create_link_artifact(key=HTML_ARTIFACT, link=html_path.as_uri(),
                         link_text=f"benchmark report ({html_path.name})",
                         description="Self-contained HTML report (opens offline)")
    for verdict in out["verdicts"].values():
        get_run_logger().info(verdict["text"])
    return {"verdicts": out["verdicts"], "paths": out["paths"]}
