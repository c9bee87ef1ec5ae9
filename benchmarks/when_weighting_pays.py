r"""When does weighting pay? Today's candidates against the unweighted booster, world by world.

    .venv/bin/python benchmarks/when_weighting_pays.py          # 9 worlds, ~6 min on 2 cores
    .venv/bin/python benchmarks/when_weighting_pays.py --quick  # tiny sizes, under a minute
    .venv/bin/python benchmarks/when_weighting_pays.py --worlds gaussian_no_shift --n-boot 500
    .venv/bin/python benchmarks/when_weighting_pays.py --render-only  # the .md from the .json

Every run of the pipeline trains three **candidates** on the same source rows, as
:func:`is_core.ctr.stage.train_models` does (same constructor, same calibrator):

* ``unweighted``: :class:`~is_core.ctr.model.WeightedCTRModel` fitted without weights;
* ``weighted``: the same booster fitted with the final importance weights, its
  ``min_child_weight`` divided by the weights' ESS/n (``train.weighted_min_child_weight: ess``,
  :func:`~is_core.ctr.stage.weighted_template`); the row ``weighted_same_mcw`` is the weighted
  booster with the unscaled ``min_child_weight`` it had before, for comparison;
* ``recalibrated``: the unweighted booster with a
  :class:`~is_core.ctr.recalibration.WeightedCalibrator` (``train.recalibration``, ``auto``)
  fitted on its out-of-fold source scores
  (:func:`~is_core.ctr.model.out_of_fold_predictions`, ``train.recalibration_folds`` folds)
  with the importance weights.

Here the weights are the **exact** ones (the worlds are simulated, so
:math:`w = p_T(x)/p_S(x)` is known), clipped with ``--clip`` (default ``none``) and normalized to
mean 1, so the table measures what the weighting can do, not how well a proposal model
estimates it. A fourth row, the **oracle**, is the same booster trained without weights on as
many labeled *target* rows as the source has: what having the target labels would give.

Each model is scored on ``--n-test`` labeled rows drawn from the exact target distribution:
target logloss, calibration ratio (mean prediction / observed CTR) and AUC with 95 %
percentile-bootstrap intervals, and the paired interval of its logloss minus the unweighted
booster's (:func:`is_core.ctr.metrics.bootstrap_metrics`, the same resampled rows for every
model). The **gate** column is today's challenger:
:func:`is_core.release.promotion.choose_challenger` with the default
:class:`~is_core.config.PromotionConfig` (a weighting candidate is kept when the 95 % upper bound
of how much worse its logloss is than the unweighted booster's is below ``tolerance`` = 0.001;
the better point estimate among those kept; else ``unweighted``), and again with
``tolerance = 0``, where a candidate must be shown *better* than the unweighted booster.

The **worlds** (rows are drawn by :func:`is_core.benchmark.scenarios.draw_cell`, each from
``--seed``; worlds of one scenario and size share their rows):

* ``clicklog_{uniform,new_policy}_position_{out,in}``: the demo click log
  (:class:`~is_core.simulate.clicklog.ClickScenario`, users × items × positions with position
  bias :math:`P(c \mid u, i, k) = \theta_k \rho(u, i)`), target = uniform exploration or a new
  ranker (``target="new_policy"``). With ``position`` *out* of the CTR features (an exposure
  feature, ``columns.exposure``) the model learns
  :math:`P(c \mid u, i) = \rho(u, i) \sum_k \pi(k \mid u, i)\, \theta_k`, which depends on the
  position policy, so it shifts from source (liked items shown on top) to target (uniform
  positions). With ``position`` *in*, the features identify :math:`(u, i, k)` and
  :math:`P(c \mid x)` is the same in both domains: only the traffic moved.
* ``gaussian_mean_shift_shallow``: the grid's ``misspecified_mean_shift`` rows (6 Gaussian
  features, mean shift on :math:`x_0, x_1`, clicks
  :math:`\operatorname{logit} P = -4 + 0.8x_0 + 0.6x_0^2 - 0.4x_1 + 0.3x_1x_2`) with a
  booster too small for them, 20 stumps (depth 1, learning rate 0.5): misspecified, so the best
  model it can be depends on where the rows are.
* ``gaussian_mean_shift_flexible``: the same rows with the default booster (``TrainConfig()``,
  the one every other world trains: up to 400 trees of depth 6, learning rate 0.1, early
  stopping after 30 rounds on a weighted 10 % split), flexible enough for the clicks;
  ``..._small``: the same with a tenth of the source rows.
* ``gaussian_no_shift``: target = source (every exact weight is 1, so ``weighted`` *is* the
  unweighted booster and ``recalibrated`` is a plain recalibration), default booster.
* ``bandit_heavy_tail``: the grid's ``bandit_thompson`` log
  (:class:`~is_core.simulate.bandit.BanditScenario`, a Thompson-sampling-like logger, CTR about
  0.4 %), uniform target: exact weights with Kish ESS/n about 0.03.

Results: ``benchmarks/results/when_weighting_pays.json`` (every number, the command, the sizes
and the seed) and ``.md`` (the tables, rendered from the JSON); ``--quick`` writes
``when_weighting_pays_quick.*`` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
from sklearn.base import clone

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from is_core._validation import ClipMethod  # noqa: E402
from is_core.benchmark.scenarios import (  # noqa: E402
    SCENARIOS,
    BenchmarkScenario,
    CellData,
    draw_cell,
)
from is_core.config import ColumnsConfig, PromotionConfig, TrainConfig  # noqa: E402
from is_core.ctr.metrics import bootstrap_metrics  # noqa: E402
from is_core.ctr.model import WeightedCTRModel  # noqa: E402
from is_core.ctr.recalibration import WeightedCalibrator  # noqa: E402
from is_core.ctr.stage import (  # noqa: E402  (the train stage's own constructors)
    _ctr_model,
    fit_candidates,
    weighted_template,
)
from is_core.release.promotion import choose_challenger  # noqa: E402
from is_core.simulate.clicklog import ClickScenario, TargetPolicy  # noqa: E402
from is_core.weights.clipping import clip_log_weights  # noqa: E402
from is_core.weights.diagnostics import effective_sample_size  # noqa: E402
from is_core.weights.normalize import normalize_log_weights  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STEM = "when_weighting_pays"
CANDIDATES = ("unweighted", "weighted", "recalibrated")
#: Beside the candidates: the weighted booster with the unscaled min_child_weight of before
#: issue 17 (``train.weighted_min_child_weight: same``), and the oracle.
MODELS = (*CANDIDATES, "weighted_same_mcw", "oracle")
#: The gate's tolerances shown: the default PromotionConfig's, and 0 (shown better).
TOLERANCES = (PromotionConfig().tolerance, 0.0)
#: A booster too small for the Gaussian clicks: 20 stumps (30 early-stopping rounds never end it).
SHALLOW = TrainConfig(max_depth=1, n_estimators=20, learning_rate=0.5)


@dataclass(frozen=True)
class World:
    """One row group of the table: how the rows are drawn and which CTR model is trained."""

    name: str
    description: str
    data: BenchmarkScenario
    exposure: tuple[str, ...] = ()
    train: TrainConfig = field(default_factory=TrainConfig)
    source_fraction: float = 1.0  # of --n-source (the oracle's rows too)

    def columns(self, cell: CellData) -> ColumnsConfig:
        """The column roles: every feature, ``exposure`` kept away from the CTR models."""
        return ColumnsConfig(numeric=cell.numeric, categorical=cell.categorical,
                             exposure=list(self.exposure))


def _click_log(target: TargetPolicy) -> BenchmarkScenario:
    return BenchmarkScenario(target, "click_log", "xgboost", f"demo click log, {target} target",
                             click=ClickScenario(target=target))


def _worlds() -> dict[str, World]:
    uniform, new_policy = _click_log("uniform"), _click_log("new_policy")
    shifted, unshifted = SCENARIOS["misspecified_mean_shift"], SCENARIOS["no_shift"]
    worlds = [
        World("clicklog_uniform_position_out", "demo click log, uniform target, position not "
              "a CTR feature", uniform, exposure=("position",)),
        World("clicklog_uniform_position_in", "the same rows, position a CTR feature", uniform),
        World("clicklog_new_policy_position_out", "demo click log, new-ranker target, position "
              "not a CTR feature", new_policy, exposure=("position",)),
        World("clicklog_new_policy_position_in", "the same rows, position a CTR feature",
              new_policy),
        World("gaussian_mean_shift_shallow", "Gaussian mean shift, non-linear clicks, 20-stump "
              "booster (misspecified)", shifted, train=SHALLOW),
        World("gaussian_mean_shift_flexible", "the same rows, default booster", shifted),
        World("gaussian_mean_shift_flexible_small", "the same scenario and booster, a tenth "
              "of the source rows", shifted, source_fraction=0.1),
        World("gaussian_no_shift", "target = source (exact weights all 1), default booster",
              unshifted),
        World("bandit_heavy_tail", "Thompson-sampling-like log, uniform target: exact weights "
              "with a heavy tail", SCENARIOS["bandit_thompson"]),
    ]
    return {w.name: w for w in worlds}


WORLDS = _worlds()


# ---------------------------------------------------------------------------- one world
def final_weights(log_w: np.ndarray, clip: ClipMethod, y: np.ndarray) -> np.ndarray:
    """The exact log weights, clipped with ``clip`` and normalized to mean 1 (final weights)."""
    return normalize_log_weights(clip_log_weights(log_w, clip, y=y).log_w)


def train_candidates(train: TrainConfig, template: WeightedCTRModel, frame: pd.DataFrame,
                     y: np.ndarray, w: np.ndarray, seed: int
                     ) -> tuple[dict[str, WeightedCTRModel], WeightedCalibrator]:
    """The candidates of :func:`is_core.ctr.stage.train_models` (its own
    :func:`~is_core.ctr.stage.fit_candidates`), the weighted booster with the unscaled
    min_child_weight of before issue 17, to measure, and the calibrator."""
    models, _, calibrator = fit_candidates(train.model_copy(update={"recalibrate": True}),
                                           template, frame, y, w, seed)
    assert calibrator is not None  # recalibrate is on
    models["weighted_same_mcw"] = weighted_template(template, w, "same").fit(
        frame, y, sample_weight=w)
    return models, calibrator


def gate_choices(differences: dict[str, dict[str, Any]], tolerances: tuple[float, ...]
                 ) -> dict[str, dict[str, str]]:
    """Per tolerance, the challenger :func:`choose_challenger` picks and why."""
    out = {}
    for tolerance in tolerances:
        chosen, check = choose_challenger(PromotionConfig(tolerance=tolerance), differences)
        out[f"{tolerance:g}"] = {"model": chosen, "detail": check.detail}
    return out


def run_world(world: World, seed: int, n_boot: int, clip: ClipMethod, n_jobs: int,
              tolerances: tuple[float, ...]) -> dict[str, Any]:
    """Train the candidates and the oracle of ``world``; score them on its target test rows."""
    started = time.perf_counter()
    cell = draw_cell(world.data, seed)
    columns = world.columns(cell)
    train = world.train.model_copy(update={"n_jobs": n_jobs})
    template = _ctr_model(train, columns, seed)
    y = cell.source[columns.label].to_numpy()
    w = final_weights(cell.true_log_w, clip, y)
    models, calibrator = train_candidates(train, template, cell.source, y, w, seed)
    models["oracle"] = clone(template).fit(
        cell.target_labeled, cell.target_labeled[columns.label].to_numpy())
    y_test = cell.test[columns.label].to_numpy()
    predictions = {name: models[name].predict_proba(cell.test) for name in MODELS}
    boot = bootstrap_metrics(y_test, predictions, baseline="unweighted", n_boot=n_boot,
                             random_state=seed)
    differences = {name: boot["difference"][name]["logloss"] for name in CANDIDATES[1:]}
    return {
        "world": world.name, "description": world.description, "scenario": world.data.name,
        "exposure": list(world.exposure),
        "ctr_features": [*columns.ctr_numeric, *columns.ctr_categorical],
        "train": train.model_dump(), "sizes": {"n_source": len(y), "n_test": len(y_test),
                                               "n_oracle": len(cell.target_labeled)},
        "source_ctr": float(y.mean()), "target_ctr": float(y_test.mean()),
        "ess_fraction": effective_sample_size(w) / len(w), "max_final_weight": float(w.max()),
        "calibrator": calibrator.to_dict(),
        "best_iteration": {name: models[name].best_iteration_ for name in MODELS},
        "models": {name: {**boot["models"][name],
                          "logloss_difference": boot["difference"].get(name, {}).get("logloss")}
                   for name in MODELS},
        "selected": gate_choices(differences, tolerances),
        "seconds": time.perf_counter() - started,
    }


# ---------------------------------------------------------------------------- tables
def _interval(e: dict[str, Any] | None, digits: int, signed: bool = False) -> str:
    if e is None:
        return "–"
    sign = "+" if signed else ""
    return (f"{e['value']:{sign}.{digits}f} [{e['ci_low']:{sign}.{digits}f}, "
            f"{e['ci_high']:{sign}.{digits}f}]")


def markdown(results: dict[str, Any]) -> str:
    """The Markdown tables of a results JSON (:func:`run_world` records)."""
    tolerances = list(results["worlds"][0]["selected"]) if results["worlds"] else []
    head = ["world", "candidate", "target logloss [95% CI]", "Δ logloss vs unweighted [95% CI]",
            "calibration ratio [95% CI]", "AUC",
            *(f"selected (tolerance {t})" for t in tolerances)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results["worlds"]:
        for name in MODELS:
            m = r["models"][name]
            picks = ["–" if name not in CANDIDATES else
                     ("**selected**" if r["selected"][t]["model"] == name else "")
                     for t in tolerances]
            lines.append("| " + " | ".join([
                r["world"], name, _interval(m["logloss"], 5),
                _interval(m["logloss_difference"], 5, signed=True),
                _interval(m["calibration_ratio"], 3), f"{m['auc']['value']:.4f}", *picks]) + " |")
    facts = ["| world | what | CTR features | source rows | ESS/n | source CTR | target CTR "
             "| calibrator | s |", "|" + "---|" * 9]
    for r in results["worlds"]:
        features = "all" if not r["exposure"] else "all but " + ", ".join(r["exposure"])
        facts.append(f"| {r['world']} | {r['description']} | {features} | "
                     f"{r['sizes']['n_source']:,} | {r['ess_fraction']:.3f} | "
                     f"{r['source_ctr']:.4f} | {r['target_ctr']:.4f} | "
                     f"{r['calibrator']['method']} | {r['seconds']:.0f} |")
    s = results["settings"]
    return "\n".join([
        "# When weighting pays", "",
        f"Produced by `{results['command']}` in {results['total_seconds']:.0f} s: "
        f"{s['n_source']:,} source rows unless the second table says otherwise (and as many "
        "labeled target rows for the oracle), "
        f"{s['n_test']:,} target test rows, {s['n_boot']} paired bootstrap replicates, exact "
        f"weights clipped with `{s['clip']}`, seed {s['seed']}. Δ is the candidate's target "
        "logloss minus the unweighted booster's on the same rows (negative: better); "
        "a *selected* column marks the challenger `choose_challenger` picks at that "
        "tolerance.", "",
        *lines, "", *facts, ""])


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="*", choices=sorted(WORLDS), default=list(WORLDS))
    parser.add_argument("--n-source", type=int, default=50_000)
    parser.add_argument("--n-test", type=int, default=100_000)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip", default="none", choices=[c for c in get_args(ClipMethod)
                                                           if c != "hard"],
                        help="clip method of the exact weights")
    parser.add_argument("--n-jobs", type=int, default=2, help="XGBoost threads")
    parser.add_argument("--quick", action="store_true",
                        help="3,000 source and 10,000 test rows, 50 replicates (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true",
                        help="only rewrite the .md from the existing .json")
    args = parser.parse_args(argv)
    stem = STEM + ("_quick" if args.quick else "")
    json_path, md_path = args.out / f"{stem}.json", args.out / f"{stem}.md"
    if args.render_only:
        md_path.write_text(markdown(json.loads(json_path.read_text())))
        print(md_path.read_text())
        return 0
    if args.quick:
        args.n_source, args.n_test, args.n_boot = 3_000, 10_000, 50
    started = time.perf_counter()
    records = []
    for name in args.worlds:
        world = WORLDS[name]
        n_source = max(1_000, round(args.n_source * world.source_fraction))
        sized = replace(world, data=replace(world.data, n_source=n_source, n_target=200,
                                            n_test=args.n_test))
        records.append(run_world(sized, args.seed, args.n_boot, args.clip, args.n_jobs,
                                 TOLERANCES))
        r = records[-1]
        print(f"# {name} ({r['seconds']:.0f} s): " + "; ".join(
            f"{m} {r['models'][m]['logloss']['value']:.5f}" for m in MODELS)
            + "; gate " + ", ".join(f"{t}: {s['model']}" for t, s in r["selected"].items()),
            flush=True)
    command = "python benchmarks/when_weighting_pays.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    results = {"command": command.strip(), "total_seconds": time.perf_counter() - started,
               "settings": {"n_source": args.n_source, "n_test": args.n_test,
                            "n_boot": args.n_boot, "seed": args.seed, "clip": args.clip,
                            "n_jobs": args.n_jobs, "tolerances": list(TOLERANCES)},
               "worlds": records}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=float))
    md_path.write_text(markdown(json.loads(json_path.read_text())))
    print("\n" + md_path.read_text())
    print(f"# total {results['total_seconds']:.0f} s; {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
