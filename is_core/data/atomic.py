"""Writing outputs atomically: every file appears complete or not at all.

Nothing here writes a file in place: every write goes to a temporary sibling and is
renamed over the destination (``os.replace`` is atomic on POSIX within a file system), so a
crash never leaves a half-written file visible.

A folder that cannot be written (read-only, another user's, a file, a full disk) raises
:class:`~is_core.errors.OutputFolderError` naming it, not the bare ``OSError``
(:func:`output_folder_errors`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from is_core.errors import OutputFolderError

NOT_WRITABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                                 errno.ENOSPC, errno.EDQUOT})
"""``OSError`` numbers meaning that a folder cannot be written, now or on a retry: a read-only
file system, no permission, a file where a folder should be, a full disk or quota."""
_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def output_folder_errors(folder: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` of :data:`NOT_WRITABLE_ERRNOS` raised inside into an
    :class:`~is_core.errors.OutputFolderError` naming ``folder``, the file and the fix.

    Any other ``OSError`` (a dropped connection, an NFS hiccup: transient, so the tasks retry
    it) passes unchanged.
    """
    try:
        yield
    except OutputFolderError:
        raise
    except OSError as exc:
        if exc.errno not in NOT_WRITABLE_ERRNOS:
            raise
        folder = Path(folder)
        where = f" on {exc.filename}" if exc.filename else ""
        fix = (f"free space on the disk of {folder} (or point `output_root` at a disk with room)"
               if exc.errno in _FULL else
               f"make {folder} writable for this user, or point `output_root` (and "
               "`promotion.registry`) at a writable folder")
        # errno and filename stay in details: set on the error, they would make its str() the
        # bare "[Errno 30] ..." of an OSError instead of what failed and the fix
        raise OutputFolderError(
            f"cannot write the output folder {folder}: {exc.strerror} "
            f"([Errno {exc.errno}]{where})", fix=f"{fix}, then re-run the date",
            details={"path": str(folder), "errno": exc.errno, "file": exc.filename}) from exc


# ---------------------------------------------------------------------------- atomic writes
def _atomic_write(path: Path, write: Any) -> Path:
    path = Path(path)
    with output_folder_errors(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            write(tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def write_parquet_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to Parquet at ``path`` atomically (no index)."""
    return _atomic_write(Path(path), lambda tmp: frame.to_parquet(tmp, index=False))


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, recursively.

    JSON has no NaN or infinity; a bounded tail (k̂ = -inf), an unbounded clip cap (inf) or an
    undefined AUC are written as ``null`` instead of the invalid tokens ``json.dumps`` emits.
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented, key-sorted, strict JSON at ``path`` atomically."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, default=str,
                      allow_nan=False) + "\n"
    return write_text_atomic(text, path)


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write ``text`` (UTF-8) at ``path`` atomically."""
    return _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    """Write ``data`` at ``path`` atomically."""
    return _atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def publish_directory(staging: str | Path, final: str | Path) -> Path:
    """Move a finished ``staging`` folder to ``final``, replacing an earlier one.

    The earlier folder is first renamed aside and removed only after the new one is in place, so at
    every instant ``final`` is either the complete old output or the complete new one (two
    renames; a crash between them leaves the old output under ``.<name>.replaced-*``, never a
    partial one). Failure records of the earlier folder (``failures/``) are carried over.
    """
    staging, final = Path(staging), Path(final)
    with output_folder_errors(final.parent):
        final.parent.mkdir(parents=True, exist_ok=True)
        old = final.parent / f".{final.name}.replaced-{uuid.uuid4().hex[:8]}"
        if final.exists():
            old_failures = final / "failures"
            if old_failures.is_dir():
                shutil.copytree(old_failures, staging / "failures", dirs_exist_ok=True)
            os.replace(final, old)
        os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


# ---------------------------------------------------------------------------- reading
