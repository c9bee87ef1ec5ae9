"""The bandit-log generator (:mod:`is_core.simulate.bandit`) against its own closed-form truth.

Sampling tests allow 4 standard errors of the statistic: for a correct generator the two-sided
chance of a false failure is below 1e-4 per test, and the seeds are fixed, so a failure means
the sampler and the closed-form tables disagree. The shape tests (propensity span, ESS, CTR)
guard the defaults that make the world look like issue 16's Thompson-sampling log.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from is_core.errors import ParameterError
from is_core.simulate.bandit import BANDIT_ROWS_PER_DAY, BanditScenario, BanditWorld
from is_core.simulate.clicklog import load_truth, write_scenario

SMALL = BanditScenario(n_users=60, n_items=7, n_positions=3, n_latent=3,
                       user_feature_levels=(4, 5, 6, 7), seed=5)
N_LARGE = 200_000
N_LOG = 10_000  # the size of issue 16's real log


@pytest.fixture(scope="module")
def world() -> BanditWorld:
    return BanditScenario().build()


@pytest.fixture(scope="module")
def source_large(world: BanditWorld) -> pd.DataFrame:
    return world.sample(N_LARGE, "source", np.random.default_rng(12))


@pytest.fixture(scope="module")
def source_log(world: BanditWorld) -> pd.DataFrame:
    return world.sample(N_LOG, "source", np.random.default_rng(13))


def _kish_fraction(w: np.ndarray) -> float:
    return float(w.sum() ** 2 / np.square(w).sum() / w.size)


class TestClosedForm:
    """Exhaustive sums over a small world's (user, item, position) cells."""

    @pytest.mark.parametrize("traffic_shift", [0.0, 0.7])
    def test_weights_integrate_to_one_and_map_q_onto_p(self, traffic_shift):
        small = BanditScenario(**{**SMALL.__dict__, "traffic_shift": traffic_shift}).build()
        s = small.scenario
        u, i, k = np.meshgrid(np.arange(s.n_users), np.arange(s.n_items),
                              np.arange(s.n_positions), indexing="ij")
        q = small.q_user[u] * small.logging_propensity(u, i, k)
        p = small.p_user[u] / (s.n_items * s.n_positions)
        assert q.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(q * small.true_weight(u, i, k), p, rtol=1e-10)

    def test_expected_ctr_and_ess_match_brute_force_sums(self):
        small = SMALL.build()
        s = small.scenario
        u, i, k = np.meshgrid(np.arange(s.n_users), np.arange(s.n_items),
                              np.arange(s.n_positions), indexing="ij")
        click = small.examination[k] * small.relevance[u, i]
        q = small.q_user[u] * small.logging_propensity(u, i, k)
        p = small.p_user[u] / (s.n_items * s.n_positions)
        assert small.expected_ctr("source") == pytest.approx((q * click).sum(), rel=1e-12)
        assert small.expected_ctr("target") == pytest.approx((p * click).sum(), rel=1e-12)
        w = small.true_weight(u, i, k)
        assert small.exact_ess_fraction() == pytest.approx(1.0 / (p * w).sum(), rel=1e-10)

    def test_propensities_have_the_exploration_floor(self, world):
        s = world.scenario
        floor = s.exploration / (s.n_items * s.n_positions)
        assert np.exp(world.log_pi0).min() >= floor * (1 - 1e-12)
        u, i, k = np.meshgrid(np.arange(s.n_users), np.arange(s.n_items),
                              np.arange(s.n_positions), indexing="ij", sparse=True)
        assert world.true_weight(u, i, k).max() <= (1 + 1e-12) / s.exploration  # p = q here


class TestSampling:
    def test_true_weights_have_mean_one_on_source_rows(self, source_large):
        w = source_large["true_weight"].to_numpy()
        assert abs(w.mean() - 1.0) < 4 * w.std(ddof=1) / np.sqrt(w.size)

    def test_source_click_rate_matches_exact_source_ctr(self, world, source_large):
        ctr = world.expected_ctr("source")
        se = np.sqrt(ctr * (1 - ctr) / len(source_large))
        assert abs(source_large["clicked"].mean() - ctr) < 4 * se

    def test_target_click_rate_matches_exact_target_ctr(self, world):
        target = world.sample(N_LARGE, "target", np.random.default_rng(11))
        ctr = world.expected_ctr("target")
        se = np.sqrt(ctr * (1 - ctr) / len(target))
        assert abs(target["clicked"].mean() - ctr) < 4 * se
        assert "logging_propensity" in target  # write_scenario drops it from target files

    def test_snis_with_exact_weights_recovers_exact_target_ctr(self, world, source_large):
        # SNIS mu = sum(w y) / sum(w); delta-method SE = sqrt(sum(w^2 (y - mu)^2)) / sum(w)
        w = source_large["true_weight"].to_numpy()
        y = source_large["clicked"].to_numpy(dtype=float)
        mu = w @ y / w.sum()
        se = np.sqrt(np.sum(np.square(w) * np.square(y - mu))) / w.sum()
        assert abs(mu - world.expected_ctr("target")) < 4 * se

    def test_logging_propensity_column_is_the_exact_pi0(self, world, source_log):
        u, i, k = (source_log[c].to_numpy() for c in ("_user", "_item", "_position0"))
        np.testing.assert_allclose(source_log["logging_propensity"],
                                   world.logging_propensity(u, i, k), rtol=1e-12)
        np.testing.assert_array_equal(source_log["position"], k + 1)


class TestLooksLikeTheRealLog:
    """Issue 16: propensities over ~4 decades, ESS/n ~0.03, max weight in the hundreds."""

    def test_logging_propensities_span_three_orders_of_magnitude(self, source_log):
        prop = source_log["logging_propensity"].to_numpy()
        assert prop.max() / prop.min() >= 1e3

    def test_exact_weights_are_heavy_tailed_at_ten_thousand_rows(self, source_log):
        w = source_log["true_weight"].to_numpy()
        assert 0.01 <= _kish_fraction(w) <= 0.1
        assert 100 <= (w / w.mean()).max() <= 1_000

    def test_source_ctr_is_about_four_per_mille(self, world):
        assert 0.002 <= world.expected_ctr("source") <= 0.008
        assert world.expected_ctr("target") < world.expected_ctr("source")

    def test_feature_layout(self, world, source_log):
        s = world.scenario
        assert len(s.numeric_features) == 81 and s.numeric_features[-1] == "position"
        assert s.categorical_features == [f"user_feature_{f}" for f in range(4)] + ["item_id"]
        affinity = source_log[s.affinity_features].to_numpy()
        assert 0.9 <= (affinity == 0).mean() <= 0.99 and affinity.min() == 0.0
        for name in s.user_features:
            levels = source_log[name]
            assert levels.str.fullmatch(r"h\d_[0-9a-f]{4}").all()
            assert 10 <= levels.nunique() <= 60


class TestIdentification:
    def test_hashed_user_features_are_a_key_of_the_user(self, world):
        assert len(np.unique(world.user_codes, axis=0)) == world.scenario.n_users

    def test_identical_observed_features_have_identical_true_weight(self, world, source_log):
        s = world.scenario
        key = pd.util.hash_pandas_object(
            source_log[s.numeric_features + s.categorical_features], index=False)
        groups = source_log.groupby(key.to_numpy())
        assert (groups.size() > 1).sum() > 100  # the check is not vacuous: many repeated cells
        assert (groups["true_weight"].nunique() == 1).all()
        assert (groups["_user"].nunique() == 1).all()


class TestDeterminismAndFiles:
    def test_same_seed_gives_identical_frames(self):
        day = dt.date(2026, 3, 1)
        a = SMALL.build().sample(500, "source", np.random.default_rng(3), day=day)
        b = SMALL.build().sample(500, "source", np.random.default_rng(3), day=day)
        pd.testing.assert_frame_equal(a, b)
        other = BanditScenario(**{**SMALL.__dict__, "seed": 6}).build()
        c = other.sample(500, "source", np.random.default_rng(3), day=day)
        assert not np.allclose(a["true_weight"], c["true_weight"])

    def test_write_scenario_writes_partitions_and_truth(self, tmp_path):
        end = dt.date(2026, 3, 2)
        rows = {"source": 400, "target": 20, "holdout": 20}
        files = write_scenario(tmp_path, SMALL, end, n_days=2, rows_per_day=rows)
        for day in files.days:
            part = f"dt={day.isoformat()}"
            source = pd.read_parquet(tmp_path / "source" / part / "part-0.parquet")
            target = pd.read_parquet(tmp_path / "target" / part / "part-0.parquet")
            holdout = pd.read_parquet(tmp_path / "holdout" / part / "part-0.parquet")
            truth_w = pd.read_parquet(tmp_path / "truth" / "source_weights" / part
                                      / "part-0.parquet")
            assert len(source) == 400 and len(target) == 20 and len(truth_w) == 400
            assert {"logging_propensity", "clicked"} <= set(source.columns)
            assert "clicked" not in target and "logging_propensity" not in target
            assert "clicked" in holdout
            for frame in (source, target, holdout):
                assert not {"true_weight", "_user", "_item", "_position0"} & set(frame.columns)
                assert set(SMALL.numeric_features + SMALL.categorical_features) <= set(frame)
        truth = load_truth(tmp_path)
        world = SMALL.build()
        assert truth["exact_source_ctr"] == pytest.approx(world.expected_ctr("source"))
        assert truth["exact_target_ctr"] == pytest.approx(world.expected_ctr("target"))
        assert truth["numeric_features"] == SMALL.numeric_features
        assert json.loads(files.truth_path.read_text())["scenario"]["seed"] == SMALL.seed

    def test_intended_rows_per_day_are_twenty_source_rows_per_target_row(self):
        assert BANDIT_ROWS_PER_DAY["source"] == 20 * BANDIT_ROWS_PER_DAY["target"]


class TestBadParameters:
    def test_too_few_hashed_combinations_for_the_users(self):
        with pytest.raises(ParameterError, match="user_feature_levels") as info:
            BanditScenario(n_users=100, user_feature_levels=(3, 3)).build()
        assert info.value.parameter == "user_feature_levels"

    @pytest.mark.parametrize("name, value", [("exploration", 0.0), ("temperature", -1.0),
                                             ("affinity_density", 1.5), ("n_items", 0)])
    def test_invalid_value_names_the_parameter(self, name, value):
        with pytest.raises(ValueError, match=name):
            BanditScenario(**{name: value}).build()

    def test_unknown_role(self, world):
        with pytest.raises(ParameterError, match="role"):
            world.sample(10, "validation", np.random.default_rng(0))
