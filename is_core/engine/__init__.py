"""The Dask engine (``engine: dask``): the pipeline's stages on partitions of a Dask cluster.

An engine is a way to run the same stage, not a second copy of it: each stage here reads a
role's window as partitions (``partitions``: one per input file, numbered as the local engine
numbers its rows), runs the statistics of :mod:`is_core.weights` and :mod:`is_core.ctr` on each
partition on the workers and merges their small results on the client. ``cluster`` opens the
LocalCluster or connects to an existing scheduler; ``proposal``, ``weights``, ``training``,
``evaluation`` and ``promotion`` are the stages (``stage`` names them). This part imports
``data``, ``weights``, ``ctr`` and ``release``, and Dask; no other part imports it (the tasks and
the flow do, only when ``engine: dask``).
"""

from is_core.engine.cluster import DaskCluster, client_for, open_cluster
from is_core.engine.partitions import Partitions, role_partitions

__all__ = [
    "DaskCluster",
    "Partitions",
    "client_for",
    "open_cluster",
    "role_partitions",
]
