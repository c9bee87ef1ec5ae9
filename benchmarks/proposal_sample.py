"""How large must the proposal model's fitting sample be? Weight accuracy and time against it.

    .venv/bin/python benchmarks/proposal_sample.py                      # 1M + 1M rows
    .venv/bin/python benchmarks/proposal_sample.py --rows 200000 --caps 50000,100000
    .venv/bin/python benchmarks/proposal_sample.py --learners logistic,auto --caps 200000

On one day of the ``pipeline_overhead`` click-log scenario (40 features, 36 numeric and 4
categorical; ``rows`` source and ``rows`` target impressions, exact weights known), fits
:class:`~is_core.weights.domain.DomainClassifierRatio` with each of ``--learners`` (``auto``, the
pipeline's default, and ``logistic``, the fixed-C linear one it replaced) and ``max_fit_rows`` =
each cap (two seeds of the fitting sample) and prints the seconds, the chosen learner and basis,
the domain AUC, and the
accuracy of the final weights against the exact ones: NMSE (1 = no better than constant
weights), Spearman correlation and ESS/n. The scenario's logging ranker interacts user and item
features, which an additive classifier cannot represent (``auto``'s crossed and tree candidates
can, in part), so the NMSE floor is above 0: the question is how much of it the learner and the
sample size remove.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from is_core.simulate.clicklog import ClickScenario, write_scenario  # noqa: E402
from is_core.weights.diagnostics import weight_nmse  # noqa: E402
from is_core.weights.domain import DomainClassifierRatio  # noqa: E402
from is_core.weights.normalize import normalize_log_weights  # noqa: E402

RUN_DATE = dt.date(2026, 11, 28)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--caps", default="50000,100000,200000,400000")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--learners", default="auto", help="comma-separated learners")
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="isbench-proposal-"))
    scenario = ClickScenario(n_user_features=33, seed=0)
    if not (work / "data" / "source").exists():
        write_scenario(work / "data", scenario, end_date=RUN_DATE, n_days=1,
                       rows_per_day={"source": args.rows, "target": args.rows, "holdout": 1000})
    numeric, categorical = scenario.numeric_features, scenario.categorical_features
    source = pd.read_parquet(work / "data" / "source", columns=[*numeric, *categorical,
                                                                 "impression_id"])
    target = pd.read_parquet(work / "data" / "target", columns=[*numeric, *categorical])
    truth = pd.read_parquet(work / "data" / "truth" / "source_weights")
    w_true = source[["impression_id"]].merge(truth, on="impression_id", how="left")[
        "true_weight"].to_numpy()
    print(f"{len(source)} source + {len(target)} target rows, {len(numeric)} numeric + "
          f"{len(categorical)} categorical features")
    rows = []
    grid = [(learner, int(cap)) for learner in args.learners.split(",")
            for cap in args.caps.split(",")]
    for learner, cap in grid:
        for seed in range(args.seeds):
            started = time.perf_counter()
            model = DomainClassifierRatio(numeric=numeric, categorical=categorical,
                                          learner=learner, max_fit_rows=cap, random_state=seed
                                          ).fit(source, target)
            seconds = time.perf_counter() - started
            w = normalize_log_weights(model.log_ratio_source_)
            rows.append({"learner": learner, "chosen": model.learner_, "max_fit_rows": cap,
                         "seed": seed, "seconds": seconds, "basis": model.numeric_basis_,
                         "domain_auc": model.domain_auc_,
                         "nmse": float(weight_nmse(w, w_true)),
                         "spearman": float(spearmanr(w, w_true).statistic),
                         "ess_fraction": float(w.mean() ** 2 / np.mean(w**2))})
            print("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in rows[-1].items()), flush=True)
    table = pd.DataFrame(rows).groupby(["learner", "chosen", "max_fit_rows", "basis"],
                                     as_index=False).mean(
        numeric_only=True).drop(columns="seed")
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
