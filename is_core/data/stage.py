"""The load stage: find each data role's files for the window and check their columns.

:func:`locate_inputs` returns an :class:`Inputs` summary (paths, days, fingerprints), never a
frame; every later stage reads the rows it needs through :func:`read_role`, so large frames
never cross a stage boundary and the summary is what Prefect passes between tasks.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TypedDict, get_args

import pandas as pd

from is_core._validation import Role
from is_core.config import ColumnsConfig, DataConfig
from is_core.data.io import (
    InputFile,
    day_window,
    fingerprint_files,
    read_input_files,
    require_columns,
    resolve_input_files,
)

ROLES: tuple[Role, ...] = get_args(Role)


class RoleInputs(TypedDict):
    """One data role's files in the window: ``[path, day or None]`` pairs (JSON-friendly), the
    SHA-256 fingerprint of their bytes and the configured columns they must have."""

    files: list[list[str | None]]
    fingerprint: str
    columns: list[str]


class Inputs(TypedDict):
    """What the load stage hands every later stage: the run date, the window's days (ISO
    dates, oldest first) and the files of each role present (``holdout`` may be absent)."""

    run_date: str
    days: list[str]
    roles: dict[str, RoleInputs]


def role_columns(columns: ColumnsConfig, role: Role) -> list[str]:
    """The configured columns a ``role``'s files must have."""
    out = list(columns.features)
    if role in ("source", "holdout"):
        out.append(columns.label)
    if columns.impression_id:
        out.append(columns.impression_id)
    if role == "source" and columns.logging_propensity:
        out.append(columns.logging_propensity)
    return out


def locate_inputs(data: DataConfig, columns: ColumnsConfig, run_date: dt.date) -> Inputs:
    """Resolve each role's files for the window ending at ``run_date``; check their columns.

    Returns per role: files (path, day), the columns required and a SHA-256 fingerprint of the
    files' bytes. Raises :class:`~is_core.errors.DataContractError` naming a missing file,
    partition or column.
    """
    days = day_window(run_date, data.window_days)
    roles: dict[str, RoleInputs] = {}
    for role in ROLES:
        if role == "holdout" and data.holdout is None:
            continue
        files = resolve_input_files(data.path_of(role), days, role, data.format,
                                    data.partition_key)
        required = role_columns(columns, role)
        for file in files:
            require_columns(file, required, role)
        roles[role] = {
            "files": [[str(f.path), f.day.isoformat() if f.day else None] for f in files],
            "fingerprint": fingerprint_files(files),
            "columns": required,
        }
    return {"run_date": run_date.isoformat(), "days": [d.isoformat() for d in days],
            "roles": roles}


def input_files(inputs: Inputs, role: Role) -> list[InputFile]:
    """The :class:`InputFile` list of ``role`` from a :func:`locate_inputs` summary."""
    return [InputFile(Path(str(p)), dt.date.fromisoformat(d) if d else None)
            for p, d in inputs["roles"][role]["files"]]


def read_role(inputs: Inputs, role: Role, columns: list[str] | None = None) -> pd.DataFrame:
    """Read ``role``'s rows (all configured columns, or ``columns``) in a fixed order."""
    cols = columns if columns is not None else inputs["roles"][role]["columns"]
    return read_input_files(input_files(inputs, role), cols, role=role)


def has_role(inputs: Inputs, role: Role) -> bool:
    """Whether the window has files of ``role`` (only ``holdout`` is optional)."""
    return role in inputs["roles"]
