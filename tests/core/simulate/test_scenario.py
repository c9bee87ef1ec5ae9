"""The click-log scenario generator against its own closed-form truth.

Sampling tests use a tolerance of 4 standard errors of the sample mean: for a correct generator
the two-sided chance of a false failure is below 1e-4, and the seeds are fixed, so a failure means
the sampler and the closed-form tables disagree.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from is_core.simulate.clicklog import ClickScenario, load_truth, write_scenario
from is_core.weights.estimators import snis_estimate

SMALL = ClickScenario(n_users=50, n_items=12, n_positions=4, n_segments=3, n_item_categories=4)


@pytest.fixture(scope="module")
def world():
    return ClickScenario().build()


class TestClosedForm:
    @pytest.mark.parametrize("target", ["uniform", "new_policy"])
    def test_true_weights_integrate_to_one_under_the_source(self, target):
        w = ClickScenario(**{**SMALL.__dict__, "target": target}).build()
        n_u, n_i, n_k = 50, 12, 4
        u, i, k = np.meshgrid(np.arange(n_u), np.arange(n_i), np.arange(n_k), indexing="ij")
        q = w.q_user[u] * w.pi0_item[u, i] * w.pi0_pos[u, i, k]
        p = w.p_user[u] * w.pi1_item[u, i] * w.pi1_pos[u, i, k]
        assert q.sum() == pytest.approx(1.0, abs=1e-12)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (q * w.true_weight(u, i, k)).sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(q * w.true_weight(u, i, k), p, rtol=1e-12)

    def test_ctr_is_between_half_and_five_percent(self, world):
        for role in ("source", "target"):
            assert 0.005 <= world.expected_ctr(role) <= 0.05, role

    def test_position_bias_lowers_ctr_down_the_page(self, world):
        assert np.all(np.diff(world.examination) < 0)


class TestSampling:
    def test_holdout_click_rate_matches_exact_target_ctr(self, world):
        n = 200_000
        frame = world.sample(n, "holdout", np.random.default_rng(11))
        ctr = world.expected_ctr("target")
        se = np.sqrt(ctr * (1 - ctr) / n)
        assert abs(frame["clicked"].mean() - ctr) < 4 * se

    def test_true_weights_have_mean_one_on_source_rows(self, world):
        n = 200_000
        w = world.sample(n, "source", np.random.default_rng(12))["true_weight"].to_numpy()
        assert abs(w.mean() - 1.0) < 4 * w.std(ddof=1) / np.sqrt(n)

    def test_snis_with_true_weights_recovers_target_ctr(self, world):
        frame = world.sample(200_000, "source", np.random.default_rng(13))
        est = snis_estimate(frame["clicked"].to_numpy(), frame["true_weight"].to_numpy())
        truth = world.expected_ctr("target")
        assert abs(est.value - truth) < 4 * est.std_error
        # and the shift is real: the naive source mean is far from the target CTR
        assert abs(frame["clicked"].mean() - truth) > 10 * est.std_error

    def test_logged_propensity_is_the_logging_policy(self, world):
        frame = world.sample(1_000, "source", np.random.default_rng(14))
        u, i, k = frame["_user"], frame["_item"], frame["_position0"]
        np.testing.assert_allclose(frame["logging_propensity"],
                                   world.pi0_item[u, i] * world.pi0_pos[u, i, k])
        assert frame["position"].between(1, world.scenario.n_positions).all()


class TestWriteScenario:
    def test_layout_columns_and_truth(self, tmp_path):
        rows = {"source": 300, "target": 100, "holdout": 100}
        files = write_scenario(tmp_path, SMALL, end_date=dt.date(2026, 11, 28), n_days=2,
                               rows_per_day=rows)
        assert [d.isoformat() for d in files.days] == ["2026-11-27", "2026-11-28"]
        for role, n in rows.items():
            parts = sorted((tmp_path / role).glob("dt=*/part-0.parquet"))
            assert [p.parent.name for p in parts] == ["dt=2026-11-27", "dt=2026-11-28"]
            frame = pd.read_parquet(parts[0])
            assert len(frame) == n
            assert ("clicked" in frame) == (role != "target")
            assert ("logging_propensity" in frame) == (role == "source")
            assert "true_weight" not in frame and "_user" not in frame
            assert frame["item_id"].dtype == "str"
        truth = load_truth(tmp_path)
        assert truth["exact_target_ctr"] == pytest.approx(SMALL.build().expected_ctr("target"))
        weights = pd.read_parquet(tmp_path / "truth" / "source_weights")
        assert len(weights) == 2 * rows["source"] and weights["impression_id"].is_unique

    def test_same_seed_same_bytes(self, tmp_path):
        for name in ("a", "b"):
            write_scenario(tmp_path / name, SMALL, end_date=dt.date(2026, 11, 28), n_days=1,
                           rows_per_day={"source": 200})
        a = (tmp_path / "a/source/dt=2026-11-28/part-0.parquet").read_bytes()
        b = (tmp_path / "b/source/dt=2026-11-28/part-0.parquet").read_bytes()
        assert a == b

    def test_csv_format(self, tmp_path):
        write_scenario(tmp_path, SMALL, end_date=dt.date(2026, 11, 28), n_days=1,
                       rows_per_day={"source": 50}, file_format="csv")
        frame = pd.read_csv(tmp_path / "source/dt=2026-11-28/part-0.csv")
        assert len(frame) == 50 and "clicked" in frame
