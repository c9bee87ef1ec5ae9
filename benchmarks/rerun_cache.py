"""Re-running a date: wall time cold, with the stage cache, and with the cache refreshed.

Prints, for the demo-sized dataset (7 days of 20,000 source + 5,000 target + 5,000 holdout rows
a day), the wall time of ``daily_retrain`` (1) on a fresh output root, (2) re-run with the
proposal and training stages served from the cache, (3) re-run with
``PREFECT_TASKS_REFRESH_CACHE=true`` (everything recomputed), whether the model bytes of the
three runs are identical, and how many model versions the registry holds (1 = no duplicate).

    .venv/bin/python benchmarks/rerun_cache.py [--days 7] [--source-rows 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="isbench-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings  # noqa: E402

from flows.daily_retrain import daily_retrain  # noqa: E402
from is_core.config import IsbenchConfig  # noqa: E402
from is_core.release.registry import ModelRegistry  # noqa: E402
from is_core.simulate.clicklog import ClickScenario, write_scenario  # noqa: E402

RUN_DATE = dt.date(2026, 11, 28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--source-rows", type=int, default=20_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="isbench-rerun-"))
    write_scenario(root / "data", ClickScenario(seed=0), end_date=RUN_DATE, n_days=args.days,
                   rows_per_day={"source": args.source_rows, "target": args.source_rows // 4,
                                 "holdout": args.source_rows // 4})
    config = IsbenchConfig.model_validate({
        "data": {"root": str(root / "data"), "window_days": args.days},
        "output_root": str(root / "runs"),
    })
    model = root / "runs" / RUN_DATE.isoformat() / "model.ubj"
    rows, digests = [], []
    for label, refresh in (("cold", False), ("cached re-run", False),
                           ("refreshed re-run", True)):
        started = time.perf_counter()
        with temporary_settings(updates={PREFECT_TASKS_REFRESH_CACHE: refresh}):
            daily_retrain(config=config, run_date=RUN_DATE)
        rows.append((label, time.perf_counter() - started))
        digests.append(model.read_bytes())
    versions = ModelRegistry(root / "runs" / "registry").versions()
    print(f"daily_retrain, {args.days} day(s) x {args.source_rows} source rows, "
          f"run date {RUN_DATE}")
    for label, seconds in rows:
        print(f"  {label:<18} {seconds:7.1f} s")
    print(f"  model bytes identical across the 3 runs: {len(set(digests)) == 1}")
    print(f"  registry versions after 3 runs: {len(versions)}")


if __name__ == "__main__":
    main()
