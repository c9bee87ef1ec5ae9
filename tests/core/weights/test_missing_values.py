"""The proposal model's treatment of missing numerics and of categoricals of any storage type
(issue 11): a missing indicator plus mean imputation, identical at fit and transform time, and one
level per level text whatever the column's dtype.

Tolerances are derived from standard errors stated next to each assertion; every seed is fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from is_core.errors import ProposalFitError
from is_core.simulate.gaussian import GaussianShift
from is_core.weights._design import DomainDesign, category_text
from is_core.weights.domain import DomainClassifierRatio

#: One categorical column, stored five ways: the same levels "17", "3" and missing.
SAME_LEVELS = {
    "int64": pd.Series([17, 3, 17, 3, 17, 3]),
    "float64 (ints with nulls)": pd.Series([17.0, 3.0, np.nan, 3.0, 17.0, 3.0]),
    "Int64": pd.Series(pd.array([17, 3, None, 3, 17, 3], dtype="Int64")),
    "str": pd.Series(["17", "3", None, "3", "17", "3"], dtype="str"),
    "category of ints": pd.Series(pd.Categorical([17, 3, None, 3, 17, 3])),
}


class TestMissingIndicatorAndImputation:
    FRAME = pd.DataFrame({"x": [1.0, np.nan, 3.0, 5.0], "y": [1.0, 2.0, 3.0, 4.0]})

    def test_a_missing_value_gets_indicator_one_and_the_mean(self):
        design = DomainDesign(numeric=["x", "y"]).fit(self.FRAME)
        assert design.missing_indicator_ == ["x"]  # y has no missing value: no indicator
        assert design.mean_ == pytest.approx([3.0, 2.5])  # the mean of the present values
        X = design.transform(self.FRAME)
        assert X.shape == (4, 3) and design.n_numeric_out_ == 3
        np.testing.assert_array_equal(X[:, 2], [0, 1, 0, 0])
        assert X[1, 0] == 0.0  # imputed by the mean: z = (3 - 3) / sd = 0
        sd = np.std([1.0, 3.0, 5.0])  # the present values' standard deviation
        np.testing.assert_allclose(X[[0, 2, 3], 0], (np.array([1.0, 3.0, 5.0]) - 3.0) / sd)

    def test_transform_uses_the_fitted_mean_not_the_new_rows(self):
        design = DomainDesign(numeric=["x", "y"]).fit(self.FRAME)
        new = pd.DataFrame({"x": [np.nan, 100.0], "y": [np.nan, 2.5]})
        X = design.transform(new)
        # x: missing → z 0 and indicator 1; y had no missing value at fit: imputed, no indicator
        np.testing.assert_allclose(X[0], [0.0, 0.0, 1.0])
        assert X[1, 2] == 0.0 and X[1, 1] == 0.0  # y = 2.5 is the fitted mean

    def test_nullable_float_missing_values_are_missing(self):
        frame = pd.DataFrame({"x": pd.array([1.0, None, 3.0, 5.0], dtype="Float64"),
                              "y": [1.0, 2.0, 3.0, 4.0]})
        np.testing.assert_allclose(DomainDesign(numeric=["x", "y"]).fit(frame).transform(frame),
                                   DomainDesign(numeric=["x", "y"]).fit(self.FRAME)
                                   .transform(self.FRAME))

    @pytest.mark.parametrize("basis", ["quadratic", "spline"])
    def test_every_basis_imputes_before_the_basis(self, basis):
        x = np.random.default_rng(0).normal(size=200)
        x[::10] = np.nan
        frame = pd.DataFrame({"x": x})
        design = DomainDesign(numeric=["x"], basis=basis, n_knots=4).fit(frame)
        X = design.transform(frame)
        assert np.isfinite(X).all() and X.shape[1] == design.n_numeric_out_
        np.testing.assert_array_equal(X[:, -1], np.isnan(x))  # the indicator comes last
        # every missing row has the basis of z = 0 (the mean): one identical row
        assert np.ptp(X[np.isnan(x)], axis=0).max() == 0.0

    def test_a_column_with_no_present_value_is_imputed_by_zero(self):
        frame = pd.DataFrame({"x": [np.nan, np.nan, np.nan], "y": [1.0, 2.0, 3.0]})
        X = DomainDesign(numeric=["x", "y"]).fit(frame).transform(frame)
        assert np.isfinite(X).all()
        np.testing.assert_array_equal(X[:, 2], [1, 1, 1])

    def test_infinity_is_still_refused_by_the_proposal_model(self):
        rng = np.random.default_rng(0)
        source = pd.DataFrame({"x": rng.normal(size=50)})
        target = pd.DataFrame({"x": rng.normal(size=50)})
        source.loc[[1, 2], "x"] = [np.nan, np.inf]
        with pytest.raises(ProposalFitError, match=r"1 source row\(s\) have infinite values"):
            DomainClassifierRatio(numeric=["x"], n_folds=3).fit(source, target)


class TestMissingCompletelyAtRandomKnownTruth:
    def test_the_fitted_log_ratio_is_unchanged_in_expectation(self):
        """x0 missing completely at random (30 % in both domains) under a mean shift.

        Truth of what is observed: log w(x) = sum_j (mu_j x_j - mu_j^2 / 2) where x0 is present,
        the same without the x0 term where it is missing (x0 integrated out: E_q[w_0] = 1).
        The linear design has 5 + 1 coefficients (the indicator); with n = 12,000 rows and
        P(target) = 1/3 each has se ≈ 1 / sqrt(n p (1 - p)) = 0.019, x0's slope (70 % of the
        rows) 0.023. The RMS error over the source rows is then ≈ 0.021 sqrt(6) = 0.052,
        distributed like 0.052 sqrt(chi2_6 / 6), whose 99.9 % quantile is 0.052 * 1.93 = 0.10.
        The mean error of the 2,400 missing source rows has se ≈ sqrt(1 / (3,600 * 2/9))
        = 0.035 (their intercept + indicator), and 4 se = 0.14; imputing without an indicator
        would be off by mu_0 (mean(x0) - mu_0 / 2) = -1/6 there.
        """
        shift = GaussianShift("mcar", (1.0, 0.25, 0.25, 0.25), (1.0,) * 4)
        rng = np.random.default_rng(0)
        sample = shift.sample(8000, 4000, rng)
        source, target = sample.source.copy(), sample.target.copy()
        missing = rng.random(len(source)) < 0.3
        source.loc[missing, "x0"] = np.nan
        target.loc[rng.random(len(target)) < 0.3, "x0"] = np.nan
        model = DomainClassifierRatio(numeric=sample.features, numeric_basis="linear",
                                      n_folds=3, random_state=0).fit(source, target)
        assert model.design_.missing_indicator_ == ["x0"]
        x0 = sample.source["x0"].to_numpy()
        truth = sample.true_log_w_source - np.where(missing, x0 - 0.5, 0.0)
        err = model.log_ratio_source_ - truth
        assert np.sqrt(np.mean(err**2)) < 0.10
        assert abs(err[missing].mean()) < 4 * 0.035


class TestLevelTextInTheDesign:
    @pytest.mark.parametrize("name", list(SAME_LEVELS))
    def test_every_storage_type_gives_the_same_level_text(self, name):
        text = category_text(SAME_LEVELS[name]).tolist()
        expected = ["17", "3", "__missing__", "3", "17", "3"]
        if name == "int64":  # no missing value in this one
            expected[2] = "17"
        assert text == expected

    def test_int_and_text_columns_give_the_same_design(self):
        as_text = DomainDesign(categorical=["c"]).fit(
            pd.DataFrame({"c": SAME_LEVELS["str"]}))
        for name, column in SAME_LEVELS.items():
            if name == "int64":
                continue
            frame = pd.DataFrame({"c": column})
            design = DomainDesign(categorical=["c"]).fit(frame)
            assert design.levels_ == as_text.levels_ == {"c": ["3", "17", "__missing__"]}
            np.testing.assert_array_equal(as_text.transform(frame).toarray(),
                                          design.transform(frame).toarray(), err_msg=name)

    def test_booleans_are_levels(self):
        column = pd.Series(pd.array([True, False, None, True], dtype="boolean"))
        assert category_text(column).tolist() == ["True", "False", "__missing__", "True"]
        assert category_text(pd.Series([True, False])).tolist() == ["True", "False"]

    def test_an_int_source_and_a_text_target_share_their_levels(self):
        # int ids on the source, the same ids as text on the target: one level per id, so the
        # learned ratio is the ratio of the level frequencies (no spurious "text" levels)
        rng = np.random.default_rng(2)
        q, p = np.array([0.7, 0.3]), np.array([0.3, 0.7])
        source = pd.DataFrame({"c": rng.choice([17, 3], 4000, p=q)})
        target = pd.DataFrame({"c": pd.array(rng.choice(["17", "3"], 4000, p=p), dtype="str")})
        model = DomainClassifierRatio(categorical=["c"], n_folds=3, random_state=0,
                                      n_jobs=1).fit(source, target)
        assert sorted(model.design_.levels_["c"]) == ["17", "3"]
        got = model.log_ratio_source_[source["c"].to_numpy() == 17].mean()
        # se of a log ratio of proportions: sqrt(1.5 ((1-p)/(n p) + (1-q)/(n q))) ≈ 0.045
        assert got == pytest.approx(np.log(0.3 / 0.7), abs=4 * 0.045)

    def test_a_constant_column_stored_two_ways_is_constant(self):
        rng = np.random.default_rng(0)
        source = pd.DataFrame({"c": [5] * 60, "x": rng.normal(size=60)})
        target = pd.DataFrame({"c": pd.array(["5"] * 60, dtype="str"), "x": rng.normal(size=60)})
        model = DomainClassifierRatio(numeric=["x"], categorical=["c"], n_folds=3,
                                      random_state=0).fit(source, target)
        assert model.dropped_features_ == ["c"]
