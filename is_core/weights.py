r"""From log importance weights to final weights, and their diagnostics.

raw weight :math:`w_i = \exp(\log w_i)` → clipped weight → final weight
:math:`\tilde w_i = n\, w^c_i / \sum_j w^c_j` (mean exactly 1 over the source rows).

Clipping happens in log space (``log w`` is capped, then exponentiated) so a raw weight that would
overflow ``exp`` is still handled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from is_core.errors import WeightDiagnosticsError

QUANTILES = (0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0)


def clip_log_weights(
    log_w: np.ndarray, method: Literal["none", "quantile"] = "quantile", quantile: float = 0.99
) -> tuple[np.ndarray, float]:
    """Cap ``log_w`` from above; return the clipped log weights and the cap (``inf`` for none).

    ``quantile``: cap at the empirical ``quantile`` of the raw log weights (equivalently of the raw
    weights, since exp is monotone). Clipping trades a small bias for a large variance reduction.
    """
    log_w = np.asarray(log_w, dtype=float)
    if method == "none":
        return log_w.copy(), float("inf")
    if method == "quantile":
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        cap = float(np.quantile(log_w, quantile))
        return np.minimum(log_w, cap), cap
    raise ValueError(f"unknown clip method {method!r}; use 'none' or 'quantile'")


def normalize_log_weights(log_w: np.ndarray) -> np.ndarray:
    """Self-normalize: :math:`\\tilde w_i = n \\exp(\\log w_i) / \\sum_j \\exp(\\log w_j)`.

    Computed with the log-sum-exp shift so the largest weight never overflows.
    """
    log_w = np.asarray(log_w, dtype=float)
    if log_w.size == 0:
        raise ValueError("cannot normalize an empty weight vector")
    shifted = np.exp(log_w - log_w.max())
    return shifted * (log_w.size / shifted.sum())


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's effective sample size :math:`(\\sum w)^2 / \\sum w^2` (scale-invariant, ≤ n)."""
    w = np.asarray(w, dtype=float)
    total = w.sum()
    if total <= 0:
        return 0.0
    return float(total**2 / np.square(w).sum())


@dataclass(frozen=True)
class WeightDiagnostics:
    """Numbers that say whether the final weights can be trusted."""

    n: int
    ess: float
    ess_fraction: float
    max_weight_share: float
    raw_quantiles: dict[str, float]
    final_quantiles: dict[str, float]
    clip_method: str
    clip_log_cap: float
    clipped_fraction: float
    domain_auc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose_weights(
    log_w_raw: np.ndarray,
    log_w_clipped: np.ndarray,
    final_w: np.ndarray,
    clip_method: str,
    clip_log_cap: float,
    domain_auc: float | None = None,
) -> WeightDiagnostics:
    """Kish ESS, ESS/n, the largest weight's share of the total, and weight quantiles."""
    n = final_w.size
    ess = effective_sample_size(final_w)
    raw = np.exp(np.asarray(log_w_raw, dtype=float))
    return WeightDiagnostics(
        n=int(n),
        ess=ess,
        ess_fraction=ess / n,
        max_weight_share=float(final_w.max() / final_w.sum()),
        raw_quantiles={f"q{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(raw, QUANTILES),
                                                          strict=True)},
        final_quantiles={f"q{q:g}": float(v) for q, v in zip(QUANTILES,
                                                            np.quantile(final_w, QUANTILES),
                                                            strict=True)},
        clip_method=clip_method,
        clip_log_cap=clip_log_cap,
        clipped_fraction=float(np.mean(log_w_clipped < log_w_raw)),
        domain_auc=domain_auc,
    )


def enforce_min_ess(diagnostics: WeightDiagnostics, min_ess_fraction: float) -> None:
    """Raise :class:`WeightDiagnosticsError` when ESS/n is below ``min_ess_fraction``."""
    if diagnostics.ess_fraction < min_ess_fraction:
        raise WeightDiagnosticsError(
            f"ESS/n of the final weights is {diagnostics.ess_fraction:.4f} "
            f"(ESS {diagnostics.ess:.1f} of {diagnostics.n}), below the gate "
            f"{min_ess_fraction}",
            fix="the target is barely covered by the source: check the domain AUC "
            f"({diagnostics.domain_auc}), clip harder (weights.clip_quantile), or widen the "
            "source window",
            details=diagnostics.to_dict(),
        )
