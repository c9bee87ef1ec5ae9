"""The weighting benchmark: scenario truth, the gap-recovered statistic, the leaderboard and its
verdicts, and the Prefect ``benchmark`` flow with its progress and leaderboard artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from is_core.benchmark.grid import (
    BenchmarkConfig,
    gap_recovered,
    leaderboard,
    run_cell,
    scenario_verdicts,
)
from is_core.benchmark.scenarios import SCENARIOS, draw_cell


class TestScenarios:
    def test_gaussian_true_weights_are_the_exact_ratio(self):
        scenario = BenchmarkConfig(size_factor=0.05).scenario("misspecified_mean_shift")
        data = draw_cell(scenario, seed=0)
        x = data.source[data.numeric].to_numpy()
        np.testing.assert_allclose(data.true_log_w, scenario.shift.log_ratio(x))
        # E_q[w] = 1 exactly; the sample mean is within 4 SE of it
        w = np.exp(data.true_log_w)
        assert abs(w.mean() - 1) < 4 * w.std(ddof=1) / np.sqrt(w.size)
        # the target is shifted, the labeled target and the test sample come from it
        assert data.target["x0"].mean() > 0.5 and data.test["x0"].mean() > 0.5

    def test_logged_propensity_weights_miss_exactly_the_user_mix_shift(self):
        # true w = p(u) π1 / (q(u) π0) and logged w = π1 / π0, so their ratio is p(u)/q(u)
        scenario = BenchmarkConfig(size_factor=0.05).scenario("click_log_uniform")
        data = draw_cell(scenario, seed=0)
        world = type(scenario.click)(**{**scenario.click.__dict__, "seed": 0}).build()
        u = data.source["_user"].to_numpy()
        np.testing.assert_allclose(data.true_log_w - data.logged_log_w,
                                   np.log(world.p_user[u] / world.q_user[u]), atol=1e-9)

    def test_unknown_names_are_rejected(self):
        with pytest.raises(ValueError, match="unknown scenario"):
            BenchmarkConfig(scenarios=["nope"])
        with pytest.raises(ValueError, match="unknown clip"):
            BenchmarkConfig(clips=["sqrt"])


class TestGapRecovered:
    def test_exact_proportional_recovery_has_a_zero_width_interval(self):
        g = np.array([0.02, 0.03, 0.01, 0.025])
        r = gap_recovered(0.8 * g, g)
        assert r["value"] == pytest.approx(0.8)
        assert r["ci_low"] == pytest.approx(0.8) and r["ci_high"] == pytest.approx(0.8)

    def test_ratio_of_means_not_mean_of_ratios(self):
        d, g = np.array([0.01, 0.03]), np.array([0.01, 0.05])
        assert gap_recovered(d, g)["value"] == pytest.approx(0.04 / 0.06)


def _cells(gain: dict[str, float], gap: float, noise: float = 0.0, seeds: int = 5):
    """Synthetic cells: none at 0.30 + seed noise, oracle `gap` lower, strategies `gain` lower."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        base = 0.30 + 0.01 * seed
        e = rng.normal(0, noise, len(gain) + 1) if noise else np.zeros(len(gain) + 1)
        for (strategy, clip), ll in ((("none", "-"), base), (("oracle", "-"), base - gap + e[0]),
                                     *(((s, "auto"), base - g + e[j + 1])
                                       for j, (s, g) in enumerate(gain.items()))):
            rows.append({"scenario": "s", "seed": seed, "strategy": strategy, "clip": clip,
                         "logloss": ll, "auc": 0.7, "ece": 0.01, "calibration_ratio": 1.0,
                         "ess_fraction": 0.5, "khat": 0.3})
    return pd.DataFrame(rows)


class TestLeaderboard:
    def test_ordering_differences_and_recovered_share(self):
        cells = _cells({"logistic": 0.018, "xgboost": 0.010}, gap=0.02)
        board = leaderboard(cells).set_index(["strategy", "clip"])
        assert list(board.index) == [("oracle", "-"), ("logistic", "auto"),
                                     ("xgboost", "auto"), ("none", "-")]
        assert board.loc[("logistic", "auto"), "vs_unweighted"] == pytest.approx(-0.018)
        assert board.loc[("logistic", "auto"), "gap_recovered"] == pytest.approx(0.9)
        assert board.loc[("xgboost", "auto"), "gap_recovered"] == pytest.approx(0.5)
        # the seed-to-seed level shift (0.01 per seed) cancels in the paired differences
        assert board.loc[("logistic", "auto"), "vs_unweighted_se"] == pytest.approx(0, abs=1e-12)

    def test_no_gap_no_share_and_the_one_se_rule(self):
        cells = _cells({"logistic": -0.0001}, gap=0.0, noise=0.001)
        board = leaderboard(cells)
        assert board["gap_recovered"].isna().all()
        verdict = scenario_verdicts(board, cells)["s"]
        row = board.set_index(["strategy", "clip"]).loc[("logistic", "auto")]
        assert verdict["default_not_worse_by_1se"] == bool(
            row["vs_unweighted"] <= row["vs_unweighted_se"])
        assert "no significant gap to recover" in verdict["text"]

    def test_verdict_text_carries_the_leaderboard_numbers(self):
        cells = _cells({"logistic": 0.018}, gap=0.02, noise=0.0005)
        board = leaderboard(cells)
        v = scenario_verdicts(board, cells)["s"]
        row = board.set_index(["strategy", "clip"]).loc[("logistic", "auto")]
        assert v["gap_significant"]
        assert f"recovering {100 * row['gap_recovered']:.0f} %" in v["text"]
        assert "logistic+auto improved it" in v["text"]
        assert f"{row['vs_unweighted']:+.5f}" in v["text"]


@pytest.fixture(scope="module")
def misspecified() -> pd.DataFrame:
    config = BenchmarkConfig(scenarios=["misspecified_mean_shift"],
                             strategies=["none", "true"], clips=["none"], size_factor=0.25)
    return pd.DataFrame(run_cell(config, "misspecified_mean_shift", seed=7))


class TestRunCell:
    def test_exact_weights_help_the_misspecified_model(self, misspecified):
        # benchmarks/results (5 seeds, full size): true weights gain 0.020 logloss with a
        # per-seed SD of 0.0025; at a quarter of the size the SD is about 0.005, so a gain
        # above 0.005 is 3 SD below the expected one.
        ll = misspecified.set_index("strategy")["logloss"]
        assert ll["none"] - ll["true"] > 0.005
        assert ll["none"] - ll["oracle"] > 0.005
        assert set(misspecified["strategy"]) == {"none", "true", "oracle"}

    def test_exact_weights_of_no_shift_give_the_unweighted_model(self):
        # p = q: every exact weight is 1, so the weighted fit is the unweighted fit
        config = BenchmarkConfig(scenarios=["no_shift"], strategies=["none", "true"],
                                 clips=["none", "auto"], size_factor=0.1)
        rows = pd.DataFrame(run_cell(config, "no_shift", seed=1)).set_index(
            ["strategy", "clip"])
        assert rows.loc[("true", "none"), "logloss"] == rows.loc[("none", "-"), "logloss"]
        assert rows.loc[("true", "auto"), "ess_fraction"] == pytest.approx(1.0)

    def test_every_scenario_is_known(self):
        assert set(BenchmarkConfig().scenarios) <= set(SCENARIOS)


@pytest.mark.usefixtures("prefect_harness")
class TestBenchmarkFlow:
    def test_flow_writes_outputs_and_publishes_artifacts(self, tmp_path):
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        from flows.benchmark import benchmark
        from tasks.benchmark import (
            HTML_ARTIFACT,
            LEADERBOARD_ARTIFACT,
            PROGRESS_ARTIFACT,
            REPORT_ARTIFACT,
        )

        config = BenchmarkConfig(scenarios=["no_shift"], seeds=[0, 1], strategies=["none",
                                 "true"], clips=["none"], size_factor=0.05,
                                 output_dir=str(tmp_path / "bench"))
        result = benchmark(config=config)
        assert set(result["verdicts"]) == {"no_shift"}
        for path in result["paths"].values():
            assert Path(path).resolve().parent == (tmp_path / "bench").resolve()
        cells = pd.read_csv(result["paths"]["cells"])
        assert len(cells) == 2 * 3  # per seed: oracle, none, true+none
        keys = [PROGRESS_ARTIFACT, LEADERBOARD_ARTIFACT, REPORT_ARTIFACT, HTML_ARTIFACT]
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=keys)))
        by_key = {a.key: a for a in found}
        assert set(by_key) == set(keys)
        assert float(by_key[PROGRESS_ARTIFACT].data) == pytest.approx(100.0)
