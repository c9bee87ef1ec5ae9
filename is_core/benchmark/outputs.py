"""The benchmark's outputs: per-cell CSV, leaderboard CSV/Markdown, summary JSON, offline HTML.

Every sentence is generated from the leaderboard (:func:`is_core.benchmark.grid.scenario_verdicts`),
so the text cannot disagree with the tables.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Any

import pandas as pd

from is_core.benchmark.grid import PIPELINE_DEFAULT, BenchmarkConfig, leaderboard, scenario_verdicts
from is_core.benchmark.scenarios import SCENARIOS
from is_core.ctr.model import library_versions
from is_core.data.atomic import write_json_atomic, write_text_atomic
from is_core.report import _html as html
from is_core.report import plots

CELLS_FILE, BOARD_FILE = "cells.csv", "leaderboard.csv"
MARKDOWN_FILE, SUMMARY_FILE, HTML_FILE = "leaderboard.md", "summary.json", "benchmark.html"


def _pm(value: float, half: float, digits: int = 5) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f} ± {half:.{digits}f}" if math.isfinite(half) else (
        f"{value:.{digits}f}")


def _share(row: pd.Series) -> str:
    if not math.isfinite(row["gap_recovered"]):
        return "–"
    return (f"{100 * row['gap_recovered']:.0f} % [{100 * row['gap_recovered_ci_low']:.0f}, "
            f"{100 * row['gap_recovered_ci_high']:.0f}]")


def leaderboard_rows(board: pd.DataFrame) -> list[dict[str, Any]]:
    """Display rows (strings) of the leaderboard, for Markdown, HTML and the Prefect table."""
    rows = []
    for _, r in board.iterrows():
        rows.append({
            "scenario": r["scenario"], "strategy": r["strategy"], "clip": r["clip"],
            "target logloss (95% CI)": _pm(r["logloss"], r["logloss_ci_half"]),
            "vs unweighted ± SE": ("–" if r["strategy"] == "none" else
                                   f"{r['vs_unweighted']:+.5f} ± {r['vs_unweighted_se']:.5f}"),
            "gap recovered [95% CI]": _share(r),
            "AUC": f"{r['auc']:.4f}", "ECE": f"{r['ece']:.4f}",
            "calibration ratio": f"{r['calibration_ratio']:.3f}",
            "ESS/n": "–" if not math.isfinite(r["ess_fraction"]) else f"{r['ess_fraction']:.3f}",
            "k̂": "–" if not math.isfinite(r["khat"]) else f"{r['khat']:.2f}",
        })
    return rows


def _markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return lines


def compact_rows(board: pd.DataFrame) -> list[dict[str, Any]]:
    """The README table: per scenario the references, the pipeline default and the best rows."""
    keep = {("none", "-"), ("oracle", "-"), PIPELINE_DEFAULT, ("xgboost", "auto"),
            ("logged_propensity", "none"), ("true", "none")}
    picked = []
    for _, sc in board.groupby("scenario", sort=False):
        weighted = sc[~sc["strategy"].isin(("none", "oracle"))]
        best = weighted.index[0] if len(weighted) else None
        for idx, r in sc.iterrows():
            if (r["strategy"], r["clip"]) in keep or idx == best:
                picked.append(idx)
    return leaderboard_rows(board.loc[picked])


def render_markdown(board: pd.DataFrame, verdicts: dict[str, dict[str, Any]],
                    config: BenchmarkConfig, command: str) -> str:
    lines = ["# isbench weighting benchmark", "",
             f"Produced by `{command}`; {len(config.seeds)} seeds per scenario "
             f"({', '.join(map(str, config.seeds))}), size factor {config.size_factor}.", "",
             "Target logloss is measured on a large labeled target test sample. *Oracle*: the "
             "same CTR learner trained on as many labeled **target** rows as the source has. "
             "*Gap recovered*: (unweighted − strategy) / (unweighted − oracle) logloss, ratio "
             "of seed means with a delta-method t interval; shown only where the gap is "
             "significant.", "", "## Verdicts", ""]
    lines += [f"- {v['text']}" for v in verdicts.values()]
    lines += ["", "## Scenarios", ""]
    lines += [f"- `{name}`: {SCENARIOS[name].description}" for name in verdicts]
    lines += ["", "## Summary", "", *_markdown_table(compact_rows(board)), "",
              "## Full leaderboard", "", *_markdown_table(leaderboard_rows(board)), ""]
    return "\n".join(lines)


def render_html(board: pd.DataFrame, verdicts: dict[str, dict[str, Any]],
                config: BenchmarkConfig, command: str) -> str:
    parts = [html.section("Verdicts", *[
        f'<div class="verdict">{html.paragraph(v["text"])}</div>' for v in verdicts.values()],
        html.paragraph(f"Produced by {command}. Oracle = the same CTR learner trained on "
                       "labeled target rows (as many as the source has). Gap recovered = "
                       "(unweighted − strategy) / (unweighted − oracle) target logloss.", "note"),
        anchor="verdicts")]
    for scenario, sc in board.groupby("scenario", sort=False):
        rows = [(f"{r['strategy']} + {r['clip']}", r["vs_unweighted"],
                 r["vs_unweighted"] - r["vs_unweighted_ci_half"],
                 r["vs_unweighted"] + r["vs_unweighted_ci_half"])
                for _, r in sc.iterrows() if r["strategy"] != "none"]
        calib = [(f"{r['strategy']} + {r['clip']}", r["calibration_ratio"],
                  r["calibration_ratio"], r["calibration_ratio"]) for _, r in sc.iterrows()]
        parts.append(html.section(
            f"Scenario {scenario}",
            html.paragraph(SCENARIOS[str(scenario)].description, "note"),
            html.charts(
                plots.interval_chart_svg(rows, title=f"{scenario}: target logloss − unweighted",
                                         x_label="difference (negative = better), 95 % CI",
                                         reference_x=0.0),
                plots.interval_chart_svg(calib, title=f"{scenario}: calibration ratio",
                                         x_label="mean prediction / observed CTR (1 = "
                                         "calibrated)", reference_x=1.0)),
            html.table(leaderboard_rows(sc)), anchor=f"scenario-{scenario}"))
    return html.page("isbench weighting benchmark", *parts,
                     subtitle=f"{len(config.seeds)} seeds × {len(config.scenarios)} scenarios; "
                     f"size factor {config.size_factor}")


def write_outputs(cells: pd.DataFrame, config: BenchmarkConfig, out_dir: str | Path,
                  command: str = "isbench benchmark") -> dict[str, Any]:
    """Write every output of a finished benchmark under ``out_dir``; return paths and verdicts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    board = leaderboard(cells)
    verdicts = scenario_verdicts(board, cells)
    write_text_atomic(cells.to_csv(index=False, float_format="%.6g"), out / CELLS_FILE)
    write_text_atomic(board.to_csv(index=False, float_format="%.6g"), out / BOARD_FILE)
    markdown = render_markdown(board, verdicts, config, command)
    write_text_atomic(markdown, out / MARKDOWN_FILE)
    write_text_atomic(render_html(board, verdicts, config, command), out / HTML_FILE)
    summary = {"config": config.model_dump(), "command": command, "verdicts": verdicts,
               "environment": {"python": platform.python_version(), **library_versions()}}
    write_json_atomic(summary, out / SUMMARY_FILE)
    return {"markdown": markdown, "verdicts": verdicts, "table": compact_rows(board),
            "paths": {k: str(out / f) for k, f in (("cells", CELLS_FILE), ("leaderboard",
                      BOARD_FILE), ("markdown", MARKDOWN_FILE), ("html", HTML_FILE),
                      ("summary", SUMMARY_FILE))}}
