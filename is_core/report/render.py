"""The run report for people: ``report.md`` and ``report.html``, rendered from ``report.json``.

Both renderings take the report dict of :func:`is_core.report.content.build_report` and nothing
else, so ``report.html`` is exactly the rendering of ``report.json`` (but for the "Tracking" line
that :func:`tracking_markdown`/:func:`with_tracking_html` append from ``tracking.json`` once the
run is published and logged to MLflow, see :mod:`tasks.tracking`). ``report.html`` is one
self-contained file (inline CSS and SVG, see :mod:`is_core.report._html` and
:mod:`is_core.report.plots`) that opens offline.
"""

from __future__ import annotations

from html import escape
from typing import Any

from is_core.ctr.metrics import METRICS
from is_core.report import _html as html
from is_core.report import plots
from is_core.report.content import (
    candidates_table,
    champion_sentence,
    metrics_table,
    sampling_lines,
)


# ---------------------------------------------------------------------------- Markdown
def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else (
            f"{value:.{digits}f}")
    return str(value)


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
    candidates = candidates_table(report)
    if candidates:
        lines += ["", "## Candidates", "", CANDIDATES_NOTE, "",
                  "| " + " | ".join(candidates[0]) + " |",
                  "|" + "---|" * len(candidates[0])]
        lines += ["| " + " | ".join(_fmt(v) for v in row.values()) + " |" for row in candidates]
    if sampling_lines(report):
        lines += ["", "## Training sample", "", *(f"- {line}" for line in sampling_lines(report))]
    lines += [
        "",
        "## Importance weights",
        "",
        f"- domain AUC (target vs source, out-of-fold): {_fmt(report['proposal']['domain_auc'])}"
        " — 0.5 means no detectable shift, 1 means disjoint support",
        f"- Kish ESS: {w['ess']:.1f} of {w['n']} source rows (ESS/n = {w['ess_fraction']:.3f})",
        f"- clipping: {w['clip_method']} (cap on log weight {_fmt(w['clip_log_cap'])}, "
        f"{100 * w['clipped_fraction']:.2f} % of rows clipped, share of the shift kept "
        f"{_fmt(w.get('shift_kept'), 3)}; 1 = all, 0 = collapsed onto the source mean)",
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
        TARGET_CTR_NOTE,
        "",
        f"The `snis` interval: {w.get('snis_interval', 'known weights')}.",
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


#: How to read the candidates table (the Markdown and the HTML report).
CANDIDATES_NOTE = (
    "Every candidate on the same evaluation rows, with 95 % bootstrap intervals: `unweighted` "
    "(the baseline), `weighted` (trained on the importance weights), `recalibrated` (the "
    "unweighted booster with a calibrator fitted on its out-of-fold source scores with the "
    "importance weights). The gate selects the best candidate whose paired logloss difference "
    "to the unweighted baseline has an upper bound below the tolerance, else the baseline.")

#: What each target-CTR estimator is (the Markdown and the HTML report).
TARGET_CTR_NOTE = (
    "`naive` is the source click rate (ignores the shift); `is_raw` uses the unclipped raw "
    "weights; `snis` the final (clipped, self-normalized) weights, `snis_bootstrap` the same "
    "with a bootstrap interval; `snis_known_weights`, when shown, the `snis` estimate with an "
    "interval that treats the fitted weights as exact (too narrow when the target sample is "
    "small); `dr` the doubly robust estimate: a cross-fitted click model's mean over the target "
    "rows, corrected by the weighted source residuals and kept inside [0, 1].")


# ---------------------------------------------------------------------------- HTML
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
    parts = [*_verdict_html(report), _metrics_html(report["metrics"])]
    if report.get("candidates"):
        parts.append(html.section("Candidates", html.table(candidates_table(report)),
                                  html.paragraph(CANDIDATES_NOTE.replace("`", "")),
                                  anchor="candidates"))
    if sampling_lines(report):
        parts.append(html.section("Training sample", *(html.paragraph(line.replace("`", ""))
                                                        for line in sampling_lines(report)),
                                  anchor="sampling"))
    parts += _calibration_html(report["metrics"])
    parts.append(_weights_html(report))
    parts.append(html.section("Target CTR estimates", html.table(
        [{"estimator": k, "value": v["value"], "ci_low": v["ci_low"], "ci_high": v["ci_high"]}
         for k, v in sorted(report["target_ctr"].items())]),
        html.paragraph(f"{TARGET_CTR_NOTE} The snis interval: "
                       f"{report['weights'].get('snis_interval', 'known weights')}."
                       .replace("`", "")),
        anchor="target-ctr"))
    parts += _promotion_html(report.get("promotion"))
    parts.append(html.section("Inputs", html.table(
        [{"role": r, "rows": v["rows"], "expectations": v["evaluated"], "failed": v["failed"],
          "fingerprint": report["inputs"]["roles"][r]["fingerprint"][:16]}
         for r, v in sorted(report["validation"].items(), key=_role_order)]), anchor="inputs"))
    parts.append(validation_html(report["validation"]))
    return html.page(f"isbench run {report['run_date']}", *parts,
                     subtitle=f"isbench {report['isbench_version']} · report schema "
                     f"{report['schema_version']}")


def _verdict_html(report: dict[str, Any]) -> list[str]:
    """The verdict box and the note on which rows the metrics come from."""
    m = report["metrics"]
    good = report["verdict"]["logloss"] == "improved"
    bad = report["verdict"]["logloss"] == "worsened"
    return [
        f'<div class="verdict {"good" if good else "bad" if bad else ""}" id="verdict">'
        f'<strong>Verdict.</strong> {escape(report["verdict"]["text"])}</div>',
        html.paragraph(f"Evaluated on {m['evaluated_on']} ({m['n']} rows): "
                       f"{m.get('evaluation_note', '')}.", "note"),
    ]


def _metrics_html(m: dict[str, Any]) -> str:
    """Both models' metrics with their bootstrap intervals, and how to read them."""
    level = m.get("bootstrap", {}).get("level", 0.95)
    return html.section(
        "Model metrics", html.table(_metric_rows(m), headers={
            "ci_low": f"{level:.0%} CI low", "ci_high": f"{level:.0%} CI high"}),
        html.paragraph("AUC higher is better; logloss, NE (logloss / entropy of the observed "
                       "CTR) and ECE lower are better; calibration ratio = mean prediction / "
                       f"observed CTR, 1 is calibrated. Intervals: paired bootstrap, "
                       f"{m.get('bootstrap', {}).get('n_boot', '?')} replicates.", "note"),
        anchor="metrics")


#: The order (hence the colours) of the candidates' reliability curves, whatever the order of
#: the keys (report.json's are sorted).
SERIES_ORDER = {"weighted": 0, "unweighted": 1, "recalibrated": 2}


def _calibration_html(m: dict[str, Any]) -> list[str]:
    """The reliability chart (none when the report has no reliability curves)."""
    curves = m.get("reliability", {})
    if not curves:
        return []
    series = [plots.Series(name, [b["mean_prediction"] for b in c],
                           [b["observed_ctr"] for b in c], [b["ci_low"] for b in c],
                           [b["ci_high"] for b in c])
              for name, c in sorted(curves.items(), key=lambda kv: (SERIES_ORDER.get(kv[0], 9),
                                                                    kv[0]))]
    return [html.section("Calibration", html.charts(plots.line_chart_svg(
        series, title="Reliability: observed CTR against mean prediction",
        x_label="mean prediction in bin", y_label="observed CTR", diagonal=True)),
        anchor="calibration")]


def _weights_html(report: dict[str, Any]) -> str:
    """The weight diagnostics table, and the histogram and clip-sweep charts."""
    w, profile = report["weights"], report.get("weight_profile")
    weight_parts = [html.table([
        {"diagnostic": "Kish ESS", "value": w["ess"]},
        {"diagnostic": "ESS / n", "value": w["ess_fraction"]},
        {"diagnostic": "source rows", "value": w["n"]},
        {"diagnostic": "clip method", "value": w["clip_method"]},
        {"diagnostic": "rows clipped", "value": w["clipped_fraction"]},
        {"diagnostic": "share of the shift kept", "value": w.get("shift_kept")},
        {"diagnostic": "largest weight's share", "value": w["max_weight_share"]},
        {"diagnostic": "domain AUC", "value": report["proposal"].get("domain_auc")},
    ])]
    if profile:
        weight_parts += _weight_charts(profile)
    return html.section("Importance weights", *weight_parts, anchor="weights")


def _weight_charts(profile: dict[str, Any]) -> list[str]:
    h, sweep = profile["histogram"], profile["clip_sweep"]
    x = [100 * s["quantile"] for s in sweep]
    return [html.charts(
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
                             y_label="k̂ of the capped weights", reference_y=0.7)),
        html.paragraph(
            "k̂ above 0.7 (dashed line) means the weights' tail is too heavy for a reliable "
            "importance-sampling estimate (Vehtari et al., Pareto smoothed importance sampling); "
            "a cap that leaves a bounded tail has k̂ = -∞, not drawn.",
            "note")]


def _promotion_html(promotion: dict[str, Any] | None) -> list[str]:
    """The promotion decision and its checks (none when promotion is disabled)."""
    if not promotion:
        return []
    checks = [c for c in promotion.get("checks", []) if isinstance(c, dict)]
    return [html.section("Promotion", html.paragraph(
        f"Promote: {'yes' if promotion.get('promote') else 'no'}. "
        f"{promotion.get('reason', '')}"), html.paragraph(champion_sentence(promotion)),
        html.table(checks, columns=sorted(checks[0]) if checks else None),
        anchor="promotion")]


# ---------------------------------------------------------------------------- validation
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


# ---------------------------------------------------------------------------- tracking
def _tracking_lines(tracking: dict[str, Any]) -> list[str]:
    """One sentence per integration of ``tracking.json`` that is on (``{"mlflow": {status,
    uri, message, ...}}``): written after publication, so appended to the rendered report."""
    return [f"{name.replace('mlflow', 'MLflow')} ({entry.get('status')}): "
            f"{entry.get('message', '')}"
            for name, entry in sorted(tracking.items()) if entry.get("status") != "off"]


def tracking_markdown(tracking: dict[str, Any]) -> str:
    """The "Tracking" lines appended to report.md (empty when every integration is off)."""
    return "".join(f"\n**Tracking.** {line} (tracking.json)\n" for line in
                   _tracking_lines(tracking))


def with_tracking_html(page: str, tracking: dict[str, Any]) -> str:
    """``page`` (report.html) with the "Tracking" lines before its ``</body>``."""
    notes = "".join(html.paragraph(f"Tracking. {line} (tracking.json)", "note")
                    for line in _tracking_lines(tracking))
    head, body_end, tail = page.rpartition("</body>")
    return f"{head}{notes}{body_end}{tail}" if body_end else page + notes
