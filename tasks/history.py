"""The history page and the ``isbench-history`` artifact, after every run, published or failed.

A thin wrapper of :mod:`is_core.report.history_page`: it rewrites ``<output_root>/index.html``
(every run date's figures; a failed date as a gap) and publishes the table artifact
``isbench-history`` (one row per run date with its key figures, a stable key). Both are
optional outputs: whatever goes wrong is one warning in the run's log, never a failed run.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from is_core.config import IsbenchConfig
from is_core.report.history import history_table, read_history
from is_core.report.history_page import write_history_page

HISTORY_ARTIFACT = "isbench-history"


@task(name="history", cache_policy=NO_CACHE)
def write_history(output_root: str) -> str | None:
    """Rewrite the history page and publish the ``isbench-history`` table; return the page's
    path, or None when either could not be written (one warning in the log)."""
    logger = get_run_logger()
    try:
        rows = read_history(output_root)
        page = write_history_page(output_root, rows)
        create_table_artifact(
            key=HISTORY_ARTIFACT, table=history_table(rows),
            description=f"Every run date under {output_root} ({len(rows)}), oldest first; "
            f"the plots are in {page.resolve()}")
    except Exception as exc:  # noqa: BLE001 - an optional output never fails the run
        logger.warning("history page %s/index.html not updated: %s: %s", output_root,
                       type(exc).__name__, exc)
        return None
    logger.info("history page %s updated (%d run dates)", page, len(rows))
    return str(page)


def update_history(config: IsbenchConfig) -> None:
    """What the flow calls after a run published or recorded its failure: the history task,
    unless ``config.tracking.history`` is false. Never raises: a task that could not even run
    (an orchestration error) is one warning too."""
    if not config.tracking.history:
        return
    try:
        write_history(config.output_root)
    except Exception as exc:  # noqa: BLE001 - an optional output never fails the run
        get_run_logger().warning("history page not updated: %s: %s", type(exc).__name__, exc)
