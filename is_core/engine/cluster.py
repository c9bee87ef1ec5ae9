"""The Dask cluster a run of ``engine: dask`` works on: an existing scheduler, or a
``distributed.LocalCluster`` started for the run.

:func:`open_cluster` returns a :class:`DaskCluster` whose ``address`` (a string) is what the flow
hands every stage; a stage gets its client with :func:`client_for`, which keeps one
``distributed.Client`` per scheduler address in the process (Prefect runs tasks in threads of the
flow's process, and a client per task would reconnect each time). Closing the cluster closes
those clients and, for a LocalCluster, its scheduler and workers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, LocalCluster

from is_core.config import DaskConfig
from is_core.errors import ConfigError

_CLIENTS: dict[str, Client] = {}
_LOCK = threading.Lock()


@dataclass
class DaskCluster:
    """A scheduler address and, when the run started it, the LocalCluster behind it."""

    address: str
    local: LocalCluster | None = field(default=None, repr=False)

    def close(self) -> None:
        """Close this process's client of the cluster and a LocalCluster the run started (an
        external cluster is left running: it is the user's)."""
        with _LOCK:
            client = _CLIENTS.pop(self.address, None)
        if client is not None:
            client.close()
        if self.local is not None:
            self.local.close()


def open_cluster(dask: DaskConfig) -> DaskCluster:
    """Connect to ``dask.address``, or start a LocalCluster of ``dask.n_workers`` worker
    processes (``threads_per_worker``, ``memory_limit``; Dask's defaults where null).

    Raises :class:`~is_core.errors.ConfigError` naming ``dask.address`` when no scheduler
    answers there.
    """
    for name in ("distributed", "distributed.scheduler", "distributed.nanny",
                 "distributed.core", "distributed.worker", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the flow's log: isbench's lines
    if dask.address is not None:
        try:
            client_for(dask.address)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"no Dask scheduler answers at dask.address={dask.address!r}: "
                              f"{type(exc).__name__}: {exc}",
                              fix="start the scheduler (`dask scheduler`) and its workers, or "
                              "set dask.address to null for a LocalCluster") from exc
        return DaskCluster(dask.address)
    options: dict[str, Any] = {"processes": True, "dashboard_address": None,
                               "silence_logs": logging.ERROR}
    for key in ("n_workers", "threads_per_worker", "memory_limit"):
        if getattr(dask, key) is not None:
            options[key] = getattr(dask, key)
    local = LocalCluster(**options)
    return DaskCluster(local.scheduler_address, local)


def client_for(address: str) -> Client:
    """This process's client of the scheduler at ``address`` (connected on first use)."""
    with _LOCK:
        client = _CLIENTS.get(address)
        if client is None or client.status not in ("running", "connecting"):
            client = Client(address, set_as_default=False, timeout="30s")
            _CLIENTS[address] = client
        return client
