"""The history page ``<output_root>/index.html``: every run date's figures side by side.

One self-contained file in the style of the run report (:mod:`is_core.report._html`'s CSS,
inline SVG from :mod:`is_core.report.plots`; no script, no URL), rendered from the rows of
:func:`is_core.report.history.read_history`: one small plot per figure over the run dates
(ordinal positions, one per date, not wall-clock time), the weight diagnostics against their
gates' warn and fail thresholds (dashed), each promotion and each gap marked on every plot
(hover: which model became champion and why, or why the date has no figures), then a table of
the dates, each linking to its ``<date>/report.html``, and a table of the promotion events.

The page holds no timestamp: it is a function of the published reports and the failure-only
dates, so a failed re-run of a date that has a report rewrites it byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path

from is_core.data.atomic import write_text_atomic
from is_core.report import _html as html
from is_core.report import plots
from is_core.report.history import (
    CANDIDATE_ORDER,
    Estimate,
    GateReading,
    HistoryRow,
    read_history,
)

HISTORY_PAGE = "index.html"
WARN_COLOR, FAIL_COLOR = "#ff7f0e", "#d62728"
#: The figures, in page order: id -> (title, y axis). Each is one plot.
FIGURES = {
    "rows": ("Rows per role", "rows read"),
    "ess_fraction": ("ESS/n against its gate", "Kish ESS / n"),
    "khat": ("Pareto k̂ of the raw weights against its gate", "k̂"),
    "domain_auc": ("Domain AUC against its gate", "out-of-fold domain AUC"),
    "max_weight_share": ("Largest weight's share against its gate", "share of the total"),
    "target_ctr": ("Target CTR: naive vs importance-weighted", "click-through rate"),
    "logloss": ("Target logloss per candidate", "logloss (lower is better)"),
    "calibration_ratio": ("Calibration ratio per candidate", "mean prediction / observed CTR"),
}
GATE_NAMES = {"ess_fraction": "ESS/n", "khat": "k̂", "domain_auc": "domain AUC",
              "max_weight_share": "largest weight share"}
_SMALL = ("<style>.charts.history .chart{max-width:488px}.history-table td:first-child"
          "{white-space:nowrap}.history-table tr.gap td{text-align:left;color:#555}</style>")
_NAN = float("nan")


def write_history_page(output_root: str | Path, rows: Sequence[HistoryRow] | None = None
                       ) -> Path:
    """Rewrite ``<output_root>/index.html`` atomically from ``rows`` (default: every date's,
    :func:`~is_core.report.history.read_history`); return its path."""
    if rows is None:
        rows = read_history(output_root)
    return write_text_atomic(render_history_html(rows), Path(output_root) / HISTORY_PAGE)


def render_history_html(rows: Sequence[HistoryRow]) -> str:
    """The page: a note on how to read it, the plots, the dates and the promotion events."""
    title = "isbench history"
    if not rows:
        return html.page(title, html.paragraph("No run dates yet: the page fills in as "
                                               "daily_retrain runs publish or fail."))
    gaps = sum(row.is_gap for row in rows)
    intro = html.paragraph(
        f"{len(rows)} run date(s) from {rows[0].run_date} to {rows[-1].run_date}, {gaps} "
        "gap(s). One position per run date, in order (not wall-clock time). Dashed lines: the "
        "warn (orange) and fail (red) thresholds of each gate as the run used them. Green "
        "dotted markers: a promotion (hover for which model became champion and why); grey: "
        "a gap (hover for the reason). Hover a point for its value and interval.", "note")
    return html.page(
        title, intro, _SMALL + '<div class="charts history">' + "".join(history_charts(rows))
        + "</div>",
        html.section("Run dates", _dates_table(rows), anchor="dates"),
        html.section("Promotion events", _events_table(rows), anchor="promotions"),
        subtitle="Every run date under this folder; each date links to its run report.")


def history_charts(rows: Sequence[HistoryRow]) -> list[str]:
    """One SVG per entry of :data:`FIGURES`, in that order."""
    charts = {
        "rows": _rows_series(rows),
        **{gate: _gate_series(rows, gate) for gate in GATE_NAMES},
        "target_ctr": [s for s in (
            _series(rows, label, [row.target_ctr.get(name) for row in rows])
            for name, label in (("naive", "naive (source CTR)"), ("snis", "SNIS"),
                                ("dr", "doubly robust"))) if _has_points(s)],
        "logloss": _candidate_series(rows, "logloss"),
        "calibration_ratio": _candidate_series(rows, "calibration_ratio"),
    }
    markers = _markers(rows)
    return [plots.line_chart_svg(
        charts[key], title=title, x_label="run date", y_label=y_label,
        x_labels=[row.run_date for row in rows], markers=markers,
        reference_y=1.0 if key == "calibration_ratio" else None)
        for key, (title, y_label) in FIGURES.items()]


# ---------------------------------------------------------------------------- series
def _series(rows: Sequence[HistoryRow], name: str, picked: Sequence[Estimate | None],
            notes: Sequence[str] | None = None) -> plots.Series:
    """One value per run date (NaN where the date has none), its interval and tooltips
    (``notes`` adds a text per date to them)."""
    labels = []
    for k, (row, est) in enumerate(zip(rows, picked, strict=True)):
        interval = ("" if est is None or est.low is None or est.high is None
                    else f" [{est.low:.4g}, {est.high:.4g}]")
        labels.append(f"{row.run_date} · {name}: "
                      f"{'n/a' if est is None else format(est.value, '.4g')}{interval}"
                      f"{notes[k] if notes else ''}")
    return plots.Series(
        name, list(range(len(rows))), [_NAN if e is None else e.value for e in picked],
        low=[_value(None if e is None else e.low) for e in picked],
        high=[_value(None if e is None else e.high) for e in picked], labels=labels)


def _value(value: float | None) -> float:
    return _NAN if value is None else value


def _has_points(series: plots.Series) -> bool:
    return any(math.isfinite(v) for v in series.y)


def _rows_series(rows: Sequence[HistoryRow]) -> list[plots.Series]:
    """Rows read per role; the tooltips say whether the role's validation passed."""
    roles = list(dict.fromkeys(role for row in rows for role in row.roles))
    out = []
    for role in roles:
        readings = [row.roles.get(role) for row in rows]
        notes = ["" if r is None else (
            f" rows, validation {'passed' if r.validation_passed else 'FAILED'} ({r.checks} "
            f"checks{f', {r.quarantined} quarantined' if r.quarantined else ''})")
            for r in readings]
        out.append(_series(rows, role, [None if r is None else Estimate(float(r.rows))
                                        for r in readings], notes))
    return out


def _gate_series(rows: Sequence[HistoryRow], gate: str) -> list[plots.Series]:
    """The diagnostic, then its warn and fail thresholds as dashed lines (where set)."""
    readings = [row.gates.get(gate) for row in rows]
    notes = ["" if g is None or g.status is None else f" ({g.status})" for g in readings]
    out = [_series(rows, GATE_NAMES[gate], [_reading(g) for g in readings], notes)]
    for level, color in (("warn", WARN_COLOR), ("fail", FAIL_COLOR)):
        values = [_value(None if g is None else getattr(g, f"{level}_threshold"))
                  for g in readings]
        if any(math.isfinite(v) for v in values):
            out.append(plots.Series(f"{level} threshold", list(range(len(rows))), values,
                                    dashed=True, markers=False, color=color))
    return out


def _reading(gate: GateReading | None) -> Estimate | None:
    return None if gate is None or gate.value is None else Estimate(gate.value)


def _candidate_series(rows: Sequence[HistoryRow], metric: str) -> list[plots.Series]:
    names = {c.name for row in rows for c in row.candidates}
    ordered = sorted(names, key=lambda n: (
        CANDIDATE_ORDER.index(n) if n in CANDIDATE_ORDER else len(CANDIDATE_ORDER), n))

    out = []
    for name in ordered:
        found = [row.candidate(name) for row in rows]
        out.append(_series(rows, name, [None if c is None else getattr(c, metric)
                                        for c in found],
                           [" (selected)" if row.selected == name else "" for row in rows]))
    return out


def _markers(rows: Sequence[HistoryRow]) -> list[plots.Marker]:
    """A grey marker per gap, a green one per promotion (label: the new champion)."""
    out = []
    for k, row in enumerate(rows):
        p = row.promotion
        if row.is_gap:
            out.append(plots.Marker(k, "gap", f"{row.run_date}: no figures: {row.reason}",
                                    "gap"))
        elif p is not None and p.champion_label:
            out.append(plots.Marker(k, p.champion_label,
                                    f"{row.run_date}: {p.summary} Why: {p.reason}",
                                    "promotion"))
    return out


# ---------------------------------------------------------------------------- tables
def _link(row: HistoryRow) -> str:
    target = row.report_html or row.failure_record
    text = escape(row.run_date)
    return f'<a href="{escape(target)}">{text}</a>' if target else text


def _cells(values: Sequence[object]) -> str:
    return "".join(f"<td>{escape(html.format_value(v))}</td>" for v in values)


def _dates_table(rows: Sequence[HistoryRow]) -> str:
    """One row per date: the key figures, or the gap's reason."""
    head = ("run date", "status", "rows source / target / holdout", "validation", "ESS/n",
            "k̂", "domain AUC", "largest weight share", "SNIS CTR [95 % CI]", "naive CTR",
            "selected (logloss)", "promoted")
    body = []
    for row in rows:
        if row.is_gap:
            body.append(f'<tr class="gap"><td>{_link(row)}</td><td>gap</td>'
                        f'<td colspan="{len(head) - 2}">{escape(row.reason)}</td></tr>')
            continue
        snis, naive = row.target_ctr.get("snis"), row.target_ctr.get("naive")
        chosen = row.candidate(row.selected)
        gates = [row.gates[g].value if g in row.gates else None for g in GATE_NAMES]
        promotion = row.promotion
        body.append("<tr><td>" + _link(row) + "</td>" + _cells([
            row.status, " / ".join(str(r.rows) for r in row.roles.values()),
            "passed" if all(r.validation_passed for r in row.roles.values()) else "FAILED",
            *gates,
            "" if snis is None else f"{snis.value:.5f} [{_fmt(snis.low)}, {_fmt(snis.high)}]",
            None if naive is None else naive.value,
            "" if chosen is None else f"{chosen.name} ({chosen.logloss.value:.5f})",
            "" if promotion is None else (
                f"yes: {promotion.champion_label}" if promotion.promote else "no"),
        ]) + "</tr>")
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return _table(header, body)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.5f}"


def _events_table(rows: Sequence[HistoryRow]) -> str:
    """Every promotion: the new champion, why, and the champion it replaced."""
    body = []
    for row in rows:
        p = row.promotion
        if row.is_gap or p is None or not p.promote:
            continue
        before = (f"v{p.champion_version} (run date {p.champion_run_date})"
                  if p.champion_version else "none yet")
        body.append(f"<tr><td>{_link(row)}</td>" + _cells([
            p.champion_label, before, p.summary, p.reason]) + "</tr>")
    if not body:
        return html.paragraph("No promotion in these run dates.", "note")
    header = "".join(f"<th>{h}</th>" for h in (
        "run date", "new champion", "replaced", "which model serves", "why"))
    return _table(header, body)


def _table(header: str, body: Sequence[str]) -> str:
    return (f'<table class="history-table"><thead><tr>{header}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table>")
