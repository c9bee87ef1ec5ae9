"""Importance subsampling of the training rows: exact keep probabilities and weights, unbiased
Horvitz–Thompson totals, solved rates, seeded per-partition draws, the config's rules, and the
train stage fitting every candidate on the sample with its combined weights."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from is_core.config import IsbenchConfig, TrainConfig
from is_core.ctr.model import WeightedCTRModel, metadata_path
from is_core.ctr.sampling import (
    CORRECTION_ROWS,
    CORRECTION_SHARE,
    ImportanceSubsampler,
    combined_weights,
    correction_rows,
    correction_share,
    draw_partition,
    fit_sampling_correction,
    gradient_scores,
    intercept_standard_error,
    keep_probabilities,
    loss_rate,
    negative_rate,
    partition_seed,
)
from is_core.ctr.stage import train_models, weighted_template
from is_core.data.stage import locate_inputs
from is_core.errors import ConfigError, ParameterError
from is_core.report.content import sampling_lines
from is_core.weights.diagnostics import effective_sample_size
from tests.conftest import RUN_DATE, small_config


def _clicks(n: int, ctr: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a champion-like probability that knows something about them."""
    rng = np.random.default_rng(seed)
    logit = np.log(ctr / (1 - ctr)) + rng.normal(scale=1.2, size=n)
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype("int8")
    return y, np.clip(p * np.exp(rng.normal(scale=0.3, size=n)), 1e-6, 0.9)


def _bisect(scores: np.ndarray, target: float) -> float:
    lo, hi = 0.0, 1.0 / scores.min()
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(1, mid * scores).sum() < target else (lo, mid)
    return (lo + hi) / 2


class TestKeepProbabilities:
    def test_negative_keeps_every_click_and_weights_non_clicks_by_one_over_r(self):
        y, _ = _clicks(20_000, 0.03, 0)
        sampler = ImportanceSubsampler("negative", keep_fraction=0.1).fit(y)
        r = sampler.rate_
        assert r == pytest.approx((0.1 * y.size - y.sum()) / (y.size - y.sum()), rel=1e-12)
        pi = sampler.keep_probabilities(y)
        np.testing.assert_array_equal(pi, np.where(y == 1, 1.0, r))
        for partition in range(20):
            kept, w = sampler.sample_partition(y, partition=partition)
            assert set(np.flatnonzero(y == 1)) <= set(kept)  # clicks are never dropped
            np.testing.assert_array_equal(w, np.where(y[kept] == 1, 1.0, 1 / r))

    def test_loss_probabilities_are_min_of_one_and_c_times_the_score(self):
        y, p = _clicks(20_000, 0.03, 1)
        sampler = ImportanceSubsampler("loss", keep_fraction=0.1, uniform_share=0.2).fit(y, p)
        g = np.abs(y - p)
        s = 0.8 * g + 0.2 * g.mean()
        np.testing.assert_allclose(sampler.keep_probabilities(y, p),
                                   np.minimum(1, sampler.rate_ * s), rtol=1e-12)
        kept, w = sampler.sample_partition(y, p, partition=0)
        np.testing.assert_allclose(w, 1 / np.minimum(1, sampler.rate_ * s[kept]), rtol=1e-12)
        # a click's gradient 1 - p is large: clicks are kept far more often than non-clicks
        pi = sampler.keep_probabilities(y, p)
        assert pi[y == 1].mean() > 5 * pi[y == 0].mean()

    @pytest.mark.parametrize("strategy", ["negative", "loss"])
    def test_weighted_count_estimates_the_full_count_within_its_standard_error(self, strategy):
        """Horvitz–Thompson: E[sum of 1/pi over kept rows] = n, Var = sum (1 - pi)/pi."""
        y, p = _clicks(30_000, 0.03, 2)
        sampler = ImportanceSubsampler(strategy, keep_fraction=0.1).fit(y, p)
        pi = sampler.keep_probabilities(y, p)
        se = np.sqrt(np.sum((1 - pi) / pi))
        z = np.array([(sampler.sample_partition(y, p, partition=k)[1].sum() - y.size) / se
                      for k in range(40)])
        assert np.all(np.abs(z) < 4)  # each draw within 4 standard errors
        assert abs(z.mean()) < 4 / np.sqrt(z.size)  # unbiased: the mean z within 4 SE of 0
        assert 0.5 < z.std() < 1.5  # the derived standard error is the draws' spread

    def test_the_weighted_loss_estimates_the_full_loss(self):
        y, p = _clicks(30_000, 0.03, 3)
        loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
        sampler = ImportanceSubsampler("loss", keep_fraction=0.05).fit(y, p)
        pi = sampler.keep_probabilities(y, p)
        se = np.sqrt(np.sum((1 - pi) / pi * loss**2))
        estimates = []
        for k in range(40):
            kept, w = sampler.sample_partition(y, p, partition=k)
            estimates.append(np.sum(w * loss[kept]))
        z = (np.array(estimates) - loss.sum()) / se
        assert np.all(np.abs(z) < 4) and abs(z.mean()) < 4 / np.sqrt(z.size)


class TestSolvingTheRate:
    def test_negative_rate_hits_the_target_size(self):
        y, _ = _clicks(10_000, 0.04, 4)
        for fraction in (0.1, 0.2, 0.7):
            sampler = ImportanceSubsampler("negative", keep_fraction=fraction).fit(y)
            assert sampler.keep_probabilities(y).sum() == pytest.approx(fraction * y.size)
        assert ImportanceSubsampler("negative", max_rows=10**9).fit(y).rate_ == 1.0

    @pytest.mark.parametrize("target", [1.5, 100, 1000.25, 4999])
    def test_loss_rate_closed_form_hits_the_target_and_matches_bisection(self, target):
        scores = np.random.default_rng(5).lognormal(sigma=2, size=5000)
        c = loss_rate(scores, target)
        assert np.minimum(1, c * scores).sum() == pytest.approx(target, rel=1e-9)
        assert c == pytest.approx(_bisect(scores, target), rel=1e-6)

    def test_a_target_of_every_row_keeps_every_row(self):
        scores = np.array([0.1, 0.5, 2.0])
        assert np.all(np.minimum(1, loss_rate(scores, 3) * scores) == 1)

    def test_negative_cannot_keep_fewer_rows_than_the_clicks(self):
        y = np.r_[np.ones(100), np.zeros(900)].astype(int)
        with pytest.raises(ParameterError, match="keeps every click") as info:
            ImportanceSubsampler("negative", keep_fraction=0.05).fit(y)
        assert info.value.parameter == "keep_fraction"
        with pytest.raises(ParameterError) as info:
            negative_rate(1000, 100, 50)
        assert info.value.parameter == "target_rows"

    def test_loss_without_a_champion_falls_back_to_negative(self):
        y, _ = _clicks(5000, 0.05, 6)
        sampler = ImportanceSubsampler("loss", max_rows=1000).fit(y, None)
        assert sampler.strategy_ == "negative" and sampler.rate_name_ == "r"
        assert "no champion" in sampler.fallback_
        assert sampler.keep_probabilities(y).sum() == pytest.approx(1000)


class TestSeededDraws:
    def test_the_same_seed_draws_the_same_sample(self):
        y, p = _clicks(5000, 0.05, 7)
        a = ImportanceSubsampler("loss", keep_fraction=0.2, random_state=3).fit(y, p)
        b = ImportanceSubsampler("loss", keep_fraction=0.2, random_state=3).fit(y, p)
        for x, z in zip(a.sample_partition(y, p, partition=2),
                        b.sample_partition(y, p, partition=2), strict=True):
            np.testing.assert_array_equal(x, z)
        other = ImportanceSubsampler("loss", keep_fraction=0.2, random_state=4).fit(y, p)
        assert not np.array_equal(other.sample_partition(y, p, partition=2)[0],
                                  a.sample_partition(y, p, partition=2)[0])

    def test_a_partition_draw_depends_only_on_its_rows_and_seed(self):
        """Partitions drawn in any order (or on other workers) give the same sample, which is
        the concatenation of the partitions' draws."""
        y, p = _clicks(9000, 0.05, 8)
        sampler = ImportanceSubsampler("loss", keep_fraction=0.2, random_state=1).fit(y, p)
        bounds = [(0, 2000), (2000, 6500), (6500, 9000)]
        forward = [sampler.sample_partition(y[a:b], p[a:b], partition=k)
                   for k, (a, b) in enumerate(bounds)]
        backward = {k: sampler.sample_partition(y[a:b], p[a:b], partition=k)
                    for k, (a, b) in reversed(list(enumerate(bounds)))}
        for k in range(len(bounds)):
            np.testing.assert_array_equal(forward[k][0], backward[k][0])
        scores = sampler.scores(y[2000:6500], p[2000:6500])
        alone = draw_partition(y[2000:6500], scores, strategy="loss", rate=sampler.rate_,
                               seed=partition_seed(1, 1))
        np.testing.assert_array_equal(alone[0], forward[1][0])
        np.testing.assert_array_equal(alone[1], forward[1][1])


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(n=st.integers(20, 400), ctr=st.floats(0.01, 0.5), fraction=st.floats(0.05, 1.0),
           share=st.floats(0.01, 1.0), seed=st.integers(0, 2**16))
    def test_loss_weights_probabilities_and_expectation(self, n, ctr, fraction, share, seed):
        y, p = _clicks(n, ctr, seed)
        sampler = ImportanceSubsampler("loss", keep_fraction=fraction, uniform_share=share,
                                       random_state=seed).fit(y, p)
        pi = sampler.keep_probabilities(y, p)
        assert np.all((pi > 0) & (pi <= 1))
        assert pi.sum() == pytest.approx(fraction * n, rel=1e-9)
        kept, w = sampler.sample_partition(y, p, partition=0)
        assert np.all(w >= 1)
        np.testing.assert_allclose(w, 1 / pi[kept])
        # E[sum_kept a_i / pi_i] = sum_i pi_i a_i / pi_i = sum_i a_i, for any per-row a
        a = np.random.default_rng(seed).normal(size=n)
        assert np.sum(pi * (a / pi)) == pytest.approx(a.sum(), abs=1e-9 * np.abs(a).sum())

    @settings(max_examples=40, deadline=None)
    @given(n=st.integers(20, 400), ctr=st.floats(0.02, 0.5), seed=st.integers(0, 2**16))
    def test_negative_weights_and_probabilities(self, n, ctr, seed):
        y, _ = _clicks(n, ctr, seed)
        if y.sum() == 0 or y.size - y.sum() < 2:  # max_rows must exceed the clicks
            return
        target = y.sum() + 0.5 * (y.size - y.sum())
        sampler = ImportanceSubsampler("negative", max_rows=int(target)).fit(y)
        pi = sampler.keep_probabilities(y)
        assert np.all((pi > 0) & (pi <= 1)) and np.all(pi[y == 1] == 1)
        kept, w = sampler.sample_partition(y, partition=seed)
        assert np.all(w >= 1) and set(np.flatnonzero(y == 1)) <= set(kept)

    def test_scores_are_positive_even_for_a_perfect_champion(self):
        y = np.array([0, 1, 0])
        s = gradient_scores(y, y.astype(float), mean_gradient=0.0, uniform_share=0.2)
        assert np.all(s > 0)
        assert keep_probabilities("none", y, None, 1.0).tolist() == [1, 1, 1]

    def test_combined_weights_are_the_product_scaled_to_mean_one(self):
        combined = combined_weights(np.array([1.0, 2.0, 0.5]), np.array([1.0, 4.0, 4.0]))
        np.testing.assert_allclose(combined, np.array([1.0, 8.0, 2.0]) / (11 / 3))


class TestConfig:
    def test_both_sizes_name_the_keys_and_the_fix(self):
        with pytest.raises(ConfigError, match="train.keep_fraction and train.max_rows") as info:
            IsbenchConfig.from_mapping({"train": {"sampling": "negative", "keep_fraction": 0.1,
                                                  "max_rows": 1000}})
        assert "remove one of them" in info.value.fix

    def test_a_strategy_needs_a_size_and_a_size_needs_a_strategy(self):
        with pytest.raises(ConfigError, match="needs a target size"):
            IsbenchConfig.from_mapping({"train": {"sampling": "loss"}})
        with pytest.raises(ConfigError, match="train.sampling is 'none'"):
            IsbenchConfig.from_mapping({"train": {"max_rows": 1000}})
        assert TrainConfig().sampling == "none"


# ---------------------------------------------------------------------------- the stage
TRAIN = {"n_estimators": 15, "early_stopping_rounds": 3, "n_jobs": 1,
         "sampling": "negative", "keep_fraction": 0.3}


@pytest.fixture(scope="module")
def stage_setup(small_data_root, tmp_path_factory):
    """Inputs of the small scenario and mildly varying final weights of mean 1."""
    root = tmp_path_factory.mktemp("sampling-stage")
    config = small_config(small_data_root, root / "runs", train=TRAIN)
    inputs = locate_inputs(config.data, config.columns, RUN_DATE)
    n = sum(len(pd.read_parquet(f)) for f, _ in inputs["roles"]["source"]["files"])
    final = np.exp(np.random.default_rng(0).normal(scale=0.4, size=n))
    path = root / "weights.parquet"
    pd.DataFrame({"final_weight": final / final.mean()}).to_parquet(path)
    weights = {"path": str(path), "diagnostics": {}, "target_ctr": {}}
    return config, inputs, weights, root, final / final.mean()


def _train(setup, name, champion=None, **train):
    config, inputs, weights, root, _ = setup
    out = root / name
    out.mkdir()
    return train_models(config.train.model_copy(update=train), config.columns, inputs,
                        weights, out, random_state=0, metadata={}, champion=champion)


@pytest.fixture(scope="module")
def negative_run(stage_setup):
    return _train(stage_setup, "negative")


class TestTrainStage:
    def test_the_summary_reports_the_sample_its_ess_and_calibration(self, stage_setup,
                                                                    negative_run):
        s = negative_run["sampling"]
        assert s is not None and s["applied"] == "negative" and s["fallback"] is None
        assert s["n_rows"] == len(stage_setup[4])  # a holdout exists: every source row trains
        assert abs(s["kept_rows"] - 0.3 * s["n_rows"]) < 4 * np.sqrt(s["n_rows"])
        assert s["rate_name"] == "r" and 0 < s["rate"] < 0.3
        assert 0 < s["ess_fraction"] <= 1 and 0 < s["sampling_ess_fraction"] <= 1
        assert s["calibration_ratio"] is not None and 0.5 < s["calibration_ratio"] < 2
        assert s["weighted_calibration_ratio"] is not None
        # a tenth of the training rows is held out for the correction, the rest is sampled
        n, held = s["n_rows"], s["correction_rows"]
        assert abs(held - CORRECTION_SHARE * n) < 4 * np.sqrt(n * 0.1 * 0.9)
        assert abs(s["kept_rows"] - 0.3 * (n - held)) < 4 * np.sqrt(n)
        for name in ("weighted", "unweighted"):
            assert negative_run[name]["n_train"] + negative_run[name]["n_valid"] == \
                s["kept_rows"]
        lines = sampling_lines({"sampling": s})
        assert "kept" in lines[0] and "ESS/n" in lines[1] and "Calibration ratio" in lines[2]
        assert "held out of the sample" in lines[2] and "applied (intercept)" in lines[2]

    def test_the_sampled_boosters_are_saved_with_their_correction(self, stage_setup,
                                                                  negative_run):
        """Each sampled booster carries its intercept correction inside the UBJSON file (and
        its .meta.json); the recalibrated candidate keeps its own calibrator of the raw
        baseline."""
        s = negative_run["sampling"]
        assert s["correction"] == "intercept" and set(s["correction_coef"]) == {
            "weighted", "unweighted"}
        for name in ("weighted", "unweighted"):
            model = WeightedCTRModel.load(negative_run[name]["path"])
            assert model.calibrator_.method_ == "intercept"
            a, b = s["correction_coef"][name]
            assert model.calibrator_.coef_.tolist() == [a, b] and b == 1.0
            assert s["correction_se"][name] > 0
            meta = json.loads(metadata_path(negative_run[name]["path"]).read_text())
            assert meta["sampling_correction"]["method"] == "intercept"
        recalibrated = WeightedCTRModel.load(negative_run["recalibrated"]["path"])
        assert recalibrated.calibrator_.method_ in ("platt", "isotonic")

    def test_without_a_correction_only_the_ratios_are_reported(self, stage_setup):
        run = _train(stage_setup, "uncorrected", sampling_correction="none", recalibrate=False)
        s = run["sampling"]
        # no rows held out: the sample is drawn from every training row, nothing is measured
        assert s["correction_rows"] == 0 and s["correction_coef"] is None
        assert s["calibration_ratio"] is None and s["weighted_calibration_ratio"] is None
        assert abs(s["kept_rows"] - 0.3 * s["n_rows"]) < 4 * np.sqrt(s["n_rows"])
        assert getattr(WeightedCTRModel.load(run["unweighted"]["path"]), "calibrator_",
                       None) is None
        lines = sampling_lines({"sampling": s})
        assert "none applied" in lines[2] and "n/a" in lines[2]

    def test_the_combined_weights_feed_the_min_child_weight_gate(self, stage_setup,
                                                                 negative_run):
        """The weighted booster's min_child_weight is divided by the Kish ESS/n of importance
        x sampling weights, the baseline's by that of its sampling weights alone."""
        s, final = negative_run["sampling"], stage_setup[4]
        meta = json.loads(metadata_path(negative_run["weighted"]["path"]).read_text())
        assert meta["sampling"]["kept_rows"] == s["kept_rows"]
        assert s["min_child_weight"]["weighted"] == pytest.approx(1.0 / s["ess_fraction"])
        assert s["min_child_weight"]["unweighted"] == pytest.approx(
            1.0 / s["sampling_ess_fraction"])
        # the combined weights rest on fewer effective rows than the importance weights alone
        assert s["ess_fraction"] < effective_sample_size(final) / len(final)

    def test_loss_scores_with_the_champion_and_falls_back_without_one(self, stage_setup,
                                                                      negative_run):
        champion = negative_run["unweighted"]["path"]
        loss = _train(stage_setup, "loss", champion=champion, sampling="loss",
                      recalibrate=False)
        s = loss["sampling"]
        assert s["applied"] == "loss" and s["rate_name"] == "c" and s["champion"] == champion
        assert WeightedCTRModel.load(loss["unweighted"]["path"]).n_train_ > 0
        broken = stage_setup[3] / "missing.ubj"
        fallback = _train(stage_setup, "loss-fallback", champion=str(broken), sampling="loss",
                          recalibrate=False, n_estimators=5)["sampling"]
        assert fallback["applied"] == "negative" and "could not be loaded" in fallback["fallback"]


# ---------------------------------------------------------------------------- the correction
class TestCorrectionSlice:
    def test_the_share_is_a_tenth_capped_at_the_row_limit(self):
        assert correction_share(1000) == CORRECTION_SHARE
        assert correction_share(100 * CORRECTION_ROWS) * 100 * CORRECTION_ROWS == \
            pytest.approx(CORRECTION_ROWS)

    def test_the_slice_is_seeded_per_partition_and_of_its_share(self):
        n, share = 200_000, 0.1
        a = correction_rows(n, share, random_state=3, partition=1)
        assert np.array_equal(a, correction_rows(n, share, random_state=3, partition=1))
        assert not np.array_equal(a, correction_rows(n, share, random_state=3, partition=2))
        assert abs(a.sum() - share * n) < 4 * np.sqrt(n * share * (1 - share))
        # its own stream: the sample's uniforms of the same partition are independent of it
        u = np.random.default_rng(partition_seed(3, 1)).random(n)
        assert abs(np.corrcoef(a, u)[0, 1]) < 4 / np.sqrt(n)


def _logistic_world(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Five standard normal features, P(click | x) = expit(-3.5 + x . beta) (CTR about 6 %):
    the features, the labels and the exact click probabilities."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    p = 1 / (1 + np.exp(-(-3.5 + x @ np.array([0.9, -0.7, 0.5, 0.4, -0.3]))))
    return (pd.DataFrame(x, columns=[f"x{j}" for j in range(5)]),
            (rng.random(n) < p).astype("int8"), p)


class TestCorrectionAgainstTruth:
    def test_the_intercept_removes_the_sampled_boosters_over_prediction(self):
        """Negative downsampling at r = 0.05 with weights 1/r is unbiased in the loss, yet the
        booster's out-of-sample mean prediction runs high (a leaf's click rate is convex in its
        sampled non-click mass). The intercept fitted on a held-out uniform slice brings the
        mean prediction on fresh rows to the exact CTR within its standard error; the raw
        booster is further away than that."""
        X, y, _ = _logistic_world(400_000, 0)
        held = correction_rows(len(y), 0.1, random_state=0, partition=0)
        rows = np.flatnonzero(~held)
        sampler = ImportanceSubsampler("negative", keep_fraction=0.05 + 0.95 * 0.05).fit(y[rows])
        kept, w = sampler.sample_partition(y[rows], partition=0)
        w = combined_weights(None, w)
        template = WeightedCTRModel(numeric=list(X.columns), n_estimators=150,
                                    learning_rate=0.1, max_depth=6, early_stopping_rounds=20,
                                    n_jobs=1, random_state=0)
        model = weighted_template(template, w, "ess").fit(X.iloc[rows[kept]], y[rows[kept]],
                                                          sample_weight=w)
        slice_X, slice_y = X[held], y[held].astype(float)
        p_slice = model.predict_proba(slice_X)
        calibrator = fit_sampling_correction("intercept", p_slice, slice_y)
        se = intercept_standard_error(calibrator.transform(p_slice), slice_y)
        fresh, _, truth = _logistic_world(200_000, 1)
        raw = model.predict_proba(fresh).mean() / truth.mean()
        corrected = model.with_calibrator(calibrator).predict_proba(fresh).mean() / truth.mean()
        # the intercept's relative error carries over to the ratio (fresh rows add ~0.2 %)
        assert abs(corrected - 1) < 4 * se + 0.01
        assert raw - 1 > 3 * se
