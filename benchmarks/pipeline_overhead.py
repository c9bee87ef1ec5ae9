"""Pipeline overhead: the ``daily_retrain`` flow against the raw XGBoost fits inside it.

    .venv/bin/python benchmarks/pipeline_overhead.py                 # 1M source + 1M target
    .venv/bin/python benchmarks/pipeline_overhead.py --rows 50000     # a quick look

Generates one day of a click-log scenario with 40 features (36 numeric, 4 categorical) — ``rows``
source, ``rows`` target and ``rows/10`` holdout impressions — in a child process (so that the
generator's memory is not counted against the flow), then, in this process:

1. runs ``daily_retrain`` (Prefect, ephemeral API) and times it (wall clock, every stage); the
   process's peak RSS right after the flow is the flow's peak (imports included);
2. fits XGBoost directly — ``xgboost.XGBClassifier`` with the flow's parameters on the same
   training rows, weighted (final weights) and unweighted — and times the two fits;
3. prints the flow's wall time, the sum of the raw fits, their ratio (target ≤ 1.3), the peak
   RSS of the process and the in-memory size of the input frames (target: peak ≤ 3×).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from is_core.config import IsbenchConfig  # noqa: E402
from is_core.data.features import FeatureSpec  # noqa: E402
from is_core.simulate.clicklog import ClickScenario, write_scenario  # noqa: E402

RUN_DATE = dt.date(2026, 11, 28)


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def raw_fits(config: IsbenchConfig, run_dir: Path, data_root: Path) -> dict[str, float]:
    """Time XGBClassifier.fit with the flow's parameters on the flow's training rows."""
    cols, tc = config.columns, config.train
    source = pd.read_parquet(data_root / "source", columns=[*cols.features, cols.label])
    final = pd.read_parquet(run_dir / "weights.parquet", columns=["final_weight"])[
        "final_weight"].to_numpy()
    y = source[cols.label].to_numpy()
    X = FeatureSpec(cols.numeric, cols.categorical).fit(source).transform(source)
    train, valid = train_test_split(np.arange(len(y)), test_size=tc.validation_fraction,
                                    stratify=y, random_state=config.random_state)
    seconds = {}
    for name, w in (("weighted", final), ("unweighted", np.ones(len(y)))):
        model = xgb.XGBClassifier(
            n_estimators=tc.n_estimators, learning_rate=tc.learning_rate,
            max_depth=tc.max_depth, min_child_weight=tc.min_child_weight,
            max_cat_to_onehot=tc.max_cat_to_onehot,
            early_stopping_rounds=tc.early_stopping_rounds, enable_categorical=True,
            tree_method="hist", objective="binary:logistic", eval_metric="logloss",
            n_jobs=tc.n_jobs, random_state=config.random_state)
        started = time.perf_counter()
        model.fit(X.iloc[train], y[train], sample_weight=w[train],
                  eval_set=[(X.iloc[valid], y[valid])], sample_weight_eval_set=[w[valid]],
                  verbose=False)
        seconds[name] = time.perf_counter() - started
        seconds[f"{name}_trees"] = model.best_iteration + 1
    return seconds


def generate(work: Path, scenario: ClickScenario, rows: int) -> int:
    """Write the scenario's inputs; print the in-memory size of the input frames (JSON)."""
    write_scenario(work / "data", scenario, end_date=RUN_DATE, n_days=1,
                   rows_per_day={"source": rows, "target": rows,
                                 "holdout": max(rows // 10, 1000)})
    input_bytes = sum(int(pd.read_parquet(work / "data" / role).memory_usage(deep=True).sum())
                      for role in ("source", "target", "holdout"))
    print(json.dumps({"input_bytes": input_bytes}))
    return 0


def stage_seconds(flow_run_id) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: round(r.total_run_time.total_seconds(), 1) for r in
            sorted(runs, key=lambda r: r.start_time or r.expected_start_time)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="isbench-overhead-"))
    scenario = ClickScenario(n_user_features=33, seed=0)
    if args.generate_only:
        return generate(work, scenario, args.rows)
    started = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--generate-only", "--rows", str(args.rows),
                            "--workdir", str(work)], check=True, capture_output=True, text=True)
    input_bytes = json.loads(child.stdout.splitlines()[-1])["input_bytes"]
    print(f"generated {args.rows} source + {args.rows} target rows with "
          f"{len(scenario.numeric_features) + len(scenario.categorical_features)} features "
          f"in {time.perf_counter() - started:.0f} s under {work}", flush=True)
    config = IsbenchConfig.model_validate({
        "data": {"root": str(work / "data"), "window_days": 1},
        "columns": {"numeric": scenario.numeric_features,
                    "categorical": scenario.categorical_features},
        "train": {"n_jobs": os.cpu_count()},
        "output_root": str(work / "runs"),
    })
    rss_before = peak_rss_mib()

    from prefect.testing.utilities import prefect_test_harness

    from flows.daily_retrain import daily_retrain

    with prefect_test_harness(server_startup_timeout=120):
        started = time.perf_counter()
        state = daily_retrain(config=config, run_date=RUN_DATE, return_state=True)
        flow_seconds = time.perf_counter() - started
        result = state.result()
        stages = stage_seconds(state.state_details.flow_run_id)
    rss_flow = peak_rss_mib()
    run_dir = Path(result["run_dir"])
    fits = raw_fits(config, run_dir, work / "data")
    raw = fits["weighted"] + fits["unweighted"]
    report = json.loads((run_dir / "report.json").read_text())
    trees = {n: m["best_iteration"] + 1 for n, m in report["models"].items()}
    input_mib = input_bytes / 2**20
    print(json.dumps({
        "rows": {"source": args.rows, "target": args.rows, "holdout": max(args.rows // 10, 1000)},
        "flow_wall_seconds": round(flow_seconds, 1),
        "raw_xgboost_fit_seconds": {k: round(v, 1) if isinstance(v, float) else v
                                    for k, v in fits.items()},
        "flow_trees": trees,
        "raw_fits_sum_seconds": round(raw, 1),
        "ratio_flow_to_raw_fits": round(flow_seconds / raw, 2),
        "stage_seconds": stages,
        "peak_rss_mib": round(peak_rss_mib(), 0),
        "peak_rss_mib_before_flow": round(rss_before, 0),
        "peak_rss_mib_after_flow": round(rss_flow, 0),
        "input_frames_mib": round(input_mib, 0),
        "peak_rss_over_input": round(rss_flow / input_mib, 2),
        "verdict": report["verdict"]["text"],
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
