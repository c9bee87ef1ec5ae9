"""Target-CTR estimators against the closed-form target CTR of the Gaussian scenarios."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from is_core.simulate.gaussian import gaussian_scenarios
from is_core.weights.estimators import (
    bootstrap_estimate,
    dr_estimate,
    is_estimate,
    naive_estimate,
    poisson_one,
    snis_estimate,
)

MEAN_SHIFT = gaussian_scenarios(d=4)["mean_shift"]


def _draw(seed: int, n: int = 4000):
    sample = MEAN_SHIFT.sample(n, n, np.random.default_rng(seed))
    y = sample.source["clicked"].to_numpy(dtype=float)
    return sample, y, np.exp(sample.true_log_w_source)


def _true_ctr_model(frame) -> np.ndarray:
    beta = np.zeros(MEAN_SHIFT.d)
    beta[: len(MEAN_SHIFT.beta)] = MEAN_SHIFT.beta
    return ndtr(MEAN_SHIFT.intercept + frame[MEAN_SHIFT.features].to_numpy() @ beta)


class TestPointEstimates:
    def test_naive_is_biased_and_weighted_estimators_are_not(self):
        sample, y, w = _draw(0)
        truth = MEAN_SHIFT.target_ctr
        naive = naive_estimate(y)
        # |source CTR - target CTR| = 0.06 here, about 10 naive standard errors
        assert abs(naive.value - truth) > 5 * naive.std_error
        for est in (is_estimate(y, w), snis_estimate(y, w)):
            assert abs(est.value - truth) < 4 * est.std_error, est

    def test_dr_is_consistent_if_either_part_is_right(self):
        sample, y, w = _draw(1)
        truth = MEAN_SHIFT.target_ctr
        m_source, m_target = _true_ctr_model(sample.source), _true_ctr_model(sample.target)
        right_model = dr_estimate(y, np.ones_like(y), m_source, m_target)  # weights ignored
        constant = np.full_like(m_source, y.mean())
        right_weights = dr_estimate(y, w, constant, np.full_like(m_target, y.mean()))
        for est in (right_model, right_weights):
            assert abs(est.value - truth) < 4 * est.std_error, est

    def test_snis_is_scale_invariant(self):
        _, y, w = _draw(2, n=500)
        assert snis_estimate(y, 1e-8 * w).value == pytest.approx(snis_estimate(y, w).value)


class TestIntervalCoverage:
    def test_snis_delta_and_bootstrap_intervals_cover_the_truth(self):
        # 200 replications with the exact weights: the coverage of a correct 95 % interval is
        # Binomial(200, 0.95) / 200 with sd 0.0154, so [0.904, 0.996] is a 3-sd band.
        truth = MEAN_SHIFT.target_ctr
        delta_hits, boot_hits = 0, 0
        for seed in range(200):
            _, y, w = _draw(1000 + seed, n=2000)
            delta = snis_estimate(y, w)
            boot = bootstrap_estimate("snis", y, w, n_boot=200, random_state=seed)
            delta_hits += delta.ci_low <= truth <= delta.ci_high
            boot_hits += boot.ci_low <= truth <= boot.ci_high
        assert 0.904 <= delta_hits / 200 <= 0.996
        assert 0.904 <= boot_hits / 200 <= 0.996

    def test_bootstrap_standard_error_agrees_with_the_delta_method(self):
        # Both estimate the same sd; the bootstrap sd from 2000 replicates has relative error
        # about 1 / sqrt(2 * 2000) = 1.6 %, the delta method O(1/n): 10 % is > 5 combined sds.
        _, y, w = _draw(3)
        boot = bootstrap_estimate("snis", y, w, n_boot=2000, random_state=0)
        assert boot.std_error == pytest.approx(snis_estimate(y, w).std_error, rel=0.10)

    def test_dr_bootstrap_needs_the_model(self):
        _, y, w = _draw(4, n=100)
        with pytest.raises(ValueError, match="m_source and m_target"):
            bootstrap_estimate("dr", y, w)


class TestBiasGuardedIntervals:
    def test_guarded_interval_is_the_hull_of_clipped_and_unclipped(self):
        _, y, w = _draw(5, n=1000)
        clipped = np.minimum(w, np.quantile(w, 0.9))
        plain = snis_estimate(y, clipped)
        unclipped = snis_estimate(y, w)
        guarded = snis_estimate(y, clipped, w_unclipped=w)
        assert guarded.value == plain.value and guarded.std_error == plain.std_error
        assert guarded.ci_low == min(plain.ci_low, unclipped.ci_low)
        assert guarded.ci_high == max(plain.ci_high, unclipped.ci_high)
        boot = bootstrap_estimate("snis", y, clipped, n_boot=200, random_state=0,
                                  w_unclipped=w)
        boot_plain = bootstrap_estimate("snis", y, clipped, n_boot=200, random_state=0)
        assert boot.ci_low <= boot_plain.ci_low and boot.ci_high >= boot_plain.ci_high

    def test_auto_clip_with_guarded_interval_covers(self):
        # Same 3-sd binomial band as above over 200 replications with the exact weights, the
        # clip level chosen by auto_clip from the same data.
        from is_core.weights.clipping import auto_clip

        truth = MEAN_SHIFT.target_ctr
        hits = 0
        for seed in range(200):
            sample, y, w = _draw(2000 + seed, n=2000)
            clipped = np.exp(auto_clip(sample.true_log_w_source, y).log_w)
            est = snis_estimate(y, clipped, w_unclipped=w)
            hits += est.ci_low <= truth <= est.ci_high
        assert 0.904 <= hits / 200 <= 0.996


class TestPoissonOneSampler:
    def test_counts_follow_the_poisson_one_law(self):
        # Each frequency is a binomial proportion over n draws: se = sqrt(pmf (1 - pmf) / n).
        n = 2_000_000
        counts = poisson_one(np.random.default_rng(3), (2, n // 2)).ravel()
        k = np.arange(8)
        pmf = np.exp(-1.0) / np.array([math.factorial(int(i)) for i in k])
        freq = np.bincount(counts, minlength=8)[:8] / n
        np.testing.assert_array_less(np.abs(freq - pmf), 5 * np.sqrt(pmf * (1 - pmf) / n))
        assert counts.dtype == np.uint8 and counts.max() <= 12


class TestBoundedDoublyRobust:
    def test_few_clicks_keep_the_estimate_inside_the_unit_interval(self):
        # 3 clicks in 2,000 rows, a CTR model that predicts 1 % on the source and 0.2 % on the
        # target: the additive form gives 0.002 + (0.0015 - 0.01) < 0. The bounded form solves
        # sum(y - expit(logit m + eps)) = 0 in closed form here: eps = logit(0.0015) - logit(0.01)
        y = np.zeros(2000)
        y[:3] = 1.0
        m_source, m_target = np.full(2000, 0.01), np.full(500, 0.002)
        est = dr_estimate(y, np.ones_like(y), m_source, m_target)
        logit = lambda p: math.log(p / (1 - p))  # noqa: E731
        eps = logit(0.0015) - logit(0.01)
        assert est.value == pytest.approx(1 / (1 + math.exp(-(logit(0.002) + eps))), rel=1e-9)
        assert 0.0 <= est.ci_low <= est.value <= est.ci_high <= 1.0

    def test_no_click_gives_zero_with_wilson_bounds(self):
        est = dr_estimate(np.zeros(100), np.ones(100), np.full(100, 0.1), np.full(10, 0.1))
        assert est.value == 0.0 and est.ci_low == 0.0
        z = 1.959963984540054
        assert est.ci_high == pytest.approx(z * z / (100 + z * z))

    def test_a_right_model_needs_no_shift(self):
        # with the exact click model the fluctuation's epsilon estimates 0, so the estimate
        # equals the direct method up to the weighted residual's noise (4 SE)
        sample, y, w = _draw(5)
        m_source, m_target = _true_ctr_model(sample.source), _true_ctr_model(sample.target)
        est = dr_estimate(y, w, m_source, m_target)
        assert abs(est.value - m_target.mean()) < 4 * est.std_error
        assert abs(est.value - MEAN_SHIFT.target_ctr) < 4 * est.std_error

    def test_right_weights_and_a_constant_model_cover_the_truth(self):
        # 200 replications: Binomial(200, 0.95) / 200 has sd 0.0154, so [0.904, 0.996] is a
        # 3-sd band around the nominal coverage
        truth, hits = MEAN_SHIFT.target_ctr, 0
        for seed in range(200):
            _, y, w = _draw(3000 + seed, n=1000)
            est = dr_estimate(y, w, np.full_like(y, y.mean()), np.full(1000, y.mean()))
            hits += est.ci_low <= truth <= est.ci_high
        assert 0.904 <= hits / 200 <= 0.996

    def test_the_estimate_is_invariant_to_the_weights_scale(self):
        sample, y, w = _draw(6, n=1000)
        m_source, m_target = _true_ctr_model(sample.source), _true_ctr_model(sample.target)
        a = dr_estimate(y, w, m_source, m_target)
        b = dr_estimate(y, 1e-6 * w, m_source, m_target)
        assert b.value == pytest.approx(a.value, rel=1e-9)
        assert b.std_error == pytest.approx(a.std_error, rel=1e-9)


class TestFewEffectiveClicks:
    """Regression for benchmarks/bandit_default.py: with the exact bandit weights the SNIS
    interval covered the target CTR in 12 of 15 gate-passing worlds (0.727 ± 0.033 over 183 of
    400), all misses below the truth, because the estimate rested on one or two effective
    clicks (Kish ESS × CTR) and its delta standard error shrank with the clicks it missed."""

    @staticmethod
    def _rare_heavy_stratum(seed: int, n: int = 20_000, ctr: float = 0.002,
                            heavy: float = 50.0, share: float = 0.5):
        # Two strata: rows of weight `heavy` (source share share/heavy, 200 expected rows) carry
        # `share` of the target mass, the rest share the other half; the CTR is `ctr` in both,
        # so the target CTR is exactly `ctr`, and the heavy rows expect 0.4 clicks.
        rng = np.random.default_rng(seed)
        p_heavy = share / heavy
        light = (1 - share) / (1 - p_heavy)  # E_q[w] = 1
        w = np.where(rng.random(n) < p_heavy, heavy, light)
        y = (rng.random(n) < ctr).astype(float)
        return y, w

    def test_wilson_bounds_solve_the_score_equation(self):
        # (mu_hat - mu0)^2 = z^2 mu0 (1 - mu0) / n at both bounds (the score interval's
        # definition), and the rule-of-three edge z^2 / (n + z^2) at mu_hat = 0.
        from is_core.weights.estimators import wilson_bounds

        z2 = 1.959963984540054**2
        for mu, n in ((0.03, 100.0), (0.002, 600.0), (0.5, 12.5), (0.99, 40.0)):
            for bound in wilson_bounds(mu, n, 0.95):
                assert (mu - bound) ** 2 == pytest.approx(z2 * bound * (1 - bound) / n,
                                                          rel=1e-9)
        assert wilson_bounds(0.0, 600.0, 0.95) == (0.0, pytest.approx(z2 / (600 + z2)))
        assert wilson_bounds(1.0, 600.0, 0.95) == (pytest.approx(600 / (600 + z2)), 1.0)

    def test_rare_heavy_stratum_interval_covers(self):
        # 200 replications: Binomial(200, 0.95) / 200 has sd 0.0154, so [0.904, 0.996] is a
        # 3-sd band. The logit-delta interval alone covers 0.33 (every miss below): it is far
        # outside the band, which is what the Wilson upper bound guards against.
        from is_core.weights.estimators import rate_interval

        hits, delta_hits = 0, 0
        for seed in range(200):
            y, w = self._rare_heavy_stratum(5000 + seed)
            est = snis_estimate(y, w)
            n_e = w.sum() ** 2 / np.sum(w**2)
            assert n_e * 0.002 < 2.0  # the regime of the bug: under two effective clicks
            delta = rate_interval("snis", est.value, est.std_error, 0.95, n_e)
            hits += est.ci_low <= 0.002 <= est.ci_high
            delta_hits += delta.ci_low <= 0.002 <= delta.ci_high
        assert 0.904 <= hits / 200 <= 0.996
        assert delta_hits / 200 < 0.6

    def test_many_effective_clicks_keep_the_delta_interval(self):
        # Gaussian mean shift, 2,000 rows (n_e * CTR * (1 - CTR) about 220): the Wilson bounds
        # lie inside the logit-delta interval, so the reported interval is that one exactly.
        from is_core.weights.estimators import rate_interval

        for seed in range(20):
            _, y, w = _draw(1000 + seed, n=2000)
            est = snis_estimate(y, w)
            n_e = w.sum() ** 2 / np.sum(w**2)
            delta = rate_interval("snis", est.value, est.std_error, 0.95, n_e)
            assert (est.ci_low, est.ci_high) == (delta.ci_low, delta.ci_high)
