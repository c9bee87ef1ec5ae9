"""Run folders: staging, atomic publication, failure records.

A run writes everything into ``<output_root>/.staging/<run_date>-<id>/`` and only a complete run
is moved to ``<output_root>/<run_date>/`` (:func:`is_core.data.atomic.publish_directory`). A
failed run leaves the earlier output of that date untouched and adds one failure record under
``<output_root>/<run_date>/failures/``.

Only one run of a date may work at a time: :class:`RunDateLock` holds an exclusive ``flock`` on
``<output_root>/.locks/<run_date>.lock`` from :meth:`RunFolders.create` until the run publishes
or records its failure. The kernel drops the lock when the holding process dies (even by
SIGKILL), so a crashed run never blocks the date; the next run of the date then removes the
crashed run's staging folder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo

from is_core.data.atomic import output_folder_errors, publish_directory, write_json_atomic
from is_core.errors import ConcurrentRunError, ConfigError, IsbenchError

LOCK_DIR = ".locks"
STAGING_DIR = ".staging"
SCRATCH_DIR = ".scratch"
"""Inside a staging folder: intermediate files (e.g. quarantined inputs) never published."""
VALIDATION_DIR = "validation"
PROFILE_FILE = "profile.json"


def run_date_for(scheduled: dt.datetime, timezone: str, lag_days: int) -> dt.date:
    """The run date of a run scheduled at ``scheduled``: its local date minus ``lag_days``.

    A daily run at 03:00 on day D (in ``timezone``) with ``lag_days=1`` retrains for D - 1, the
    last complete day of logs. The wall clock is never consulted, so a late or retried run still
    works on the date it was scheduled for.
    """
    if scheduled.tzinfo is None:
        scheduled = scheduled.replace(tzinfo=dt.UTC)
    return scheduled.astimezone(ZoneInfo(timezone)).date() - dt.timedelta(days=lag_days)


def check_run_date(value: str | dt.date) -> dt.date:
    """Parse a run date given as ``YYYY-MM-DD``."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"run date {value!r} is not a date",
                          fix="give it as YYYY-MM-DD, e.g. 2026-11-28") from exc


class RunDateLock:
    """Exclusive lock of one run date: ``fcntl.flock`` on ``<output_root>/.locks/<date>.lock``.

    ``flock`` locks belong to an open file description, so two runs in one process (threads)
    exclude each other as two processes do, and the kernel releases the lock when the holder's
    file is closed or its process dies. The lock file is never deleted (deleting it would let a
    third run lock a fresh inode while the second still waits on the old one); it holds the
    current holder's pid, host and start time for the error message of a run that is refused.
    """

    def __init__(self, output_root: str | Path, run_date: dt.date) -> None:
        self.path = Path(output_root) / LOCK_DIR / f"{run_date.isoformat()}.lock"
        self.run_date = run_date
        self._fh: Any = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self, wait_seconds: float = 0.0, poll_seconds: float = 0.2) -> Self:
        """Take the lock, waiting up to ``wait_seconds``; else raise :class:`ConcurrentRunError`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    holder = self.holder()
                    raise ConcurrentRunError(
                        f"another run of {self.run_date} is in progress (lock {self.path} held "
                        f"by {holder or 'an unknown process'}); waited {wait_seconds:g} s",
                        fix="let that run finish and re-run the date, or set "
                        "`run_lock_wait_seconds` so a second run waits for the first",
                        details={"lock": str(self.path), "holder": holder},
                    ) from None
                time.sleep(poll_seconds)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))
        fh.flush()
        self._fh = fh
        return self

    def holder(self) -> dict[str, Any] | None:
        """Who holds (or last held) the lock, as written by :meth:`acquire`."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


@dataclass(frozen=True)
class RunFolders:
    """Where one run of one date writes, and that date's lock (held until publish or failure)."""

    run_date: dt.date
    final: Path
    staging: Path
    lock: RunDateLock | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, output_root: str | Path, run_date: dt.date,
               lock_wait_seconds: float = 0.0) -> RunFolders:
        """Lock ``run_date``, remove staging folders of crashed runs of it, make a fresh one.

        Raises :class:`ConcurrentRunError` when another run of the date holds the lock for longer
        than ``lock_wait_seconds``, and :class:`~is_core.errors.OutputFolderError` when
        ``output_root`` cannot be written (read-only, not a folder, full), before anything ran.
        """
        root = Path(output_root)
        with output_folder_errors(root):
            lock = RunDateLock(root, run_date).acquire(lock_wait_seconds)
            try:
                for stale in (root / STAGING_DIR).glob(f"{run_date.isoformat()}-*"):
                    shutil.rmtree(stale, ignore_errors=True)  # we hold the lock: its run is dead
                staging = root / STAGING_DIR / f"{run_date.isoformat()}-{uuid.uuid4().hex[:12]}"
                staging.mkdir(parents=True, exist_ok=False)
            except BaseException:
                lock.release()
                raise
        return cls(run_date, root / run_date.isoformat(), staging, lock)

    @property
    def scratch(self) -> Path:
        """Intermediate files of this run; removed before publication."""
        return self.staging / SCRATCH_DIR

    def publish(self) -> Path:
        """Move the finished staging folder into place (replacing an earlier run of the date)."""
        try:
            shutil.rmtree(self.scratch, ignore_errors=True)
            return publish_directory(self.staging, self.final)
        finally:
            self.release()

    def release(self) -> None:
        """Release the date's lock (idempotent; publish and record_failure call it)."""
        if self.lock is not None:
            self.lock.release()

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
        try:
            path = write_json_atomic(record, self.final / "failures" / f"{stamp}.json")
            shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self.release()
        return path


def last_good_profile(output_root: str | Path, before: dt.date
                      ) -> tuple[dt.date, dict[str, Any]] | None:
    """The validation profile of the newest published run dated before ``before``, if any.

    Only published runs have ``validation/profile.json`` (a failed run publishes nothing), so
    this is the last day whose inputs passed validation: the reference day of the drift checks.
    """
    best: tuple[dt.date, Path] | None = None
    for path in Path(output_root).glob(f"*/{VALIDATION_DIR}/{PROFILE_FILE}"):
        try:
            day = dt.date.fromisoformat(path.parent.parent.name)
        except ValueError:
            continue
        if day < before and (best is None or day > best[0]):
            best = (day, path)
    if best is None:
        return None
    try:
        return best[0], json.loads(best[1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
