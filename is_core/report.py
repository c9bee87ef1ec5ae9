"""The run report: ``report.json`` (for machines) and ``report.md`` (for people).

The verdict sentences are generated from the numbers, never written by hand, so the text cannot
disagree with the table beside it.
"""

from __future__ import annotations

import platform
from typing import Any

from is_core import __version__
from is_core.ctr import library_versions

REPORT_SCHEMA_VERSION = 1


def build_report(
    *,
    run_date: str,
    config: dict[str, Any],
    inputs: dict[str, Any],
    validation: dict[str, Any],
    proposal: dict[str, Any],
    weights: dict[str, Any],
    models: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the machine-readable report of one run (no timestamps outside ``timings``)."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "isbench_version": __version__,
        "run_date": run_date,
        "config": config,
        "inputs": {
            "days": inputs["days"],
            "roles": {r: {"fingerprint": v["fingerprint"], "files": len(v["files"])}
                      for r, v in inputs["roles"].items()},
        },
        "validation": {r: {k: v[k] for k in ("rows", "evaluated", "failed", "success")}
                       for r, v in validation.items()},
        "proposal": {k: v for k, v in proposal.items() if k not in ("path", "seconds")},
        "weights": weights["diagnostics"],
        "target_ctr": weights["target_ctr"],
        "models": {n: {k: v for k, v in m.items() if k not in ("path", "seconds")}
                   for n, m in models.items()},
        "metrics": metrics,
        "verdict": verdict(metrics),
        "environment": {"python": platform.python_version(), **library_versions()},
        "timings_seconds": {
            "proposal": proposal.get("seconds"),
            **{f"train_{n}": m.get("seconds") for n, m in models.items()},
        },
    }


def verdict(metrics: dict[str, Any]) -> dict[str, Any]:
    """Plain-language comparison of the weighted model with the unweighted baseline."""
    d = metrics["delta"]["logloss"]
    w, u = metrics["weighted"], metrics["unweighted"]
    if d["ci_high"] < 0:
        outcome = "improved"
    elif d["ci_low"] > 0:
        outcome = "worsened"
    else:
        outcome = "did not significantly change"
    where = metrics["evaluated_on"].replace("_", " ")
    text = (
        f"Importance weighting {outcome} {where} logloss: {w['logloss']:.5f} weighted vs "
        f"{u['logloss']:.5f} unweighted (difference {d['value']:+.5f}, 95 % CI "
        f"[{d['ci_low']:+.5f}, {d['ci_high']:+.5f}]). Calibration ratio (mean prediction / "
        f"observed CTR) {w['calibration_ratio']:.3f} weighted vs "
        f"{u['calibration_ratio']:.3f} unweighted; AUC {w['auc']:.4f} vs {u['auc']:.4f}."
    )
    return {"logloss": outcome, "text": text}


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else (
            f"{value:.{digits}f}")
    return str(value)


def metrics_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (one per model) for the Prefect table artifact and the Markdown report."""
    rows = []
    for name in ("weighted", "unweighted"):
        m = report["metrics"][name]
        rows.append({"model": name, "auc": round(m["auc"], 5), "logloss": round(m["logloss"], 6),
                     "calibration_ratio": round(m["calibration_ratio"], 4),
                     "mean_prediction": round(m["mean_prediction"], 6),
                     "observed_ctr": round(m["observed_ctr"], 6), "n": m["n"]})
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    """The human report of one run."""
    w = report["weights"]
    lines = [
        f"# isbench run {report['run_date']}",
        "",
        f"**Verdict.** {report['verdict']['text']}",
        "",
        f"Evaluated on: `{report['metrics']['evaluated_on']}` ({report['metrics']['n']} rows).",
        "",
        "## Models",
        "",
        "| model | AUC | logloss | calibration ratio | mean prediction | observed CTR | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in metrics_table(report):
        lines.append("| " + " | ".join(_fmt(v) for v in row.values()) + " |")
    lines += [
        "",
        "## Importance weights",
        "",
        f"- domain AUC (target vs source, out-of-fold): {_fmt(report['proposal']['domain_auc'])}"
        " — 0.5 means no detectable shift, 1 means disjoint support",
        f"- Kish ESS: {w['ess']:.1f} of {w['n']} source rows (ESS/n = {w['ess_fraction']:.3f})",
        f"- clipping: {w['clip_method']} (cap on log weight {_fmt(w['clip_log_cap'])}, "
        f"{100 * w['clipped_fraction']:.2f} % of rows clipped)",
        f"- largest final weight's share of the total: {w['max_weight_share']:.2e}",
        "- raw weight quantiles: " + ", ".join(
            f"{k}={_fmt(v, 3)}" for k, v in w["raw_quantiles"].items()),
        "",
        "## Target CTR estimates",
        "",
        "| estimator | estimate | 95 % CI |",
        "|---|---|---|",
    ]
    for name, est in report["target_ctr"].items():
        lines.append(f"| {name} | {est['value']:.5f} | [{est['ci_low']:.5f}, "
                     f"{est['ci_high']:.5f}] |")
    lines += [
        "",
        "`naive` is the source click rate (ignores the shift); `is_raw` uses the unclipped raw "
        "weights; `snis` the final (clipped, self-normalized) weights.",
        "",
        "## Inputs",
        "",
        f"Days: {report['inputs']['days'][0]} … {report['inputs']['days'][-1]}",
        "",
        "| role | rows | expectations | failed | fingerprint |",
        "|---|---|---|---|---|",
    ]
    for role, v in report["validation"].items():
        fp = report["inputs"]["roles"][role]["fingerprint"][:12]
        lines.append(f"| {role} | {v['rows']} | {v['evaluated']} | {v['failed']} | `{fp}` |")
    lines.append("")
    return "\n".join(lines)
