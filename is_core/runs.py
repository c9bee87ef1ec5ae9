"""Run folders: staging, atomic publication, failure records.

A run writes everything into ``<output_root>/.staging/<run_date>-<id>/`` and only a complete run
is moved to ``<output_root>/<run_date>/`` (:func:`is_core.io.publish_directory`). A failed run
leaves the earlier output of that date untouched and adds one failure record under
``<output_root>/<run_date>/failures/``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from is_core.errors import IsbenchError
from is_core.io import publish_directory, write_json_atomic


def run_date_for(scheduled: dt.datetime, timezone: str, lag_days: int) -> dt.date:
    """The run date of a run scheduled at ``scheduled``: its local date minus ``lag_days``.

    A daily run at 03:00 on day D (in ``timezone``) with ``lag_days=1`` retrains for D - 1, the
    last complete day of logs. The wall clock is never consulted, so a late or retried run still
    works on the date it was scheduled for.
    """
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=dt.UTC)
    return scheduled.astimezone(ZoneInfo(timezone)).date() - dt.timedelta(days=lag_days)


@dataclass(frozen=True)
class RunFolders:
    """Where one run of one date writes."""

    run_date: dt.date
    final: Path
    staging: Path

    @classmethod
    def create(cls, output_root: str | Path, run_date: dt.date) -> RunFolders:
        root = Path(output_root)
        staging = root / ".staging" / f"{run_date.isoformat()}-{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True, exist_ok=False)
        return cls(run_date, root / run_date.isoformat(), staging)

    def publish(self) -> Path:
        """Move the finished staging folder into place (replacing an earlier run of the date)."""
        return publish_directory(self.staging, self.final)

    def record_failure(self, error: BaseException, flow_run_id: str | None = None) -> Path:
        """Write a failure record for this date and drop the staging folder."""
        record: dict[str, Any] = (
            error.to_record() if isinstance(error, IsbenchError)
            else {"error": type(error).__name__, "stage": "unknown", "what": str(error),
                  "fix": "see the traceback; this is a bug or an environment problem"}
        )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        record.update({
            "run_date": self.run_date.isoformat(),
            "failed_at": stamp,
            "flow_run_id": flow_run_id,
            "traceback": "".join(traceback.format_exception(error))[-8000:],
        })
        path = write_json_atomic(record, self.final / "failures" / f"{stamp}.json")
        shutil.rmtree(self.staging, ignore_errors=True)
        return path
