"""The run report: ``report.json`` (for machines), ``report.md`` and ``report.html`` (for people).

The verdict sentences are generated from the numbers, never written by hand, so the text cannot
disagree with the table beside it. ``report.html`` is one self-contained file (inline CSS and SVG,
see :mod:`is_core.html` and :mod:`is_core.plots`) that opens offline.
"""

from __future__ import annotations

import platform
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from is_core import __version__, html, plots
from is_core.ctr import library_versions
from is_core.metrics import METRICS
from is_core.psis import pareto_khat
from is_core.weights import effective_sample_size

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
    weight_profile: dict[str, Any] | None = None,
    promotion: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the machine-readable report of one run (no timestamps outside ``timings``).

    ``weight_profile`` (:func:`weight_profile`) feeds the HTML plots; ``promotion`` is the
    champion/challenger decision when the flow made one.
    """
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "isbench_version": __version__,
        "run_date": run_date,
        "config": config,
        "inputs": {
            "days": inputs["days"],
            "roles": {r: {"fingerprint": v["fingerprint"], "files": len(v["files"])}
                      for r, v in inputs["roles"].items()},
        },
        "validation": validation_section(validation),
        "proposal": {k: v for k, v in proposal.items() if k not in ("path", "seconds")},
        "weights": weights["diagnostics"],
        "target_ctr": weights["target_ctr"],
        "models": {n: {k: v for k, v in m.items() if k not in ("path", "seconds")}
                   for n, m in models.items()},
        "metrics": metrics,
        "verdict": verdict(metrics, promotion),
        "environment": {"python": platform.python_version(), **library_versions()},
        "timings_seconds": {
            "proposal": proposal.get("seconds"),
            **{f"train_{n}": m.get("seconds") for n, m in models.items()},
        },
    }
    if weight_profile is not None:
        report["weight_profile"] = weight_profile
    if promotion is not None:
        report["promotion"] = promotion
    return report


def verdict(metrics: dict[str, Any], promotion: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plain-language comparison of the weighted model with the unweighted baseline.

    The logloss outcome follows the paired 95 % interval of (weighted - unweighted) logloss:
    "improved" when it lies below 0, "worsened" above 0, otherwise "did not significantly
    change". The paired bootstrap interval is used when present (``metrics["differences"]``),
    else the delta-method one (``metrics["delta"]``). ``X ± Y`` is the point difference and the
    interval's half-width.
    """
    d = metrics.get("differences", {}).get("weighted", {}).get("logloss") or (
        metrics["delta"]["logloss"])
    w, u = metrics["weighted"], metrics["unweighted"]
    if d["ci_high"] < 0:
        outcome = "improved"
    elif d["ci_low"] > 0:
        outcome = "worsened"
    else:
        outcome = "did not significantly change"
    where = metrics["evaluated_on"].replace("_", " ")
    half = (d["ci_high"] - d["ci_low"]) / 2
    calib_w, calib_u = abs(w["calibration_ratio"] - 1), abs(u["calibration_ratio"] - 1)
    calibration = ("closer to 1 with weighting" if calib_w < calib_u else
                   "further from 1 with weighting" if calib_w > calib_u else "unchanged")
    text = (
        f"Importance weighting {outcome} {where} logloss: {w['logloss']:.5f} weighted vs "
        f"{u['logloss']:.5f} unweighted, a change of {d['value']:+.5f} ± {half:.5f} "
        f"(95 % CI [{d['ci_low']:+.5f}, {d['ci_high']:+.5f}]). Calibration ratio (mean "
        f"prediction / observed CTR) {w['calibration_ratio']:.3f} weighted vs "
        f"{u['calibration_ratio']:.3f} unweighted ({calibration}); ECE "
        f"{w.get('ece', float('nan')):.5f} vs {u.get('ece', float('nan')):.5f}; AUC "
        f"{w['auc']:.4f} vs {u['auc']:.4f}."
    )
    out: dict[str, Any] = {"logloss": outcome, "calibration": calibration,
                           "logloss_difference": d["value"], "logloss_half_width": half}
    if promotion is not None:
        promote = bool(promotion.get("promote"))
        text += f" Promote: {'yes' if promote else 'no'} because {promotion.get('reason', '')}."
        out["promote"] = promote
    out["text"] = text
    return out


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
        ci = report["metrics"].get("intervals", {}).get(name, {}).get("logloss")
        rows.append({"model": name, "auc": round(m["auc"], 5), "logloss": round(m["logloss"], 6),
                     "logloss_95ci": (f"[{ci['ci_low']:.5f}, {ci['ci_high']:.5f}]" if ci
                                      else "n/a"),
                     "ne": round(m["ne"], 5) if "ne" in m else None,
                     "ece": round(m["ece"], 6) if "ece" in m else None,
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
        "| model | AUC | logloss | logloss 95 % CI | NE | ECE | calibration ratio | "
        "mean prediction | observed CTR | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
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
    lines += validation_markdown(report["validation"])
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- HTML
CLIP_SWEEP_QUANTILES = (1.0, 0.999, 0.995, 0.99, 0.98, 0.95, 0.9, 0.8)


def weight_profile(raw_weight: np.ndarray, final_weight: np.ndarray, n_bins: int = 40,
                   clip_quantiles: tuple[float, ...] = CLIP_SWEEP_QUANTILES) -> dict[str, Any]:
    """Small summaries of the weights for the report's plots.

    * ``histogram``: counts of the raw and the final weights over ``n_bins`` equal-width bins of
      :math:`\\log_{10} w` (zero weights are counted separately in ``zeros``);
    * ``clip_sweep``: for each quantile cap :math:`c` (1.0 = no clipping) the Kish ESS/n, the
      largest weight's share and the Pareto k̂ of the weights capped at their ``c`` quantile,
      so the report shows what harder clipping would buy.
    """
    raw = np.asarray(raw_weight, dtype=float)
    final = np.asarray(final_weight, dtype=float)
    logs = {name: np.log10(w[w > 0]) for name, w in (("raw", raw), ("final", final))}
    both = np.concatenate(list(logs.values()))
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, n_bins + 1)
    sweep = []
    for q in clip_quantiles:
        capped = np.minimum(raw, np.quantile(raw, q)) if q < 1 else raw
        sweep.append({"quantile": q, "ess_fraction": effective_sample_size(capped) / raw.size,
                      "max_weight_share": float(capped.max() / capped.sum()),
                      "khat": _finite_or_none(pareto_khat(np.log(capped[capped > 0])))})
    return {
        "histogram": {"log10_edges": edges.tolist(),
                      **{n: np.histogram(v, edges)[0].tolist() for n, v in logs.items()}},
        "zeros": {"raw": int((raw == 0).sum()), "final": int((final == 0).sum())},
        "clip_sweep": sweep,
    }


def _finite_or_none(value: float) -> float | None:
    """JSON has no infinities: a bounded tail (k̂ = -inf after a hard cap) is stored as None."""
    return float(value) if np.isfinite(value) else None


def weight_profile_from_file(path: str | Path) -> dict[str, Any]:
    """:func:`weight_profile` of a run's ``weights.parquet``."""
    frame = pd.read_parquet(path, columns=["raw_weight", "final_weight"])
    return weight_profile(frame["raw_weight"].to_numpy(), frame["final_weight"].to_numpy())


def _metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    intervals = metrics.get("intervals", {})
    for name in ("weighted", "unweighted"):
        for m in METRICS:
            ci = intervals.get(name, {}).get(m, {})
            rows.append({"model": name, "metric": m, "value": metrics[name][m],
                         "ci_low": ci.get("ci_low"), "ci_high": ci.get("ci_high")})
    differences = metrics.get("differences", {}).get("weighted", {})
    for m in METRICS:  # a fixed order: report.json is written with sorted keys
        if m in differences:
            d = differences[m]
            rows.append({"model": "weighted − unweighted", "metric": m, "value": d["value"],
                         "ci_low": d["ci_low"], "ci_high": d["ci_high"]})
    return rows


def _role_order(item: tuple[str, Any]) -> tuple[int, str]:
    """source, target, holdout first (report.json's keys are sorted alphabetically)."""
    roles = ("source", "target", "holdout")
    return (roles.index(item[0]) if item[0] in roles else len(roles), item[0])


def render_html(report: dict[str, Any]) -> str:
    """The self-contained HTML report of one run: verdict, metric tables, plots."""
    m, w = report["metrics"], report["weights"]
    good = report["verdict"]["logloss"] == "improved"
    bad = report["verdict"]["logloss"] == "worsened"
    parts = [
        f'<div class="verdict {"good" if good else "bad" if bad else ""}" id="verdict">'
        f'<strong>Verdict.</strong> {escape(report["verdict"]["text"])}</div>',
        html.paragraph(f"Evaluated on {m['evaluated_on']} ({m['n']} rows): "
                       f"{m.get('evaluation_note', '')}.", "note"),
    ]
    level = m.get("bootstrap", {}).get("level", 0.95)
    parts.append(html.section(
        "Model metrics", html.table(_metric_rows(m), headers={
            "ci_low": f"{level:.0%} CI low", "ci_high": f"{level:.0%} CI high"}),
        html.paragraph("AUC higher is better; logloss, NE (logloss / entropy of the observed "
                       "CTR) and ECE lower are better; calibration ratio = mean prediction / "
                       f"observed CTR, 1 is calibrated. Intervals: paired bootstrap, "
                       f"{m.get('bootstrap', {}).get('n_boot', '?')} replicates.", "note"),
        anchor="metrics"))
    curves = m.get("reliability", {})
    if curves:
        series = [plots.Series(name, [b["mean_prediction"] for b in c],
                               [b["observed_ctr"] for b in c], [b["ci_low"] for b in c],
                               [b["ci_high"] for b in c])
                  for name, c in sorted(curves.items(), key=lambda kv: kv[0] != "weighted")]
        parts.append(html.section("Calibration", html.charts(plots.line_chart_svg(
            series, title="Reliability: observed CTR against mean prediction",
            x_label="mean prediction in bin", y_label="observed CTR", diagonal=True)),
            anchor="calibration"))
    profile = report.get("weight_profile")
    weight_parts = [html.table([
        {"diagnostic": "Kish ESS", "value": w["ess"]},
        {"diagnostic": "ESS / n", "value": w["ess_fraction"]},
        {"diagnostic": "source rows", "value": w["n"]},
        {"diagnostic": "clip method", "value": w["clip_method"]},
        {"diagnostic": "rows clipped", "value": w["clipped_fraction"]},
        {"diagnostic": "largest weight's share", "value": w["max_weight_share"]},
        {"diagnostic": "domain AUC", "value": report["proposal"].get("domain_auc")},
    ])]
    if profile:
        h = profile["histogram"]
        sweep = profile["clip_sweep"]
        x = [100 * s["quantile"] for s in sweep]
        weight_parts.append(html.charts(
            plots.histogram_svg(h["log10_edges"], {"raw": h["raw"], "final": h["final"]},
                                title="Importance weights (log scale)", x_label="weight",
                                log10_x=True),
            plots.line_chart_svg([plots.Series("ESS / n", x, [s["ess_fraction"] for s in sweep])],
                                 title="ESS/n against the clip level",
                                 x_label="cap at this percentile of the raw weights (100 = none)",
                                 y_label="Kish ESS / n"),
            plots.line_chart_svg([plots.Series("k̂", x, [s["khat"] for s in sweep])],
                                 title="Pareto k̂ against the clip level",
                                 x_label="cap at this percentile of the raw weights (100 = none)",
                                 y_label="k̂ of the capped weights", reference_y=0.7)))
        weight_parts.append(html.paragraph(
            "k̂ above 0.7 (dashed line) means the weights' tail is too heavy for a reliable "
            "importance-sampling estimate (Vehtari et al., Pareto smoothed importance sampling); "
            "a cap that leaves a bounded tail has k̂ = -∞, not drawn.",
            "note"))
    parts.append(html.section("Importance weights", *weight_parts, anchor="weights"))
    parts.append(html.section("Target CTR estimates", html.table(
        [{"estimator": k, "value": v["value"], "ci_low": v["ci_low"], "ci_high": v["ci_high"]}
         for k, v in sorted(report["target_ctr"].items())]), anchor="target-ctr"))
    if report.get("promotion"):
        p = report["promotion"]
        checks = [c for c in p.get("checks", []) if isinstance(c, dict)]
        parts.append(html.section("Promotion", html.paragraph(
            f"Promote: {'yes' if p.get('promote') else 'no'}. {p.get('reason', '')}"),
            html.table(checks, columns=sorted(checks[0]) if checks else None),
            anchor="promotion"))
    parts.append(html.section("Inputs", html.table(
        [{"role": r, "rows": v["rows"], "expectations": v["evaluated"], "failed": v["failed"],
          "fingerprint": report["inputs"]["roles"][r]["fingerprint"][:16]}
         for r, v in sorted(report["validation"].items(), key=_role_order)]), anchor="inputs"))
    parts.append(validation_html(report["validation"]))
    return html.page(f"isbench run {report['run_date']}", *parts,
                     subtitle=f"isbench {report['isbench_version']} · report schema "
                     f"{report['schema_version']}")


# ---------------------------------------------------------------------------- validation
VALIDATION_KEYS = ("rows", "evaluated", "failed", "success", "reference_day", "quarantine",
                   "data_docs", "results")


def validation_section(validation: dict[str, Any]) -> dict[str, Any]:
    """Per role: counts, reference day, quarantine, Data Docs and every check (observed vs
    expected; the fix only where a check failed)."""
    out = {}
    for role, v in validation.items():
        section = {k: v[k] for k in VALIDATION_KEYS if k in v and k != "results"}
        section["results"] = [
            {k: r[k] for k in ("rule", "column", "observed", "expected", "success", "engine")
             if k in r} | ({} if r.get("success") else {"fix": r.get("fix")})
            for r in v.get("results", [])]
        out[role] = section
    return out


def validation_markdown(validation: dict[str, Any]) -> list[str]:
    """The "Validation" section of report.md: every check, observed vs expected."""
    lines = ["", "## Validation", ""]
    reference = {v.get("reference_day") for v in validation.values()} - {None}
    lines.append("Drift reference day: " + (", ".join(sorted(reference)) if reference else
                 "none (first run, or `validation.reference_day: none`)") + ".")
    for role, v in sorted(validation.items(), key=_role_order):
        q = v.get("quarantine")
        if q and q.get("dropped"):
            lines.append(f"Quarantine ({role}): dropped {q['dropped']} of {q['rows']} rows "
                         f"({100 * q['share']:.2f} %, limit {100 * q['max_share']:.2f} %): "
                         + ", ".join(f"{k} {n}" for k, n in q["by_rule"].items()) + ".")
    docs = next((v["data_docs"] for v in validation.values() if v.get("data_docs")), None)
    if docs:
        lines.append(f"Great Expectations Data Docs: `{docs}` (styles load from a CDN).")
    lines += ["", "<details><summary>Every check</summary>", "",
              "| role | column | rule | observed | expected | result |",
              "|---|---|---|---|---|---|"]
    for role, v in sorted(validation.items(), key=_role_order):
        for r in v.get("results", []):
            rule = str(r["rule"]).removeprefix("expect_").replace("_", " ")
            lines.append(f"| {role} | {r.get('column') or '(table)'} | {rule} | "
                         f"{_cell(r['observed'])} | {_cell(r['expected'])} | "
                         f"{'pass' if r['success'] else '**FAIL**'} |")
    lines += ["", "</details>"]
    return lines


def _cell(value: Any, width: int = 80, markdown: bool = True) -> str:
    if isinstance(value, dict):
        value = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(value.items()) if v is not None)
    text = _fmt(value) if isinstance(value, float) else str(value)
    text = text.replace("\n", " ")
    if markdown:
        text = text.replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def validation_html(validation: dict[str, Any]) -> str:
    """The "Validation" section of report.html: every check, observed vs expected (Data Docs
    style themselves from a CDN, so offline this table is the readable record)."""
    notes = [line for line in validation_markdown(validation)[3:] if line and not
             line.startswith(("|", "<", "</"))]
    rows = [{"role": role, "column": r.get("column") or "(table)",
             "rule": str(r["rule"]).removeprefix("expect_").replace("_", " "),
             "observed": _cell(r["observed"], 120, markdown=False),
             "expected": _cell(r["expected"], 120, markdown=False),
             "result": "pass" if r["success"] else "FAIL"}
            for role, v in sorted(validation.items(), key=_role_order)
            for r in v.get("results", [])]
    return html.section(
        "Validation", *(html.paragraph(n.replace("`", ""), "note") for n in notes),
        f"<details><summary>Every check ({len(rows)})</summary>{html.table(rows)}</details>",
        anchor="validation")
