"""The proposal-aware SNIS interval and the logit-scale bounds against known truth.

Tolerances are derived from standard errors stated next to each assertion; every seed is fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from is_core.errors import ParameterError
from is_core.simulate.gaussian import GaussianShift, gaussian_scenarios
from is_core.weights.domain import DomainClassifierRatio
from is_core.weights.estimators import snis_estimate
from is_core.weights.intervals import (
    proposal_aware_snis_estimate,
    proposal_aware_snis_from_model,
    proposal_aware_unsupported,
)

MEAN_SHIFT = gaussian_scenarios(d=4)["mean_shift"]
# clicks strongly tied to the shifted features: estimating the weights removes much of the
# SNIS variance when the target sample is large (residual sd / known-weights sd = 0.75)
STRONG_CLICKS = GaussianShift("strong_clicks", (0.2,) * 4, (1.0,) * 4, intercept=-0.5,
                              beta=(1.5, 1.0, 0.5, 0.5))


def _logistic_arrays(scenario: GaussianShift, n_source: int, n_target: int, seed: int):
    """A linear-logistic proposal fitted in-sample (no cross-fitting) and its arrays."""
    sample = scenario.sample(n_source, n_target, np.random.default_rng(seed))
    X = np.vstack([sample.source[sample.features].to_numpy(),
                   sample.target[sample.features].to_numpy()])
    domain = np.r_[np.zeros(n_source, dtype=int), np.ones(n_target, dtype=int)]
    fit = LogisticRegression(C=1.0, max_iter=1000).fit(X, domain)
    logit = fit.decision_function(X)
    prob = 1.0 / (1.0 + np.exp(-logit))
    y = sample.source["clicked"].to_numpy(dtype=float)
    return y, np.exp(logit[:n_source]), X, domain, prob


class TestStandardError:
    def test_matches_the_monte_carlo_sd_at_16_to_1(self):
        # 150 replications of the cross-fitted logistic proposal (3 folds, linear basis, to
        # keep the test short) at 2000 : 125. The sample sd of 150 estimates has relative
        # standard error 1/sqrt(2 * 149) = 5.8 %, so the mean proposal-aware SE must be within
        # 3 of them (17 %) of it; the known-weights SE (~0.6 of the sd here) must be below.
        truth = MEAN_SHIFT.target_ctr
        values, known, aware, hits = [], [], [], 0
        for seed in range(150):
            sample = MEAN_SHIFT.sample(2000, 125, np.random.default_rng([seed, 16]))
            y = sample.source["clicked"].to_numpy(dtype=float)
            model = DomainClassifierRatio(numeric=sample.features, n_folds=3,
                                          numeric_basis="linear", random_state=seed).fit(
                sample.source, sample.target)
            estimate = proposal_aware_snis_from_model(model, sample.source, sample.target, y)
            values.append(estimate.value)
            aware.append(estimate.std_error)
            known.append(snis_estimate(y, np.exp(model.log_ratio_source_)).std_error)
            hits += estimate.ci_low <= truth <= estimate.ci_high
        sd = np.std(values, ddof=1)
        band = 3 / np.sqrt(2 * 149)
        assert abs(np.mean(aware) / sd - 1) < band
        assert np.mean(known) / sd < 1 - band
        # Binomial(150, 0.95) coverage has sd 1.8 %: 3 sds below 95 % is 0.897.
        assert hits / 150 >= 0.897

    def test_with_known_weights_it_is_the_delta_method_se(self):
        # a = H^-1 g = 0 when every source row's weight is capped: only the SNIS term is left,
        # which is snis_estimate's delta variance times n_s / (n_s - 1).
        y, w, X, domain, prob = _logistic_arrays(MEAN_SHIFT, 3000, 300, 0)
        aware = proposal_aware_snis_estimate(y, w, X, domain, prob,
                                             clipped=np.ones(y.size, dtype=bool))
        known = snis_estimate(y, w)
        assert aware.value == pytest.approx(known.value, rel=1e-12)
        assert aware.std_error == pytest.approx(known.std_error * np.sqrt(3000 / 2999),
                                                rel=1e-9)

    def test_clicks_unrelated_to_the_features_give_the_known_weights_se(self):
        # With y independent of x the SNIS gradient g has population value 0 and the
        # proposal's error does not move the estimate: only O(1/n) differences remain (< 2 %).
        flat = GaussianShift("flat", (0.25,) * 4, (1.0,) * 4, beta=(0.0,) * 4)
        y, w, X, domain, prob = _logistic_arrays(flat, 4000, 250, 1)
        aware = proposal_aware_snis_estimate(y, w, X, domain, prob)
        assert aware.std_error == pytest.approx(snis_estimate(y, w).std_error, rel=0.02)

    def test_huge_target_gives_the_projection_residual_se(self):
        # n_target >> n_source: the target rows' term vanishes and the logistic fit balances
        # the weighted source means of (x, 1) to the target's, so the source term is the
        # residual of w (y - mu) after its least-squares projection on (x, 1) under the source
        # (Hirano, Imbens & Ridder 2003): smaller than the known-weights SE, not equal to it.
        # The limit is computed with the exact weights on 4 10^5 source rows; the SE from 2000
        # source rows has relative error about 1/sqrt(2 * 2000) * kurtosis factor (~3 %), and 5
        # seeds average it down to ~1.5 %: 5 % is over 3 of them.
        big = STRONG_CLICKS.sample(400_000, 1, np.random.default_rng(99))
        y_big = big.source["clicked"].to_numpy(dtype=float)
        w_big = np.exp(big.true_log_w_source)
        mu = float(w_big @ y_big / w_big.sum())
        design = np.c_[big.source[big.features].to_numpy(), np.ones(y_big.size)]
        response = w_big * (y_big - mu) / w_big.mean()
        coef, *_ = np.linalg.lstsq(design, response, rcond=None)
        limit_sd = float(np.std(response - design @ coef))
        known_sd = float(np.std(response))
        ratios, known_ratios = [], []
        for seed in range(5):
            y, w, X, domain, prob = _logistic_arrays(STRONG_CLICKS, 2000, 200_000, 10 + seed)
            aware = proposal_aware_snis_estimate(y, w, X, domain, prob)
            ratios.append(aware.std_error * np.sqrt(2000) / limit_sd)
            known_ratios.append(snis_estimate(y, w).std_error * np.sqrt(2000) / known_sd)
        assert np.mean(ratios) == pytest.approx(1.0, abs=0.05)
        assert np.mean(known_ratios) == pytest.approx(1.0, abs=0.05)
        assert limit_sd < 0.8 * known_sd  # the two limits are 5 tolerances apart


    def test_is_cheap_at_100k_fitting_rows(self):
        # the pipeline's default fitting sample: 10^5 rows, 5 folds (measured 0.2-0.35 s)
        import time

        rng = np.random.default_rng(0)
        n = 100_000
        domain = np.r_[np.zeros(n // 2, dtype=int), np.ones(n // 2, dtype=int)]
        started = time.perf_counter()
        proposal_aware_snis_estimate((rng.random(n // 2) < 0.1).astype(float),
                                     np.exp(rng.normal(size=n // 2)), rng.normal(size=(n, 10)),
                                     domain, np.full(n, 0.5), fold=rng.integers(0, 5, n))
        assert time.perf_counter() - started < 2.0


class TestBoundsStayInTheUnitInterval:
    @pytest.mark.parametrize("clicks", [0, 3])
    def test_few_clicks_in_2000_rows(self, clicks):
        # Regression: a symmetric delta interval gave a negative click rate (-0.00175) on a
        # bandit log. With 3 clicks in 2000 rows mu - 1.96 se < 0; with 0 clicks se = 0.
        rng = np.random.default_rng(clicks)
        w = np.exp(rng.normal(0.0, 1.0, 2000))
        y = np.zeros(2000)
        y[rng.choice(2000, clicks, replace=False)] = 1.0
        known = snis_estimate(y, w)
        assert known.value - 1.96 * known.std_error <= 0.0  # the old lower bound
        domain = np.r_[np.zeros(2000, dtype=int), np.ones(500, dtype=int)]
        X = rng.normal(size=(2500, 3))
        prob = np.full(2500, 0.2)
        aware = proposal_aware_snis_estimate(y, w, X, domain, prob)
        for est in (known, aware):
            assert 0.0 <= est.ci_low <= est.value <= est.ci_high < 1.0
            assert est.ci_high > 0.0
        if clicks == 0:
            # Wilson's bound at 0 with Kish's n_e rows: z^2 / (n_e + z^2)
            n_e = w.sum() ** 2 / np.sum(w**2)
            assert known.ci_high == pytest.approx(1.959964**2 / (n_e + 1.959964**2))

    def test_all_clicks_mirror_no_clicks(self):
        w = np.exp(np.random.default_rng(0).normal(size=500))
        none, every = snis_estimate(np.zeros(500), w), snis_estimate(np.ones(500), w)
        assert every.ci_low == pytest.approx(1.0 - none.ci_high) and every.ci_high == 1.0

    def test_logit_bounds_keep_value_and_se_and_are_asymmetric(self):
        rng = np.random.default_rng(1)
        y = (rng.random(4000) < 0.02).astype(float)
        w = np.exp(rng.normal(0.0, 0.5, 4000))
        est = snis_estimate(y, w)
        mu = float(w @ y / w.sum())
        assert est.value == pytest.approx(mu)
        assert est.std_error == pytest.approx(
            np.sqrt(np.sum(w**2 * (y - mu) ** 2)) / w.sum())
        half = 1.959964 * est.std_error / (mu * (1 - mu))
        logit = np.log(mu / (1 - mu))
        assert est.ci_low == pytest.approx(1 / (1 + np.exp(-(logit - half))))
        assert est.value - est.ci_low < est.ci_high - est.value  # skewed away from 0

    def test_non_binary_labels_keep_symmetric_bounds(self):
        # a per-row loss difference (is_core.ctr.metrics) may be negative: no logit there
        rng = np.random.default_rng(2)
        d, w = rng.normal(-0.01, 0.1, 1000), np.ones(1000)
        est = snis_estimate(d, w)
        assert est.ci_high - est.value == pytest.approx(est.value - est.ci_low)


class TestRefusals:
    def test_length_mismatch_names_the_argument(self):
        y, w, X, domain, prob = _logistic_arrays(MEAN_SHIFT, 200, 50, 0)
        with pytest.raises(ParameterError, match="prob"):
            proposal_aware_snis_estimate(y, w, X, domain, prob[:-1])
        with pytest.raises(ValueError, match="source rows"):
            proposal_aware_snis_estimate(y[:-1], w, X, domain, prob)

    def test_calibrated_proposal_is_refused(self):
        sample = MEAN_SHIFT.sample(300, 300, np.random.default_rng(0))
        model = DomainClassifierRatio(numeric=sample.features, learner="xgboost", n_jobs=1,
                                      n_estimators=5, random_state=0).fit(
            sample.source, sample.target)
        with pytest.raises(ParameterError, match="logistic, uncalibrated"):
            proposal_aware_snis_from_model(model, sample.source, sample.target,
                                           sample.source["clicked"].to_numpy(dtype=float))


class TestFromModel:
    def test_the_weights_it_is_given_may_differ_by_a_fit_free_factor(self):
        # the interval depends on w only through w / sum(w) and d log w / d beta: a global
        # factor (the stage passes clipped, rescaled weights) changes nothing
        sample = MEAN_SHIFT.sample(2000, 500, np.random.default_rng(4))
        model = DomainClassifierRatio(numeric=sample.features, learner="logistic",
                                      random_state=0).fit(sample.source, sample.target)
        y = sample.source["clicked"].to_numpy(dtype=float)
        assert proposal_aware_unsupported(model) is None
        default = proposal_aware_snis_from_model(model, sample.source, sample.target, y)
        scaled = proposal_aware_snis_from_model(model, sample.source, sample.target, y,
                                                w=1e-3 * np.exp(model.log_ratio_source_))
        assert scaled.value == pytest.approx(default.value, rel=1e-12)
        assert scaled.std_error == pytest.approx(default.std_error, rel=1e-9)

    def test_a_tree_proposal_is_named_as_the_reason(self):
        sample = MEAN_SHIFT.sample(300, 300, np.random.default_rng(0))
        model = DomainClassifierRatio(numeric=sample.features, learner="xgboost", n_jobs=1,
                                      n_estimators=5, random_state=0).fit(
            sample.source, sample.target)
        assert "xgboost" in proposal_aware_unsupported(model)


class TestLinearState:
    """The weights stage rebuilds the proposal from JSON (no pickle): same design, same fits."""

    @pytest.mark.parametrize("kwargs", [{"learner": "logistic"},
                                        {"learner": "logistic", "numeric_basis": "quadratic",
                                         "max_fit_rows": 800}])
    def test_round_trip_gives_the_same_interval(self, kwargs):
        import json

        sample = MEAN_SHIFT.sample(1500, 500, np.random.default_rng(7))
        model = DomainClassifierRatio(numeric=sample.features, random_state=3, **kwargs).fit(
            sample.source, sample.target)
        state = json.loads(json.dumps(model.linear_state()))
        again = DomainClassifierRatio.from_linear_state(state, sample.source, sample.target)
        np.testing.assert_allclose(again.design_.transform(sample.target),
                                   model.design_.transform(sample.target))
        y = sample.source["clicked"].to_numpy(dtype=float)
        w = np.exp(model.log_ratio_source_)
        a = proposal_aware_snis_from_model(model, sample.source, sample.target, y, w)
        b = proposal_aware_snis_from_model(again, sample.source, sample.target, y, w)
        assert b.std_error == pytest.approx(a.std_error, rel=1e-12)

    def test_other_frames_are_refused(self):
        from is_core.errors import ProposalFitError

        sample = MEAN_SHIFT.sample(600, 300, np.random.default_rng(8))
        model = DomainClassifierRatio(numeric=sample.features, learner="logistic",
                                      random_state=0).fit(sample.source, sample.target)
        with pytest.raises(ProposalFitError, match="re-run the date"):
            DomainClassifierRatio.from_linear_state(model.linear_state(),
                                                    sample.source.iloc[:500], sample.target)

    def test_a_tree_proposal_has_no_linear_state(self):
        sample = MEAN_SHIFT.sample(300, 300, np.random.default_rng(0))
        model = DomainClassifierRatio(numeric=sample.features, learner="xgboost", n_jobs=1,
                                      n_estimators=5, random_state=0).fit(
            sample.source, sample.target)
        assert model.linear_state() is None
