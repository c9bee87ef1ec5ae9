"""Reading the input contract: partitions, files, schemas, fingerprints.

Plain functions, no Prefect: tasks call them, and the same code can run per partition or on a
cluster.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from is_core.errors import DataContractError


@dataclass(frozen=True)
class InputFile:
    """One input file and the day partition it belongs to (``None`` when unpartitioned)."""

    path: Path
    day: dt.date | None


def day_window(run_date: dt.date, window_days: int) -> list[dt.date]:
    """The ``window_days`` days ending at ``run_date`` (inclusive), oldest first."""
    return [run_date - dt.timedelta(days=window_days - 1 - j) for j in range(window_days)]


def resolve_input_files(
    location: str | Path, days: Sequence[dt.date], role: str, file_format: str,
    partition_key: str = "dt",
) -> list[InputFile]:
    """List the files of ``role`` at ``location`` for ``days``.

    ``location`` is either a folder of hive partitions ``<partition_key>=YYYY-MM-DD/``
    (``data.partition_key``, ``dt`` by default; each day of the window must be present and
    non-empty) or a single Parquet/CSV file (read whole).

    Raises
    ------
    DataContractError
        naming the missing location, partition or empty folder, and what to do; for a missing
        partition, also the day folders of another key found instead (``date=YYYY-MM-DD``).
    """
    location = Path(location)
    ext = ".parquet" if file_format == "parquet" else ".csv"
    if not location.exists():
        raise DataContractError(
            f"{role} data not found at {location}",
            fix=f"create it (hive partitions {partition_key}=YYYY-MM-DD/*{ext} or one {ext} "
            f"file), or point `data.{role}` in the config at the right place",
            details={"role": role, "path": str(location)},
        )
    if location.is_file():
        return [InputFile(location, None)]
    files: list[InputFile] = []
    for day in days:
        part = location / f"{partition_key}={day.isoformat()}"
        if not part.is_dir():
            raise _missing_partition(location, part.name, role, partition_key)
        found = sorted(p for p in part.iterdir() if p.suffix == ext and not p.name.startswith("."))
        if not found:
            raise DataContractError(
                f"{role} partition {part} holds no {ext} file",
                fix="re-export that day's partition (an empty folder usually means the upstream "
                "job failed half-way)",
                details={"role": role, "partition": part.name, "path": str(part)},
            )
        files.extend(InputFile(p, day) for p in found)
    return files


_DAY_FOLDER = re.compile(r"(?P<key>[^=]+)=\d{4}-\d{2}-\d{2}")
"""A hive day partition of any key: ``dt=2026-11-28``, ``date=2026-11-28``."""


def _missing_partition(location: Path, name: str, role: str, partition_key: str
                       ) -> DataContractError:
    """The error for the missing partition ``name``: when ``location`` holds day folders of
    another key (``date=YYYY-MM-DD`` while ``data.partition_key`` is ``dt``), it names them and
    the setting; otherwise the day has not arrived."""
    others: dict[str, list[str]] = {}
    for path in sorted(location.iterdir()):
        match = _DAY_FOLDER.fullmatch(path.name)
        if match and match["key"] != partition_key and path.is_dir():
            others.setdefault(match["key"], []).append(path.name)
    details = {"role": role, "partition": name, "path": str(location),
               "other_partition_keys": sorted(others)}
    if not others:
        return DataContractError(
            f"{role} partition {name} is missing under {location}",
            fix="wait for the upstream export of that day, backfill it, or run a window "
            "that excludes it (`data.window_days` / --date)", details=details)
    found = "; ".join(f"{len(names)} {key}=YYYY-MM-DD folder(s) ({names[0]} to {names[-1]})"
                      for key, names in others.items())
    key = max(others, key=lambda k: len(others[k]))
    return DataContractError(
        f"{role} partition {name} is missing under {location}; found there: {found}",
        fix=f"the days are partitioned by {key}=, not {partition_key}= "
        f"(`data.partition_key`): set `data.partition_key: {key}` in the config, or rename the "
        f"folders to {partition_key}=YYYY-MM-DD", details=details)


def read_columns_of(file: InputFile) -> list[str]:
    """The column names of one input file, without reading its rows."""
    if file.path.suffix == ".parquet":
        try:
            return list(pq.read_schema(file.path).names)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise _corrupt(file, exc) from exc
    return list(pd.read_csv(file.path, nrows=0).columns)


_ARROW_ALIASES = {"large_string": "string", "large_binary": "binary", "large_utf8": "string",
                  "utf8": "string"}


def read_schema_of(file: InputFile) -> dict[str, str]:
    """``{column: type}`` of one input file without reading its rows (Arrow type names; for CSV,
    the pandas dtypes inferred from its first 1000 rows)."""
    if file.path.suffix == ".parquet":
        try:
            schema = pq.read_schema(file.path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise _corrupt(file, exc) from exc
        return {f.name: _ARROW_ALIASES.get(str(f.type), str(f.type)) for f in schema}
    try:
        head = pd.read_csv(file.path, nrows=1000)
    except Exception as exc:
        raise _corrupt(file, exc) from exc
    return {str(c): str(t) for c, t in head.dtypes.items()}


def require_columns(file: InputFile, columns: Sequence[str], role: str) -> None:
    """Raise :class:`DataContractError` if ``file`` lacks any of ``columns``."""
    present = set(read_columns_of(file))
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataContractError(
            f"{role} file {file.path} lacks configured column(s) {missing}",
            fix="fix the upstream schema, or correct `columns` in the config "
            f"(the file has: {sorted(present)})",
            details={"role": role, "file": str(file.path), "missing": missing},
        )


def release_memory() -> None:
    """Hand memory freed by Python objects back to the operating system.

    Arrow's allocator (which holds the columns read from Parquet) and glibc's ``malloc`` keep
    freed pages for reuse rather than returning them, so a process that reads a large frame,
    drops it and then builds XGBoost's matrices peaks at the sum of both. Called between
    stages (and before training); on a non-glibc system the ``malloc_trim`` step is skipped.
    This is the remedy Dask documents for the same symptom in its workers. No ``gc.collect()``:
    frames are freed by reference counting, and a full collection costs 0.2 s once Prefect and
    GX are loaded.
    """
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# Arrow → pandas without a second copy: numeric columns become (read-only) views of the Arrow
# buffers and each Arrow column is released once converted. 1M + 1M rows of 40 columns: 0.24 s
# and 0.94 GiB peak instead of 1.6 s and 1.17 GiB (benchmarks/pipeline_overhead.py).
ZERO_COPY = {"self_destruct": True, "split_blocks": True}


def read_input_files(
    files: Iterable[InputFile], columns: Sequence[str] | None = None, role: str = "input"
) -> pd.DataFrame:
    """Read and concatenate ``files`` (in the given order), adding the ``dt`` partition column.

    The column is named ``dt`` (the ISO day) whatever ``data.partition_key`` the folders use:
    the later stages (per-day normalization, the run date's day, quarantine) find the day
    there. Only ``columns`` are read when given; a configured column missing from a file raises a
    :class:`DataContractError` naming the file and the column.
    """
    frames = []
    for file in files:
        if columns is not None:
            require_columns(file, columns, role)
        try:
            if file.path.suffix == ".parquet":
                frame = pd.read_parquet(file.path, engine="pyarrow",
                                        columns=list(columns) if columns else None,
                                        to_pandas_kwargs=ZERO_COPY)
            else:
                frame = pd.read_csv(file.path, usecols=list(columns) if columns else None)
        except DataContractError:
            raise
        except Exception as exc:
            raise _corrupt(file, exc) from exc
        if file.day is not None:
            frame["dt"] = file.day.isoformat()
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(columns or []))
    if len(frames) == 1:  # one partition: concat would copy every column
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _corrupt(file: InputFile, exc: Exception) -> DataContractError:
    return DataContractError(
        f"cannot read {file.path}: {type(exc).__name__}: {exc}",
        fix="the file is corrupt or not of the configured format; re-export that partition",
        details={"file": str(file.path)},
    )


def fingerprint_files(files: Iterable[InputFile]) -> str:
    """SHA-256 over the names and bytes of ``files``: equal fingerprints mean equal inputs."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.day}/{file.path.name}\0".encode())
        with open(file.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
