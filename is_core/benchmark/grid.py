r"""The weighting benchmark: does importance weighting improve the CTR model on the target?

For each scenario × seed, one source sample (labeled), one unlabeled target sample, one labeled
target sample of the source's size (for the oracle) and a large labeled target **test** sample are
drawn (:mod:`is_core.benchmark.scenarios`). Then, for each weighting strategy × clip method, the
scenario's CTR learner is trained on the source with those weights and scored on the test sample.
Three reference models frame the numbers:

* **unweighted** (strategy ``none``): the CTR model trained on the source as it is;
* **oracle**: the same learner trained on ``n_source`` *labeled target* rows — the best a
  reweighting of the same amount of data can hope for (weighting cannot beat having the target
  labels, up to noise);
* **gap recovered** :math:`R = \bar D / \bar G` with, per seed, :math:`D_s = L_{none} - L_s` and
  :math:`G_s = L_{none} - L_{oracle}` (target test logloss :math:`L`): 1 means the strategy closes
  the whole unweighted→oracle gap, 0 that it changes nothing, < 0 that it hurts. Its interval is
  the delta-method interval of a ratio of means over seeds,
  :math:`\widehat{\mathrm{Var}}(R) = \mathrm{Var}_s(D_s - R\,G_s) / (S\,\bar G^2)`, with a t
  quantile. It is reported only where the gap is significant (its t interval excludes 0).

Strategies: ``none``; ``logistic`` and ``xgboost`` domain classifiers
(:class:`is_core.weights.domain.DomainClassifierRatio`, cross-fitted); ``logged_propensity``
(click logs only: :math:`\pi_1 / \pi_0` from the logged propensity and the known target
policy, which ignores the shift of the user mix, so it is *not* the exact ratio); ``true`` (the
exact ratio, known here).
Clip methods come from :mod:`is_core.weights.clipping`. Nothing here imports Prefect: the flow in
``flows/benchmark.py`` and ``benchmarks/run_benchmark.py`` call :func:`run_cell` and
:func:`leaderboard`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from is_core.benchmark.scenarios import (
    SCENARIOS,
    STRATEGIES,
    BenchmarkScenario,
    CellData,
    CTRLearner,
    Strategy,
    draw_cell,
)
from is_core.ctr.metrics import ctr_metrics
from is_core.ctr.model import WeightedCTRModel
from is_core.errors import ConfigError, ParameterError
from is_core.weights.domain import DomainClassifierRatio
from is_core.weights.normalize import effective_sample_size, normalize_log_weights
from is_core.weights.psis import pareto_khat

REFERENCE = ("none", "oracle")

#: A CTR model's click-probability predictor: a frame of features in, one probability per row out.
Predictor = Callable[[pd.DataFrame], NDArray[np.float64]]


# ---------------------------------------------------------------------------- learners
def fit_ctr(learner: CTRLearner, data: CellData, frame: pd.DataFrame,
            sample_weight: NDArray[np.float64] | None, seed: int, n_jobs: int | None = None
            ) -> Predictor:
    """Train the scenario's CTR learner; return its predict function.

    ``logistic``: standardized numerics, L2 logistic regression (C = 1), the linear model a
    team would start with; ``xgboost``: :class:`is_core.ctr.model.WeightedCTRModel` with weighted
    early stopping (200 trees at most, depth 4).
    """
    y = frame["clicked"].to_numpy()
    if learner == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        model.fit(frame[data.numeric], y, logisticregression__sample_weight=sample_weight)
        return lambda f: model.predict_proba(f[data.numeric])[:, 1]
    model = WeightedCTRModel(numeric=data.numeric, categorical=data.categorical,
                             n_estimators=200, max_depth=4, early_stopping_rounds=20,
                             n_jobs=n_jobs, random_state=seed).fit(frame, y, sample_weight)
    return model.predict_proba


# ---------------------------------------------------------------------------- one cell
#: The clip methods the benchmark compares (:data:`is_core.weights.clipping.ClipMethod` less
#: ``hard``).
BenchmarkClip = Literal["none", "quantile", "ionides", "psis", "auto"]
CLIPS: tuple[BenchmarkClip, ...] = get_args(BenchmarkClip)

_Name = TypeVar("_Name", bound=str)


def _as_choice(name: str, choices: tuple[_Name, ...]) -> _Name:
    """``name`` as the member of ``choices`` it equals (:class:`BenchmarkConfig` has already
    rejected unknown names, so this only gives the name its ``Literal`` type)."""
    return choices[choices.index(name)]


class BenchmarkConfig(BaseModel):
    """Parameters of the ``benchmark`` flow (and of ``isbench benchmark``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenarios: list[str] = Field(
        default_factory=lambda: ["misspecified_mean_shift", "no_shift", "flexible_mean_shift",
                                 "click_log_uniform"],
        description=f"Scenario names, from {sorted(SCENARIOS)}.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4],
                             description="One cell per scenario × seed.")
    strategies: list[str] = Field(default_factory=lambda: list[str](STRATEGIES))
    clips: list[str] = Field(default_factory=lambda: list[str](CLIPS))
    size_factor: float = Field(1.0, gt=0, le=20,
                               description="Multiplies every sample size (0.2 for a smoke run).")
    domain_folds: int = Field(5, ge=2, le=10)
    n_jobs: int | None = Field(1, description="Threads per XGBoost fit (1 is fastest on a "
                                                 "busy 2-core machine).")
    output_dir: str = Field("benchmarks/results", description="Where results are written.")

    def model_post_init(self, __context: Any) -> None:
        for kind, given, known in (("scenario", self.scenarios, SCENARIOS),
                                   ("strategy", self.strategies, STRATEGIES),
                                   ("clip", self.clips, CLIPS)):
            unknown = sorted(set(given) - set(known))
            if unknown:
                raise ConfigError(f"unknown {kind}(s) {unknown}",
                                  fix=f"choose from {sorted(known)}")

    def scenario(self, name: str) -> BenchmarkScenario:
        s = SCENARIOS[name]
        f = self.size_factor
        return BenchmarkScenario(**{**s.__dict__, "n_source": max(200, int(s.n_source * f)),
                                    "n_target": max(200, int(s.n_target * f)),
                                    "n_test": max(1000, int(s.n_test * f))})


def strategy_log_weights(strategy: Strategy, data: CellData, seed: int, folds: int = 5,
                         n_jobs: int | None = None
                         ) -> tuple[NDArray[np.float64] | None, dict[str, Any]]:
    """Raw log weights of the source rows under ``strategy`` (None for ``none``) and facts."""
    if strategy == "none":
        return None, {}
    if strategy == "true":
        return data.true_log_w, {}
    if strategy == "logged_propensity":
        if data.logged_log_w is None:
            raise ParameterError("strategy 'logged_propensity' needs a click-log scenario",
                                 fix="use it only with a scenario whose strategies include "
                                 "it (kind='click_log')", parameter="strategy")
        return data.logged_log_w, {}
    model = DomainClassifierRatio(numeric=data.numeric, categorical=data.categorical,
                                  learner=strategy, n_folds=folds, n_jobs=n_jobs,
                                  random_state=seed).fit(data.source, data.target)
    return model.log_ratio_source_, {"domain_auc": model.domain_auc_}


def _spearman(log_w: NDArray[np.float64], true_rank: NDArray[np.float64]) -> float:
    """Spearman correlation with the exact weights (NaN when either is constant, e.g. no shift)."""
    rank = stats.rankdata(log_w)
    if np.ptp(rank) == 0 or np.ptp(true_rank) == 0:
        return float("nan")
    return float(np.corrcoef(rank, true_rank)[0, 1])


def run_cell(config: BenchmarkConfig, scenario_name: str, seed: int) -> list[dict[str, Any]]:
    """Every strategy × clip of one scenario × seed, plus the oracle: one row each.

    A row holds the target test metrics of the trained CTR model, the weights' Kish ESS/n,
    raw-weight k̂, Spearman correlation with the exact weights, and timings.
    """
    from is_core.weights.clipping import clip_log_weights  # imported here: optional for the rest

    scenario = config.scenario(scenario_name)
    data = draw_cell(scenario, seed)
    y_test = data.test["clicked"].to_numpy()
    y_source = data.source["clicked"].to_numpy()
    rows: list[dict[str, Any]] = []

    def score(strategy: str, clip: str, predict: Predictor, seconds: float, **extra: Any
              ) -> None:
        m = ctr_metrics(y_test, predict(data.test))
        rows.append({"scenario": scenario_name, "seed": seed, "strategy": strategy,
                     "clip": clip, **{k: m[k] for k in ("logloss", "auc", "ne", "ece",
                                                       "calibration_ratio")},
                     "seconds_train": seconds, **extra})

    started = time.perf_counter()
    predict = fit_ctr(scenario.ctr_learner, data, data.target_labeled, None, seed, config.n_jobs)
    score("oracle", "-", predict, time.perf_counter() - started)
    true_rank = stats.rankdata(data.true_log_w)
    for strategy in [_as_choice(s, STRATEGIES) for s in config.strategies
                     if s in scenario.strategies]:
        started = time.perf_counter()
        log_w, facts = strategy_log_weights(strategy, data, seed, config.domain_folds,
                                            config.n_jobs)
        weight_seconds = time.perf_counter() - started
        if log_w is None:
            started = time.perf_counter()
            predict = fit_ctr(scenario.ctr_learner, data, data.source, None, seed, config.n_jobs)
            score("none", "-", predict, time.perf_counter() - started, ess_fraction=1.0)
            continue
        extra = {"khat": float(pareto_khat(log_w)), "weight_seconds": weight_seconds,
                 "spearman_true": _spearman(log_w, true_rank),
                 **facts}
        for clip in config.clips:
            clipped = clip_log_weights(log_w, _as_choice(clip, CLIPS), y=y_source)
            final = normalize_log_weights(clipped.log_w)
            started = time.perf_counter()
            predict = fit_ctr(scenario.ctr_learner, data, data.source, final, seed,
                              config.n_jobs)
            score(strategy, clip, predict, time.perf_counter() - started,
                  ess_fraction=effective_sample_size(final) / final.size,
                  clipped_fraction=clipped.clipped_fraction, **extra)
    return rows


# ---------------------------------------------------------------------------- aggregation
#: The weighting the daily pipeline would use by default, judged by the verdict.
PIPELINE_DEFAULT = ("logistic", "auto")


def _t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean, standard error and t-interval half-width of per-seed values."""
    values = np.asarray(values, dtype=float)
    k = values.size
    if k < 2:
        return float(values.mean()) if k else float("nan"), float("nan"), float("nan")
    se = float(values.std(ddof=1) / np.sqrt(k))
    return float(values.mean()), se, float(stats.t.ppf(0.5 + level / 2, k - 1) * se)


def gap_recovered(d: np.ndarray, g: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """:math:`R = \\bar D / \\bar G` with its delta-method t interval (module docstring)."""
    d, g = np.asarray(d, dtype=float), np.asarray(g, dtype=float)
    k = d.size
    ratio = float(d.mean() / g.mean())
    if k < 2:
        return {"value": ratio, "ci_low": float("nan"), "ci_high": float("nan")}
    se = float(np.std(d - ratio * g, ddof=1) / (np.sqrt(k) * abs(g.mean())))
    half = float(stats.t.ppf(0.5 + level / 2, k - 1) * se)
    return {"value": ratio, "ci_low": ratio - half, "ci_high": ratio + half}


def leaderboard(cells: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """One row per scenario × strategy × clip, best mean target logloss first per scenario.

    Columns: seeds, mean logloss with SE and t-interval, the paired difference to ``none``
    (mean, SE, interval), the share of the gap recovered (only where the gap is significant),
    mean AUC, ECE, calibration ratio, ESS/n and raw-weight k̂.
    """
    out = []
    for scenario, sc in cells.groupby("scenario", sort=False):
        by_seed = sc.pivot_table(index="seed", columns=["strategy", "clip"], values="logloss")
        none = by_seed[("none", "-")]
        gap = none - by_seed[("oracle", "-")]
        g_mean, _, g_half = _t_interval(gap.to_numpy(), level)
        gap_significant = abs(g_mean) > g_half
        for (strategy, clip), group in sc.groupby(["strategy", "clip"], sort=False):
            ll = by_seed[(strategy, clip)]
            mean, se, half = _t_interval(ll.to_numpy(), level)
            diff = (ll - none).to_numpy()
            d_mean, d_se, d_half = _t_interval(diff, level)
            rec = (gap_recovered(-diff, gap.to_numpy(), level) if gap_significant and
                   strategy not in REFERENCE else None)
            out.append({
                "scenario": scenario, "strategy": strategy, "clip": clip, "seeds": len(ll),
                "logloss": mean, "logloss_se": se, "logloss_ci_half": half,
                "vs_unweighted": d_mean, "vs_unweighted_se": d_se, "vs_unweighted_ci_half": d_half,
                "gap_recovered": rec["value"] if rec else float("nan"),
                "gap_recovered_ci_low": rec["ci_low"] if rec else float("nan"),
                "gap_recovered_ci_high": rec["ci_high"] if rec else float("nan"),
                **{m: float(group[m].mean()) for m in ("auc", "ece", "calibration_ratio")},
                "ess_fraction": float(group["ess_fraction"].mean())
                if "ess_fraction" in group else float("nan"),
                "khat": float(group["khat"].mean()) if "khat" in group else float("nan"),
            })
    board = pd.DataFrame(out)
    order = {s: j for j, s in enumerate(cells["scenario"].unique())}
    return (board.assign(_o=board["scenario"].map(order))
            .sort_values(["_o", "logloss"]).drop(columns="_o").reset_index(drop=True))


def _board_row(rows: pd.DataFrame, key: tuple[str, str]) -> pd.Series:
    """The leaderboard row of one strategy × clip ``key`` (``rows`` indexed by both).

    ``rows.xs(key)`` is ``rows.loc[key]``; pandas-stubs read a tuple given to ``.loc`` as
    (row, column) and type the result a scalar, whereas on this MultiIndex it selects one row.
    """
    row = rows.xs(key)
    assert isinstance(row, pd.Series), f"{key} names several leaderboard rows"
    return row


def scenario_verdicts(board: pd.DataFrame, cells: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per scenario: the gap, the pipeline default's effect, the best estimated strategy, and a
    plain-language sentence generated from exactly those numbers."""
    out: dict[str, dict[str, Any]] = {}
    for scenario, sc in board.groupby("scenario", sort=False):
        row = sc.set_index(["strategy", "clip"])
        none, oracle = _board_row(row, ("none", "-")), _board_row(row, ("oracle", "-"))
        seeds = cells[cells["scenario"] == scenario].pivot_table(
            index="seed", columns=["strategy", "clip"], values="logloss")
        gap = (seeds[("none", "-")] - seeds[("oracle", "-")]).to_numpy()
        g_mean, g_se, g_half = _t_interval(gap)
        estimated = sc[sc["strategy"].isin(("logistic", "xgboost"))]
        facts: dict[str, Any] = {"unweighted_logloss": none["logloss"],
                                 "oracle_logloss": oracle["logloss"], "gap": g_mean,
                                 "gap_ci_half": g_half, "gap_significant": abs(g_mean) > g_half}
        text = (f"{scenario}: unweighted target logloss {none['logloss']:.5f}, oracle "
                f"{oracle['logloss']:.5f} (gap {g_mean:+.5f} ± {g_half:.5f}). ")
        if PIPELINE_DEFAULT in row.index:
            default = _board_row(row, PIPELINE_DEFAULT)
            d, se = default["vs_unweighted"], default["vs_unweighted_se"]
            within = bool(d <= se) if np.isfinite(se) else None
            facts.update(default_change=d, default_change_se=se,
                         default_not_worse_by_1se=within,
                         default_gap_recovered=default["gap_recovered"])
            label = "+".join(PIPELINE_DEFAULT)
            verb = "improved" if d + default["vs_unweighted_ci_half"] < 0 else (
                "worsened" if d - default["vs_unweighted_ci_half"] > 0 else
                "did not significantly change")
            text += (f"Weighting with {label} {verb} it: {default['logloss']:.5f}, a change "
                     f"of {d:+.5f} ± {se:.5f} (SE over seeds; negative is better)")
            if facts["gap_significant"]:
                text += (f", recovering {100 * default['gap_recovered']:.0f} % of the gap "
                         f"(95 % CI {100 * default['gap_recovered_ci_low']:.0f}–"
                         f"{100 * default['gap_recovered_ci_high']:.0f} %)")
            elif within is None:
                text += "; one seed only, so no standard error and no significance"
            else:
                text += (f"; no significant gap to recover, and it is "
                         f"{'not ' if within else ''}worse than unweighted by more than one SE")
            text += (f"; calibration ratio {default['calibration_ratio']:.3f} vs "
                     f"{none['calibration_ratio']:.3f} unweighted. ")
        if len(estimated):
            best = estimated.iloc[0]
            facts["best_estimated"] = f"{best['strategy']}+{best['clip']}"
            text += (f"Best estimated weighting: {best['strategy']}+{best['clip']} at "
                     f"{best['logloss']:.5f}.")
        out[str(scenario)] = {"text": text.strip(), **facts}
    return out
