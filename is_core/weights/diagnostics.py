r"""Weight diagnostics and the gates that refuse unreliable weights.

* **Kish ESS** :math:`(\sum w)^2 / \sum w^2` and ESS/n (1 = uniform weights; scale-invariant).
* **Pareto** :math:`\hat k` of the raw weights' right tail (:mod:`is_core.weights.psis`): the
  variance of the weights is infinite for :math:`k \ge 1/2`; importance-sampling estimates are
  unreliable above :math:`\min(1 - 1/\log_{10} S, 0.7)` (Vehtari et al. 2024).
* **Largest-weight share** :math:`\max_i w_i / \sum_j w_j`: one row carrying the estimate.
* **Domain AUC** of the proposal model: 0.5 no detectable shift, 1 disjoint support.
* Optionally the agreement of estimated and **logged-propensity** weights (Spearman, NMSE).
* **Rows clipped** and, given the labels, the **share of the shift kept** by the clip
  (:func:`is_core.weights.clipping.share_of_shift_kept`: 1 all of it, 0 collapsed onto the
  naive source mean).

A **gate** turns a diagnostic into pass / warn / fail; :func:`evaluate_gates` applies them and
:func:`enforce_gates` raises :class:`WeightDiagnosticsError` on any failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import spearmanr

from is_core.errors import WeightDiagnosticsError
from is_core.weights.clipping import share_of_shift_kept
from is_core.weights.psis import khat_threshold, pareto_khat

QUANTILES = (0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0)
GateStatus = Literal["pass", "warn", "fail"]


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's effective sample size :math:`(\\sum w)^2 / \\sum w^2` (scale-invariant, ≤ n)."""
    w = np.asarray(w, dtype=float)
    total = w.sum()
    if not total > 0:
        return 0.0
    scaled = w / w.max()
    return float(min(scaled.sum() ** 2 / np.square(scaled).sum(), w.size))


def weight_nmse(w_hat: np.ndarray, w_true: np.ndarray) -> float:
    r"""Normalized MSE of estimated weights against reference weights, both rescaled to mean 1:

    .. math:: \mathrm{NMSE} = \frac{\frac1n\sum_i (\hat w_i - w_i)^2}{\frac1n\sum_i (w_i - 1)^2}.

    0 is perfect; 1 is what constant weights (no correction at all) score. ``inf`` when the
    reference weights are themselves constant.
    """
    w_hat = np.asarray(w_hat, dtype=float)
    w_true = np.asarray(w_true, dtype=float)
    w_hat = w_hat / w_hat.mean()
    w_true = w_true / w_true.mean()
    denom = float(np.mean(np.square(w_true - 1)))
    num = float(np.mean(np.square(w_hat - w_true)))
    return num / denom if denom > 0 else float("inf")


def compare_weights(log_w_hat: np.ndarray, log_w_ref: np.ndarray) -> dict[str, float]:
    """Spearman rank correlation and :func:`weight_nmse` of two log-weight vectors."""
    a, b = np.asarray(log_w_hat, float), np.asarray(log_w_ref, float)
    rho = spearmanr(a, b).statistic if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")
    return {"spearman": float(rho),
            "nmse": weight_nmse(np.exp(a - a.max()), np.exp(b - b.max()))}


def _quantiles(w: np.ndarray) -> dict[str, float]:
    return {f"q{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(w, QUANTILES), strict=True)}


@dataclass(frozen=True)
class WeightDiagnostics:
    """Numbers that say whether the final weights can be trusted."""

    n: int
    ess: float
    ess_fraction: float
    raw_ess_fraction: float
    khat: float
    khat_threshold: float
    max_weight_share: float
    raw_quantiles: dict[str, float]
    final_quantiles: dict[str, float]
    clip_method: str
    clip_log_cap: float
    clipped_fraction: float
    domain_auc: float | None = None
    logged_comparison: dict[str, float] | None = None
    shift_kept: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose_weights(
    log_w_raw: np.ndarray,
    log_w_clipped: np.ndarray,
    final_w: np.ndarray,
    clip_method: str,
    clip_log_cap: float,
    domain_auc: float | None = None,
    logged_comparison: dict[str, float] | None = None,
    y: np.ndarray | None = None,
) -> WeightDiagnostics:
    """Kish ESS (final and raw), k̂ of the raw weights, largest share, quantiles.

    With the source labels ``y``, also the share of the shift the clip kept.
    """
    log_w_raw = np.asarray(log_w_raw, dtype=float)
    final_w = np.asarray(final_w, dtype=float)
    n = final_w.size
    ess = effective_sample_size(final_w)
    raw_scaled = np.exp(log_w_raw - log_w_raw.max())
    return WeightDiagnostics(
        n=int(n),
        ess=ess,
        ess_fraction=ess / n,
        raw_ess_fraction=effective_sample_size(raw_scaled) / n,
        khat=pareto_khat(log_w_raw),
        khat_threshold=khat_threshold(n),
        max_weight_share=float(final_w.max() / final_w.sum()),
        raw_quantiles=_quantiles(np.exp(log_w_raw)),
        final_quantiles=_quantiles(final_w),
        clip_method=clip_method,
        clip_log_cap=float(clip_log_cap),
        clipped_fraction=float(np.mean(np.asarray(log_w_clipped) < log_w_raw)),
        domain_auc=domain_auc,
        logged_comparison=logged_comparison,
        shift_kept=None if y is None else share_of_shift_kept(log_w_raw, log_w_clipped, y),
    )


# ---------------------------------------------------------------------------- gates
@dataclass(frozen=True)
class WeightGates:
    """Thresholds of the gates; ``None`` disables that level of a gate.

    ``max_khat_fail="auto"`` uses :func:`is_core.weights.psis.khat_threshold` of the sample size.
    """

    min_ess_fraction_warn: float | None = 0.10
    min_ess_fraction_fail: float | None = 0.01
    max_khat_warn: float | None = 0.5
    max_khat_fail: float | Literal["auto"] | None = "auto"
    max_domain_auc_warn: float | None = 0.85
    max_domain_auc_fail: float | None = 0.99
    max_weight_share_warn: float | None = 0.05
    max_weight_share_fail: float | None = None
    min_logged_spearman_warn: float | None = 0.5
    max_clipped_fraction_warn: float | None = 0.10
    max_clipped_fraction_fail: float | None = None


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on one diagnostic."""

    gate: str
    value: float | None
    status: GateStatus
    warn_threshold: float | None
    fail_threshold: float | None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIXES = {
    "ess_fraction": "the target is barely covered by the source: clip harder (weights.clip), "
    "widen the source window, or narrow the target",
    "khat": "the raw weights have too heavy a tail for importance sampling to be reliable: "
    "check for target regions the source rarely visits; use weights.clip='psis' or 'auto' only "
    "after that",
    "domain_auc": "source and target are (almost) separable: the source does not cover the "
    "target; check that both come from the same feature pipeline and window",
    "max_weight_share": "a handful of rows dominate the estimate: clip harder",
    "clipped_fraction": "the clip caps many rows and may remove the shift it should correct: "
    "check the share of the shift kept, use a milder weights.clip (e.g. 'ionides' or 'psis'), "
    "or improve the proposal model so fewer weights need capping",
    "logged_spearman": "the estimated weights disagree with the logged propensities: check the "
    "proposal features and the propensity logging",
}


def _gate(name: str, value: float | None, warn: float | None, fail: float | None,
          upper: bool) -> GateResult:
    """``upper``: the value must stay below the thresholds (else above)."""
    if value is None or not np.isfinite(value):
        return GateResult(name, None if value is None else float(value), "pass", warn, fail,
                          "not available")

    def breached(threshold: float | None) -> bool:
        return threshold is not None and (value > threshold if upper else value < threshold)

    status: GateStatus = "fail" if breached(fail) else "warn" if breached(warn) else "pass"
    relation = ">" if upper else "<"
    message = ""
    if status != "pass":
        limit = fail if status == "fail" else warn
        message = f"{name} = {value:.4g} {relation} {limit:.4g} ({status}). Fix: {_FIXES[name]}"
    return GateResult(name, float(value), status, warn, fail, message)


def evaluate_gates(diagnostics: WeightDiagnostics, gates: WeightGates | None = None
                   ) -> list[GateResult]:
    """Apply every gate to ``diagnostics``."""
    g = gates or WeightGates()
    khat_fail = diagnostics.khat_threshold if g.max_khat_fail == "auto" else g.max_khat_fail
    logged = (diagnostics.logged_comparison or {}).get("spearman")
    return [
        _gate("ess_fraction", diagnostics.ess_fraction, g.min_ess_fraction_warn,
              g.min_ess_fraction_fail, upper=False),
        _gate("khat", diagnostics.khat, g.max_khat_warn, khat_fail, upper=True),
        _gate("domain_auc", diagnostics.domain_auc, g.max_domain_auc_warn,
              g.max_domain_auc_fail, upper=True),
        _gate("max_weight_share", diagnostics.max_weight_share, g.max_weight_share_warn,
              g.max_weight_share_fail, upper=True),
        _gate("logged_spearman", logged, g.min_logged_spearman_warn, None, upper=False),
        _clipped_fraction_gate(diagnostics, g),
    ]


def _clipped_fraction_gate(diagnostics: WeightDiagnostics, g: WeightGates) -> GateResult:
    """The rows-clipped gate; its message names the share of the shift the clip kept."""
    result = _gate("clipped_fraction", diagnostics.clipped_fraction, g.max_clipped_fraction_warn,
                   g.max_clipped_fraction_fail, upper=True)
    if result.status == "pass":
        return result
    kept = diagnostics.shift_kept
    share = ("no detectable shift to keep" if kept is None
             else f"the clip keeps {100 * kept:.0f} % of the shift (naive → unclipped SNIS)")
    return GateResult(result.gate, result.value, result.status, result.warn_threshold,
                      result.fail_threshold, f"{result.message} [{share}]")


def enforce_gates(results: list[GateResult], diagnostics: WeightDiagnostics | None = None
                  ) -> list[GateResult]:
    """Raise :class:`WeightDiagnosticsError` if any gate failed; return the warnings."""
    failed = [r for r in results if r.status == "fail"]
    if failed:
        raise WeightDiagnosticsError(
            f"{len(failed)} weight gate(s) failed: " + "; ".join(r.message for r in failed),
            fix="see each gate's fix above; thresholds are weights.gates in the config",
            details={"gates": [r.to_dict() for r in results],
                     "diagnostics": diagnostics.to_dict() if diagnostics else None},
        )
    return [r for r in results if r.status == "warn"]
