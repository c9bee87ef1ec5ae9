"""The proposal and weights stages: log importance weights, then final weights and diagnostics.

:func:`fit_proposal` fits the cross-fitted domain classifier (or reads the logged propensities)
and writes ``log_ratio.parquet``; :func:`compute_weights` clips, normalizes and diagnoses those
log weights, enforces the gates and estimates the target CTR. Each takes only its own config
section plus the column roles, and returns a small typed summary (:class:`ProposalResult`,
:class:`WeightsResult`) of paths and numbers that Prefect can store as JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from is_core._validation import config_keys
from is_core.config import ColumnsConfig, ProposalConfig, WeightsConfig
from is_core.data.atomic import json_safe, write_json_atomic, write_parquet_atomic
from is_core.data.stage import Inputs, read_role
from is_core.errors import ConfigError
from is_core.weights.clipping import ClipResult, clip_log_weights
from is_core.weights.diagnostics import (
    GateResult,
    WeightDiagnostics,
    WeightGates,
    compare_weights,
    diagnose_weights,
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
from is_core.weights.intervals import proposal_aware_snis_from_model, proposal_aware_unsupported
from is_core.weights.normalize import logged_propensity_log_ratio, normalize_log_weights
from is_core.weights.outcome import CrossFittedOutcome

LOG_RATIO_FILE = "log_ratio.parquet"
WEIGHTS_FILE = "weights.parquet"
#: The fitted proposal model the weights depend on, as JSON (its linear state, or why it has
#: none): the weights stage rebuilds it for the proposal-aware interval.
PROPOSAL_MODEL_FILE = "proposal_model.json"
#: The ``snis_interval`` note when ``snis`` carries the proposal-aware interval.
PROPOSAL_AWARE_NOTE = "proposal-aware: includes the proposal model's fitting error"

#: The config key behind each argument of the proposal model (a ParameterError names the
#: argument; the stage re-raises it as a ConfigError naming the key).
PROPOSAL_KEYS = {
    "learner": "proposal.learner", "calibration": "proposal.calibration",
    "numeric_basis": "proposal.numeric_basis", "basis": "proposal.numeric_basis",
    "n_folds": "proposal.n_folds", "max_fit_rows": "proposal.max_fit_rows",
    "max_categories": "proposal.max_categories",
    "target_propensity": "proposal.target_propensity",
}
#: The same for the arguments of the clipping (:func:`clip_log_weights`).
CLIP_KEYS = {"method": "weights.clip", "quantile": "weights.clip_quantile",
             "max_weight": "weights.clip_max_weight"}


class ProposalResult(TypedDict):
    """What the proposal stage hands the weights stage (``path``: ``log_ratio.parquet``)."""

    path: str
    model_path: str | None
    learner: str
    numeric_basis: str
    calibration: str | None
    n_folds: int
    n_source: int
    n_target: int
    n_fit_rows: int
    log_prior_correction: float
    domain_auc: float
    calibration_slope: float | None
    calibration_error: float | None
    chosen_learner: str
    C: float
    candidate_log_loss: dict[str, float] | None
    domain_reliability: dict[str, list[float]]
    dropped_features: list[str]
    logged_comparison: dict[str, float] | None
    seconds: float


class WeightsResult(TypedDict):
    """What the weights stage hands training, evaluation and the report.

    ``path`` is ``weights.parquet``; ``diagnostics`` the :class:`WeightDiagnostics` fields plus
    ``clip`` (the :class:`ClipResult` summary), ``gates``, ``warnings`` and ``snis_interval``
    (which interval ``target_ctr['snis']`` carries, and why); ``target_ctr`` the naive, IS,
    SNIS, bootstrap and doubly robust estimates of the target CTR (:class:`Estimate` dicts;
    ``snis_known_weights`` too when ``snis`` carries the proposal-aware interval).
    """

    path: str
    diagnostics: dict[str, Any]
    target_ctr: dict[str, dict[str, Any]]


# ---------------------------------------------------------------------------- proposal
def fit_proposal(proposal: ProposalConfig, columns: ColumnsConfig, inputs: Inputs,
                 out_dir: Path, *, random_state: int, n_jobs: int | None) -> ProposalResult:
    """Fit the cross-fitted domain classifier; write ``log_ratio.parquet`` (row_id, log_w).

    With ``proposal.target_propensity`` set and logged propensities on the source, the exact
    policy log weights go into the column ``log_w_logged`` and are compared with the estimated
    ones (Spearman, NMSE); with ``learner='logged_propensity'``, or ``'auto'`` (the default),
    they *are* ``log_w``: no domain classifier fitted on a target sample can match the exact
    propensities (on issue 16's bandit log, the estimated weights' SNIS interval missed the
    truth while the logged ones covered it), so ``auto`` uses them whenever they are there.
    """
    started = time.perf_counter()
    _check_proposal_columns(proposal, columns)
    logged = _logged_log_ratio(proposal, columns, inputs)
    uses_logged = logged is not None and proposal.learner in ("auto", "logged_propensity")
    source = read_role(inputs, "source", columns.features)
    target = read_role(inputs, "target", columns.features)

    def fit(numeric: list[str], categorical: list[str]) -> DomainClassifierRatio:
        with config_keys(PROPOSAL_KEYS):
            return _domain_classifier(proposal, numeric, categorical, random_state, n_jobs,
                                      uses_logged).fit(source, target)

    model = fit(columns.numeric, columns.categorical)
    estimated = model.log_ratio_source_
    # the fitted model whose coefficients the final weights depend on (none: exact weights)
    weights_model: DomainClassifierRatio | None = None if uses_logged else model
    if logged is not None and uses_logged and proposal.context_features:
        context = proposal.context_features
        weights_model = fit([c for c in columns.numeric if c in context],
                            [c for c in columns.categorical if c in context])
        logged = logged + weights_model.log_ratio_source_  # p(u)/q(u) * pi_1/pi_0
    table = {"row_id": np.arange(len(source), dtype=np.int64),
             "log_w": logged if uses_logged else estimated}
    comparison = None
    if logged is not None:
        table["log_w_logged"] = logged
        table["log_w_estimated"] = estimated
        comparison = compare_weights(estimated, logged)
    path = write_parquet_atomic(pd.DataFrame(table), out_dir / LOG_RATIO_FILE)
    model_path = None if weights_model is None else write_json_atomic(
        json_safe({"linear_state": weights_model.linear_state(),
                   "unsupported": proposal_aware_unsupported(weights_model)}),
        out_dir / PROPOSAL_MODEL_FILE)
    return _proposal_summary(proposal, model, path, model_path, comparison,
                             time.perf_counter() - started, uses_logged)


def _check_proposal_columns(proposal: ProposalConfig, columns: ColumnsConfig) -> None:
    """The logged-propensity learner's needs, which span two config sections."""
    if proposal.learner == "logged_propensity" and (columns.logging_propensity is None
                                                     or proposal.target_propensity is None):
        raise ConfigError(
            "proposal.learner='logged_propensity' needs columns.logging_propensity and "
            "proposal.target_propensity",
            fix="set both, or use learner='logistic'",
        )
    unknown = [c for c in proposal.context_features or [] if c not in columns.features]
    if unknown:
        raise ConfigError(f"proposal.context_features {unknown} are not feature columns",
                          fix="list columns of columns.numeric/categorical")


def _logged_log_ratio(proposal: ProposalConfig, columns: ColumnsConfig, inputs: Inputs
                      ) -> np.ndarray | None:
    """log π1 − log π0 of the source rows, when the logs carry π0 and π1 is configured."""
    if not columns.logging_propensity or proposal.target_propensity is None:
        return None
    frame = read_role(inputs, "source", [columns.logging_propensity])
    with config_keys(PROPOSAL_KEYS):
        return logged_propensity_log_ratio(frame[columns.logging_propensity].to_numpy(),
                                           proposal.target_propensity,
                                           columns.logging_propensity)


def _domain_classifier(proposal: ProposalConfig, numeric: list[str], categorical: list[str],
                       random_state: int, n_jobs: int | None, uses_logged: bool
                       ) -> DomainClassifierRatio:
    """The (unfitted) domain classifier the proposal config describes (a logistic one for the
    context ratio and the comparison when the weights are the logged propensities)."""
    return DomainClassifierRatio(
        numeric=numeric, categorical=categorical,
        learner="logistic" if uses_logged or proposal.learner == "logged_propensity"
        else proposal.learner,
        n_folds=proposal.n_folds, calibration=proposal.calibration,
        numeric_basis=proposal.numeric_basis, C=proposal.C,
        max_categories=proposal.max_categories, n_estimators=proposal.n_estimators,
        max_depth=proposal.max_depth, n_jobs=n_jobs, random_state=random_state,
        max_fit_rows=proposal.max_fit_rows,
    )


def _proposal_summary(proposal: ProposalConfig, model: DomainClassifierRatio, path: Path,
                      model_path: Path | None, comparison: dict[str, float] | None,
                      seconds: float, uses_logged: bool = False) -> ProposalResult:
    return {
        "path": str(path),
        "model_path": None if model_path is None else str(model_path),
        "learner": proposal.learner,
        "numeric_basis": getattr(model, "numeric_basis_", proposal.numeric_basis),
        "calibration": proposal.calibration,
        "n_folds": proposal.n_folds,
        "n_source": model.n_source_,
        "n_target": model.n_target_,
        "n_fit_rows": model.n_fit_source_ + model.n_fit_target_,
        "log_prior_correction": model.log_prior_correction_,
        "domain_auc": model.domain_auc_,
        "calibration_slope": model.calibration_slope_,
        "calibration_error": model.calibration_error_,
        "chosen_learner": "logged_propensity" if uses_logged else model.learner_,
        "C": model.C_,
        "candidate_log_loss": getattr(model, "candidate_log_loss_", None),
        "domain_reliability": model.domain_reliability_,
        "dropped_features": model.dropped_features_,
        "logged_comparison": comparison,
        "seconds": seconds,
    }


# ---------------------------------------------------------------------------- weights
def compute_weights(weights: WeightsConfig, columns: ColumnsConfig, inputs: Inputs,
                    proposal: ProposalResult, out_dir: Path, *, random_state: int,
                    n_jobs: int | None = None) -> WeightsResult:
    """Clip and normalize the log weights, diagnose them, estimate the target CTR.

    Writes ``weights.parquet`` (row_id, impression id, dt, raw_weight, clipped_weight,
    final_weight), evaluates the weight gates and raises
    :class:`~is_core.errors.WeightDiagnosticsError` when one fails; the gates (and warnings)
    are returned in ``diagnostics`` for the report.
    """
    log_w = pd.read_parquet(proposal["path"])["log_w"].to_numpy()
    keep = [columns.label] + ([columns.impression_id] if columns.impression_id else [])
    source = read_role(inputs, "source", keep)
    y = source[columns.label].to_numpy(dtype=float)
    with config_keys(CLIP_KEYS):
        clip = clip_log_weights(log_w, weights.clip, quantile=weights.clip_quantile,
                                max_weight=weights.clip_max_weight, y=y)
    partition = _normalization_partition(weights, source)
    final = normalize_log_weights(clip.log_w, partition)
    diagnostics = diagnose_weights(log_w, clip.log_w, final, weights.clip, clip.log_cap,
                                   proposal.get("domain_auc"), proposal.get("logged_comparison"),
                                   y=y)
    gates = evaluate_gates(diagnostics, WeightGates(min_ess_fraction_fail=weights.min_ess_fraction,
                                                    **weights.gates.model_dump()))
    path = _write_weights(columns, source, log_w, clip, final, out_dir)
    estimates, interval_note = _target_ctr(weights, columns, inputs, proposal, y, log_w, clip,
                                           final, partition, random_state, n_jobs)
    return gated_result(diagnostics, clip.summary(), gates, interval_note, path, estimates)


def gated_result(diagnostics: WeightDiagnostics, clip_summary: dict[str, Any],
                 gates: list[GateResult], interval_note: str, path: str | Path,
                 estimates: dict[str, Any]) -> WeightsResult:
    """The weights stage's summary (diagnostics, clip, gates, warnings, the SNIS interval's
    note) once the gates pass (:func:`enforce_gates` raises when one fails); both engines."""
    summary = {**diagnostics.to_dict(), "clip": clip_summary,
               "gates": [g.to_dict() for g in gates],
               "warnings": [g.message for g in gates if g.status == "warn"],
               "snis_interval": interval_note}
    enforce_gates(gates, diagnostics)
    result: WeightsResult = json_safe(
        {"path": str(path), "diagnostics": summary, "target_ctr": estimates})
    return result


def _target_ctr(weights: WeightsConfig, columns: ColumnsConfig, inputs: Inputs,
                proposal: ProposalResult, y: np.ndarray, log_w: np.ndarray, clip: ClipResult,
                final: np.ndarray, partition: np.ndarray | None, random_state: int,
                n_jobs: int | None) -> tuple[dict[str, dict[str, Any]], str]:
    """The target-CTR estimates, and which interval ``snis`` carries (and why).

    A clipped estimate's intervals are bias-guarded by the unclipped weights' (the hull; see
    :mod:`is_core.weights.estimators`). ``snis`` carries the proposal-aware interval
    (:mod:`is_core.weights.intervals`) when the weights come from a linear proposal fit and are
    normalized over the window; otherwise the known-weights one, and the note says why.
    """
    unclipped = None if weights.clip == "none" else normalize_log_weights(log_w, partition)
    known = snis_estimate(y, final, w_unclipped=unclipped)
    estimates = {
        "naive": naive_estimate(y).to_dict(),
        "is_raw": is_estimate(y, np.exp(log_w)).to_dict(),
        "snis": known.to_dict(),
        "snis_bootstrap": bootstrap_estimate("snis", y, final, n_boot=200,
                                             random_state=random_state,
                                             w_unclipped=unclipped).to_dict(),
    }
    if not (weights.doubly_robust or proposal.get("model_path")):
        return estimates, "known weights: the weights are the exact logged propensities"
    source = read_role(inputs, "source", columns.features)
    target = read_role(inputs, "target", columns.features)
    aware, note = _proposal_aware(weights, proposal, source, target, y, log_w, clip)
    if aware is not None:
        estimates["snis"], estimates["snis_known_weights"] = aware.to_dict(), known.to_dict()
    if weights.doubly_robust:
        outcome = CrossFittedOutcome(columns.numeric, columns.categorical, n_jobs=n_jobs,
                                     random_state=random_state).fit(source, y)
        estimates["dr"] = dr_estimate(y, final, outcome.oof_prediction_,
                                      outcome.predict(target), w_unclipped=unclipped).to_dict()
    return estimates, note


def _proposal_aware(weights: WeightsConfig, proposal: ProposalResult, source: pd.DataFrame,
                    target: pd.DataFrame, y: np.ndarray, log_w: np.ndarray, clip: ClipResult
                    ) -> tuple[Estimate | None, str]:
    """The proposal-aware SNIS estimate (bias-guarded when clipped), or None and the reason."""
    state, note = proposal_aware_state(weights, proposal)
    if state is None:
        return None, note
    model = DomainClassifierRatio.from_linear_state(state, source, target)
    capped = clip.log_w < log_w
    aware = proposal_aware_snis_from_model(
        model, source, target, y, np.exp(clip.log_w - clip.log_w.max()),
        clipped=capped if capped.any() else None,
        w_unclipped=None if weights.clip == "none" else np.exp(log_w - log_w.max()))
    return aware, note


def proposal_aware_state(weights: WeightsConfig, proposal: ProposalResult
                         ) -> tuple[dict[str, Any] | None, str]:
    """The stored linear proposal the proposal-aware interval needs and
    :data:`PROPOSAL_AWARE_NOTE`, or None and why ``snis`` carries the known-weights interval
    (both engines)."""
    model_path = proposal.get("model_path")
    if model_path is None:
        return None, "known weights: the weights are the exact logged propensities"
    if weights.normalize_per != "window":
        return None, ("known weights: per-day normalization is not covered by the proposal-"
                      "aware interval; it treats the fitted weights as exact")
    stored = json.loads(Path(model_path).read_text())
    if stored["unsupported"] is not None:
        return None, (f"known weights: {stored['unsupported']}; the interval treats the fitted "
                      "weights as exact")
    return stored["linear_state"], PROPOSAL_AWARE_NOTE


def _normalization_partition(weights: WeightsConfig, source: pd.DataFrame) -> np.ndarray | None:
    """The day of each source row with ``normalize_per='day'``; None for the whole window."""
    if weights.normalize_per != "day":
        return None
    if "dt" not in source.columns:
        raise ConfigError("weights.normalize_per='day' needs day partitions "
                          "(<data.partition_key>=YYYY-MM-DD folders, dt=YYYY-MM-DD by default)",
                          fix="use hive-partitioned inputs or normalize_per='window'")
    return source["dt"].to_numpy()


def _write_weights(columns: ColumnsConfig, source: pd.DataFrame, log_w: np.ndarray,
                   clip: ClipResult, final: np.ndarray, out_dir: Path) -> Path:
    """``weights.parquet``: row_id, impression id, dt, raw, clipped and final weight."""
    frame = pd.DataFrame({"row_id": np.arange(len(final), dtype=np.int64)})
    if columns.impression_id:
        frame["impression_id"] = source[columns.impression_id].to_numpy()
    if "dt" in source.columns:
        frame["dt"] = source["dt"].to_numpy()
    frame["raw_weight"] = np.exp(log_w)
    frame["clipped_weight"] = np.exp(clip.log_w)
    frame["final_weight"] = final
    return write_parquet_atomic(frame, out_dir / WEIGHTS_FILE)

