"""Validation overhead: the validate stage's time as a share of the ``daily_retrain`` wall time.

    .venv/bin/python benchmarks/validation_overhead.py                  # 1M source rows
    .venv/bin/python benchmarks/validation_overhead.py --rows 100000    # a quick look

Generates a click-log scenario (:mod:`is_core.simulate.clicklog`) of ``--days`` + 1 days: ``--rows``
source impressions over the ``--days``-day window (default 1,000,000 over 7 days), plus a quarter
as many target and holdout impressions. Then, in one process:

1. validates the window of the day before the run date into ``runs/<day before>/validation/``
   (what a published run leaves), so the run date has a reference day and the drift suites run;
2. runs ``daily_retrain`` for the run date with the default config (Prefect, ephemeral API),
   and reads the duration of its ``validate`` task run from the Prefect API;
3. times the validate stage alone once more (``tasks.gx.window.validate_window``: read, schema
   checks, GX window + drift suites, Data Docs, profile) and splits it into reading, GX and
   Data Docs.

Prints the validate time (in the flow and alone), the flow's wall time and their ratio
(target ≤ 10 %).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from is_core.config import IsbenchConfig  # noqa: E402
from is_core.data.stage import locate_inputs, read_role  # noqa: E402
from is_core.simulate.clicklog import ClickScenario, write_scenario  # noqa: E402

RUN_DATE = dt.date(2026, 11, 28)


def validate_task_seconds(flow_run_id: str) -> float | None:
    """Total run time of the flow run's ``validate`` task run(s), from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    times = [r.total_run_time.total_seconds() for r in runs if r.name.startswith("validate")]
    return sum(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="source rows in the window")
    parser.add_argument("--days", type=int, default=7, help="window days")
    parser.add_argument("--out", help="work folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="isbench-validation-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    per_day = args.rows // args.days
    started = time.perf_counter()
    write_scenario(work / "data", ClickScenario(seed=0), end_date=RUN_DATE, n_days=args.days + 1,
                   rows_per_day={"source": per_day, "target": per_day // 4,
                                 "holdout": per_day // 4})
    print(f"generated {args.days + 1} days x ({per_day} source + 2 x {per_day // 4}) rows in "
          f"{time.perf_counter() - started:.1f} s under {work}")
    config = IsbenchConfig.model_validate({
        "data": {"root": str(work / "data"), "window_days": args.days},
        "output_root": str(work / "runs"),
    })

    from tasks.gx.runner import context_for  # noqa: F401 - import GX outside the timings
    from tasks.gx.window import validate_window

    previous = RUN_DATE - dt.timedelta(days=1)
    t0 = time.perf_counter()
    validate_window(config, locate_inputs(config.data, config.columns, previous),
                    Path(config.output_root) / previous.isoformat())
    reference_seconds = time.perf_counter() - t0

    from flows.daily_retrain import daily_retrain

    t0 = time.perf_counter()
    state = daily_retrain(config=config, run_date=RUN_DATE, return_state=True)
    flow_seconds = time.perf_counter() - t0
    result = state.result()
    in_flow = validate_task_seconds(str(state.state_details.flow_run_id))

    inputs = locate_inputs(config.data, config.columns, RUN_DATE)
    t0 = time.perf_counter()
    frames = {r: read_role(inputs, r) for r in inputs["roles"]}
    read_seconds = time.perf_counter() - t0
    rows = {r: len(f) for r, f in frames.items()}
    del frames
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = validate_window(config, inputs, Path(tmp))
        alone = time.perf_counter() - t0
    no_docs = config.model_copy(update={"validation": config.validation.model_copy(
        update={"data_docs": False})})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        validate_window(no_docs, inputs, Path(tmp))
        alone_no_docs = time.perf_counter() - t0

    checks = sum(s["evaluated"] for s in summary.values())
    print()
    print(f"rows validated: {rows} ({sum(rows.values()):,} in all); {checks} checks "
          f"(GX window + drift suites and isbench schema/unseen-category checks)")
    print(f"reference day (no drift suites):      {reference_seconds:8.2f} s")
    print(f"validate task inside the flow:        {in_flow:8.2f} s" if in_flow is not None
          else "validate task inside the flow:        n/a")
    print(f"validate stage alone:                 {alone:8.2f} s  (reading the columns alone: "
          f"{read_seconds:.2f} s; without Data Docs: {alone_no_docs:.2f} s)")
    print(f"daily_retrain wall time:              {flow_seconds:8.2f} s  "
          f"(verdict: {result['verdict']['text'][:60]}...)")
    share = (in_flow if in_flow is not None else alone) / flow_seconds
    print(f"validation share of daily_retrain:    {100 * share:8.2f} %  (target <= 10 %)")
    print(f"machine: {os.cpu_count()} CPUs; 1-min load average at the end {os.getloadavg()[0]:.1f}"
          " (other processes on the machine slow the flow and the validation alike)")


if __name__ == "__main__":
    main()
