"""Metrics against exact values: scikit-learn's AUC, closed-form NE, and populations with known
expected logloss, AUC and calibration, both unweighted and importance-weighted."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from is_core.ctr.metrics import (
    METRICS,
    binary_entropy,
    bootstrap_metrics,
    calibration_bins,
    ctr_metrics,
    reliability_curve,
)

N_VALUES = 50
VALUES = np.arange(N_VALUES)
CLICK_PROB = 0.02 + 0.25 * (VALUES / N_VALUES) ** 2          # true P(click | x)
PREDICTED = np.clip(0.05 + 0.15 * VALUES / N_VALUES, 0, 1)     # a fixed, misspecified predictor


def population_truth(px: np.ndarray) -> dict[str, float]:
    """Exact metrics of PREDICTED under a population with P(x) = px over the 50 values."""
    pi, p = CLICK_PROB, PREDICTED
    logloss = float(px @ -(pi * np.log(p) + (1 - pi) * np.log1p(-p)))
    ctr = float(px @ pi)
    pos, neg = px * pi / ctr, px * (1 - pi) / (1 - ctr)  # distribution of x given click / no click
    # P(score(click) > score(no click)) + half the ties; PREDICTED is increasing in x
    auc = float(sum(pos[i] * (neg[:i].sum() + 0.5 * neg[i]) for i in range(N_VALUES)))
    return {"logloss": logloss, "auc": auc, "calibration_ratio": float(px @ p) / ctr,
            "ne": logloss / float(binary_entropy(ctr))}


def draw(px: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.choice(N_VALUES, size=n, p=px)
    return x, (rng.random(n) < CLICK_PROB[x]).astype(float)


class TestPointMetrics:
    def test_auc_matches_scikit_learn_with_ties_and_weights(self):
        rng = np.random.default_rng(0)
        p = np.round(rng.beta(1, 20, 5000), 2)  # many ties
        y = (rng.random(5000) < p).astype(float)
        w = rng.exponential(size=5000)
        assert ctr_metrics(y, p, w)["auc"] == pytest.approx(
            roc_auc_score(y, p, sample_weight=w), abs=1e-12)
        assert ctr_metrics(y, p)["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)

    def test_constant_prediction_at_the_observed_ctr_has_ne_one_and_ratio_one(self):
        y = np.array([0, 0, 0, 1, 0, 1, 0, 0], dtype=float)
        m = ctr_metrics(y, np.full(8, 0.25))
        assert m["ne"] == pytest.approx(1.0, abs=1e-12)
        assert m["calibration_ratio"] == pytest.approx(1.0, abs=1e-12)
        assert m["ece"] == pytest.approx(0.0, abs=1e-12)
        assert m["auc"] == pytest.approx(0.5)

    def test_weights_equal_to_duplication(self):
        rng = np.random.default_rng(1)
        p = rng.uniform(0.01, 0.3, 400)
        y = (rng.random(400) < p).astype(float)
        k = rng.integers(0, 4, 400)
        weighted = ctr_metrics(y, p, k.astype(float))
        duplicated = ctr_metrics(np.repeat(y, k), np.repeat(p, k))
        for m in METRICS:
            assert weighted[m] == pytest.approx(duplicated[m], rel=1e-9), m

    def test_ece_of_a_predictor_over_predicting_by_half(self):
        # p' = 1.5 π: every bin's gap is 0.5 × its mean π, so ECE → 0.5 × E[π]. The estimate's
        # noise is that of the observed CTR, SE = sqrt(E[π(1-π)]/n); allow 4 SE.
        rng = np.random.default_rng(2)
        n = 40_000
        px = np.full(N_VALUES, 1 / N_VALUES)
        x, y = draw(px, n, rng)
        m = ctr_metrics(y, 1.5 * CLICK_PROB[x])
        se = np.sqrt(px @ (CLICK_PROB * (1 - CLICK_PROB)) / n)
        assert abs(m["ece"] - 0.5 * px @ CLICK_PROB) < 4 * se
        # and a calibrated predictor's ECE is only noise: E|gap_b| ≈ 0.8 SE_b per bin, ≤ 4 SE
        calibrated = ctr_metrics(y, CLICK_PROB[x])["ece"]
        assert calibrated < 4 * np.sqrt(10) * se

    def test_bins_carry_equal_weight_and_ties_share_a_bin(self):
        p = np.linspace(0, 1, 1000)
        assert np.bincount(calibration_bins(p, n_bins=10)).tolist() == [100] * 10
        w = np.r_[np.full(500, 3.0), np.ones(500)]  # the lower half carries 3/4 of the weight
        assert np.bincount(calibration_bins(p, w, n_bins=4)).tolist() == [167, 167, 166, 500]
        tied = np.r_[p, np.full(500, 0.5)]
        assert len(np.unique(calibration_bins(tied, n_bins=10)[tied == 0.5])) == 1


class TestBootstrapCoverage:
    """The 95 % percentile intervals cover the exact population value in about 95 % of
    independent samples. With 60 samples the count of covering intervals is Binomial(60, 0.95),
    mean 57 and SD 1.7; 51 or more is the 3.5-SD acceptance bound."""

    REPS, N = 60, 3000

    def _coverage(self, px_sample: np.ndarray, truth: dict[str, float], weight_of_x=None):
        covered = dict.fromkeys(truth, 0)
        for seed in range(self.REPS):
            rng = np.random.default_rng(1000 + seed)
            x, y = draw(px_sample, self.N, rng)
            w = None if weight_of_x is None else weight_of_x[x]
            est = bootstrap_metrics(y, {"m": PREDICTED[x]}, w, n_boot=200,
                                    random_state=seed)["models"]["m"]
            for k, v in truth.items():
                covered[k] += est[k]["ci_low"] <= v <= est[k]["ci_high"]
        return covered

    def test_unweighted_intervals_cover_the_population_metrics(self):
        px = np.full(N_VALUES, 1 / N_VALUES)
        covered = self._coverage(px, population_truth(px))
        assert all(c >= 51 for c in covered.values()), covered

    def test_importance_weighted_source_intervals_cover_the_target_metrics(self):
        # source q(x) ∝ exp(-x/25) under-samples the high-CTR values the uniform target has;
        # exact weights w = p/q make every metric an SNIS estimate of its target value
        q = np.exp(-VALUES / 25)
        q /= q.sum()
        p_target = np.full(N_VALUES, 1 / N_VALUES)
        target, source = population_truth(p_target), population_truth(q)
        assert abs(target["logloss"] - source["logloss"]) > 0.02  # the shift matters
        covered = self._coverage(q, target, weight_of_x=p_target / q)
        assert all(c >= 51 for c in covered.values()), covered


class TestPairedBootstrap:
    def test_identical_models_differ_by_exactly_zero(self):
        rng = np.random.default_rng(3)
        p = rng.uniform(0.01, 0.2, 2000)
        y = (rng.random(2000) < p).astype(float)
        out = bootstrap_metrics(y, {"a": p, "b": p.copy()}, baseline="b", n_boot=50)
        for m in METRICS:
            d = out["difference"]["a"][m]
            assert d["value"] == d["ci_low"] == d["ci_high"] == 0.0

    def test_paired_interval_is_narrower_than_the_marginal_ones(self):
        rng = np.random.default_rng(4)
        x, y = draw(np.full(N_VALUES, 1 / N_VALUES), 5000, rng)
        out = bootstrap_metrics(y, {"a": PREDICTED[x], "b": CLICK_PROB[x]}, baseline="b",
                                n_boot=200, random_state=4)
        d = out["difference"]["a"]["logloss"]
        marginal = out["models"]["a"]["logloss"]
        assert d["ci_high"] - d["ci_low"] < 0.5 * (marginal["ci_high"] - marginal["ci_low"])
        # the true predictor is better: a's excess logloss is positive and significant
        assert d["ci_low"] > 0

    def test_same_seed_same_intervals(self):
        rng = np.random.default_rng(5)
        p = rng.uniform(0.01, 0.2, 500)
        y = (rng.random(500) < p).astype(float)
        a = bootstrap_metrics(y, {"m": p}, n_boot=30, random_state=7)
        b = bootstrap_metrics(y, {"m": p}, n_boot=30, random_state=7)
        assert a == b

    @pytest.mark.parametrize("bad", [np.array([-1.0, 1, 1, 1]), np.array([np.nan, 1, 1, 1])])
    def test_rejects_negative_or_nan_weights(self, bad):
        with pytest.raises(ValueError, match="finite and non-negative"):
            ctr_metrics(np.array([0, 1, 0, 1.0]), np.full(4, 0.5), bad)


class TestReliabilityCurve:
    def test_weighted_curve_of_a_calibrated_predictor_sits_on_the_diagonal(self):
        q = np.exp(-VALUES / 25)
        q /= q.sum()
        rng = np.random.default_rng(6)
        x, y = draw(q, 20_000, rng)
        curve = reliability_curve(y, CLICK_PROB[x], (1 / N_VALUES) / q[x], n_bins=10)
        assert sum(b["weight_share"] for b in curve) == pytest.approx(1.0)
        means = [b["mean_prediction"] for b in curve]
        assert means == sorted(means)
        inside = sum(b["ci_low"] <= b["mean_prediction"] <= b["ci_high"] for b in curve)
        assert inside >= len(curve) - 2  # 95 % intervals: at most ~2 of 10 bins miss by chance
