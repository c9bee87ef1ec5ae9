"""Scale: ``daily_retrain`` on the Dask engine at millions of rows, and the local engine beside it.

    .venv/bin/python benchmarks/scale.py                                # 5M, 10M, 20M (Dask)
    .venv/bin/python benchmarks/scale.py --sizes 200000 --engines dask,local   # a quick look

For each size: one day of the click-log scenario with 40 features (36 numeric, 4 categorical),
``size`` source + ``size`` target rows and ``size / 20`` holdout rows, generated file by file
(:data:`is_core.simulate.clicklog.ROWS_PER_FILE` rows a file) in a child process; then, per
engine, the flow in a child process (default config, ``engine: dask`` with a LocalCluster of
``--workers`` worker processes of one thread each, or ``engine: local``), while this process
samples the resident memory of the child's whole process tree (the flow's process, the
scheduler, the nannies and the workers) every 0.5 s: ``peak_rss_mib`` is the largest sum. A run
whose tree passes ``--rss-limit-gib`` is killed and recorded as not completed. Afterwards, for
the overhead ratio, ``raw_fit_s``: the weighted and the unweighted booster fitted directly with
``xgboost.dask`` (Dask) or ``XGBClassifier`` (local) on the same rows, with the flow's parameters
and early stopping, in a child process of their own.

``benchmarks/results/scale.json`` is rewritten after each run (so partial results survive):
``{"runs": [{"engine", "rows_source", "rows_target", "wall_s", "peak_rss_mib", "raw_fit_s",
"completed", "error", ...}]}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN_DATE = dt.date(2026, 11, 28)
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"


def scenario() -> Any:
    from is_core.simulate.clicklog import ClickScenario

    return ClickScenario(n_user_features=33, seed=0)


def config_for(work: Path, data: Path, engine: str, workers: int) -> Any:
    from is_core.config import IsbenchConfig

    s = scenario()
    recalibrate = os.environ.get("ISBENCH_SCALE_RECALIBRATE", "1") == "1"
    return IsbenchConfig.model_validate({
        "data": {"root": str(data), "window_days": 1},
        "columns": {"numeric": s.numeric_features, "categorical": s.categorical_features},
        "train": {"n_jobs": 1 if engine == "dask" else os.cpu_count(),
                  "recalibrate": recalibrate},
        "output_root": str(work / f"runs-{engine}"),
        "engine": engine, "dask": {"n_workers": workers, "threads_per_worker": 1},
    })


# ---------------------------------------------------------------------------- child steps
def generate(data: Path, rows: int) -> None:
    from is_core.simulate.clicklog import write_scenario

    write_scenario(data, scenario(), end_date=RUN_DATE, n_days=1,
                   rows_per_day={"source": rows, "target": rows,
                                 "holdout": max(rows // 20, 1000)})


def run_flow(work: Path, data: Path, engine: str, workers: int, out: Path) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.daily_retrain import daily_retrain

    config = config_for(work, data, engine, workers)
    with prefect_test_harness(server_startup_timeout=300):
        started = time.perf_counter()
        result = daily_retrain(config=config, run_date=RUN_DATE)
        seconds = time.perf_counter() - started
        stages = stage_seconds()
    report = json.loads((Path(result["run_dir"]) / "report.json").read_text())
    out.write_text(json.dumps({
        "wall_s": round(seconds, 1), "run_dir": result["run_dir"],
        "trees": {n: m["best_iteration"] + 1 for n, m in report["models"].items()},
        "stage_seconds": stages,
        "verdict": report["verdict"]["text"][:300]}))


def stage_seconds() -> dict[str, float]:
    """Each task's run time in this harness's (fresh) Prefect database, summed by task name
    (``train-6d6`` → ``train``), in the order they started."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        runs = sorted(client.read_task_runs(limit=200),
                      key=lambda r: r.start_time or r.expected_start_time)
    out: dict[str, float] = {}
    for run in runs:
        name = run.name.rsplit("-", 1)[0]
        out[name] = round(out.get(name, 0.0) + run.total_run_time.total_seconds(), 1)
    return out


def raw_fits(work: Path, data: Path, engine: str, workers: int, run_dir: Path, out: Path
             ) -> None:
    """The weighted and unweighted boosters fitted directly on the flow's training rows."""
    config = config_for(work, data, engine, workers)
    seconds = raw_dask(config, data, run_dir) if engine == "dask" else raw_local(
        config, data, run_dir)
    out.write_text(json.dumps(seconds))


def raw_local(config: Any, data: Path, run_dir: Path) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from sklearn.model_selection import train_test_split

    from is_core.data.features import FeatureSpec

    cols, tc = config.columns, config.train
    source = pd.read_parquet(data / "source", columns=[*cols.features, cols.label])
    final = pd.read_parquet(run_dir / "weights.parquet", columns=["final_weight"])[
        "final_weight"].to_numpy()
    y = source[cols.label].to_numpy()
    X = FeatureSpec(cols.numeric, cols.categorical).fit(source).transform(source)
    del source
    train, valid = train_test_split(np.arange(len(y)), test_size=tc.validation_fraction,
                                    stratify=y, random_state=config.random_state)
    out = {}
    for name, w in (("weighted", final), ("unweighted", np.ones(len(y)))):
        model = xgb.XGBClassifier(
            n_estimators=tc.n_estimators, learning_rate=tc.learning_rate, max_depth=tc.max_depth,
            min_child_weight=tc.min_child_weight, max_cat_to_onehot=tc.max_cat_to_onehot,
            early_stopping_rounds=tc.early_stopping_rounds, enable_categorical=True,
            tree_method="hist", objective="binary:logistic", eval_metric="logloss",
            n_jobs=tc.n_jobs, random_state=config.random_state)
        started = time.perf_counter()
        model.fit(X.iloc[train], y[train], sample_weight=w[train],
                  eval_set=[(X.iloc[valid], y[valid])], sample_weight_eval_set=[w[valid]],
                  verbose=False)
        out[name] = time.perf_counter() - started
    return out


def raw_dask(config: Any, data: Path, run_dir: Path) -> dict[str, float]:
    """``xgboost.dask.train`` on the rows the flow's train stage reads (the encoded partitions
    with their final weights and validation split), without the flow around it."""
    from is_core.ctr.stage import _ctr_model
    from is_core.data.stage import locate_inputs
    from is_core.engine.cluster import client_for, open_cluster
    from is_core.engine.partitions import role_partitions
    from is_core.engine.training import feature_spec, fit_booster, training_frame

    cluster = open_cluster(config.dask)
    try:
        client = client_for(cluster.address)
        inputs = locate_inputs(config.data, config.columns, RUN_DATE)
        source = role_partitions(client, inputs, "source")
        spec = feature_spec(client, source, config.columns)
        frame = training_frame(client, source, spec, config.train, config.columns.label,
                               str(run_dir / "weights.parquet"), config.random_state, True)
        client.compute(frame.map_partitions(len), sync=True)  # read and encoded: not timed
        out = {}
        for name, weighted in (("weighted", True), ("unweighted", False)):
            model = _ctr_model(config.train, config.columns, config.random_state)
            started = time.perf_counter()
            fit_booster(client, model, frame, spec, weighted=weighted)
            out[name] = time.perf_counter() - started
        return out
    finally:
        cluster.close()


# ---------------------------------------------------------------------------- the parent
def tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def watched(cmd: list[str], limit_bytes: float, log: Path) -> tuple[int, float, float, str]:
    """Run ``cmd``; (exit code, wall seconds, peak tree RSS in MiB, error text)."""
    started = time.perf_counter()
    with open(log, "w") as fh:
        child = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        peak, error = 0, ""
        while child.poll() is None:
            peak = max(peak, tree_rss(child.pid))
            if peak > limit_bytes:
                import psutil

                for proc in [*psutil.Process(child.pid).children(recursive=True)]:
                    proc.kill()
                child.kill()
                error = f"killed: the process tree passed {limit_bytes / 2**30:.0f} GiB"
                break
            time.sleep(0.5)
        child.wait()
    if child.returncode and not error:
        error = log.read_text()[-1500:]
    return child.returncode, time.perf_counter() - started, peak / 2**20, error


def save(runs: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    os.replace(tmp, out)


def one_run(args: argparse.Namespace, work: Path, data: Path, size: int, engine: str
            ) -> dict[str, Any]:
    me = [sys.executable, __file__, "--workdir", str(work), "--workers", str(args.workers)]
    result = work / f"flow-{engine}-{size}.json"
    code, wall, peak, error = watched(
        [*me, "--child", "flow", "--data", str(data), "--engine", engine, "--result",
         str(result)], args.rss_limit_gib * 2**30, work / f"flow-{engine}-{size}.log")
    row: dict[str, Any] = {"engine": engine, "rows_source": size, "rows_target": size,
                           "rows_holdout": max(size // 20, 1000), "wall_s": None,
                           "peak_rss_mib": round(peak), "raw_fit_s": None,
                           "completed": code == 0, "error": error or None,
                           "process_wall_s": round(wall, 1),
                           "recalibrate": os.environ.get("ISBENCH_SCALE_RECALIBRATE", "1") == "1",
                           "workers": args.workers}
    if code == 0:
        flow = json.loads(result.read_text())
        row.update(wall_s=flow["wall_s"], trees=flow["trees"], verdict=flow["verdict"],
                   run_dir=flow["run_dir"], stage_seconds=flow["stage_seconds"])
        row["wall_us_per_row"] = round(1e6 * flow["wall_s"] / (2 * size), 2)
        if not args.no_raw:
            add_raw_fits(args, work, data, row)
    return row


def add_raw_fits(args: argparse.Namespace, work: Path, data: Path, row: dict[str, Any]
                 ) -> None:
    """The raw fits of a completed run's rows (``raw_fit_s`` and the overhead ratio)."""
    engine, size = row["engine"], row["rows_source"]
    me = [sys.executable, __file__, "--workdir", str(work), "--workers", str(args.workers)]
    raw = work / f"raw-{engine}-{size}.json"
    rc, _, _, raw_error = watched(
        [*me, "--child", "raw", "--data", str(data), "--engine", engine, "--run-dir",
         row["run_dir"], "--result", str(raw)], args.rss_limit_gib * 2**30,
        work / f"raw-{engine}-{size}.log")
    if rc == 0:
        fits = json.loads(raw.read_text())
        row["raw_fit_s"] = round(fits["weighted"] + fits["unweighted"], 1)
        row["raw_fits"] = {k: round(v, 1) for k, v in fits.items()}
        row["ratio_flow_to_raw_fits"] = round(row["wall_s"] / row["raw_fit_s"], 2)
    else:
        row["raw_fit_error"] = raw_error[-500:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000000,10000000,20000000",
                        help="comma-separated source rows (as many target rows)")
    parser.add_argument("--engines", default="dask", help="comma-separated: dask, local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rss-limit-gib", type=float, default=20.0)
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-raw", action="store_true", help="skip the raw fits")
    parser.add_argument("--no-recalibrate", action="store_true",
                        help="train.recalibrate: false (no fold boosters: two fits fewer)")
    parser.add_argument("--raw-only", action="store_true",
                        help="only add the raw fits to completed runs already in --out")
    parser.add_argument("--child", choices=("generate", "flow", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_recalibrate:  # the children read it from the environment
        os.environ["ISBENCH_SCALE_RECALIBRATE"] = "0"
    work = Path(args.workdir or tempfile.mkdtemp(prefix="isbench-scale-"))
    if args.child == "generate":
        generate(Path(args.data), args.rows)
        return 0
    if args.child == "flow":
        run_flow(work, Path(args.data), args.engine, args.workers, Path(args.result))
        return 0
    if args.child == "raw":
        raw_fits(work, Path(args.data), args.engine, args.workers, Path(args.run_dir),
                 Path(args.result))
        return 0
    out = Path(args.out)
    runs = json.loads(out.read_text())["runs"] if out.is_file() else []
    if args.raw_only:
        for row in runs:
            if row["completed"] and row.get("raw_fit_s") is None and str(row["rows_source"]) \
                    in args.sizes.split(",") and row["engine"] in args.engines.split(","):
                add_raw_fits(args, work, work / f"data-{row['rows_source']}", row)
                save(runs, out)
                print(json.dumps(row), flush=True)
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        data = work / f"data-{size}"
        if not (data / "truth" / "truth.json").is_file():
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--child", "generate", "--data", str(data),
                            "--rows", str(size)], check=True)
            print(f"generated {size} + {size} rows in {time.perf_counter() - started:.0f} s",
                  flush=True)
        for engine in args.engines.split(","):
            row = one_run(args, work, data, size, engine)
            runs = [r for r in runs if (r["engine"], r["rows_source"]) != (engine, size)]
            runs.append(row)
            save(runs, out)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
