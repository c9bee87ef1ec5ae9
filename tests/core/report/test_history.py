"""The history over run dates: rows read from run folders (gaps included, never an exception),
the page drawn from them (one plot per figure, thresholds, promotion and gap markers, offline)
and the terminal table. Fast: synthetic report.json files, no Prefect."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from is_core.errors import ConfigError
from is_core.report.content import REPORT_SCHEMA_VERSION
from is_core.report.history import history_table, read_history, render_history_text
from is_core.report.history_page import (
    FAIL_COLOR,
    FIGURES,
    WARN_COLOR,
    render_history_html,
    write_history_page,
)

DATES = ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"]
SVG = "{http://www.w3.org/2000/svg}"


def _ci(value: float, half: float) -> dict[str, float]:
    return {"value": value, "ci_low": value - half, "ci_high": value + half}


def make_report(date: str, k: int = 0, *, promote: bool = False) -> dict[str, Any]:
    """The keys of build_report's report.json that the history reads, with values that change
    with ``k`` (a day's index)."""
    gates = [
        {"gate": "ess_fraction", "value": 0.40 + 0.01 * k, "status": "pass",
         "warn_threshold": 0.1, "fail_threshold": 0.01, "message": ""},
        {"gate": "khat", "value": 0.20 + 0.1 * k, "status": "pass", "warn_threshold": 0.5,
         "fail_threshold": 0.7, "message": ""},
        {"gate": "domain_auc", "value": 0.70, "status": "pass", "warn_threshold": 0.85,
         "fail_threshold": 0.99, "message": ""},
        {"gate": "max_weight_share", "value": 1e-3, "status": "pass", "warn_threshold": 0.05,
         "fail_threshold": None, "message": ""},
        {"gate": "logged_spearman", "value": 0.9, "status": "pass", "warn_threshold": 0.5,
         "fail_threshold": None, "message": ""},
    ]
    candidate = {"logloss": 0.070 + 0.001 * k, "logloss_ci": [0.068 + 0.001 * k,
                                                                0.072 + 0.001 * k],
                 "calibration_ratio": 1.0 + 0.01 * k, "calibration_ratio_ci": [0.9, 1.1],
                 "auc": 0.75, "ece": 0.002}
    return {
        "schema_version": REPORT_SCHEMA_VERSION, "run_date": date,
        "validation": {role: {"rows": rows + k, "evaluated": 50, "failed": 0, "success": True,
                              "quarantine": None}
                       for role, rows in (("holdout", 1500), ("source", 4000),
                                          ("target", 1500))},
        "weights": {"gates": gates, "ess_fraction": 0.40 + 0.01 * k},
        "target_ctr": {"naive": _ci(0.034, 0.001), "snis": _ci(0.0150 + 0.0001 * k, 0.0007),
                       "dr": _ci(0.0155, 0.0006), "is_raw": _ci(0.0154, 0.0007)},
        "candidates": {"recalibrated": copy.deepcopy(candidate),
                       "unweighted": {**candidate, "logloss": 0.073},
                       "weighted": {**candidate, "logloss": 0.074}},
        "selected": "recalibrated",
        "promotion": {
            "promote": promote, "reason": f"reason of {date}",
            "challenger": {"model": "recalibrated", "version": str(k + 1), "run_date": date},
            "champion": None if k == 0 else {"version": str(k), "run_date": DATES[k - 1]},
            "weighting": {"detail": "recalibrated paid"}},
    }


def write_run(root: Path, date: str, report: dict[str, Any] | str | None = None,
              html: bool = True) -> Path:
    folder = root / date
    folder.mkdir(parents=True, exist_ok=True)
    if report is not None:
        (folder / "report.json").write_text(
            report if isinstance(report, str) else json.dumps(report))
    if html:
        (folder / "report.html").write_text("<html></html>")
    return folder


def write_failure(root: Path, date: str, stamp: str, stage: str = "load",
                  what: str = "source partition dt=2026-11-27 is missing") -> Path:
    path = root / date / "failures" / f"{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"error": "DataContractError", "stage": stage, "what": what,
                                "fix": "backfill", "run_date": date}))
    return path


@pytest.fixture
def four_days(tmp_path: Path) -> Path:
    """Four published dates; the first and third promote their challenger."""
    for k, date in enumerate(DATES):
        write_run(tmp_path, date, make_report(date, k, promote=k in (0, 2)))
    return tmp_path


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg .*?</svg>", page, flags=re.S)]


def polylines(svg: ET.Element) -> list[ET.Element]:
    return list(svg.iter(f"{SVG}polyline"))


def title_of(svg: ET.Element) -> str:
    return svg.get("aria-label", "")


class TestRows:
    def test_one_row_per_date_oldest_first_with_every_figure(self, four_days):
        rows = read_history(four_days)
        assert [r.run_date for r in rows] == DATES
        assert all(r.status == "published" and not r.reason for r in rows)
        last = rows[-1]
        assert list(last.roles) == ["source", "target", "holdout"]
        assert last.roles["source"].rows == 4003 and last.roles["source"].validation_passed
        assert list(last.gates) == ["ess_fraction", "khat", "domain_auc", "max_weight_share"]
        khat = last.gates["khat"]
        assert (khat.value, khat.status, khat.warn_threshold, khat.fail_threshold) == (
            pytest.approx(0.5), "pass", 0.5, 0.7)
        assert last.gates["max_weight_share"].fail_threshold is None
        assert set(last.target_ctr) == {"naive", "snis", "dr"}
        snis = last.target_ctr["snis"]
        assert (snis.value, snis.low, snis.high) == pytest.approx((0.0153, 0.0146, 0.0160))
        assert [c.name for c in last.candidates] == ["unweighted", "weighted", "recalibrated"]
        chosen = last.candidate(last.selected)
        assert chosen is not None and chosen.logloss.value == pytest.approx(0.073)
        assert (chosen.logloss.low, chosen.logloss.high) == pytest.approx((0.071, 0.075))
        assert chosen.calibration_ratio.value == pytest.approx(1.03)
        assert last.report_html == "2026-11-28/report.html"

    def test_promotion_event_says_which_model_became_champion_and_why(self, four_days):
        rows = read_history(four_days)
        event = rows[2].promotion
        assert event is not None and event.promote
        assert event.champion_label == "v3 recalibrated"
        assert (event.champion_version, event.champion_run_date) == ("2", DATES[1])
        assert event.reason == f"reason of {DATES[2]}"
        assert event.summary.startswith("Champion now: v3, the unweighted booster recalibrated")
        kept = rows[1].promotion
        assert kept is not None and not kept.promote and kept.champion_label is None
        assert kept.summary == f"Champion unchanged: v1 (run date {DATES[0]})."

    def test_last_n_keeps_the_newest_dates(self, four_days):
        assert [r.run_date for r in read_history(four_days, last=2)] == DATES[2:]
        assert len(read_history(four_days, last=10)) == 4
        with pytest.raises(ConfigError, match="at least 1"):
            read_history(four_days, last=0)

    def test_other_folders_and_files_are_not_run_dates(self, four_days):
        for name in ("registry", ".staging", ".locks", "2026-13-45", "notes-2026-11-28"):
            (four_days / name).mkdir()
        (four_days / "index.html").write_text("old page")
        assert [r.run_date for r in read_history(four_days)] == DATES

    def test_a_missing_output_root_has_no_rows(self, tmp_path):
        assert read_history(tmp_path / "nothing-yet") == []

    def test_dr_only_where_the_run_computed_it(self, tmp_path):
        report = make_report(DATES[0])
        del report["target_ctr"]["dr"]
        write_run(tmp_path, DATES[0], report)
        assert set(read_history(tmp_path)[0].target_ctr) == {"naive", "snis"}

    def test_a_failed_rerun_of_a_published_date_keeps_its_figures(self, four_days):
        write_failure(four_days, DATES[1], "20261127T030000000000Z")
        row = read_history(four_days)[1]
        assert row.status == "published" and row.failed_runs == 1
        assert row.failure_record == f"{DATES[1]}/failures/20261127T030000000000Z.json"


class TestGaps:
    """A date that cannot be read is a gap row with its reason, never an exception."""

    def gap(self, root: Path, date: str) -> str:
        (row,) = [r for r in read_history(root) if r.run_date == date]
        assert row.status == "gap" and row.is_gap
        assert not row.gates and not row.candidates and row.promotion is None
        return row.reason

    def test_corrupt_json(self, tmp_path):
        write_run(tmp_path, DATES[0], '{"schema_version": 1, "weights": {')
        reason = self.gap(tmp_path, DATES[0])
        assert reason.startswith("report.json is corrupt (not JSON: ")
        assert f"re-run the date (isbench run --date {DATES[0]})" in reason

    def test_unreadable_report(self, tmp_path):
        (write_run(tmp_path, DATES[0]) / "report.json").mkdir()  # a folder where a file was
        assert self.gap(tmp_path, DATES[0]).startswith("cannot read report.json (")

    def test_missing_schema_version_counts_as_older(self, tmp_path):
        report = make_report(DATES[0])
        del report["schema_version"]
        write_run(tmp_path, DATES[0], report)
        assert self.gap(tmp_path, DATES[0]).startswith(
            "report.json has no schema_version (an older isbench wrote it)")

    def test_older_schema_version(self, tmp_path):
        write_run(tmp_path, DATES[0], {**make_report(DATES[0]),
                                        "schema_version": REPORT_SCHEMA_VERSION - 1})
        assert self.gap(tmp_path, DATES[0]).startswith(
            f"report.json has schema_version {REPORT_SCHEMA_VERSION - 1}, older than")

    @pytest.mark.parametrize(("drop", "named"), [
        (("weights", "gates"), "weights.gates"),
        (("target_ctr", "snis"), "target_ctr.snis"),
        (("validation",), "validation"),
    ])
    def test_missing_key_names_it(self, tmp_path, drop, named):
        report = make_report(DATES[0])
        parent = report
        for key in drop[:-1]:
            parent = parent[key]
        del parent[drop[-1]]
        write_run(tmp_path, DATES[0], report)
        assert self.gap(tmp_path, DATES[0]).startswith(f"report.json lacks {named} ")

    def test_value_of_the_wrong_type(self, tmp_path):
        report = make_report(DATES[0])
        report["weights"]["gates"] = [3, 4]
        write_run(tmp_path, DATES[0], report)
        assert "wrong type" in self.gap(tmp_path, DATES[0])

    def test_not_an_object(self, tmp_path):
        write_run(tmp_path, DATES[0], "[1, 2]")
        assert "not an object" in self.gap(tmp_path, DATES[0])

    def test_a_failures_only_date_gives_the_failures_stage_and_message(self, four_days):
        date = "2026-11-29"
        write_failure(four_days, date, "20261130T030000000000Z", stage="validate",
                      what="an older failure")
        newest = write_failure(four_days, date, "20261130T040000000000Z")
        rows = read_history(four_days)
        assert [r.run_date for r in rows] == [*DATES, date]
        assert self.gap(four_days, date) == (
            "failed at stage 'load': source partition dt=2026-11-27 is missing")
        assert rows[-1].failure_record == newest.relative_to(four_days).as_posix()
        assert rows[-1].report_html is None and rows[-1].failed_runs == 2

    def test_an_unreadable_failure_record_is_still_a_gap(self, tmp_path):
        path = write_failure(tmp_path, DATES[0], "20261125T030000000000Z")
        path.write_text("{")
        assert "failure record 20261125T030000000000Z.json is unreadable" in self.gap(
            tmp_path, DATES[0])

    def test_an_empty_date_folder(self, tmp_path):
        (tmp_path / DATES[0]).mkdir()
        assert self.gap(tmp_path, DATES[0]) == (
            "no report.json and no failure record in the folder")


class TestPage:
    def test_one_plot_per_figure_with_one_point_per_date_in_every_series(self, four_days):
        page = render_history_html(read_history(four_days))
        charts = svgs(page)
        assert [title_of(s) for s in charts] == [title for title, _ in FIGURES.values()]
        for svg in charts:
            lines = polylines(svg)
            assert lines, title_of(svg)
            for line in lines:
                assert len(line.get("points", "").split()) == len(DATES), title_of(svg)
            labels = [t.text for t in svg.iter(f"{SVG}text")]
            assert all(date in labels for date in DATES), "run dates on the x axis"

    def test_gates_have_their_dashed_warn_and_fail_thresholds(self, four_days):
        charts = {title_of(s): s for s in svgs(render_history_html(read_history(four_days)))}
        for figure, levels in (("ess_fraction", {WARN_COLOR, FAIL_COLOR}),
                               ("khat", {WARN_COLOR, FAIL_COLOR}),
                               ("domain_auc", {WARN_COLOR, FAIL_COLOR}),
                               ("max_weight_share", {WARN_COLOR})):  # its fail level is off
            svg = charts[FIGURES[figure][0]]
            dashed = [p for p in polylines(svg) if p.get("stroke-dasharray")]
            assert {p.get("stroke") for p in dashed} == levels, figure
            # a constant threshold is a horizontal line
            for p in dashed:
                assert len({xy.split(",")[1] for xy in p.get("points").split()}) == 1

    def test_promotions_are_marked_on_every_plot_and_tabled(self, four_days):
        page = render_history_html(read_history(four_days))
        for svg in svgs(page):
            events = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "marker promotion"]
            assert [g.find(f"{SVG}text").text for g in events] == ["v1 recalibrated",
                                                                   "v3 recalibrated"]
            tooltip = events[1].find(f"{SVG}title").text
            assert tooltip.startswith(f"{DATES[2]}: Champion now: v3, the unweighted booster")
            assert tooltip.endswith(f"Why: reason of {DATES[2]}")
        events_table = page[page.index('id="promotions"'):]
        assert events_table.count("<tr>") == 3  # header + two promotions
        assert "v2 (run date 2026-11-26)" in events_table and "none yet" in events_table

    def test_gaps_are_marked_and_tabled_with_their_reason(self, four_days):
        write_failure(four_days, "2026-11-29", "20261130T030000000000Z")
        write_run(four_days, "2026-11-30", "{corrupt", html=False)
        rows = read_history(four_days)
        page = render_history_html(rows)
        for svg in svgs(page):
            gaps = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "marker gap"]
            assert len(gaps) == 2
            assert "failed at stage 'load'" in gaps[0].find(f"{SVG}title").text
            for line in polylines(svg):  # the gaps have no point
                assert len(line.get("points").split()) == len(DATES)
        table = page[page.index('id="dates"'):page.index('id="promotions"')]
        assert table.count('<tr class="gap">') == 2
        assert "failed at stage &#x27;load&#x27;: source partition" in table
        assert '<a href="2026-11-29/failures/20261130T030000000000Z.json">' in table
        assert "report.json is corrupt" in table

    def test_each_date_links_to_its_report(self, four_days):
        page = render_history_html(read_history(four_days))
        for date in DATES:
            assert f'<a href="{date}/report.html">{date}</a>' in page

    def test_offline_no_script_no_remote_resource(self, four_days):
        page = render_history_html(read_history(four_days))
        assert set(re.findall(r"https?://[^\"' )]+", page)) == {"http://www.w3.org/2000/svg"}
        assert "<script" not in page and "<link" not in page and "src=" not in page
        assert "<style>" in page  # inline CSS

    def test_written_atomically_and_deterministically(self, four_days):
        path = write_history_page(four_days)
        assert path == four_days / "index.html"
        first = path.read_bytes()
        assert not list(four_days.glob(".index.html.*"))  # no temporary left
        # a failed re-run of a published date leaves the page byte for byte as it was (the
        # bad-input tests check that a failed run changes no published file)
        write_failure(four_days, DATES[-1], "20261129T030000000000Z")
        assert write_history_page(four_days).read_bytes() == first
        assert "<svg" not in render_history_html([])


class TestTable:
    def test_terminal_table_has_one_line_per_date(self, four_days):
        write_failure(four_days, "2026-11-29", "20261130T030000000000Z")
        lines = render_history_text(read_history(four_days)).splitlines()
        assert len(lines) == 1 + 5 and lines[0].startswith("run date")
        last = lines[4].split()
        assert last[:7] == [DATES[-1], "published", "4003", "1503", "0.430", "0.500",
                            "0.7000"]
        assert "0.01530 [0.01460, 0.01600]" in lines[4] and "recalibrated (0.07300)" in lines[4]
        assert lines[3].rstrip().endswith("yes") and lines[4].rstrip().endswith("no")
        assert lines[5].split()[:2] == ["2026-11-29", "gap"]
        assert "failed at stage 'load': source partition" in lines[5]

    def test_key_figures_are_flat_records(self, four_days):
        records = history_table(read_history(four_days))
        assert [r["run_date"] for r in records] == DATES
        assert records[2]["promoted"] and records[2]["new_champion"] == "v3 recalibrated"
        assert all(isinstance(v, str | int | float | bool | type(None))
                   for r in records for v in r.values())
        json.dumps(records, allow_nan=False)

    def test_rows_are_json_ready(self, four_days):
        rows = read_history(four_days)
        data = json.loads(json.dumps([r.to_dict() for r in rows], allow_nan=False))
        assert data[0]["gates"]["khat"]["warn_threshold"] == 0.5
        assert data[0]["promotion"]["challenger_model"] == "recalibrated"
