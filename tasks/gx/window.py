"""The validate stage: schema checks, quarantine, GX suites, drift, Data Docs, profile.

Wiring only: the checks' numbers come from :mod:`is_core.data.contract`, the suites from
:mod:`tasks.gx.suites`, running them from :mod:`tasks.gx.runner`. :func:`validate_window` reads
each role's window once and writes, under ``<out_dir>/validation/``: ``results.json`` (every
check, observed vs expected), ``profile.json`` (the run date's day per role: the next run's
reference day), ``suites/`` (the exact suites run, as JSON), ``data_docs/`` (GX Data Docs HTML)
and, in quarantine mode, ``quarantine/<role>.parquet`` (the dropped rows with the rules they
broke).

On failure the whole ``validation/`` folder is copied to
``<output_root>/<run_date>/failures/<stamp>-validation/`` before :class:`DataValidationError` is
raised, since the flow removes the staging folder of a failed run.

This module imports Great Expectations only inside the functions that run suites, so the flow
module can import it (for :func:`inputs_after_quarantine`) without the 2 s GX import.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any, cast

import pandas as pd

from is_core.config import IsbenchConfig
from is_core.data.atomic import write_json_atomic, write_parquet_atomic
from is_core.data.contract import (
    categorical_type_records,
    day_profile,
    day_row_count_records,
    drift_bounds,
    event_day_records,
    id_overlap_records,
    local_naive_timestamps,
    quarantine_rows,
    reference_range_records,
    row_problems,
    sanity_bound_records,
    schema_checks,
    unseen_category_records,
    window_day_stats,
)
from is_core.data.io import InputFile, fingerprint_files, read_input_files, read_schema_of
from is_core.data.stage import Inputs, Role, RoleInputs, input_files
from is_core.errors import DataValidationError
from is_core.release.runs import PROFILE_FILE, SCRATCH_DIR, VALIDATION_DIR, last_good_profile

Frames = dict[str, pd.DataFrame]
"""Each role's rows of the window."""
Record = dict[str, Any]
"""One check's result: role, success, rule, column, observed, expected, fix (and engine)."""
FileSchemas = list[tuple[str, dict[str, str]]]
"""A role's files as (label, column → dtype) pairs, oldest first."""


def validate_window(config: IsbenchConfig, inputs: Inputs, out_dir: Path) -> dict[str, Any]:
    """Validate every role of ``inputs`` (a :func:`is_core.data.stage.locate_inputs` summary).

    Returns, per role: rows, evaluated, failed, success, ``results`` (one record per check),
    ``reference_day`` and ``drift_bounds`` (None without a reference), ``quarantine`` (counts,
    or None), ``data_docs`` (index path relative to the run folder, or None) and
    ``clean_input`` (in quarantine mode when rows were dropped: the role's inputs entry
    pointing at the kept rows; see :func:`inputs_after_quarantine`).

    Raises
    ------
    DataValidationError
        listing every failed check (role, column, rule, observed, expected, fix).
    """
    # Great Expectations takes 2 s to import: only when validating, not with the flow module,
    # and in a thread while the window is read (Parquet reading releases the GIL).
    # tasks.gx.suites imports tasks.gx.runner: the thread imports every GX module used here.
    gx_import = threading.Thread(target=importlib.import_module, args=("tasks.gx.suites",),
                                 name="import-great-expectations", daemon=True)
    gx_import.start()
    run_date = dt.date.fromisoformat(inputs["run_date"])
    vdir = out_dir / VALIDATION_DIR
    vdir.mkdir(parents=True, exist_ok=True)
    ref_roles = _reference_roles(config, run_date)
    frames, schemas, records = _read_window(config, inputs, ref_roles)
    quarantine: dict[str, Any] = {}
    clean: dict[str, dict[str, Any]] = {}
    if config.validation.mode == "quarantine":
        frames, quarantine, clean = _quarantine_window(config, inputs, frames, out_dir,
                                                       run_date)
    records += _unseen_categories(config, frames)
    records += id_overlap_records(frames, config)
    records += _magnitudes(config, frames, ref_roles, run_date)
    gx_import.join()
    bounds, suite_records = _run_suites(config, frames, ref_roles, run_date, vdir)
    records += suite_records
    summary = _summarize(config, frames, records, bounds, quarantine, clean)
    write_json_atomic(summary, vdir / "results.json")
    _raise_on_failures(config, run_date, vdir, records, summary)
    write_json_atomic(_profile(config, run_date, frames, schemas), vdir / PROFILE_FILE)
    return summary


def inputs_after_quarantine(inputs: Inputs, validation: dict[str, Any]) -> Inputs:
    """``inputs`` with each quarantined role pointing at its kept rows (unchanged otherwise)."""
    clean = {role: s["clean_input"] for role, s in validation.items()
             if isinstance(s, dict) and s.get("clean_input")}
    if not clean:
        return inputs
    return {**inputs, "roles": {**inputs["roles"], **clean}}


def validate_frame(frame: pd.DataFrame, config: IsbenchConfig, role: str,
                   run_date: Any | None = None) -> dict[str, Any]:
    """Run the ``role`` window suite on ``frame``; return a summary with one record per
    expectation (no Data Docs, no drift: the quick path for tests and notebooks)."""
    from tasks.gx.runner import Batch, context_for, run_batches
    from tasks.gx.suites import build_suite

    context = context_for()
    batch = Batch(role, role, build_suite(config, role, run_date), frame)
    return run_batches([batch], context=context)[role]


# ---------------------------------------------------------------------------- reading
def _reference_roles(config: IsbenchConfig, run_date: dt.date) -> dict[str, Any]:
    """Per role, the profile of the reference day (the last good run before ``run_date``), or
    nothing when there is none or ``validation.reference_day`` is ``none``."""
    reference = (last_good_profile(config.output_root, run_date)
                 if config.validation.reference_day == "last_good_run" else None)
    return reference[1].get("roles", {}) if reference else {}


def _read_window(config: IsbenchConfig, inputs: Inputs, ref_roles: dict[str, Any]
                 ) -> tuple[Frames, dict[str, FileSchemas], list[Record]]:
    """Each role's frame (timestamps as local naive times), its files' schemas and the records
    of the schema checks (against the reference day's schema when there is one), of the
    categoricals' types and of each day on its own (:func:`_window_days`)."""
    cols = config.columns
    records: list[Record] = []
    frames: Frames = {}
    schemas: dict[str, FileSchemas] = {}
    for role in inputs["roles"]:
        files = input_files(inputs, cast(Role, role))
        schemas[role] = [(_label(f, config.data.partition_key), read_schema_of(f))
                         for f in files]
        ref_schema = ref_roles.get(role, {}).get("schema")
        records += schema_checks(schemas[role], config, role, ref_schema)
        columns = list(inputs["roles"][role]["columns"])
        if cols.timestamp and all(cols.timestamp in s for _, s in schemas[role]):
            columns.append(cols.timestamp)
        frame = read_input_files(files, columns, role=role)
        if cols.timestamp in frame:
            frame[cols.timestamp] = local_naive_timestamps(frame[cols.timestamp], config.timezone)
        records += categorical_type_records(frame, config, role)
        records += _window_days(config, frame, files, role)
        frames[role] = frame
    return frames, schemas, records


def _label(file: InputFile, partition_key: str = "dt") -> str:
    """How records name ``file``: its partition (``<data.partition_key>=YYYY-MM-DD``) or its
    file name."""
    return f"{partition_key}={file.day.isoformat()}" if file.day else file.path.name


def _run_date_day(frame: pd.DataFrame, run_date: dt.date) -> pd.DataFrame:
    """The rows of the run date's own partition (the whole frame when unpartitioned)."""
    if "dt" not in frame:
        return frame
    return frame.loc[frame["dt"] == run_date.isoformat()].reset_index(drop=True)


# ---------------------------------------------------------------------------- quarantine
def _quarantine_window(config: IsbenchConfig, inputs: Inputs, frames: Frames,
                       out_dir: Path, run_date: dt.date
                       ) -> tuple[Frames, dict[str, Any], dict[str, dict[str, Any]]]:
    """Drop each role's rows that break a row rule (quarantine mode).

    Returns the frames of the kept rows, the quarantine counts per role and, for each role
    that lost rows, its inputs entry pointing at the kept rows (:func:`_write_quarantine`).
    When a role loses more than ``validation.max_quarantine_share``, writes that failure as
    ``results.json``, keeps the folder (:func:`_keep_for_failure`) and re-raises.
    """
    vdir = out_dir / VALIDATION_DIR
    kept_frames = dict(frames)
    quarantine: dict[str, Any] = {}
    clean: dict[str, dict[str, Any]] = {}
    for role, frame in frames.items():
        try:
            kept, quarantine[role] = quarantine_rows(frame, config, role)
        except DataValidationError as error:  # more bad rows than the allowed share
            keep_quarantine_failure(config, run_date, vdir, role, error)
            raise
        if quarantine[role]["dropped"]:
            clean[role] = _write_quarantine(frame, config, role, vdir, out_dir,
                                            inputs["roles"][role], kept)
            kept_frames[role] = kept
    return kept_frames, quarantine, clean


def keep_quarantine_failure(config: IsbenchConfig, run_date: dt.date, vdir: Path, role: str,
                            error: DataValidationError) -> None:
    """Write ``role``'s quarantine failure (more bad rows than the allowed share) as
    ``results.json`` and keep the folder (:func:`_keep_for_failure`, its path in ``error``)."""
    write_json_atomic({role: {"success": False, "results": error.failures}},
                      vdir / "results.json")
    error.details["validation_dir"] = str(_keep_for_failure(config, run_date, vdir))


def _write_quarantine(frame: pd.DataFrame, config: IsbenchConfig, role: str, vdir: Path,
                      out_dir: Path, info: RoleInputs, kept: pd.DataFrame
                      ) -> dict[str, Any]:
    """Keep the dropped rows for audit; write the kept rows as scratch partitions and return
    the role's inputs entry pointing at them (same day layout: later stages read them as is),
    plus ``raw_fingerprint``, the fingerprint of the files as loaded."""
    write_parquet_atomic(rejected_rows(frame, row_problems(frame, config, role)),
                         vdir / "quarantine" / f"{role}.parquet")
    days: list[tuple[str | None, pd.DataFrame]] = (  # "dt" holds ISO dates (read_input_files)
        [(str(day), part) for day, part in kept.groupby("dt", sort=True)] if "dt" in kept
        else [(None, kept)])
    return clean_entry(info, [write_kept(part, out_dir, role, day) for day, part in days])


def rejected_rows(frame: pd.DataFrame, problems: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` breaking a row rule (``problems``:
    :func:`is_core.data.contract.row_problems`), with ``quarantine_rules``, the
    ``;``-separated ``<reason>:<column>`` they broke."""
    bad = problems.any(axis=1) if problems.shape[1] else pd.Series(False, index=frame.index)
    rejected = frame.loc[bad].copy()
    rejected["quarantine_rules"] = pd.Series(
        [";".join(str(k) for k, v in row.items() if v) for _, row in problems.loc[bad].iterrows()],
        index=rejected.index, dtype=object)
    return rejected


def write_kept(kept: pd.DataFrame, out_dir: Path, role: str, day: str | None, index: int = 0
               ) -> InputFile:
    """Write kept rows of one day (``day``: ISO date, None when unpartitioned) as the scratch
    partition ``.scratch/quarantine/<role>/dt=<day>/part-<index>.parquet`` (``all/`` for an
    unpartitioned input), without the ``dt`` column the reader adds back."""
    name = f"dt={day}" if day is not None else "all"
    path = write_parquet_atomic(kept[[c for c in kept.columns if c != "dt"]],
                                out_dir / SCRATCH_DIR / "quarantine" / role / name /
                                f"part-{index}.parquet")
    return InputFile(path, dt.date.fromisoformat(day) if day is not None else None)


def clean_entry(info: RoleInputs, files: list[InputFile]) -> dict[str, Any]:
    """The role's inputs entry ``info`` pointing at ``files``, the kept rows (the
    ``clean_input`` of :func:`validate_window`), with ``raw_fingerprint``, the fingerprint of
    the files as loaded."""
    return {
        **info,
        "files": [[str(f.path), f.day.isoformat() if f.day else None] for f in files],
        "fingerprint": fingerprint_files(files),
        "raw_fingerprint": info["fingerprint"],
    }


# ---------------------------------------------------------------------------- checks
def _window_days(config: IsbenchConfig, frame: pd.DataFrame, files: list[InputFile],
                 role: str) -> list[Record]:
    """Records of each day of ``role``'s window on its own (on the rows as read, before any
    quarantine): its row count against the window's median day and its events within its
    partition's day (:func:`is_core.data.contract.window_day_stats`)."""
    days = sorted({f.day.isoformat() for f in files if f.day is not None})
    if not days:  # one unpartitioned file: no days to compare
        return []
    timestamp = config.columns.timestamp
    stats = window_day_stats(frame, days, timestamp)
    key = config.data.partition_key
    records = day_row_count_records(stats, config.validation, role, key)
    if timestamp and timestamp in frame:
        records += event_day_records(stats, config.validation, role, timestamp, key,
                                     config.timezone)
    return records


def _unseen_categories(config: IsbenchConfig, frames: Frames) -> list[Record]:
    """Records of the target's and holdout's categories that the source never shows."""
    if "source" not in frames:
        return []
    return [record for role in ("target", "holdout") if role in frames
            for record in unseen_category_records(frames["source"], frames[role], config, role)]


def _magnitudes(config: IsbenchConfig, frames: Frames, ref_roles: dict[str, Any],
                run_date: dt.date) -> list[Record]:
    """Records of the numeric features' magnitudes: the sanity bound on every row of the window
    and, given a reference day, the run date's day within the reference ranges."""
    records: list[Record] = []
    for role, frame in frames.items():
        records += sanity_bound_records(frame, config, role)
        if role in ref_roles:
            records += reference_range_records(_run_date_day(frame, run_date), config, role,
                                               ref_roles[role])
    return records


def _run_suites(config: IsbenchConfig, frames: Frames,
                ref_roles: dict[str, Any], run_date: dt.date, vdir: Path
                ) -> tuple[dict[str, Any], list[Record]]:
    """Run each role's window suite and, given a reference day, its drift suite on the run
    date's day; write the suites run under ``suites/`` and, if configured, Data Docs.

    Returns the drift bounds per role with a reference and the suites' records.
    """
    # GX is imported by validate_window's thread: a failed import there raises here
    from tasks.gx.runner import Batch, context_for, run_batches
    from tasks.gx.suites import build_drift_suite, build_suite, suite_json

    vc = config.validation
    docs_dir = vdir / "data_docs" if vc.data_docs else None
    context = context_for(docs_dir)  # suites can only be built inside a GX context
    batches, bounds = [], {}
    for role, frame in frames.items():
        batches.append(Batch(role, role, build_suite(config, role, run_date), frame))
        if role in ref_roles:
            bounds[role] = drift_bounds(ref_roles[role], vc)
            batches.append(Batch(f"{role}_drift", role,
                                 build_drift_suite(config, role, bounds[role]),
                                 _run_date_day(frame, run_date)))
    results = run_batches(batches, docs_dir, context)
    for batch in batches:
        write_json_atomic(suite_json(batch.suite), vdir / "suites" / f"{batch.suite.name}.json")
    return bounds, [r for b in batches for r in results[b.name]["results"]]


# ---------------------------------------------------------------------------- outcome
def _summarize(config: IsbenchConfig, frames: Frames, records: list[Record],
               bounds: dict[str, Any], quarantine: dict[str, Any],
               clean: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per role: counts, its records, its reference and drift bounds, quarantine counts, the
    Data Docs index and the clean inputs entry (the value :func:`validate_window` returns)."""
    docs = f"{VALIDATION_DIR}/data_docs/index.html" if config.validation.data_docs else None
    summary: dict[str, Any] = {}
    for role, frame in frames.items():
        mine = [r for r in records if r["role"] == role]
        failed = [r for r in mine if not r["success"]]
        summary[role] = {
            "rows": int(len(frame)), "evaluated": len(mine), "failed": len(failed),
            "success": not failed, "results": mine,
            "reference_day": bounds[role]["reference_day"] if role in bounds else None,
            "drift_bounds": bounds.get(role), "quarantine": quarantine.get(role),
            "data_docs": docs, "clean_input": clean.get(role),
        }
    return summary


def _raise_on_failures(config: IsbenchConfig, run_date: dt.date, vdir: Path,
                       records: list[Record], summary: dict[str, Any]) -> None:
    """Keep the validation folder and raise :class:`DataValidationError` listing every failed
    record, if any."""
    failures = [r for r in records if not r["success"]]
    if failures:
        error = DataValidationError(failures, role="/".join(
            r for r, s in summary.items() if not s["success"]))
        error.details["validation_dir"] = str(_keep_for_failure(config, run_date, vdir))
        raise error


def _profile(config: IsbenchConfig, run_date: dt.date, frames: Frames,
             schemas: dict[str, FileSchemas]) -> dict[str, Any]:
    """The run date's day per role (:func:`is_core.data.contract.day_profile`, with the schema
    of its newest file): the reference day of the next run's drift checks."""
    return {"run_date": run_date.isoformat(), "roles": {
        role: day_profile(_run_date_day(frame, run_date), config, role,
                          schema=schemas[role][-1][1] if schemas[role] else None,
                          day=run_date.isoformat())
        for role, frame in frames.items()}}


def _keep_for_failure(config: IsbenchConfig, run_date: dt.date, vdir: Path) -> Path:
    """Copy ``vdir`` to ``<output_root>/<run_date>/failures/<stamp>-validation`` atomically."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    failures = Path(config.output_root) / run_date.isoformat() / "failures"
    failures.mkdir(parents=True, exist_ok=True)
    tmp = failures / f".{stamp}-validation.tmp"
    shutil.copytree(vdir, tmp)
    final = failures / f"{stamp}-validation"
    os.replace(tmp, final)
    return final
