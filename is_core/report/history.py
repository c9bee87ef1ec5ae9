"""The runs over days: one typed row per run date, read from ``<output_root>/<YYYY-MM-DD>/``.

The run folders are the record (no database): :func:`read_history` reads each date folder's
``report.json`` (:func:`is_core.report.content.build_report`) into a :class:`HistoryRow` of the
figures an on-call engineer compares across days: rows and validation per role, the weight
diagnostics with their gates' thresholds, the target CTR naive vs importance-weighted, each
candidate's target logloss and calibration ratio, and the promotion event.

A date that cannot be read is a *gap* row carrying the reason, never an exception: a corrupt or
unreadable ``report.json``, one of an older (or newer) ``schema_version``, one lacking a key
read here, and a date whose runs all failed (a failed run publishes only
``failures/<stamp>.json``; the reason is its stage and message). :mod:`is_core.report.history_page`
draws the rows as ``<output_root>/index.html``; ``isbench history`` prints them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from is_core.errors import ConfigError
from is_core.report.content import REPORT_SCHEMA_VERSION, champion_sentence

REPORT_FILE = "report.json"
FAILURES_DIR = "failures"
"""Where a failed run leaves its record (``is_core.release.runs.RunFolders.record_failure``;
the report part may not import ``release``)."""
HISTORY_GATES = ("ess_fraction", "khat", "domain_auc", "max_weight_share")
"""The weight gates followed over days, in the order the page and the table show them."""
ROLES = ("source", "target", "holdout")
CANDIDATE_ORDER = ("unweighted", "weighted", "recalibrated")
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")

RowStatus = Literal["published", "gap"]


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % interval (``low``/``high`` None when the report has none)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class RoleReading:
    """One data role of one run: rows read, whether its expectation suite passed, rows
    quarantined (``validation.mode: quarantine``)."""

    rows: int
    validation_passed: bool
    checks: int
    quarantined: int = 0


@dataclass(frozen=True)
class GateReading:
    """One weight diagnostic and its gate: value, pass/warn/fail and the thresholds the run
    used (None: that level is off)."""

    value: float | None
    status: str | None
    warn_threshold: float | None
    fail_threshold: float | None


@dataclass(frozen=True)
class CandidateReading:
    """One candidate model's target metrics (``report.json["candidates"]``)."""

    name: str
    logloss: Estimate
    calibration_ratio: Estimate


@dataclass(frozen=True)
class PromotionEvent:
    """The run's champion/challenger decision: whether today's challenger became champion,
    which model it is and why (``report.json["promotion"]``)."""

    promote: bool
    reason: str
    challenger_model: str | None
    challenger_version: str | None
    champion_version: str | None
    """The champion the challenger was compared with (None: there was none yet)."""
    champion_run_date: str | None
    summary: str
    """Which model serves after this run, in one sentence."""

    @property
    def champion_label(self) -> str | None:
        """``v3 recalibrated`` when today's challenger became champion, else None."""
        if not self.promote:
            return None
        return f"v{self.challenger_version} {self.challenger_model}"


@dataclass(frozen=True)
class HistoryRow:
    """One run date: its published figures, or a gap with the reason."""

    run_date: str
    status: RowStatus
    reason: str = ""
    """Why the date is a gap ("" for a published run)."""
    report_html: str | None = None
    """``<date>/report.html`` relative to the output root, when it exists."""
    failure_record: str | None = None
    """The newest ``<date>/failures/<stamp>.json``, relative to the output root."""
    failed_runs: int = 0
    """Failure records of the date (a failed re-run leaves the published report in place)."""
    roles: Mapping[str, RoleReading] = field(default_factory=dict)
    gates: Mapping[str, GateReading] = field(default_factory=dict)
    target_ctr: Mapping[str, Estimate] = field(default_factory=dict)
    """``naive`` (the source click rate), ``snis`` (importance-weighted) and, where the run
    computed it, ``dr`` (doubly robust)."""
    candidates: tuple[CandidateReading, ...] = ()
    selected: str | None = None
    promotion: PromotionEvent | None = None

    @property
    def is_gap(self) -> bool:
        return self.status == "gap"

    def candidate(self, name: str | None) -> CandidateReading | None:
        return next((c for c in self.candidates if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``isbench history --format json``)."""
        return asdict(self)


class _Unreadable(Exception):
    """A report.json this module cannot read; its message is the gap's reason."""


def read_history(output_root: str | Path, last: int | None = None) -> list[HistoryRow]:
    """One row per ``<output_root>/<YYYY-MM-DD>/`` folder, oldest first; the newest ``last``
    dates only when given. Other folders (``registry``, ``.staging``, …) are not run dates."""
    if last is not None and last < 1:
        raise ConfigError(f"the history's last {last} dates: must be at least 1",
                          fix="give --last 1 or more, or leave it out for every date")
    root = Path(output_root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and _is_date(p.name)) if (
        root.is_dir()) else []
    if last is not None:
        folders = folders[-last:]
    return [history_row(folder, root) for folder in folders]


def _is_date(name: str) -> bool:
    if not _DATE_FOLDER.match(name):
        return False
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


def history_row(run_dir: Path, output_root: Path | None = None) -> HistoryRow:
    """The row of one run date folder (a gap row, with its reason, if it cannot be read)."""
    root = output_root if output_root is not None else run_dir.parent
    date = run_dir.name
    failures = sorted((run_dir / FAILURES_DIR).glob("*.json"))
    context: dict[str, Any] = {
        "failed_runs": len(failures),
        "failure_record": _relative(failures[-1], root) if failures else None,
        "report_html": (_relative(run_dir / "report.html", root)
                        if (run_dir / "report.html").is_file() else None),
    }
    report_path = run_dir / REPORT_FILE
    if not report_path.exists():
        reason = (_failure_reason(failures[-1]) if failures
                  else "no report.json and no failure record in the folder")
        return HistoryRow(date, "gap", reason, **context)
    try:
        return _published(date, _load_report(report_path), context)
    except _Unreadable as exc:
        return HistoryRow(date, "gap", f"{exc}; re-run the date (isbench run --date {date})",
                          **context)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _failure_reason(record_path: Path) -> str:
    """"failed at stage 'load': <what>" from a failure record."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        return f"failed at stage '{record.get('stage', 'unknown')}': {record.get('what', '')}"
    except (OSError, ValueError, AttributeError) as exc:
        return f"failed; its failure record {record_path.name} is unreadable ({exc})"


def _load_report(path: Path) -> dict[str, Any]:
    """The report dict, after the checks that make a report readable here."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _Unreadable(f"report.json is corrupt (not JSON: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(f"cannot read report.json ({exc})") from exc
    if not isinstance(report, dict):
        raise _Unreadable(f"report.json holds a JSON {type(report).__name__}, not an object")
    version = report.get("schema_version")
    if version is None:
        raise _Unreadable("report.json has no schema_version (an older isbench wrote it)")
    if version != REPORT_SCHEMA_VERSION:
        older = isinstance(version, int) and version < REPORT_SCHEMA_VERSION
        raise _Unreadable(f"report.json has schema_version {version!r}, "
                          f"{'older' if older else 'other'} than the {REPORT_SCHEMA_VERSION} "
                          "this isbench reads")
    return report


def _need(report: Mapping[str, Any], *keys: str) -> Any:
    """``report[k1][k2]...``, or :class:`_Unreadable` naming the dotted key that is missing."""
    value: Any = report
    for depth, key in enumerate(keys):
        if not isinstance(value, Mapping) or key not in value:
            raise _Unreadable(f"report.json lacks {'.'.join(keys[:depth + 1])} (an older or "
                              "partial report)")
        value = value[key]
    return value


def _published(date: str, report: dict[str, Any], context: dict[str, Any]) -> HistoryRow:
    try:
        return HistoryRow(
            run_date=date, status="published", **context,
            roles=_roles(report), gates=_gates(report), target_ctr=_target_ctr(report),
            candidates=_candidates(report), selected=report.get("selected"),
            promotion=_promotion(report.get("promotion")))
    except KeyError as exc:  # a key inside a list entry (a gate without its name)
        raise _Unreadable(f"report.json lacks the key {exc} (an older or partial report)"
                          ) from exc
    except (TypeError, ValueError, AttributeError) as exc:  # a value of the wrong kind
        raise _Unreadable(f"report.json has a value of the wrong type ({exc})") from exc


def _target_ctr(report: Mapping[str, Any]) -> dict[str, Estimate]:
    """``naive`` and ``snis`` (required), ``dr`` where the run computed it."""
    out = {name: _estimate(_need(report, "target_ctr", name)) for name in ("naive", "snis")}
    if "dr" in _need(report, "target_ctr"):
        out["dr"] = _estimate(report["target_ctr"]["dr"])
    return out


def _roles(report: Mapping[str, Any]) -> dict[str, RoleReading]:
    validation = _need(report, "validation")
    ordered = sorted(validation, key=lambda r: (ROLES.index(r) if r in ROLES else 9, r))
    out = {}
    for role in ordered:
        v = validation[role]
        quarantine = v.get("quarantine") or {}
        out[role] = RoleReading(rows=int(_need(report, "validation", role, "rows")),
                                validation_passed=bool(v.get("success", v.get("failed") == 0)),
                                checks=int(v.get("evaluated", 0)),
                                quarantined=int(quarantine.get("dropped", 0)))
    return out


def _gates(report: Mapping[str, Any]) -> dict[str, GateReading]:
    """The gates of :data:`HISTORY_GATES` (a gate missing from the list: the diagnostic's
    value without thresholds)."""
    listed = {g["gate"]: g for g in _need(report, "weights", "gates")}
    weights = _need(report, "weights")
    out = {}
    for name in HISTORY_GATES:
        g = listed.get(name)
        if g is None:
            out[name] = GateReading(_number(weights.get(name)), None, None, None)
        else:
            out[name] = GateReading(_number(g.get("value")), g.get("status"),
                                    _number(g.get("warn_threshold")),
                                    _number(g.get("fail_threshold")))
    return out


def _number(value: Any) -> float | None:
    """A finite float, or None (JSON null, or a value that is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _estimate(raw: Mapping[str, Any]) -> Estimate:
    value = _number(raw.get("value"))
    if value is None:
        raise _Unreadable(f"report.json has a target-CTR estimate without a value: "
                          f"{str(raw)[:80]}")
    return Estimate(value, _number(raw.get("ci_low")), _number(raw.get("ci_high")))


def _interval(candidate: Mapping[str, Any], name: str, metric: str) -> Estimate:
    """``candidates.<name>.<metric>`` with its ``<metric>_ci`` pair."""
    value = _number(candidate.get(metric))
    if value is None:
        raise _Unreadable(f"report.json lacks a number at candidates.{name}.{metric}")
    ci = candidate.get(f"{metric}_ci")
    low, high = (ci[0], ci[1]) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)
    return Estimate(value, _number(low), _number(high))


def _candidates(report: Mapping[str, Any]) -> tuple[CandidateReading, ...]:
    candidates = report.get("candidates") or {}
    ordered = sorted(candidates, key=lambda n: (
        CANDIDATE_ORDER.index(n) if n in CANDIDATE_ORDER else len(CANDIDATE_ORDER), n))
    return tuple(CandidateReading(name, _interval(candidates[name], name, "logloss"),
                                  _interval(candidates[name], name, "calibration_ratio"))
                 for name in ordered)


def _promotion(promotion: Mapping[str, Any] | None) -> PromotionEvent | None:
    if not promotion:
        return None
    challenger = promotion.get("challenger") or {}
    champion = promotion.get("champion") or {}
    return PromotionEvent(
        promote=bool(promotion.get("promote")), reason=str(promotion.get("reason", "")),
        challenger_model=challenger.get("model"),
        challenger_version=_text(challenger.get("version")),
        champion_version=_text(champion.get("version")),
        champion_run_date=_text(champion.get("run_date")),
        summary=champion_sentence(dict(promotion)))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------- key figures
def history_table(rows: Sequence[HistoryRow]) -> list[dict[str, Any]]:
    """One flat record per date with the key figures (the ``isbench-history`` table artifact
    and ``isbench history``'s terminal table)."""
    out = []
    for row in rows:
        snis = row.target_ctr.get("snis")
        chosen = row.candidate(row.selected)
        promotion = row.promotion
        out.append({
            "run_date": row.run_date, "status": row.status,
            **{f"{role}_rows": (row.roles[role].rows if role in row.roles else None)
               for role in ("source", "target")},
            **{name: row.gates[name].value if name in row.gates else None
               for name in ("ess_fraction", "khat", "domain_auc")},
            "snis_ctr": snis.value if snis else None,
            "snis_ci_low": snis.low if snis else None,
            "snis_ci_high": snis.high if snis else None,
            "selected": row.selected,
            "selected_logloss": chosen.logloss.value if chosen else None,
            "promoted": promotion.promote if promotion else None,
            "new_champion": promotion.champion_label if promotion else None,
            "note": row.reason,
        })
    return out


def render_history_text(rows: Sequence[HistoryRow]) -> str:
    """The terminal table: one line per date (a gap's line carries its reason)."""
    header = (f"{'run date':<10}  {'status':<9}  {'source':>7}  {'target':>7}  {'ESS/n':>6}  "
              f"{'k-hat':>6}  {'dom.AUC':>7}  {'SNIS CTR [95% CI]':<27}  "
              f"{'selected (logloss)':<24}  promoted")
    lines = [header]
    for record in history_table(rows):
        if record["status"] == "gap":
            lines.append(f"{record['run_date']:<10}  {'gap':<9}  {record['note']}")
            continue
        ci = (f"{_fmt(record['snis_ctr'], '.5f')} [{_fmt(record['snis_ci_low'], '.5f')}, "
              f"{_fmt(record['snis_ci_high'], '.5f')}]")
        chosen = (f"{record['selected']} ({_fmt(record['selected_logloss'], '.5f')})"
                  if record["selected"] else "-")
        promoted = {True: "yes", False: "no", None: "-"}[record["promoted"]]
        lines.append(
            f"{record['run_date']:<10}  {record['status']:<9}  "
            f"{_fmt(record['source_rows'], 'd'):>7}  {_fmt(record['target_rows'], 'd'):>7}  "
            f"{_fmt(record['ess_fraction'], '.3f'):>6}  {_fmt(record['khat'], '.3f'):>6}  "
            f"{_fmt(record['domain_auc'], '.4f'):>7}  {ci:<27}  {chosen:<24}  {promoted}")
    return "\n".join(lines)


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)
