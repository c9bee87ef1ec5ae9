r"""Importance subsampling: training time against target NE, full data against each strategy.

    .venv/bin/python benchmarks/subsampling.py          # 2M source rows, 2 scenarios, 3 seeds
    .venv/bin/python benchmarks/subsampling.py --quick  # 100,000 rows, 1 seed (a smoke run)
    .venv/bin/python benchmarks/subsampling.py --render-only  # the table from the .json
    .venv/bin/python benchmarks/subsampling.py --n-jobs 2 --name subsampling_2threads

For each scenario and seed, the click-log world (:class:`~is_core.simulate.clicklog.ClickScenario`)
draws ``--rows`` source rows (split into 7 partitions, the days of a window) and the CTR model is
trained as the train stage trains its baseline (:func:`is_core.ctr.stage._ctr_model`, the
default :class:`~is_core.config.TrainConfig`: up to 400 trees of depth 6, early stopping on a
10 % split):

* ``full``: on every source row, no weights;
* each strategy of ``train.sampling`` at each ``--fractions`` keep fraction: the stage's sampled
  baseline. Per partition the correction slice is held out
  (:func:`~is_core.ctr.sampling.correction_rows`, 10 % of the rows) and the rest sampled by
  :class:`~is_core.ctr.sampling.ImportanceSubsampler`; the booster is fitted with the sampling
  weights scaled to mean 1 and ``min_child_weight`` divided by their ESS/n
  (:func:`~is_core.ctr.stage.weighted_template`) and corrected on the slice
  (:func:`~is_core.ctr.sampling.fit_sampling_correction`). The row's metrics are the
  ``"intercept"``-corrected booster's (``train.sampling_correction``'s default, what the stage
  serves); ``raw_*`` are the same booster's without a correction, ``platt_*`` with
  ``"platt"``.
  ``negative`` keeps every click, so a fraction below the source CTR is infeasible for it (the
  row says so). ``loss`` scores the rows with a **champion**: yesterday's model, trained on an
  independent draw of as many source rows, negative-sampled at keep fraction 0.1 (as a run with
  ``train.sampling: negative`` would have trained it).

``train_s`` is what the train stage would spend: encoding the features and fitting for
``full``; scoring with the champion (``loss``), solving the rate, drawing, encoding the kept
rows and fitting for a strategy. Other processes load the CPU, so time ratios are measured
within one seed: per seed the full fit runs first and every sampled fit right after, all in this
process, and ``speedup`` is the sum over seeds of the full fits' wall-clock seconds over the sum
of the strategy's. On a shared machine the wall clock also counts the other processes' share of
the cores, so ``train_cpu_s`` (this process's CPU seconds, every thread) and ``cpu_speedup`` are
recorded beside it. XGBoost runs single-threaded (``--n-jobs 1``): with two threads on a loaded
machine each waits at its barriers for a descheduled partner, which inflates both clocks, small
fits most (``subsampling_2threads.json``: the same full 2M-row fit took 102–119 CPU s with two
threads, 51.6 s with one). ``work_ratio`` adds a load-free measure:
the full fits' kept rows × boosting rounds over the strategy's (:func:`row_rounds`; the hist
method's cost per round is about linear in the rows; it leaves out the champion's scoring pass
of ``loss``, which ``champion_scoring_s`` times).

Every model is scored on ``--n-test`` labeled rows of the **target** distribution (the world's
uniform exploration traffic; the same rows for every model of a scenario): target
logloss, **NE** (logloss / entropy of the observed target CTR) and calibration ratio (mean
prediction / observed CTR), and on as many fresh source rows for the source calibration ratio.
``ne_vs_full`` is the mean over seeds of NE / full-data NE − 1 (with its standard error over
seeds); ``loss_vs_negative`` the paired mean NE difference of ``loss`` and ``negative`` at the
same keep fraction (equal expected kept rows).

Results: ``benchmarks/results/subsampling.json`` (``rows``, ``full``, ``strategies`` of the first
scenario at the top level, as the issue asks; every scenario under ``scenarios``) and the printed
table; ``--quick`` writes ``subsampling_quick.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from is_core.config import ColumnsConfig, TrainConfig  # noqa: E402
from is_core.ctr.metrics import ctr_metrics  # noqa: E402
from is_core.ctr.model import WeightedCTRModel  # noqa: E402
from is_core.ctr.sampling import (  # noqa: E402
    ImportanceSubsampler,
    combined_weights,
    correction_rows,
    correction_share,
    fit_sampling_correction,
)
from is_core.ctr.stage import _ctr_model, weighted_template  # noqa: E402
from is_core.data.features import FeatureSpec  # noqa: E402
from is_core.errors import ParameterError  # noqa: E402
from is_core.simulate.clicklog import ClickScenario  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STEM = "subsampling"
STRATEGIES = ("negative", "loss")
N_PARTITIONS = 7  # the days of a window: the stage draws one input file at a time
CHAMPION_FRACTION = 0.1  # yesterday's champion: trained with train.sampling: negative, 0.1
#: The done-when of issue 12: at least this speedup with target NE within this of full data's.
TARGET_SPEEDUP, TARGET_NE = 5.0, 0.003


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    world: ClickScenario


SCENARIOS = (
    Scenario("clicklog", "the demo click log (source CTR about 3.4 %, target 1.5 %)",
             ClickScenario()),
    Scenario("clicklog_low_ctr", "the same world with base logit -6.3 (source CTR about 0.5 %)",
             ClickScenario(base_logit=-6.3)),
)


# ---------------------------------------------------------------------------- one fit
class Clock:
    """Wall-clock and this process's CPU seconds (every thread) since it was started: the CPU
    time is the work done, whatever other processes take of the cores meanwhile."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def _scores(model: WeightedCTRModel, target: pd.DataFrame, source_check: pd.DataFrame
            ) -> dict[str, float]:
    y_t = target["clicked"].to_numpy()
    m = ctr_metrics(y_t, model.predict_proba(target))
    s = source_check["clicked"].to_numpy()
    return {"target_ne": m["ne"], "target_logloss": m["logloss"],
            "calibration_ratio": m["calibration_ratio"], "target_auc": m["auc"],
            "source_calibration_ratio": float(model.predict_proba(source_check).mean()
                                              / s.mean()),
            "best_iteration": model.best_iteration_}


def fit_full(template: WeightedCTRModel, columns: ColumnsConfig, source: pd.DataFrame
             ) -> tuple[WeightedCTRModel, tuple[float, float]]:
    """The unweighted booster on every row, with the stage's encoding; its (wall, CPU)
    seconds."""
    clock = Clock()
    X = FeatureSpec(columns.ctr_numeric, columns.ctr_categorical).fit(source).transform(source)
    model = clone(template).fit(X, source["clicked"].to_numpy())
    return model, clock.read()


def fit_sampled(template: WeightedCTRModel, columns: ColumnsConfig, source: pd.DataFrame,
                strategy: str, fraction: float, seed: int, champion_p: np.ndarray | None
                ) -> tuple[WeightedCTRModel, tuple[float, float], dict[str, Any],
                           dict[str, WeightedCTRModel]]:
    """The stage's sampled baseline: hold out the correction slice and draw the sample per
    partition, encode the kept rows, fit with the sampling weights (mean 1, min_child_weight /
    ESS/n), correct on the slice; the intercept-corrected model, its (wall, CPU) seconds
    (without the champion's scoring, added by the caller), how the sample came out, and the
    raw and Platt-corrected models (not timed)."""
    clock = Clock()
    y = source["clicked"].to_numpy()
    bounds = np.linspace(0, len(y), N_PARTITIONS + 1).astype(int)
    share = correction_share(len(y))
    held = np.concatenate([correction_rows(bounds[k + 1] - bounds[k], share, random_state=seed,
                                           partition=k) for k in range(N_PARTITIONS)])
    eligible = ~held
    sampler = ImportanceSubsampler(strategy, keep_fraction=fraction, random_state=seed).fit(
        y[eligible], None if champion_p is None else champion_p[eligible])
    rows, weights = [], []
    for k in range(N_PARTITIONS):
        local = bounds[k] + np.flatnonzero(eligible[bounds[k]:bounds[k + 1]])
        kept, w = sampler.sample_partition(
            y[local], None if champion_p is None else champion_p[local], partition=k)
        rows.append(local[kept])
        weights.append(w)
    kept_rows = np.concatenate(rows)
    frame = source.iloc[kept_rows]
    X = FeatureSpec(columns.ctr_numeric, columns.ctr_categorical).fit(frame).transform(frame)
    w = combined_weights(None, np.concatenate(weights))
    raw = weighted_template(template, w, "ess").fit(X, y[kept_rows], sample_weight=w)
    slice_frame, slice_y = source.iloc[np.flatnonzero(held)], y[held].astype(float)
    p_slice = raw.predict_proba(slice_frame)
    model = raw.with_calibrator(fit_sampling_correction("intercept", p_slice, slice_y))
    seconds = clock.read()
    platt = raw.with_calibrator(fit_sampling_correction("platt", p_slice, slice_y))
    info = {"kept_rows": int(kept_rows.size), "correction_rows": int(held.sum()),
            "rate_name": sampler.rate_name_, "rate": sampler.rate_,
            "min_child_weight": raw.min_child_weight, "kept_clicks": int(y[kept_rows].sum()),
            "slice_calibration_ratio": float(p_slice.mean() / slice_y.mean()),
            "intercept": float(model.calibrator_.coef_[0]),
            "platt_coef": [float(c) for c in platt.calibrator_.coef_]}
    return model, seconds, info, {"raw": raw, "platt": platt}


def champion_for(world: Any, template: WeightedCTRModel, columns: ColumnsConfig, rows: int,
                 seed: int) -> WeightedCTRModel:
    """Yesterday's champion: the sampled baseline (negative, 0.1) of an independent draw."""
    yesterday = world.sample(rows, "source", np.random.default_rng([seed, 99]))
    model, _, _, _ = fit_sampled(template, columns, yesterday, "negative", CHAMPION_FRACTION,
                                 seed + 1000, None)
    return model


# ---------------------------------------------------------------------------- one scenario
def run_scenario(scenario: Scenario, rows: int, seeds: list[int], fractions: list[float],
                 n_test: int, n_jobs: int) -> dict[str, Any]:
    """Every fit of ``scenario``: per seed the full fit, then each strategy and fraction."""
    world = scenario.world.build()
    columns = ColumnsConfig(numeric=scenario.world.numeric_features,
                            categorical=scenario.world.categorical_features)
    target = world.sample(n_test, "holdout", np.random.default_rng([7, 1]))
    source_check = world.sample(n_test, "source", np.random.default_rng([7, 2]))
    template = _ctr_model(TrainConfig(n_jobs=n_jobs), columns, 0)
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        source = world.sample(rows, "source", np.random.default_rng([seed, 1]))
        model, (seconds, cpu) = fit_full(template, columns, source)
        runs.append({"seed": seed, "strategy": "full", "keep_fraction": 1.0,
                     "kept_rows": rows, "train_s": seconds, "train_cpu_s": cpu,
                     "source_ctr": float(source["clicked"].mean()),
                     **_scores(model, target, source_check)})
        print(f"# {scenario.name} seed {seed}: full {seconds:.1f} s ({cpu:.1f} CPU s), NE "
              f"{runs[-1]['target_ne']:.5f} (source CTR {source['clicked'].mean():.4f})",
              flush=True)
        champion = champion_for(world, template, columns, rows, seed)
        clock = Clock()
        champion_p = champion.predict_proba(source)
        scoring = clock.read()
        for fraction in fractions:
            for strategy in STRATEGIES:
                runs.append(_one_strategy(template, columns, source, strategy, fraction, seed,
                                          champion_p, scoring, target, source_check))
        del source
    return summarize(scenario, rows, runs)


def _one_strategy(template: WeightedCTRModel, columns: ColumnsConfig, source: pd.DataFrame,
                  strategy: str, fraction: float, seed: int, champion_p: np.ndarray,
                  scoring: tuple[float, float], target: pd.DataFrame,
                  source_check: pd.DataFrame) -> dict[str, Any]:
    record: dict[str, Any] = {"seed": seed, "strategy": strategy, "keep_fraction": fraction}
    p = champion_p if strategy == "loss" else None
    try:
        model, (seconds, cpu), info, variants = fit_sampled(template, columns, source,
                                                            strategy, fraction, seed, p)
    except ParameterError as exc:  # negative below the click share
        print(f"  {strategy} {fraction}: infeasible ({exc.what})", flush=True)
        return {**record, "infeasible": exc.what}
    if p is not None:  # the stage scores the source with the champion on every run
        seconds, cpu = seconds + scoring[0], cpu + scoring[1]
    record.update(train_s=seconds, train_cpu_s=cpu,
                  champion_scoring_s=scoring[0] if p is not None else 0.0,
                  **info, **_scores(model, target, source_check))
    for name, variant in variants.items():
        record.update({f"{name}_{k}": v for k, v in _scores(variant, target,
                                                            source_check).items()})
    print(f"  {strategy} {fraction}: {info['kept_rows']} rows, {seconds:.1f} s ({cpu:.1f} CPU "
          f"s), NE "
          f"{record['target_ne']:.5f} (raw {record['raw_target_ne']:.5f}), calibration "
          f"{record['calibration_ratio']:.3f} (raw {record['raw_calibration_ratio']:.3f})",
          flush=True)
    return record


# ---------------------------------------------------------------------------- summaries
METRICS = ("train_s", "train_cpu_s", "target_ne", "target_logloss", "calibration_ratio",
           "source_calibration_ratio", "kept_rows")
#: The same booster without a correction (raw) and with Platt's instead of the intercept.
VARIANT_METRICS = tuple(f"{v}_{k}" for v in ("raw", "platt") for k in (
    "target_ne", "target_logloss", "calibration_ratio", "source_calibration_ratio"))


def _mean(records: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r[key] for r in records]))


def _se(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None


def row_rounds(run: dict[str, Any], train: TrainConfig) -> int:
    """A load-free measure of a fit's work: kept rows × boosting rounds run (the best
    iteration + 1 + the early-stopping patience, at most ``n_estimators``); the hist method's
    cost per round is about linear in the rows. The champion's scoring pass of ``loss`` (one
    prediction per source row) is not in it."""
    rounds = min(train.n_estimators, run["best_iteration"] + 1 + train.early_stopping_rounds)
    return int(run["kept_rows"]) * rounds


def summarize(scenario: Scenario, rows: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds, the speedup and NE against full data, loss against negative."""
    for run in runs:
        if "best_iteration" in run:
            run["row_rounds"] = row_rounds(run, TrainConfig())
    full = {r["seed"]: r for r in runs if r["strategy"] == "full"}
    out_full = {k: _mean(list(full.values()), k) for k in METRICS}
    strategies = []
    fractions = sorted({r["keep_fraction"] for r in runs if r["strategy"] != "full"})
    for fraction in fractions:
        for strategy in STRATEGIES:
            rs = [r for r in runs if r["strategy"] == strategy and r["keep_fraction"] == fraction]
            entry: dict[str, Any] = {"strategy": strategy, "keep_fraction": fraction}
            if any("infeasible" in r for r in rs):  # the same keys, without numbers
                strategies.append({**entry, **dict.fromkeys(METRICS + VARIANT_METRICS),
                                   "speedup": None,
                                   "cpu_speedup": None, "work_ratio": None, "ne_vs_full": None,
                                   "infeasible": rs[0]["infeasible"]})
                continue
            rel = [r["target_ne"] / full[r["seed"]]["target_ne"] - 1 for r in rs]
            entry.update({k: _mean(rs, k) for k in METRICS})
            if all("raw_target_ne" in r for r in rs):  # runs of before the correction have none
                entry.update({k: _mean(rs, k) for k in VARIANT_METRICS})
                for v in ("raw", "platt"):
                    rel_v = [r[f"{v}_target_ne"] / full[r["seed"]]["target_ne"] - 1 for r in rs]
                    entry[f"{v}_ne_vs_full"] = float(np.mean(rel_v))
                    entry[f"{v}_ne_vs_full_se"] = _se(rel_v)
            entry.update(
                speedup=sum(full[r["seed"]]["train_s"] for r in rs) / sum(r["train_s"]
                                                                          for r in rs),
                cpu_speedup=sum(full[r["seed"]]["train_cpu_s"] for r in rs) / sum(
                    r["train_cpu_s"] for r in rs),
                work_ratio=sum(full[r["seed"]]["row_rounds"] for r in rs) / sum(
                    r["row_rounds"] for r in rs),
                ne_vs_full=float(np.mean(rel)), ne_vs_full_se=_se(rel),
                rate_name=rs[0]["rate_name"], rate=_mean(rs, "rate"))
            strategies.append(entry)
        _compare(strategies, runs, fraction)
    def met(speedup: str) -> list[str]:
        return [f"{s['strategy']} {s['keep_fraction']}" for s in strategies
                if "infeasible" not in s and s[speedup] >= TARGET_SPEEDUP
                and s["ne_vs_full"] <= TARGET_NE]

    return {"scenario": scenario.name, "description": scenario.description, "rows": rows,
            "source_ctr": _mean(list(full.values()), "source_ctr"), "full": out_full,
            "strategies": strategies,
            "done_when": {"speedup_at_least": TARGET_SPEEDUP, "ne_vs_full_at_most": TARGET_NE,
                          "met_by": met("speedup"), "met_by_cpu_time": met("cpu_speedup"),
                          "met_by_work_ratio": met("work_ratio")},
            "runs": runs}


def _compare(strategies: list[dict[str, Any]], runs: list[dict[str, Any]], fraction: float
             ) -> None:
    """Paired (same seed, same rows) NE of loss minus negative at one keep fraction."""
    by = {(r["strategy"], r["seed"]): r for r in runs
          if r.get("keep_fraction") == fraction and "target_ne" in r}
    seeds = sorted({s for (_, s) in by})
    diffs = [by[("loss", s)]["target_ne"] - by[("negative", s)]["target_ne"] for s in seeds
             if ("loss", s) in by and ("negative", s) in by]
    if diffs:
        entry = next(s for s in strategies if s["strategy"] == "loss"
                     and s["keep_fraction"] == fraction)
        entry["loss_vs_negative"] = {"ne_difference": float(np.mean(diffs)),
                                     "se": _se(diffs), "seeds": len(diffs)}


def _versus(s: dict[str, Any], prefix: str = "") -> str:
    value, se = s.get(f"{prefix}ne_vs_full"), s.get(f"{prefix}ne_vs_full_se")
    if value is None:
        return "–"
    return f"{100 * value:+.2f} %" + (f" ± {100 * se:.2f}" if se else "")


def table(results: dict[str, Any]) -> str:
    """The Markdown table of time against target NE (every scenario): the served (intercept-
    corrected) booster, and the raw booster's NE and calibration beside it."""
    lines = ["| scenario | strategy | keep fraction | kept rows | train s (CPU s) | speedup "
             "(CPU) | work ratio | target NE | NE vs full | calibration ratio (target / "
             "source) | raw: NE vs full | raw: calibration ratio (target / source) |",
             "|" + "---|" * 12]
    for sc in results["scenarios"]:
        f = sc["full"]
        lines.append(f"| {sc['scenario']} | full | 1 | {f['kept_rows']:,.0f} | "
                     f"{f['train_s']:.1f} ({f['train_cpu_s']:.1f}) | 1 | 1 | {f['target_ne']:.5f} "
                     f"| – | {f['calibration_ratio']:.3f} / "
                     f"{f['source_calibration_ratio']:.3f} | – | – |")
        for s in sc["strategies"]:
            if "infeasible" in s:
                lines.append(f"| {sc['scenario']} | {s['strategy']} | {s['keep_fraction']} | "
                             "infeasible: keeps every click, fewer rows asked |" + " |" * 8)
                continue
            raw = (f"{s['raw_calibration_ratio']:.3f} / {s['raw_source_calibration_ratio']:.3f}"
                   if s.get("raw_calibration_ratio") is not None else "–")
            lines.append(
                f"| {sc['scenario']} | {s['strategy']} | {s['keep_fraction']} | "
                f"{s['kept_rows']:,.0f} | {s['train_s']:.1f} ({s['train_cpu_s']:.1f}) | "
                f"{s['speedup']:.1f} ({s['cpu_speedup']:.1f}) | {s['work_ratio']:.1f} | "
                f"{s['target_ne']:.5f} | {_versus(s)} | {s['calibration_ratio']:.3f} / "
                f"{s['source_calibration_ratio']:.3f} | {_versus(s, 'raw_')} | {raw} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="*", default=[0.02, 0.05, 0.1, 0.2])
    parser.add_argument("--scenarios", nargs="*", default=[s.name for s in SCENARIOS],
                        choices=[s.name for s in SCENARIOS])
    parser.add_argument("--n-test", type=int, default=200_000)
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="XGBoost threads (1: the CPU time is the work, module docstring)")
    parser.add_argument("--quick", action="store_true",
                        help="100,000 rows, one seed, fractions 0.05 and 0.2, 20,000 test rows")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=STEM,
                        help="results file stem: <out>/<name>.json (subsampling.json)")
    parser.add_argument("--render-only", action="store_true",
                        help="only print the table of the existing .json")
    args = parser.parse_args(argv)
    json_path = args.out / f"{args.name}{'_quick' if args.quick else ''}.json"
    if args.render_only:  # re-summarize the stored runs (no fit), rewrite the JSON, print
        results = json.loads(json_path.read_text())
        by_name = {s.name: s for s in SCENARIOS}
        results["scenarios"] = [summarize(by_name[sc["scenario"]], sc["rows"], sc["runs"])
                                for sc in results["scenarios"]]
        results.update({k: results["scenarios"][0][k]
                        for k in ("rows", "full", "strategies", "done_when")})
        json_path.write_text(json.dumps(results, indent=1, default=float))
        print(table(results))
        return 0
    if args.quick:
        args.rows, args.seeds, args.fractions, args.n_test = 100_000, [0], [0.05, 0.2], 20_000
    started = time.perf_counter()
    scenarios = [run_scenario(s, args.rows, args.seeds, args.fractions, args.n_test,
                              args.n_jobs) for s in SCENARIOS if s.name in args.scenarios]
    main_scenario = scenarios[0]
    command = "python benchmarks/subsampling.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    results = {"rows": main_scenario["rows"], "scenario": main_scenario["scenario"],
               "full": main_scenario["full"], "strategies": main_scenario["strategies"],
               "done_when": main_scenario["done_when"], "scenarios": scenarios,
               "command": command.strip(), "total_seconds": time.perf_counter() - started,
               "settings": {"rows": args.rows, "seeds": args.seeds, "fractions": args.fractions,
                            "n_test": args.n_test, "n_jobs": args.n_jobs,
                            "partitions": N_PARTITIONS, "champion_fraction": CHAMPION_FRACTION,
                            "train": TrainConfig(n_jobs=args.n_jobs).model_dump()}}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=float))
    print("\n" + table(results))
    for sc in scenarios:
        done = sc["done_when"]
        print(f"# {sc['scenario']}: done when speedup >= {TARGET_SPEEDUP} and NE within "
              f"{100 * TARGET_NE:.1f} %: met by {done['met_by'] or 'none'} (wall clock), "
              f"{done['met_by_cpu_time'] or 'none'} (CPU time), "
              f"{done['met_by_work_ratio'] or 'none'} (work ratio)")
    print(f"# total {results['total_seconds']:.0f} s; {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
