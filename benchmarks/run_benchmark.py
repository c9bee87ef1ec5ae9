"""Run the weighting benchmark grid without Prefect and write the leaderboard.

    .venv/bin/python benchmarks/run_benchmark.py                 # full grid → benchmarks/results/
    .venv/bin/python benchmarks/run_benchmark.py --size-factor 0.2 --seeds 2 --out /tmp/bench

The same cells and outputs as the ``benchmark`` Prefect flow (``isbench benchmark``); this script
exists so the committed results can be reproduced with nothing but the library.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from is_core.benchmark.grid import BenchmarkConfig, run_cell  # noqa: E402
from is_core.benchmark.outputs import write_outputs  # noqa: E402
from is_core.benchmark.scenarios import SCENARIOS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per scenario")
    parser.add_argument("--scenarios", nargs="*", default=None, choices=sorted(SCENARIOS))
    parser.add_argument("--size-factor", type=float, default=1.0)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    raw = {"seeds": list(range(args.seeds)), "size_factor": args.size_factor,
           "output_dir": args.out}
    if args.scenarios:
        raw["scenarios"] = args.scenarios
    config = BenchmarkConfig(**raw)
    cells = [(s, seed) for s in config.scenarios for seed in config.seeds]
    rows, started = [], time.perf_counter()
    for j, (scenario, seed) in enumerate(cells, 1):
        t0 = time.perf_counter()
        rows += run_cell(config, scenario, seed)
        print(f"[{j}/{len(cells)}] {scenario} seed {seed}: {time.perf_counter() - t0:.1f} s "
              f"(elapsed {time.perf_counter() - started:.0f} s)", flush=True)
    command = "python benchmarks/run_benchmark.py " + " ".join(argv or sys.argv[1:])
    out = write_outputs(pd.DataFrame(rows), config, args.out, command=command.strip())
    print(out["markdown"])
    print(f"total {time.perf_counter() - started:.0f} s; outputs: {out['paths']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
