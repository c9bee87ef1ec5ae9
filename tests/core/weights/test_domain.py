"""The proposal model against known truth, and its refusals of bad input.

Tolerances are derived from standard errors stated next to each assertion; every seed is fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from is_core.errors import ProposalFitError
from is_core.simulate.gaussian import gaussian_scenarios
from is_core.weights._design import DomainDesign, category_text, level_codes
from is_core.weights.diagnostics import (
    WeightDiagnostics,
    diagnose_weights,
    evaluate_gates,
    weight_nmse,
)
from is_core.weights.domain import DomainClassifierRatio
from is_core.weights.normalize import normalize_log_weights

SCENARIOS = gaussian_scenarios(d=4)


def _fit(name: str, n_source: int = 3000, n_target: int = 3000, seed: int = 0, **params):
    sample = SCENARIOS[name].sample(n_source, n_target, np.random.default_rng(seed))
    model = DomainClassifierRatio(numeric=sample.features, n_folds=3, random_state=seed,
                                  **params).fit(sample.source, sample.target)
    return sample, model


def _auc_null_se(n_source: int, n_target: int) -> float:
    """Standard error of the Mann–Whitney AUC when both samples share one distribution."""
    return float(np.sqrt((n_source + n_target + 1) / (12 * n_source * n_target)))


class TestKnownTruth:
    def test_mean_shift_log_ratio_is_recovered(self):
        sample, model = _fit("mean_shift")
        err = model.log_ratio_source_ - sample.true_log_w_source
        # log w = mu'x - |mu|^2/2 is linear: the 5 fitted coefficients are MLEs with variance
        # ≈ 1 / (n p (1 - p)) = 1 / (6000 * 0.25), se ≈ 0.026 each. The error at x then has
        # sd ≈ 0.026 * sqrt(1 + |x|^2), RMS over source rows ≈ 0.026 * sqrt(1 + d) = 0.058,
        # distributed like 0.058 * sqrt(chi2_5 / 5), whose 99.9 % quantile is 0.058 * 2.02.
        assert np.sqrt(np.mean(err**2)) < 0.058 * 2.02
        assert model.numeric_basis_ == "linear"

    def test_variance_shift_needs_the_quadratic_basis(self):
        sample, auto = _fit("variance_shift")
        _, linear = _fit("variance_shift", numeric_basis="linear")
        w_true = np.exp(sample.true_log_w_source)
        # A symmetric ratio has no linear part: the best linear fit is a constant, whose NMSE is
        # exactly 1 by definition; the quadratic model is well specified (NMSE -> 0 as n grows,
        # O(p/n) = O(8/3000) per unit of weight variance here).
        assert weight_nmse(np.exp(linear.log_ratio_source_), w_true) > 0.8
        assert weight_nmse(np.exp(auto.log_ratio_source_), w_true) < 0.1
        assert auto.numeric_basis_ == "quadratic"
        assert auto.basis_log_loss_["quadratic"] < auto.basis_log_loss_["linear"]

    def test_no_shift_gives_auc_near_half_and_ess_near_n(self):
        sample, model = _fit("no_shift")
        # Under no shift the out-of-fold AUC is a Mann–Whitney statistic of exchangeable scores.
        assert abs(model.domain_auc_ - 0.5) < 4 * _auc_null_se(3000, 3000)
        final = normalize_log_weights(model.log_ratio_source_)
        diagnostics = diagnose_weights(model.log_ratio_source_, model.log_ratio_source_, final,
                                       "none", np.inf, model.domain_auc_)
        assert diagnostics.ess_fraction > 0.95

    def test_prior_correction_with_unequal_sample_sizes(self):
        # 6000 source vs 1500 target rows, no shift: the classifier's logit is about
        # log(1500/6000); the prior term log(6000/1500) must cancel it, leaving log w ≈ 0 with
        # the intercept's standard error sqrt(1/6000 + 1/1500) ≈ 0.029.
        _, model = _fit("no_shift", n_source=6000, n_target=1500)
        assert model.log_prior_correction_ == pytest.approx(np.log(4.0))
        assert abs(np.mean(model.log_ratio_source_)) < 4 * np.sqrt(1 / 6000 + 1 / 1500)

    def test_categorical_shift_recovers_the_exact_ratio(self):
        rng = np.random.default_rng(5)
        levels = np.array(["a", "b", "c"])
        q, p = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.3, 0.5])
        source = pd.DataFrame({"c": pd.array(rng.choice(levels, 6000, p=q), dtype="str")})
        target = pd.DataFrame({"c": pd.array(rng.choice(levels, 6000, p=p), dtype="str")})
        for learner in ("logistic", "xgboost"):
            model = DomainClassifierRatio(categorical=["c"], learner=learner, n_folds=3,
                                          random_state=0, n_jobs=1).fit(source, target)
            for k, level in enumerate(levels):
                got = model.log_ratio_source_[source["c"].to_numpy() == level].mean()
                # log of a ratio of two proportions: se^2 = (1-p)/(n p) + (1-q)/(n q); the
                # fold models see 2/3 of the rows, so the se of each fold's estimate is
                # sqrt(3/2) larger, and averaging folds does not shrink it below the full-data se.
                se = np.sqrt(1.5 * ((1 - p[k]) / (6000 * p[k]) + (1 - q[k]) / (6000 * q[k])))
                assert got == pytest.approx(np.log(p[k] / q[k]), abs=4 * se), (learner, level)

    def test_log_ratio_of_new_rows_tracks_the_truth(self):
        _, model = _fit("mean_shift")
        fresh = SCENARIOS["mean_shift"].sample(2000, 10, np.random.default_rng(99))
        got = model.log_ratio(fresh.source)
        assert np.corrcoef(got, fresh.true_log_w_source)[0, 1] > 0.99


class TestCrossFittingAndCalibration:
    def test_cross_fitting_keeps_an_overfitting_learner_honest(self):
        # Deep trees separate the training rows perfectly; out-of-fold, with no shift, the AUC
        # must still be a null Mann–Whitney statistic.
        sample, model = _fit("no_shift", n_source=1000, n_target=1000, learner="xgboost",
                             max_depth=8, n_estimators=200, n_jobs=1)
        assert abs(model.domain_auc_ - 0.5) < 4 * _auc_null_se(1000, 1000)
        X = model._frame(pd.concat([sample.source, sample.target], ignore_index=True))
        in_sample = model.estimators_[0].predict(X, output_margin=True)
        assert np.ptp(in_sample) > np.ptp(model.log_ratio_source_) / 10  # it can overfit

    def test_sigmoid_calibration_tames_overconfident_boosting(self):
        _, raw = _fit("mean_shift", learner="xgboost", max_depth=6, n_jobs=1)
        _, calibrated = _fit("mean_shift", learner="xgboost", max_depth=6, n_jobs=1,
                             calibration="sigmoid")
        assert raw.calibration_slope_ < 1  # over-confident margins
        assert calibrated.calibration_error_ < raw.calibration_error_
        assert np.std(calibrated.log_ratio_source_) < np.std(raw.log_ratio_source_)

    def test_isotonic_calibration_gives_finite_weights(self):
        _, model = _fit("mean_shift", learner="xgboost", n_jobs=1, calibration="isotonic")
        assert np.isfinite(model.log_ratio_source_).all()


class TestBadInput:
    def _frames(self, n: int = 200):
        sample = SCENARIOS["mean_shift"].sample(n, n, np.random.default_rng(1))
        return sample.source, sample.target, sample.features

    def test_empty_target(self):
        source, target, features = self._frames()
        with pytest.raises(ProposalFitError, match="target sample has 0 rows"):
            DomainClassifierRatio(numeric=features).fit(source, target.iloc[:0])

    def test_single_domain(self):
        source, target, features = self._frames()
        with pytest.raises(ProposalFitError, match="source sample has 0 rows"):
            DomainClassifierRatio(numeric=features).fit(source.iloc[:0], target)

    @pytest.mark.parametrize("bad", [np.inf, -np.inf])
    def test_infinite_feature_names_the_column(self, bad):
        source, target, features = self._frames()
        source = source.copy()
        source.loc[3, "x2"] = bad
        with pytest.raises(ProposalFitError, match=r"infinite values in \['x2'\]"):
            DomainClassifierRatio(numeric=features).fit(source, target)

    @pytest.mark.parametrize("learner", ["logistic", "xgboost"])
    def test_a_missing_numeric_value_is_not_an_error(self, learner):
        # regression (issue 11): a NaN is a missing value, not a bad one; ±inf still fails
        source, target, features = self._frames()
        source, target = source.copy(), target.copy()
        source.loc[3, "x2"], target.loc[[0, 5], "x1"] = np.nan, np.nan
        model = DomainClassifierRatio(numeric=features, learner=learner, n_folds=3,
                                      random_state=0, n_jobs=1).fit(source, target)
        assert np.isfinite(model.log_ratio_source_).all()
        assert np.isfinite(model.log_ratio(target)).all()

    def test_constant_feature_is_dropped(self):
        source, target, features = self._frames()
        source, target = source.assign(k=1.0), target.assign(k=1.0)
        model = DomainClassifierRatio(numeric=[*features, "k"], n_folds=3).fit(source, target)
        assert model.dropped_features_ == ["k"]
        assert np.isfinite(model.log_ratio_source_).all()

    def test_only_constant_features_is_an_error(self):
        source, target, _ = self._frames()
        with pytest.raises(ProposalFitError, match=r"every feature column is constant.*\['k'\]"):
            DomainClassifierRatio(numeric=["k"]).fit(source.assign(k=2.0), target.assign(k=2.0))

    def test_unknown_learner(self):
        source, target, features = self._frames()
        with pytest.raises(ProposalFitError, match="learner='svm'"):
            DomainClassifierRatio(numeric=features, learner="svm").fit(source, target)

    def test_disjoint_support_gives_finite_weights_and_a_failing_gate(self):
        sample, model = _fit("disjoint", n_source=2000, n_target=2000)
        log_w = model.log_ratio_source_
        final = normalize_log_weights(log_w)
        assert np.isfinite(final).all() and (final >= 0).all()
        diagnostics: WeightDiagnostics = diagnose_weights(log_w, log_w, final, "none", np.inf,
                                                          model.domain_auc_)
        statuses = {g.gate: g.status for g in evaluate_gates(diagnostics)}
        assert model.domain_auc_ > 0.99
        assert statuses["domain_auc"] == "fail"


class TestFittingSample:
    """``max_fit_rows``: the classifiers see a seeded sample of at most half the cap per domain;
    every row is still weighted by models that never saw it."""

    def test_prior_correction_uses_the_sample_proportions(self):
        # 12000 source vs 1500 target rows, no shift, cap 4000: 2000 source and all 1500 target
        # rows are fitted. The fitted logit is about log(1500/2000), cancelled by the prior
        # term; log w ≈ 0 up to the intercept's se sqrt(1/2000 + 1/1500) ≈ 0.034.
        _, model = _fit("no_shift", n_source=12_000, n_target=1_500, max_fit_rows=4_000)
        assert (model.n_fit_source_, model.n_fit_target_) == (2_000, 1_500)
        assert model.log_prior_correction_ == pytest.approx(np.log(2_000 / 1_500))
        assert len(model.log_ratio_source_) == 12_000
        assert abs(np.mean(model.log_ratio_source_)) < 4 * np.sqrt(1 / 2_000 + 1 / 1_500)

    def test_mean_shift_is_recovered_from_the_sample(self):
        sample, model = _fit("mean_shift", n_source=12_000, n_target=12_000,
                             max_fit_rows=6_000)
        err = model.log_ratio_source_ - sample.true_log_w_source
        # As in TestKnownTruth with n = 6000 fitted rows: coefficient se ≈ 1/sqrt(6000 * 0.25)
        # = 0.026, RMS error ≈ 0.026 * sqrt(5) = 0.058, 99.9 % quantile factor 2.02.
        assert np.sqrt(np.mean(err**2)) < 0.058 * 2.02

    def test_rows_outside_the_sample_get_the_fold_models_mean(self):
        sample, model = _fit("mean_shift", n_source=5_000, n_target=5_000, max_fit_rows=2_000)
        # The 8000 rows outside the sample were seen by no fold model: their log w is exactly
        # what log_ratio() gives new rows. In-sample rows get their out-of-fold logit, which
        # differs from the K-model mean.
        np.testing.assert_allclose(model.log_ratio(sample.source), model.log_ratio_source_,
                                   rtol=0, atol=0.5)
        same = np.isclose(model.log_ratio(sample.source), model.log_ratio_source_, atol=1e-12)
        assert 5_000 - 1_000 <= same.sum() < 5_000

    def test_a_cap_above_the_rows_changes_nothing(self):
        _, capped = _fit("mean_shift", n_source=2_000, n_target=2_000, max_fit_rows=10_000)
        _, full = _fit("mean_shift", n_source=2_000, n_target=2_000)
        np.testing.assert_array_equal(capped.log_ratio_source_, full.log_ratio_source_)

    def test_a_cap_too_small_for_the_folds_is_refused(self):
        with pytest.raises(ProposalFitError, match="max_fit_rows=5"):
            _fit("mean_shift", n_source=200, n_target=200, max_fit_rows=5)


class TestDesign:
    def test_level_codes_match_a_lookup_of_each_row(self):
        column = pd.Series(["b", None, "a", "zz", "b", "__missing__"], dtype="str")
        levels = ["__missing__", "a", "b"]
        expected = pd.Index(levels).get_indexer(category_text(column))
        np.testing.assert_array_equal(level_codes(column, levels), expected)
        numbers = pd.Series([3, 1, 3, 7])
        np.testing.assert_array_equal(level_codes(numbers, ["1", "3"]), [1, 0, 1, -1])

    def test_infrequent_levels_share_a_column_and_unseen_ones_go_there(self):
        frame = pd.DataFrame({"c": pd.array(list("aaabbc"), dtype="str")})
        design = DomainDesign(categorical=["c"], max_categories=2).fit(frame)
        assert design.levels_ == {"c": ["a"]} and design.has_infrequent_["c"]
        X = design.transform(pd.DataFrame({"c": pd.array(["a", "b", "new"], dtype="str")}))
        np.testing.assert_array_equal(X.toarray(), [[1, 0], [0, 1], [0, 1]])

    def test_without_infrequent_levels_an_unseen_level_has_no_column(self):
        frame = pd.DataFrame({"c": pd.array(list("aab"), dtype="str"), "x": [0.0, 1.0, 2.0]})
        design = DomainDesign(numeric=["x"], categorical=["c"]).fit(frame)
        X = design.transform(pd.DataFrame({"c": pd.array(["b", "new"], dtype="str"),
                                           "x": [1.0, 1.0]}))
        np.testing.assert_allclose(X.toarray(), [[0, 0, 1], [0, 0, 0]])

    def test_quadratic_basis_is_standardized_values_and_squares(self):
        x = np.random.default_rng(0).normal(2.0, 3.0, 1000)
        design = DomainDesign(numeric=["x"], basis="quadratic").fit(pd.DataFrame({"x": x}))
        X = design.transform(pd.DataFrame({"x": x}))
        np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-12)
        z = (x - x.mean()) / x.std()
        assert np.corrcoef(X[:, 1], z**2)[0, 1] == pytest.approx(1.0)
