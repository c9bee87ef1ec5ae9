r"""Champion/challenger: which of today's models is the challenger, and whether it is promoted.

Each run trains its candidates on the same rows: the importance-weighted model, an unweighted
baseline (same learner, same parameters) and the recalibrated baseline. The **challenger** is
today's best validated model:

* a candidate that uses the weights when the weighting paid, i.e.
  (``promotion.require_weighting_not_worse``, on by default) it is *non-inferior* to the
  unweighted baseline on today's evaluation rows (:func:`is_core.ctr.stage.evaluation_rows`, the
  target holdout by default): the **weighted** booster or the **recalibrated** baseline (the
  unweighted booster with an importance-weighted calibrator), the better of the two when both
  are;
* otherwise the **unweighted baseline**, registered with ``weighting: not applied`` and the
  reason. The pipeline's promise is to prove on target data that the weighting helped before
  shipping a weighted model; when it did not, the day still ends with a validated model.

The challenger replaces the model the registry's ``champion`` alias points at only when every
check passes:

1. **validation**: every role's expectation suite succeeded;
2. **weight gates**: ESS/n of the final weights is at least ``weights.min_ess_fraction`` and no
   diagnostic gate reports ``fail`` (nor ``warn`` unless ``promotion.allow_weight_warnings``);
3. **recency**: the challenger's run date is not older than the champion's, so a backfill of an
   old date never replaces a model trained on newer data;
4. **metric**: the challenger is non-inferior to the champion, re-scored on the same rows.
   Without a champion this passes by definition (nothing to compare with).

**Non-inferiority** (both the weighting choice and the champion check). Let
:math:`\Delta = m_A - m_B` for a lower-is-better metric (logloss; calibration error
:math:`|\hat c - 1|` with :math:`\hat c` the calibration ratio) and :math:`m_B - m_A` for AUC,
"how much worse A is than B". A is non-inferior to B when the upper bound of the paired 95 %
bootstrap interval of :math:`\Delta` (the same resampled rows scored by both models,
:func:`is_core.ctr.metrics.bootstrap_metrics`) is below ``promotion.tolerance``. The tolerance
keeps its meaning (how much worse is acceptable), but the test now needs evidence: a challenger
truly 0.001 worse than the champion, with a paired standard error of 0.0004, passed a point
comparison at tolerance 0.001 about half the time; its upper bound exceeds 0.001 with
probability about 0.975. The weighting check reads the very interval the evaluate stage computes
for the report's verdict, so the verdict and the gate cannot disagree.

A decision is reproducible: when the challenger already *is* the champion (a re-run of the date
that promoted it), it is compared with the champion it replaced (``previous`` of the alias
record), so re-running a date gives the same decision and the same report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from is_core.config import PromotionConfig
from is_core.errors import ParameterError

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


def worse_by(metric: str, difference: dict[str, Any]) -> tuple[float, float]:
    """How much worse A is than B, (point, upper bound), from the paired interval of
    ``metric(A) - metric(B)`` (an :class:`~is_core.weights.estimators.Estimate` dict)."""
    if LOWER_IS_BETTER[metric]:
        return float(difference["value"]), float(difference["ci_high"])
    return -float(difference["value"]), -float(difference["ci_low"])


def check_non_inferior(name: str, metric: str, difference: dict[str, Any], tolerance: float,
                       a: str, b: str) -> GateCheck:
    """Passed when ``a`` is non-inferior to ``b``: the upper bound of how much worse it is on
    ``metric`` (paired interval ``difference`` of ``metric(a) - metric(b)``) is below
    ``tolerance`` (module docstring)."""
    point, upper = worse_by(metric, difference)
    if not (np.isfinite(point) and np.isfinite(upper)):
        return GateCheck(name, False, f"the {metric} difference of {a} and {b} is not finite "
                         f"({difference.get('value')}, upper bound {upper})")
    level = round(100 * float(difference.get("level", 0.95)))
    relation = "worse" if point > 0 else "better"
    verdict = "non-inferior" if upper < tolerance else "not shown non-inferior"
    detail = (f"{a} {metric} {relation} than {b} by {abs(point):.6f}; {level} % upper bound of "
              f"how much worse: {upper:+.6f} vs tolerance {tolerance}: {verdict}")
    return GateCheck(name, upper < tolerance, detail)


def check_metric(metric: str, difference: dict[str, Any] | None, tolerance: float
                 ) -> GateCheck:
    """The champion check: the challenger non-inferior to the champion (``difference``: the
    paired interval of challenger minus champion; None without a champion, which passes)."""
    if difference is None:
        return GateCheck("metric", True, "no champion yet: the challenger is promoted without "
                         "comparison")
    return check_non_inferior("metric", metric, difference, tolerance, "challenger", "champion")


#: Today's candidates that use the importance weights (the others: the unweighted baseline).
WEIGHTING_CANDIDATES = ("weighted", "recalibrated")
#: How each candidate is named in a decision's text.
CANDIDATE_LABELS = {"weighted": "weighted model", "recalibrated": "recalibrated baseline",
                    "unweighted": "unweighted baseline"}


def check_weighting(metric: str, difference: dict[str, Any] | None, tolerance: float,
                    candidate: str = "weighted") -> GateCheck:
    """Whether the weighting paid for ``candidate``: non-inferior to the unweighted baseline
    (``difference``: the paired interval of candidate minus unweighted; None: not required)."""
    if difference is None:
        return GateCheck("weighting", True, "not required (promotion."
                         "require_weighting_not_worse is false)")
    return check_non_inferior("weighting", metric, difference, tolerance,
                              CANDIDATE_LABELS[candidate], "unweighted baseline")


def choose_challenger(config: PromotionConfig, differences: dict[str, dict[str, Any]]
                      ) -> tuple[str, GateCheck]:
    """Today's challenger among the candidates, and the check that decided.

    ``differences`` holds, per weighting candidate trained today (``"weighted"``,
    ``"recalibrated"``), the paired interval of its ``config.metric`` minus the unweighted
    baseline's. Among the candidates non-inferior to the baseline (:func:`check_weighting`) the
    one with the best point estimate is chosen; when none is, the unweighted baseline. With
    ``require_weighting_not_worse`` off, the weighted model is chosen unconditionally.
    """
    if not config.require_weighting_not_worse:
        return "weighted", check_weighting(config.metric, None, config.tolerance)
    checks = {name: check_weighting(config.metric, differences[name], config.tolerance, name)
              for name in WEIGHTING_CANDIDATES if name in differences}
    passing = [name for name, check in checks.items() if check.passed]
    if not passing:
        return "unweighted", GateCheck("weighting", False, "; ".join(
            c.detail for c in checks.values()))
    best = min(passing, key=lambda n: worse_by(config.metric, differences[n])[0])
    others = [c.detail for n, c in checks.items() if n != best]
    detail = checks[best].detail + "".join(f" (beside: {d})" for d in others)
    return best, GateCheck("weighting", True, detail)


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of the promotion gate with every number it used.

    ``challenger["model"]`` is the candidate (``"weighted"``, ``"recalibrated"`` or
    ``"unweighted"``); ``weighting`` says whether the weighting was applied, how and why (the
    :func:`choose_challenger` detail and every candidate's paired interval against the
    unweighted baseline); ``champion_difference`` is the paired interval of challenger minus
    champion on
    ``metric`` and ``worse_by`` / ``worse_by_upper`` how much worse the challenger is (point,
    upper bound); all None without a champion.
    """

    promote: bool
    reason: str
    metric: str
    lower_is_better: bool
    tolerance: float
    evaluated_on: str
    n: int
    challenger: dict[str, Any]
    champion: dict[str, Any] | None
    weighting: dict[str, Any]
    champion_difference: dict[str, Any] | None
    worse_by: float | None
    worse_by_upper: float | None
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
    weighting: GateCheck,
    weighting_differences: dict[str, dict[str, Any]] | None = None,
    champion_difference: dict[str, Any] | None = None,
) -> PromotionDecision:
    """Apply the checks of the gate (module docstring) and explain the outcome.

    ``challenger`` and ``champion`` are dicts with ``version``, ``run_date`` and ``metrics``
    (a :func:`~is_core.ctr.metrics.ctr_metrics` dict on the evaluation rows), the challenger
    also ``model`` (from :func:`choose_challenger`, whose check is ``weighting`` and whose input
    is ``weighting_differences``); ``champion``
    is None when there is none. ``champion_difference`` is the paired interval of challenger
    minus champion on ``config.metric`` (required with a champion).
    """
    if champion is not None and champion_difference is None:
        raise ParameterError("a champion needs the paired interval of challenger minus "
                             "champion", fix="pass champion_difference",
                             parameter="champion_difference")
    metric_check = check_metric(config.metric, champion_difference, config.tolerance)
    checks = [
        check_validation(validation),
        check_weight_gates(diagnostics, min_ess_fraction, config.allow_weight_warnings),
        check_recency(challenger.get("run_date"), champion.get("run_date") if champion else None),
        metric_check,
    ]
    promote = all(c.passed for c in checks)
    model = challenger["model"]
    what = (f"challenger v{challenger['version']} ({CANDIDATE_LABELS[model]})"
            if model != "unweighted" else
            f"challenger v{challenger['version']} (unweighted baseline; weighting not applied: "
            f"{weighting.detail})")
    versus = f"champion v{champion['version']}" if champion else "no champion"
    if promote:
        reason = f"promote {what} over {versus}: {metric_check.detail}"
    else:
        failed = [c for c in checks if not c.passed]
        keep = f"keep {versus}" if champion else "no champion yet, and none is set"
        reason = f"{keep}; {what} not promoted: " + "; ".join(
            f"{c.name}: {c.detail}" for c in failed)
    point, upper = (worse_by(config.metric, champion_difference) if champion_difference
                    else (None, None))
    value = metric_value(challenger["metrics"], config.metric)
    return PromotionDecision(
        promote=promote, reason=reason, metric=config.metric,
        lower_is_better=LOWER_IS_BETTER[config.metric], tolerance=config.tolerance,
        evaluated_on=evaluated_on, n=n, challenger={**challenger, "value": value},
        champion=None if champion is None else {
            **champion, "value": metric_value(champion["metrics"], config.metric)},
        weighting={"applied": model != "unweighted", "candidate": model,
                   "detail": weighting.detail, "differences": weighting_differences or {}},
        champion_difference=champion_difference, worse_by=point, worse_by_upper=upper,
        checks=checks,
    )
