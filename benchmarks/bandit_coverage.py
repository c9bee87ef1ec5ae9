"""Coverage of the target-CTR intervals on many bandit logs, exact weights, the default path.

    .venv/bin/python benchmarks/bandit_coverage.py                 # 400 worlds, ~8 min
    .venv/bin/python benchmarks/bandit_coverage.py --seeds 50

`benchmarks/bandit_default.py` runs the pipeline's stages on written files, which costs seconds
per world; this runs the same statistics in memory, so that coverage can be measured on
hundreds of worlds. For each seed it draws a :class:`~is_core.simulate.bandit.BanditScenario`
world and one day of ``--n-source`` logged impressions (the rows ``write_scenario`` would
write), takes the exact weights :math:`\\pi_1/\\pi_0` (the scenario's traffic mix is not
shifted), and follows :func:`is_core.weights.stage.compute_weights`: ``clip='auto'``,
normalization, the diagnostics and the default gates, then ``snis_estimate`` with the
unclipped weights (the pipeline's interval), the unclipped delta interval, and the bootstrap.
It prints, among the worlds whose gates pass, each interval's coverage of the world's exact
target CTR with its binomial SE, the misses below and above, the median width relative to the
truth, and the worlds' Kish effective clicks :math:`n_e\\hat\\mu`; results go to
``benchmarks/results/bandit_coverage.txt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from is_core.simulate.bandit import BanditScenario  # noqa: E402
from is_core.simulate.clicklog import ROLE_CODES  # noqa: E402
from is_core.weights.clipping import clip_log_weights  # noqa: E402
from is_core.weights.diagnostics import WeightGates, diagnose_weights, evaluate_gates  # noqa: E402
from is_core.weights.estimators import bootstrap_estimate, snis_estimate  # noqa: E402
from is_core.weights.normalize import normalize_log_weights  # noqa: E402

RUN_DATE = dt.date(2026, 11, 28)  # bandit_default.py's run date: the same rows
RESULTS = Path(__file__).resolve().parent / "results"


def one_world(seed: int, n_source: int) -> dict[str, Any]:
    scenario = BanditScenario(seed=seed)
    world = scenario.build()
    seq = np.random.SeedSequence([seed, ROLE_CODES["source"], RUN_DATE.toordinal()])
    frame = world.sample(n_source, "source", np.random.default_rng(seq), day=RUN_DATE)
    log_w = (np.log(1 / (scenario.n_items * scenario.n_positions))
             - np.log(frame["logging_propensity"].to_numpy()))
    y = frame["clicked"].to_numpy(dtype=float)
    truth = world.expected_ctr("target")
    clip = clip_log_weights(log_w, "auto", y=y)
    final, unclipped = normalize_log_weights(clip.log_w), normalize_log_weights(log_w)
    diagnostics = diagnose_weights(log_w, clip.log_w, final, "auto", clip.log_cap, None, None,
                                   y=y)
    failed = [g.gate for g in evaluate_gates(diagnostics, WeightGates()) if g.status == "fail"]
    intervals = {"snis (pipeline)": snis_estimate(y, final, w_unclipped=unclipped),
                 "snis unclipped": snis_estimate(y, unclipped),
                 "bootstrap": bootstrap_estimate("snis", y, final, n_boot=200, random_state=0,
                                                 w_unclipped=unclipped)}
    n_e = final.sum() ** 2 / np.sum(final**2)
    record = {"seed": seed, "passed": not failed, "failed": ",".join(failed),
              "khat": diagnostics.khat, "ess_fraction": diagnostics.ess_fraction,
              "clicks": int(y.sum()), "effective_clicks": float(n_e * final @ y / final.sum()),
              "truth": truth}
    for name, est in intervals.items():
        record[f"{name}: covered"] = bool(est.ci_low <= truth <= est.ci_high)
        record[f"{name}: below"] = bool(est.ci_high < truth)
        record[f"{name}: width"] = (est.ci_high - est.ci_low) / truth
    return record


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    passed = frame[frame["passed"]]
    rows = []
    for name in ("snis (pipeline)", "snis unclipped", "bootstrap"):
        c = passed[f"{name}: covered"].mean()
        rows.append({"interval": name, "worlds": len(passed), "coverage": c,
                     "coverage_se": float(np.sqrt(c * (1 - c) / len(passed))),
                     "misses_below": int(passed[f"{name}: below"].sum()),
                     "misses_above": int((~passed[f"{name}: covered"]
                                          & ~passed[f"{name}: below"]).sum()),
                     "median_width_over_truth": passed[f"{name}: width"].median()})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=400)
    parser.add_argument("--n-source", type=int, default=20_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    frame = pd.DataFrame([one_world(seed, args.n_source) for seed in range(args.seeds)])
    table = summarize(frame)
    passed = frame[frame["passed"]]
    command = (f".venv/bin/python benchmarks/bandit_coverage.py --seeds {args.seeds} "
               f"--n-source {args.n_source}")
    text = (f"# {command}\n{args.seeds} worlds, {len(passed)} pass the default gates "
            f"(fails: {frame['failed'][~frame['passed']].value_counts().to_dict()}); Kish "
            f"effective clicks of the passing worlds: median "
            f"{passed['effective_clicks'].median():.2f}, range "
            f"{passed['effective_clicks'].min():.2f}-{passed['effective_clicks'].max():.2f}\n\n"
            f"{table.to_string(index=False, float_format=lambda v: f'{v:.4g}')}\n"
            f"# {time.perf_counter() - started:.0f} s\n")
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bandit_coverage.txt").write_text(text)
    (RESULTS / "bandit_coverage.json").write_text(json.dumps(
        {"command": command, "summary": table.to_dict(orient="records"),
         "worlds": frame.to_dict(orient="records")}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
