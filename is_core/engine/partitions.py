"""A data role's window as partitions: one per input file, in the local engine's row order.

The local engine reads a role's files in the order :func:`is_core.data.stage.locate_inputs`
lists them and numbers the rows of their concatenation 0..n-1 (``row_id``). Here each file is
one partition, read on a worker by the same reader (:func:`is_core.data.io.read_input_files`,
so a corrupt file fails with the same error naming it), and ``offsets`` say where each
partition's rows begin in that numbering: the same row has the same ``row_id`` in both engines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from distributed import Client

from is_core._validation import Role
from is_core.data.io import InputFile, read_input_files
from is_core.data.stage import Inputs, input_files


@dataclass(frozen=True)
class Partitions:
    """A role's files and the first global row of each (``offsets[i]``; ``offsets[-1]`` is the
    role's row count)."""

    role: str
    files: tuple[InputFile, ...]
    offsets: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        return self.offsets[-1]

    def __len__(self) -> int:
        return len(self.files)


def read_partition(file: InputFile, columns: Sequence[str] | None, role: str) -> pd.DataFrame:
    """One partition's rows (only ``columns``; with the ``dt`` day column of a partitioned
    input): the local engine's reader on one file."""
    return read_input_files([file], None if columns is None else list(columns), role=role)


def _row_count(file: InputFile, role: str) -> int:
    if file.path.suffix == ".parquet":
        try:
            return int(pq.read_metadata(file.path).num_rows)
        except Exception:  # noqa: BLE001 - read it, to fail with the reader's own error
            pass
    return len(read_partition(file, [], role))


def role_partitions(client: Client, inputs: Inputs, role: Role) -> Partitions:
    """The partitions of ``role`` with their row offsets (Parquet row counts come from the
    files' footers; a CSV file is counted by a worker)."""
    files = input_files(inputs, role)
    counts = client.gather(safe_map(client, _row_count, files, role=role))
    offsets = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))])
    return Partitions(role, tuple(files), tuple(int(o) for o in offsets))


def map_partitions(client: Client, parts: Partitions, func: Callable[..., Any],
                   *args: Any, **kwargs: Any) -> list[Any]:
    """``func(file, index, first_row, n_rows, *args, **kwargs)`` for each partition, on the
    workers; the (small) results in partition order. A partition's error is raised here."""
    indices = range(len(parts))
    futures = safe_map(client, func, list(parts.files), list(indices),
                       list(parts.offsets[:-1]),
                       [parts.offsets[i + 1] - parts.offsets[i] for i in indices],
                       *[[a] * len(parts) for a in args], **kwargs)
    return cast(list[Any], client.gather(futures))


def _identity(value: Any) -> Any:
    return value


def safe_map(client: Client, func: Callable[..., Any], *iterables: Any, **kwargs: Any
             ) -> list[Any]:
    """``client.map(func, *iterables, **kwargs)`` (impure), each large keyword argument sent
    once as a task of its own: ``distributed`` 2026.1 keys a keyword argument above 100 kB by
    its *name*, so two concurrent maps with a large ``rows=`` collide on the scheduler."""
    from dask.sizeof import sizeof

    large = {k: client.submit(_identity, v, pure=False) for k, v in kwargs.items()
             if sizeof(v) > 50_000}
    return cast(list[Any], client.map(func, *iterables, pure=False, **{**kwargs, **large}))


def _take_rows(file: InputFile, local: np.ndarray, columns: list[str], role: str
               ) -> pd.DataFrame:
    return read_partition(file, columns, role).iloc[local]


def gather_rows(client: Client, parts: Partitions, columns: list[str], rows: np.ndarray
                ) -> pd.DataFrame:
    """The rows ``rows`` (sorted global row ids) of ``columns``, collected to the client in
    that order: what ``read_role(...).iloc[rows]`` gives the local engine, without reading the
    other rows into this process."""
    rows = np.asarray(rows, dtype=np.int64)
    bounds = np.searchsorted(rows, np.asarray(parts.offsets))
    wanted = [i for i in range(len(parts)) if bounds[i + 1] > bounds[i]]
    if not wanted:
        return empty_frame(parts, columns)
    futures = safe_map(client, _take_rows, [parts.files[i] for i in wanted],
                       [rows[bounds[i]:bounds[i + 1]] - parts.offsets[i] for i in wanted],
                       columns=columns, role=parts.role)
    return pd.concat(client.gather(futures), ignore_index=True)


def empty_frame(parts: Partitions, columns: Sequence[str]) -> pd.DataFrame:
    """A frame of no rows with the dtypes :func:`read_partition` gives ``columns`` (from the
    first file's schema; a CSV file's first rows)."""
    file = parts.files[0]
    if file.path.suffix == ".parquet":
        empty = pq.read_schema(file.path).empty_table().select(list(columns)).to_pandas()
        if file.day is not None:
            empty["dt"] = pd.Series([], dtype="str")
        return empty
    return read_input_files([file], list(columns), role=parts.role).iloc[:0]


def role_frame(parts: Partitions, columns: Sequence[str]) -> Any:
    """The role as a ``dask.dataframe`` (one partition per file, in order, read by
    :func:`read_partition`)."""
    import dask
    import dask.dataframe as dd

    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(read_partition, list(parts.files), columns=list(columns),
                           role=parts.role, meta=empty_frame(parts, columns),
                           enforce_metadata=False)
