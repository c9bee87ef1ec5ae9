"""The default weights on bandit logs: gates and target-CTR coverage against the exact weights.

    .venv/bin/python benchmarks/bandit_default.py                    # 100 worlds, ~40 min
    .venv/bin/python benchmarks/bandit_default.py --seeds 5 --seconds 120

Issue 16's real Thompson-sampling log defeated the default proposal model (raw weights up to
27,386, every gate failed). For each seed this draws a new
:class:`~is_core.simulate.bandit.BanditScenario` world (80 items × 3 positions, propensities over
four decades, 80 sparse affinity features, CTR about 0.4 %), writes one day of it
(``--n-source`` logged impressions, a uniform-random target sample of ``--n-target``) and runs
the pipeline's own proposal and weights stages three times, as a user would configure them:

* **default**: only ``columns`` and ``proposal.target_propensity`` set (``proposal.learner:
  auto``, which then takes the logged propensities; ``weights.clip: auto``; every default gate);
* **exact**: ``proposal.learner: logged_propensity``, the exact weights (the scenario's traffic
  mix is not shifted, so :math:`\\pi_1/\\pi_0` is the whole ratio), same clip and gates;
* **estimated**: no ``target_propensity``, so ``auto`` fits a domain classifier on the
  ``--n-target`` target rows (what a user without logged propensities gets).

It prints, per run kind, how often the gates pass, how often the SNIS and the doubly robust
95 % intervals cover the world's exact target CTR (among the runs whose gates pass), whether any
bound leaves [0, 1], and the mean clipped share and shift kept; then how often the default
passes when the exact weights pass. Results go to ``benchmarks/results/bandit_default.json``
and ``.txt``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from is_core.config import IsbenchConfig  # noqa: E402
from is_core.data.stage import locate_inputs  # noqa: E402
from is_core.errors import WeightDiagnosticsError  # noqa: E402
from is_core.simulate.bandit import BanditScenario  # noqa: E402
from is_core.simulate.clicklog import load_truth, write_scenario  # noqa: E402
from is_core.weights.stage import compute_weights, fit_proposal  # noqa: E402

RUN_DATE = dt.date(2026, 11, 28)
RESULTS = Path(__file__).resolve().parent / "results"


#: The run kinds: (proposal.learner, whether proposal.target_propensity is set).
KINDS = {"default": ("auto", True), "exact": ("logged_propensity", True),
         "estimated": ("auto", False)}


def run_kind(root: Path, scenario: BanditScenario, kind: str, out: Path) -> dict[str, Any]:
    """One proposal + weights run over ``root``: gates, estimates and clip facts."""
    learner, with_target = KINDS[kind]
    proposal_config: dict[str, Any] = {"learner": learner}
    if with_target:
        proposal_config["target_propensity"] = 1 / (scenario.n_items * scenario.n_positions)
    config = IsbenchConfig.model_validate({
        "data": {"root": str(root), "window_days": 1},
        "columns": {"numeric": scenario.numeric_features,
                    "categorical": scenario.categorical_features},
        "proposal": proposal_config, "output_root": str(out / "runs")})
    inputs = locate_inputs(config.data, config.columns, RUN_DATE)
    out.mkdir(parents=True, exist_ok=True)
    proposal = fit_proposal(config.proposal, config.columns, inputs, out,
                            random_state=0, n_jobs=2)
    record: dict[str, Any] = {"chosen": proposal["chosen_learner"], "C": proposal["C"]}
    try:
        weights = compute_weights(config.weights, config.columns, inputs, proposal, out,
                                  random_state=0, n_jobs=2)
    except WeightDiagnosticsError as exc:
        failed = [g["gate"] for g in exc.details.get("gates", []) if g["status"] == "fail"]
        return {**record, "passed": False, "failed_gates": ",".join(failed)}
    d = weights["diagnostics"]
    record.update(passed=True, failed_gates="", clipped_fraction=d["clipped_fraction"],
                  shift_kept=d.get("shift_kept"), ess_fraction=d["ess_fraction"],
                  interval=d["snis_interval"].split(":")[0])
    for name in ("snis", "dr"):
        est = weights["target_ctr"][name]
        record[f"{name}_value"] = est["value"]
        record[f"{name}_low"], record[f"{name}_high"] = est["ci_low"], est["ci_high"]
    return record


def one_seed(seed: int, n_source: int, n_target: int, work: Path,
             kinds: tuple[str, ...] = tuple(KINDS)) -> list[dict[str, Any]]:
    scenario = BanditScenario(seed=seed)
    root = work / f"seed{seed}" / "data"
    write_scenario(root, scenario, end_date=RUN_DATE, n_days=1,
                   rows_per_day={"source": n_source, "target": n_target, "holdout": 100})
    truth = load_truth(root)["exact_target_ctr"]
    rows = []
    for kind in kinds:
        started = time.perf_counter()
        record = run_kind(root, scenario, kind, work / f"seed{seed}" / kind)
        record.update(seed=seed, kind=kind, truth=truth, seconds=time.perf_counter() - started)
        for name in ("snis", "dr"):
            if record.get("passed"):
                low, high = record[f"{name}_low"], record[f"{name}_high"]
                record[f"{name}_covered"] = bool(low <= truth <= high)
                record[f"{name}_outside_unit"] = bool(low < 0 or high > 1)
        rows.append(record)
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in record.items()},
              flush=True)
    return rows


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run kind: pass rate, and among passing runs coverage and clip facts."""
    out = []
    for kind, group in frame.groupby("kind", sort=False):
        passed = group[group["passed"]]
        row = {"kind": kind, "worlds": len(group), "gates_pass": group["passed"].mean()}
        for name in ("snis", "dr"):
            if len(passed):
                c = passed[f"{name}_covered"].mean()
                row[f"{name}_coverage"] = c
                row[f"{name}_coverage_se"] = float(np.sqrt(c * (1 - c) / len(passed)))
                row[f"{name}_outside_unit"] = passed[f"{name}_outside_unit"].mean()
        if len(passed):
            row["clipped_fraction"] = passed["clipped_fraction"].mean()
            row["max_clipped_fraction"] = passed["clipped_fraction"].max()
            row["shift_kept"] = passed["shift_kept"].mean()
            row["proposal_aware_share"] = (passed["interval"] == "proposal-aware").mean()
        row["chosen"] = ", ".join(f"{k} {v}" for k, v in group["chosen"].value_counts().items())
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2400.0, help="stop after this long")
    parser.add_argument("--n-source", type=int, default=20_000)
    parser.add_argument("--n-target", type=int, default=1_000)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="run kinds, comma-separated (default: all three)")
    args = parser.parse_args(argv)
    kinds = tuple(args.kinds.split(","))
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="isbench-bandit-") as tmp:
        for seed in range(args.seeds):
            rows.extend(one_seed(seed, args.n_source, args.n_target, Path(tmp), kinds))
            if time.perf_counter() - started > args.seconds:
                break
    frame = pd.DataFrame(rows)
    table = summarize(frame)
    line = ""
    if {"exact", "default"} <= set(kinds):
        exact_pass = frame[frame["kind"] == "exact"].set_index("seed")["passed"]
        default_pass = frame[frame["kind"] == "default"].set_index("seed")["passed"]
        both = int((exact_pass & default_pass).sum())
        line = (f"default passes its gates in {both} of the {int(exact_pass.sum())} worlds where "
                f"the exact weights pass ({int(default_pass.sum())} of {len(default_pass)} "
                "overall)")
    command = (f".venv/bin/python benchmarks/bandit_default.py --seeds {args.seeds} --seconds "
               f"{args.seconds:g} --n-source {args.n_source} --n-target {args.n_target} "
               f"--kinds {','.join(kinds)}")
    text = (f"# {command}\n## {args.n_source} logged + {args.n_target} target impressions per "
            f"world, nominal 95 % intervals\n\n"
            f"{table.to_string(index=False, float_format=lambda v: f'{v:.4g}')}\n\n{line}\n"
            f"# {time.perf_counter() - started:.0f} s\n")
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bandit_default.txt").write_text(text)
    (RESULTS / "bandit_default.json").write_text(json.dumps(
        {"command": command, "summary": table.to_dict(orient="records"), "pass_line": line,
         "runs": frame.to_dict(orient="records")}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
