r"""Champion/challenger: the promotion gate and the stage that applies it.

Today's importance-weighted model is the **challenger**; the model the ``champion`` alias of the
registry points at is the **champion**. The challenger is promoted only when every check passes:

1. **validation**: every role's expectation suite succeeded;
2. **weight gates**: ESS/n of the final weights is at least ``weights.min_ess_fraction`` and no
   diagnostic gate reports ``fail`` (nor ``warn`` unless ``promotion.allow_weight_warnings``);
3. **recency**: the challenger's run date is not older than the champion's, so a backfill of an
   old date never replaces a model trained on newer data;
4. **metric**: on today's evaluation rows (:func:`is_core.ctr.stage.evaluation_rows`, the target
   holdout by default) the challenger is not worse than the champion by more than
   ``promotion.tolerance``. The champion is re-scored on the same rows, so both numbers see the
   same sample. "Worse by" is :math:`m_{chal} - m_{champ}` for a lower-is-better metric
   (logloss, calibration error :math:`|\hat c - 1|` with :math:`\hat c` the calibration ratio)
   and :math:`m_{champ} - m_{chal}` for AUC.

5. **weighting** (``promotion.require_weighting_not_worse``, on by default): on the same rows
   the challenger is not worse than today's *unweighted* baseline (same learner, same
   parameters, no weights) by more than ``promotion.tolerance``. The pipeline's promise is to
   prove on target data that the weighting helped before shipping a weighted model.

The comparison is a point comparison with a tolerance, not a test: the report adds the paired
95 % CI of the logloss difference (per-row differences on the same rows,
:func:`is_core.ctr.metrics.paired_logloss_difference`) so a reader sees how much of the difference
is noise. Without a champion the metric check passes by definition (nothing to compare with).

A decision is reproducible: when the challenger already *is* the champion (a re-run of the date
that promoted it), it is compared with the champion it replaced (``previous`` of the alias
record), so re-running a date gives the same decision and the same report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from is_core.config import PromotionConfig

LOWER_IS_BETTER = {"logloss": True, "auc": False, "calibration_error": True}


def metric_value(metrics: dict[str, Any], metric: str) -> float:
    """The promotion metric from a :func:`is_core.ctr.metrics.ctr_metrics` dict."""
    if metric == "calibration_error":
        return float(abs(metrics["calibration_ratio"] - 1.0))
    return float(metrics[metric])


@dataclass(frozen=True)
class GateCheck:
    """One check of the promotion gate: its name, whether it passed, and why."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_validation(validation: dict[str, Any]) -> GateCheck:
    """Passed when every role's expectation suite succeeded."""
    failed = sorted(role for role, summary in validation.items() if not summary.get("success"))
    if not validation:
        return GateCheck("validation", False, "no validation results: the data was not checked")
    if failed:
        return GateCheck("validation", False, f"expectations failed on {failed}")
    return GateCheck("validation", True, f"every expectation passed on {sorted(validation)}")


def _gate_statuses(diagnostics: dict[str, Any]) -> dict[str, str]:
    """``{gate: status}`` from the diagnostics' optional ``gates`` entry (dict or list)."""
    gates = diagnostics.get("gates") or {}
    if isinstance(gates, dict):
        items = [(name, g.get("status") if isinstance(g, dict) else g)
                 for name, g in gates.items()]
    else:
        items = [(g.get("name", g.get("gate", str(i))), g.get("status"))
                 for i, g in enumerate(gates)]
    return {str(name): str(status).lower() for name, status in items if status is not None}


def check_weight_gates(diagnostics: dict[str, Any], min_ess_fraction: float,
                       allow_warnings: bool = True) -> GateCheck:
    """Passed when ESS/n clears ``min_ess_fraction`` and no diagnostic gate fails.

    A gate in its ``warn`` band blocks promotion only when ``allow_warnings`` is false.
    """
    ess = float(diagnostics["ess_fraction"])
    statuses = _gate_statuses(diagnostics)
    blocking = {"fail"} if allow_warnings else {"fail", "warn"}
    bad = sorted(name for name, status in statuses.items() if status in blocking)
    if ess < min_ess_fraction:
        return GateCheck("weight_gates", False,
                         f"ESS/n {ess:.4f} is below the gate {min_ess_fraction}")
    if bad:
        return GateCheck("weight_gates", False, "diagnostic gate(s) "
                         + ", ".join(f"{b}={statuses[b]}" for b in bad))
    warned = sorted(name for name, status in statuses.items() if status == "warn")
    note = f"; warnings allowed: {warned}" if warned else ""
    return GateCheck("weight_gates", True,
                     f"ESS/n {ess:.4f} >= {min_ess_fraction}; {len(statuses)} gate(s) checked"
                     + note)


def check_recency(challenger_run_date: str | None, champion_run_date: str | None) -> GateCheck:
    """Passed unless the challenger was trained for an older run date than the champion."""
    if champion_run_date is None or challenger_run_date is None:
        return GateCheck("recency", True, "no champion run date to compare with")
    if challenger_run_date < champion_run_date:  # ISO dates order as strings
        return GateCheck("recency", False,
                         f"challenger run date {challenger_run_date} is older than the "
                         f"champion's {champion_run_date} (a backfill never demotes newer "
                         "models)")
    return GateCheck("recency", True,
                     f"challenger run date {challenger_run_date} >= champion's "
                     f"{champion_run_date}")


def check_metric(metric: str, challenger_value: float, champion_value: float | None,
                 tolerance: float) -> tuple[GateCheck, float | None]:
    """Compare the challenger with the champion; return the check and how much worse it is.

    ``worse_by`` is positive when the challenger is worse (in the metric's own units).
    """
    if champion_value is None:
        return GateCheck("metric", True, f"no champion yet: challenger {metric} "
                         f"{challenger_value:.6f} is promoted without comparison"), None
    lower = LOWER_IS_BETTER[metric]
    worse_by = (challenger_value - champion_value) if lower else (champion_value -
                                                                 challenger_value)
    if not np.isfinite(worse_by):
        return GateCheck("metric", False, f"{metric} is not finite (challenger "
                         f"{challenger_value}, champion {champion_value})"), worse_by
    passed = worse_by <= tolerance
    relation = "worse" if worse_by > 0 else "better"
    detail = (f"challenger {metric} {challenger_value:.6f} vs champion {champion_value:.6f} "
              f"({'lower' if lower else 'higher'} is better): {relation} by "
              f"{abs(worse_by):.6f}, tolerance {tolerance}")
    return GateCheck("metric", passed, detail), worse_by


def check_weighting(metric: str, challenger_value: float, baseline_value: float | None,
                    tolerance: float) -> GateCheck:
    """Passed when the weighted challenger is not worse than the unweighted baseline (scored on
    the same rows) by more than ``tolerance``; passed vacuously without a baseline."""
    if baseline_value is None:
        return GateCheck("weighting", True, "not required (promotion."
                         "require_weighting_not_worse is false) or no baseline")
    lower = LOWER_IS_BETTER[metric]
    worse_by = (challenger_value - baseline_value) if lower else (baseline_value -
                                                                  challenger_value)
    relation = "worse" if worse_by > 0 else "better"
    detail = (f"weighted {metric} {challenger_value:.6f} vs unweighted baseline "
              f"{baseline_value:.6f}: {relation} by {abs(worse_by):.6f}, tolerance {tolerance}")
    if bool(np.isfinite(worse_by)) and worse_by <= tolerance:
        return GateCheck("weighting", True, detail)
    return GateCheck("weighting", False, detail + " (the weighting did not pay on target "
                     "data; see the report's verdict)")


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of the promotion gate with every number it used."""

    promote: bool
    reason: str
    metric: str
    lower_is_better: bool
    tolerance: float
    evaluated_on: str
    n: int
    challenger: dict[str, Any]
    champion: dict[str, Any] | None
    worse_by: float | None
    logloss_difference: dict[str, Any] | None
    checks: list[GateCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checks"] = [c.to_dict() for c in self.checks]
        return out


def decide_promotion(
    config: PromotionConfig,
    *,
    min_ess_fraction: float,
    validation: dict[str, Any],
    diagnostics: dict[str, Any],
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    evaluated_on: str,
    n: int,
    logloss_difference: dict[str, Any] | None = None,
    baseline: dict[str, Any] | None = None,
) -> PromotionDecision:
    """Apply the checks of the gate (module docstring) and explain the outcome.

    ``challenger`` and ``champion`` are dicts with ``version``, ``run_date`` and ``metrics``
    (a :func:`~is_core.ctr.metrics.ctr_metrics` dict on the evaluation rows); ``champion`` is
    ``None`` when there is none. ``baseline`` holds the unweighted baseline's ``metrics`` on
    the same rows (``None``: the weighting check is not applied).
    """
    chal_value = metric_value(challenger["metrics"], config.metric)
    champ_value = metric_value(champion["metrics"], config.metric) if champion else None
    metric_check, worse_by = check_metric(config.metric, chal_value, champ_value,
                                          config.tolerance)
    checks = [
        check_validation(validation),
        check_weight_gates(diagnostics, min_ess_fraction, config.allow_weight_warnings),
        check_recency(challenger.get("run_date"), champion.get("run_date") if champion else None),
        metric_check,
        check_weighting(config.metric, chal_value,
                        metric_value(baseline["metrics"], config.metric) if baseline else None,
                        config.tolerance),
    ]
    promote = all(c.passed for c in checks)
    versus = f"champion v{champion['version']}" if champion else "no champion"
    if promote:
        reason = (f"promote challenger v{challenger['version']} over {versus}: "
                  + metric_check.detail)
    else:
        failed = [c for c in checks if not c.passed]
        keep = f"keep {versus}" if champion else "no champion yet, and none is set"
        reason = (f"{keep}; challenger v{challenger['version']} not promoted: "
                  + "; ".join(f"{c.name}: {c.detail}" for c in failed))
    return PromotionDecision(
        promote=promote, reason=reason, metric=config.metric,
        lower_is_better=LOWER_IS_BETTER[config.metric], tolerance=config.tolerance,
        evaluated_on=evaluated_on, n=n,
        challenger={**challenger, "value": chal_value},
        champion=None if champion is None else {**champion, "value": champ_value},
        worse_by=worse_by, logloss_difference=logloss_difference, checks=checks,
    )
