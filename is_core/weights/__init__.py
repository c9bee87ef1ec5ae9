"""Importance weights: the proposal model, clipping, normalization, diagnostics and the target-CTR
estimators.

raw weight (``domain``: the cross-fitted domain classifier, or logged propensities) → clipped
weight (``clipping``, ``psis``) → final weight (``normalize``) → ESS, k̂ and gates
(``diagnostics``) → naive, IS, SNIS, DR and bootstrap estimates (``estimators``; the SNIS interval
that includes the proposal's fitting error in ``intervals``). ``stage`` holds
the proposal and weights stages. This part imports ``data`` only.
"""

from is_core.weights.clipping import ClipResult, clip_log_weights
from is_core.weights.diagnostics import (
    GateResult,
    WeightDiagnostics,
    WeightGates,
    diagnose_weights,
    effective_sample_size,
    enforce_gates,
    evaluate_gates,
)
from is_core.weights.domain import DomainClassifierRatio
from is_core.weights.estimators import (
    Estimate,
    bootstrap_estimate,
    dr_estimate,
    is_estimate,
    naive_estimate,
    snis_estimate,
)
from is_core.weights.intervals import proposal_aware_snis_estimate
from is_core.weights.normalize import logged_propensity_log_ratio, normalize_log_weights
from is_core.weights.psis import pareto_khat, psis_log_weights
from is_core.weights.stage import (
    LOG_RATIO_FILE,
    WEIGHTS_FILE,
    ProposalResult,
    WeightsResult,
    compute_weights,
    fit_proposal,
)

__all__ = [
    "ClipResult",
    "DomainClassifierRatio",
    "Estimate",
    "GateResult",
    "LOG_RATIO_FILE",
    "ProposalResult",
    "WEIGHTS_FILE",
    "WeightDiagnostics",
    "WeightGates",
    "WeightsResult",
    "bootstrap_estimate",
    "clip_log_weights",
    "compute_weights",
    "diagnose_weights",
    "dr_estimate",
    "effective_sample_size",
    "enforce_gates",
    "evaluate_gates",
    "fit_proposal",
    "is_estimate",
    "logged_propensity_log_ratio",
    "naive_estimate",
    "normalize_log_weights",
    "pareto_khat",
    "proposal_aware_snis_estimate",
    "psis_log_weights",
    "snis_estimate",
]
