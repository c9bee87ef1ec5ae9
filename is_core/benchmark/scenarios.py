r"""The benchmark's scenarios: how each scenario × seed draws its data, with the exact weights.

A :class:`BenchmarkScenario` says how data are drawn and which CTR learner is trained on them;
:data:`SCENARIOS` names the ones the benchmark runs. :func:`draw_cell` draws, for one scenario ×
seed, one source sample (labeled), one unlabeled target sample, one labeled target sample of the
source's size (for the oracle) and a large labeled target **test** sample, together with the
exact log importance weights of the source rows (known here because the data are simulated) and,
for click logs, the logged-propensity ones. Running strategies on a draw and summarizing the
results is :mod:`is_core.benchmark.grid`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from is_core.errors import ParameterError
from is_core.simulate.bandit import BanditScenario
from is_core.simulate.clicklog import ClickScenario
from is_core.simulate.gaussian import GaussianShift

#: A weighting strategy of the benchmark (:func:`is_core.benchmark.grid.strategy_log_weights`).
Strategy = Literal["none", "logistic", "xgboost", "logged_propensity", "true"]
#: Every weighting strategy; :attr:`BenchmarkScenario.strategies` says which a scenario supports.
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
#: The CTR learners a scenario can train (:func:`is_core.benchmark.grid.fit_ctr`).
CTRLearner = Literal["logistic", "xgboost"]


# ---------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class BenchmarkScenario:
    """A scenario of the benchmark: how data are drawn and which CTR learner is trained.

    ``kind="gaussian"``: :class:`is_core.simulate.gaussian.GaussianShift` covariates (exact log
    ratio) with the click model :math:`\\operatorname{logit} P(y=1\\mid x) = a + 0.8x_0 + 0.6x_0^2
    - 0.4x_1 + 0.3x_1x_2`, which a linear-logistic CTR model cannot represent (misspecified).
    ``kind="click_log"``: :class:`is_core.simulate.clicklog.ClickScenario` users × items ×
    positions, or :class:`is_core.simulate.bandit.BanditScenario`'s Thompson-sampling-like
    logger, with logged propensities and exact weights; the target is uniform over
    items × positions.
    """

    name: str
    kind: Literal["gaussian", "click_log"]
    ctr_learner: CTRLearner
    description: str
    n_source: int = 20_000
    n_target: int = 10_000
    n_test: int = 50_000
    shift: GaussianShift | None = None
    intercept: float = -4.0
    click: ClickScenario | BanditScenario | None = None

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        if self.kind == "click_log":
            return STRATEGIES
        return tuple(s for s in STRATEGIES if s != "logged_propensity")


def _gaussian(name: str, mean: tuple[float, ...], description: str,
              learner: CTRLearner = "logistic") -> BenchmarkScenario:
    return BenchmarkScenario(name, "gaussian", learner, description,
                             shift=GaussianShift(name, mean, (1.0,) * len(mean)))


SCENARIOS: dict[str, BenchmarkScenario] = {
    s.name: s for s in (
        _gaussian("misspecified_mean_shift", (0.75, 0.5, 0.0, 0.0, 0.0, 0.0),
                  "Gaussian mean shift (ESS/n of the exact weights 0.44), non-linear clicks, "
                  "linear-logistic CTR model (misspecified)"),
        _gaussian("no_shift", (0.0,) * 6, "target = source, linear-logistic CTR model"),
        _gaussian("flexible_mean_shift", (0.75, 0.5, 0.0, 0.0, 0.0, 0.0),
                  "the misspecified scenario's data with a flexible XGBoost CTR model",
                  learner="xgboost"),
        BenchmarkScenario("click_log_uniform", "click_log", "xgboost",
                          "users × items × positions, logged by a ranker; target = uniform "
                          "exploration traffic; XGBoost CTR model with native categoricals",
                          n_source=20_000, n_target=10_000, n_test=50_000,
                          click=ClickScenario()),
        BenchmarkScenario("click_log_small_target", "click_log", "xgboost",
                          "the click log with a target sample 1/16 of the source (an "
                          "exploration bucket of a few percent of traffic)",
                          n_source=20_000, n_target=1_250, n_test=50_000,
                          click=ClickScenario()),
        BenchmarkScenario("bandit_thompson", "click_log", "xgboost",
                          "a Thompson-sampling-like logger over 80 items × 3 positions "
                          "(propensities over four decades, 80 sparse affinity features, CTR "
                          "0.4 %); target = uniform-random policy, 5 % of the source",
                          n_source=20_000, n_target=1_000, n_test=50_000,
                          click=BanditScenario()),
    )
}


@dataclass(frozen=True)
class CellData:
    """One scenario × seed draw."""

    source: pd.DataFrame
    target: pd.DataFrame
    target_labeled: pd.DataFrame
    test: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    true_log_w: NDArray[np.float64]
    logged_log_w: NDArray[np.float64] | None


def _click_logit(x: NDArray[np.float64], intercept: float) -> NDArray[np.float64]:
    return (intercept + 0.8 * x[:, 0] + 0.6 * x[:, 0] ** 2 - 0.4 * x[:, 1]
            + 0.3 * x[:, 1] * x[:, 2])


def draw_cell(scenario: BenchmarkScenario, seed: int) -> CellData:
    """Draw the four samples of one cell from ``seed`` (independent streams per sample)."""
    rng = [np.random.default_rng(np.random.SeedSequence([seed, j])) for j in range(4)]
    sizes = (scenario.n_source, scenario.n_target, scenario.n_source, scenario.n_test)
    if scenario.kind == "gaussian":
        shift = scenario.shift
        if shift is None:
            raise ParameterError(f"scenario {scenario.name!r} is gaussian but has no shift",
                                 fix="give it shift=GaussianShift(...)", parameter="shift")
        mu = np.asarray(shift.mean)
        frames = []
        for j, (n, role) in enumerate(zip(sizes, ("source", "target", "target", "target"),
                                          strict=True)):
            x = rng[j].standard_normal((n, shift.d)) + (mu if role == "target" else 0.0)
            frame = pd.DataFrame(x, columns=shift.features)
            p = 1.0 / (1.0 + np.exp(-_click_logit(x, scenario.intercept)))
            frame["clicked"] = (rng[j].random(n) < p).astype("int8")
            frames.append(frame)
        source, target, target_labeled, test = frames
        true_log_w = shift.log_ratio(source[shift.features].to_numpy())
        return CellData(source, target, target_labeled, test, numeric=shift.features,
                        categorical=[], true_log_w=true_log_w, logged_log_w=None)
    if scenario.click is None:
        raise ParameterError(f"scenario {scenario.name!r} is a click log but has no click "
                             "scenario", fix="give it click=ClickScenario(...)",
                             parameter="click")
    world = replace(scenario.click, seed=seed).build()
    roles = ("source", "target", "holdout", "holdout")
    source, target, target_labeled, test = (
        world.sample(n, role, r) for n, role, r in zip(sizes, roles, rng, strict=True))
    s = world.scenario
    target_propensity = 1.0 / (s.n_items * s.n_positions)  # uniform target policy
    logged = np.log(target_propensity) - np.log(source["logging_propensity"].to_numpy())
    return CellData(source, target, target_labeled, test, numeric=s.numeric_features,
                    categorical=s.categorical_features,
                    true_log_w=np.log(source["true_weight"].to_numpy()), logged_log_w=logged)
