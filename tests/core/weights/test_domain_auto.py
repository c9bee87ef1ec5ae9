"""``learner="auto"``, the proposal model's default, against known truth (issue 16 item 1).

Every seed is fixed; the margins are standard errors stated next to each assertion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from is_core.config import ProposalConfig
from is_core.errors import ProposalParameterError
from is_core.simulate.clicklog import ClickScenario
from is_core.simulate.gaussian import gaussian_scenarios
from is_core.weights._design import DomainDesign
from is_core.weights.diagnostics import weight_nmse
from is_core.weights.domain import AUTO_LEARNERS, C_GRID, DomainClassifierRatio
from is_core.weights.stage import _proposal_summary

SCENARIOS = gaussian_scenarios(d=4)
CLICK = ClickScenario()


def _paired_excess(w_hat: np.ndarray, w_ref: np.ndarray, w_true: np.ndarray
                   ) -> tuple[float, float]:
    """NMSE(w_hat) - NMSE(w_ref) against ``w_true`` and its standard error (the per-row
    squared-error differences, both weight vectors rescaled to mean 1)."""
    w_hat, w_ref, w_true = (w / w.mean() for w in (w_hat, w_ref, w_true))
    d = (np.square(w_hat - w_true) - np.square(w_ref - w_true)) / np.mean(np.square(w_true - 1))
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


@pytest.fixture(scope="module")
def click_sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    world = CLICK.build()
    rng = np.random.default_rng(0)
    return world.sample(2000, "source", rng), world.sample(2000, "target", rng)


@pytest.fixture(scope="module")
def click_auto(click_sample) -> DomainClassifierRatio:
    source, target = click_sample
    return DomainClassifierRatio(numeric=CLICK.numeric_features,
                                 categorical=CLICK.categorical_features, learner="auto",
                                 n_folds=3, random_state=0).fit(source, target)


class TestSelection:
    def test_every_candidate_is_scored(self, click_auto):
        assert list(click_auto.candidate_log_loss_) == list(AUTO_LEARNERS)
        assert click_auto.learner_ in AUTO_LEARNERS
        assert click_auto.C_ in C_GRID
        assert all(np.isfinite(v) for v in click_auto.candidate_log_loss_.values())

    def test_the_choice_is_within_one_standard_error_of_the_best(self, click_auto):
        losses = click_auto.candidate_log_loss_
        chosen = click_auto.learner_
        assert losses[chosen] - min(losses.values()) <= click_auto.candidate_log_loss_se_[chosen]
        # and no simpler candidate qualified (the one-SE rule takes the simplest that does)
        best = min(losses.values())
        for name in AUTO_LEARNERS[:AUTO_LEARNERS.index(chosen)]:
            assert losses[name] - best > click_auto.candidate_log_loss_se_[name]

    def test_reliability_curve_has_ten_ordered_bins(self, click_auto):
        curve = click_auto.domain_reliability_
        assert len(curve["mean_predicted"]) == len(curve["observed"]) == 10
        assert sum(curve["rows"]) == 4000
        assert np.all(np.diff(curve["mean_predicted"]) >= 0)

    def test_click_log_weights_no_worse_than_the_old_default(self, click_sample, click_auto):
        source, target = click_sample
        old = DomainClassifierRatio(numeric=CLICK.numeric_features,
                                    categorical=CLICK.categorical_features, learner="logistic",
                                    n_folds=3, random_state=0).fit(source, target)
        exact = source["true_weight"].to_numpy()
        auto_nmse = weight_nmse(np.exp(click_auto.log_ratio_source_), exact)
        assert auto_nmse <= weight_nmse(np.exp(old.log_ratio_source_), exact)

    @pytest.mark.parametrize("name", ["mean_shift", "variance_shift"])
    def test_gaussian_choice_is_as_accurate_as_the_best_fixed_learner(self, name):
        sample = SCENARIOS[name].sample(3000, 3000, np.random.default_rng(1))
        true_w = np.exp(sample.true_log_w_source)

        def weights(**params) -> np.ndarray:
            model = DomainClassifierRatio(numeric=sample.features, n_folds=3, random_state=1,
                                          **params).fit(sample.source, sample.target)
            return np.exp(model.log_ratio_source_)

        fixed = [weights(learner="logistic"),
                 weights(learner="xgboost", calibration="sigmoid", n_jobs=1)]
        best = min(fixed, key=lambda w: weight_nmse(w, true_w))
        excess, se = _paired_excess(weights(learner="auto"), best, true_w)
        assert excess <= 2 * se + 1e-12  # no detectable loss against the best fixed learner

    def test_selection_runs_on_a_sub_sample_and_the_fit_on_every_row(self, click_sample):
        source, target = click_sample
        model = DomainClassifierRatio(numeric=CLICK.numeric_features, categorical=["item_id"],
                                      learner="auto", n_folds=3, random_state=0,
                                      max_selection_rows=600).fit(source, target)
        assert model.n_selection_rows_ == 600
        assert model.n_fit_source_ + model.n_fit_target_ == 4000
        assert model.log_ratio_source_.shape == (2000,)
        assert np.isfinite(model.log_ratio_source_).all()


class TestReport:
    def test_the_proposal_summary_carries_the_choice_and_the_scores(self, click_auto):
        summary = _proposal_summary(ProposalConfig(), click_auto, Path("log_ratio.parquet"), None,
                                    None, 0.0)
        assert summary["learner"] == "auto" and summary["chosen_learner"] == click_auto.learner_
        assert summary["candidate_log_loss"] == click_auto.candidate_log_loss_
        assert summary["C"] == click_auto.C_
        assert len(summary["domain_reliability"]["observed"]) == 10
        json.dumps(summary)  # lands in report.json as it is


class TestConventions:
    def test_default_of_the_pipeline_is_auto(self):
        assert ProposalConfig().learner == "auto"

    def test_clone_and_get_params(self):
        model = DomainClassifierRatio(learner="auto", max_selection_rows=1000, random_state=3)
        params = clone(model).get_params()
        assert params["learner"] == "auto" and params["max_selection_rows"] == 1000

    def test_fit_returns_self_and_fixed_learners_score_no_candidates(self, click_sample):
        source, target = click_sample
        model = DomainClassifierRatio(numeric=["user_f0"], learner="logistic", n_folds=3)
        assert model.fit(source, target) is model
        assert model.learner_ == "logistic" and model.C_ == 1.0
        assert not hasattr(model, "candidate_log_loss_")

    def test_a_selection_sample_too_small_for_the_folds_is_refused(self, click_sample):
        with pytest.raises(ProposalParameterError, match="max_selection_rows"):
            DomainClassifierRatio(numeric=["user_f0"], learner="auto",
                                  max_selection_rows=5).fit(*click_sample)


class TestCrosses:
    def _frame(self) -> pd.DataFrame:
        return pd.DataFrame({"a": ["x", "x", "y", "y", "y", "z"],
                             "b": ["p", "q", "p", "p", "q", "q"]})

    def test_each_pair_of_levels_gets_a_column(self):
        frame = self._frame()
        design = DomainDesign(categorical=["a", "b"], crosses=True).fit(frame)
        X = design.transform(frame).toarray()
        pair = X[:, 5:]  # after the one-hot blocks of a (3 levels) and b (2 levels)
        assert design.n_features_out_ == 5 + 5  # five distinct (a, b) pairs
        assert np.all(pair.sum(axis=1) == 1)
        same = (frame["a"] + frame["b"]).to_numpy()
        for i in range(len(frame)):
            for j in range(len(frame)):
                assert (pair[i] == pair[j]).all() == (same[i] == same[j])

    def test_rare_and_unseen_pairs_share_the_infrequent_column(self):
        frame = self._frame()
        design = DomainDesign(categorical=["a", "b"], crosses=True, max_categories=2).fit(frame)
        new = pd.DataFrame({"a": ["y", "z", "w"], "b": ["p", "p", "p"]})
        pair = design.transform(new).toarray()[:, -2:]
        assert pair[0].tolist() == [1.0, 0.0]  # (y, p), the most frequent pair
        assert pair[1].tolist() == pair[2].tolist() == [0.0, 1.0]  # unseen pairs: infrequent

    def test_without_crosses_the_design_is_unchanged(self):
        frame = self._frame()
        plain = DomainDesign(categorical=["a", "b"]).fit(frame)
        assert plain.n_features_out_ == 5 and not plain.cross_keys_
