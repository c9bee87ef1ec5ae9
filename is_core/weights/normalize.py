r"""From log importance weights to final weights.

raw weight :math:`w_i = \exp(\log w_i)` → clipped weight (:mod:`is_core.weights.clipping`) →
final weight

.. math:: \tilde w_i = n_g\, w^c_i \Big/ \sum_{j \in g} w^c_j,

self-normalized to mean exactly 1 over the source rows of its partition :math:`g` (one partition
by default; per day with ``partition=day``, so that each day of the window counts as much as
its share of rows and one day's extreme weights cannot swamp the others).

**Logged-propensity weights.** When the source rows carry the logging policy's propensity
:math:`\pi_0(a \mid x)` and the target policy's propensity :math:`\pi_1(a \mid x)` is known (for
uniform exploration over items × positions, :math:`1/(I K)`), the policy part of the weight is
exact: :math:`\log w = \log \pi_1 - \log \pi_0`. It is the full weight when the context (user)
distribution is the same in source and target; otherwise it misses the context shift.
"""

from __future__ import annotations

import numpy as np

from is_core._validation import check_length, check_log_weights
from is_core.errors import DataContractError, ParameterError
from is_core.weights.clipping import ClipResult, clip_log_weights
from is_core.weights.diagnostics import (
    QUANTILES,
    WeightDiagnostics,
    diagnose_weights,
    effective_sample_size,
)

__all__ = [
    "QUANTILES", "ClipResult", "WeightDiagnostics", "clip_log_weights", "diagnose_weights",
    "effective_sample_size", "logged_propensity_log_ratio", "normalize_log_weights",
]


def normalize_log_weights(log_w: np.ndarray, partition: np.ndarray | None = None) -> np.ndarray:
    """Final weights with mean exactly 1 (per ``partition`` label when given).

    Computed with the log-sum-exp shift (per partition) so the largest weight never overflows.
    """
    log_w = check_log_weights(log_w)
    if partition is None:
        shifted = np.exp(log_w - log_w.max())
        return shifted * (log_w.size / shifted.sum())
    partition = np.asarray(partition)
    check_length(partition, log_w.size, parameter="partition", noun="partition labels",
                 per="log weights")
    out = np.empty_like(log_w)
    for label in np.unique(partition):
        rows = partition == label
        out[rows] = normalize_log_weights(log_w[rows])
    return out


def logged_propensity_log_ratio(logging_propensity: np.ndarray, target_propensity: float |
                                np.ndarray, column: str = "logging_propensity") -> np.ndarray:
    """:math:`\\log \\pi_1 - \\log \\pi_0` of source rows from logged propensities.

    Raises :class:`DataContractError` naming ``column`` if a propensity is missing or not in
    (0, 1], and :class:`ParameterError` if ``target_propensity`` is not in (0, 1].
    """
    pi0 = np.asarray(logging_propensity, dtype=float)
    pi1 = np.broadcast_to(np.asarray(target_propensity, dtype=float), pi0.shape)
    bad = ~np.isfinite(pi0) | (pi0 <= 0) | (pi0 > 1)
    if bad.any():
        raise DataContractError(
            f"{int(bad.sum())} source row(s) have a {column!r} that is missing or not in (0, 1]",
            fix=f"log the propensity of every impression, or set columns.{column} to null and "
            "use an estimated proposal",
            details={"column": column, "bad_rows": int(bad.sum())},
        )
    if not (np.all(pi1 > 0) and np.all(pi1 <= 1)):
        raise ParameterError("target_propensity must be in (0, 1]",
                             fix="pass the target policy's propensity, e.g. 1/(items × "
                             "positions) for uniform exploration", parameter="target_propensity")
    return np.log(pi1) - np.log(pi0)
