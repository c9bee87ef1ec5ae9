"""The promotion gate as a pure function: each of its checks, one behaviour per test.

Paired differences are given as intervals; the non-inferiority rule reads their upper bound of
"how much worse", so the tests place intervals straddling, above and below the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from is_core.config import PromotionConfig
from is_core.ctr.metrics import bootstrap_metrics
from is_core.errors import ParameterError
from is_core.release.promotion import (
    check_metric,
    check_non_inferior,
    check_recency,
    check_weight_gates,
    check_weighting,
    choose_challenger,
    decide_promotion,
    metric_value,
    worse_by,
)

VALID = {"source": {"success": True}, "target": {"success": True}}
DIAGNOSTICS = {"ess_fraction": 0.4}
TOLERANCE = 0.001


def model(version: str, logloss: float, auc: float = 0.7, calibration_ratio: float = 1.0,
          run_date: str = "2026-11-28", kind: str = "weighted") -> dict:
    return {"version": version, "run_date": run_date, "model": kind,
            "metrics": {"logloss": logloss, "auc": auc, "calibration_ratio": calibration_ratio}}


def interval(value: float, low: float, high: float) -> dict:
    return {"estimator": "difference", "value": value, "std_error": (high - low) / 3.92,
            "ci_low": low, "ci_high": high, "level": 0.95}


def decide(challenger, champion, difference=None, config=None, validation=VALID,
           diagnostics=DIAGNOSTICS, weighting_difference=None):
    config = config or PromotionConfig(tolerance=TOLERANCE)
    differences = {} if weighting_difference is None else {"weighted": weighting_difference}
    _, weighting = choose_challenger(config, differences)
    return decide_promotion(config, min_ess_fraction=0.05, validation=validation,
                            diagnostics=diagnostics, challenger=challenger, champion=champion,
                            evaluated_on="target_holdout", n=1000, weighting=weighting,
                            weighting_differences=differences,
                            champion_difference=difference)


class TestNonInferiority:
    """Upper bound of how much worse < tolerance promotes; the point estimate alone never does."""

    @pytest.mark.parametrize("low, high, passed", [
        (-0.0002, 0.0018, False),  # straddles the tolerance: not shown non-inferior
        (0.0012, 0.0030, False),   # entirely above the tolerance
        (-0.0010, 0.0008, True),   # entirely below the tolerance (straddles 0)
        (-0.0030, -0.0010, True),  # significantly better
    ])
    def test_logloss_interval_against_the_tolerance(self, low, high, passed):
        diff = interval((low + high) / 2, low, high)
        assert check_metric("logloss", diff, TOLERANCE).passed is passed
        d = decide(model("2", 0.15), model("1", 0.15), diff)
        assert d.promote is passed
        assert d.worse_by_upper == pytest.approx(high)

    def test_the_issue_case_a_point_within_tolerance_but_an_interval_above_zero(self):
        # 0.0008 worse, interval entirely above 0 and reaching past the tolerance: refused
        d = decide(model("2", 0.1508), model("1", 0.15), interval(0.0008, 0.0002, 0.0014))
        assert not d.promote and d.worse_by == pytest.approx(0.0008)
        assert "not shown non-inferior" in d.reason

    def test_auc_is_higher_is_better(self):
        # challenger - champion AUC in [-0.004, 0.002]: how much worse is in [-0.002, 0.004]
        assert worse_by("auc", interval(-0.001, -0.004, 0.002)) == (0.001, 0.004)
        assert not check_metric("auc", interval(-0.001, -0.004, 0.002), 0.003).passed
        assert check_metric("auc", interval(0.002, -0.001, 0.005), 0.003).passed

    def test_non_finite_difference_never_promotes(self):
        assert not check_non_inferior("metric", "logloss", interval(np.nan, np.nan, np.nan),
                                      TOLERANCE, "a", "b").passed

    def test_first_model_is_promoted_without_comparison(self):
        d = decide(model("1", logloss=0.3), None)
        assert d.promote and d.champion is None and d.worse_by is None
        assert "no champion" in d.reason

    def test_a_champion_without_its_interval_is_refused(self):
        with pytest.raises(ParameterError, match="champion_difference"):
            decide(model("2", 0.15), model("1", 0.15), None)

    def test_calibration_error_is_distance_from_one(self):
        assert metric_value({"calibration_ratio": 0.9}, "calibration_error") == pytest.approx(0.1)
        assert metric_value({"calibration_ratio": 1.2}, "calibration_error") == pytest.approx(0.2)


class TestOperatingCharacteristic:
    """A challenger truly 0.001 worse (the tolerance) with paired SE 0.0004: the point rule
    passed it about half the time; the non-inferiority rule passes it with probability
    P(d + 1.96 se < 0.001) = P(Z < -1.96) = 0.025."""

    def test_truly_worse_by_the_tolerance_rarely_passes(self):
        rng = np.random.default_rng(0)
        se = 0.0004
        draws = 0.001 + se * rng.standard_normal(4000)
        passed = [check_metric("logloss", interval(d, d - 1.96 * se, d + 1.96 * se),
                               TOLERANCE).passed for d in draws]
        # Binomial(4000, 0.025): sd 0.0025, so 4 sd either side
        assert abs(np.mean(passed) - norm.cdf(-1.96)) < 4 * np.sqrt(0.025 * 0.975 / 4000)
        point_rule = np.mean(draws <= TOLERANCE)
        assert abs(point_rule - 0.5) < 4 * np.sqrt(0.25 / 4000)

    def test_the_bootstrap_interval_is_the_one_the_gate_reads(self):
        # two models on the same rows: the gate's numbers are bootstrap_metrics' difference
        rng = np.random.default_rng(1)
        p = rng.uniform(0.01, 0.2, 5000)
        y = (rng.random(5000) < p).astype(float)
        boot = bootstrap_metrics(y, {"a": p, "b": np.clip(p * 1.3, 0, 0.99)}, baseline="b",
                                 n_boot=100, random_state=0)
        diff = boot["difference"]["a"]["logloss"]
        check = check_metric("logloss", diff, TOLERANCE)
        assert check.passed is (diff["ci_high"] < TOLERANCE)
        assert f"{diff['ci_high']:+.6f}" in check.detail
        assert "calibration_error" in boot["difference"]["a"]


class TestWeightingChoice:
    """Today's challenger: the weighted model when it is non-inferior to the baseline."""

    def test_weighting_that_lost_gives_the_baseline(self):
        choice, check = choose_challenger(PromotionConfig(tolerance=TOLERANCE),
                                          {"weighted": interval(0.0021, 0.0010, 0.0032)})
        assert choice == "unweighted" and not check.passed
        assert "weighted model logloss worse than unweighted baseline by 0.002100" in check.detail

    def test_weighting_that_paid_gives_the_weighted_model(self):
        choice, check = choose_challenger(PromotionConfig(tolerance=TOLERANCE),
                                          {"weighted": interval(-0.002, -0.003, -0.001)})
        assert choice == "weighted" and check.passed

    def test_an_interval_straddling_the_tolerance_is_not_enough(self):
        choice, _ = choose_challenger(PromotionConfig(tolerance=TOLERANCE),
                                      {"weighted": interval(0.0004, -0.0004, 0.0012)})
        assert choice == "unweighted"

    def test_among_candidates_that_paid_the_better_one_is_chosen(self):
        differences = {"weighted": interval(-0.0005, -0.0015, 0.0005),
                       "recalibrated": interval(-0.0015, -0.0022, -0.0008)}
        choice, check = choose_challenger(PromotionConfig(tolerance=TOLERANCE), differences)
        assert choice == "recalibrated" and check.passed
        assert "recalibrated baseline" in check.detail and "beside: weighted" in check.detail

    def test_a_candidate_that_did_not_pay_is_passed_over(self):
        differences = {"weighted": interval(-0.003, -0.0070, 0.0011),  # better point, too wide
                       "recalibrated": interval(-0.001, -0.0015, -0.0005)}
        choice, _ = choose_challenger(PromotionConfig(tolerance=TOLERANCE), differences)
        assert choice == "recalibrated"

    def test_not_required_keeps_the_weighted_model(self):
        config = PromotionConfig(tolerance=TOLERANCE, require_weighting_not_worse=False)
        choice, check = choose_challenger(config, {"weighted": interval(0.01, 0.005, 0.015)})
        assert choice == "weighted" and "not required" in check.detail
        assert check_weighting("logloss", None, TOLERANCE).passed

    def test_day_one_baseline_is_promoted_and_named(self):
        lost = interval(0.0021, 0.0010, 0.0032)
        d = decide(model("1", 0.0706, kind="unweighted"), None, weighting_difference=lost)
        assert d.promote and not d.weighting["applied"]
        assert "unweighted baseline; weighting not applied" in d.reason
        assert d.weighting["differences"] == {"weighted": lost}


class TestOtherChecks:
    def test_failed_validation_blocks(self):
        d = decide(model("2", 0.1), model("1", 0.2), interval(-0.1, -0.11, -0.09),
                   validation={"source": {"success": True}, "target": {"success": False}})
        assert not d.promote and "validation" in d.reason and "target" in d.reason

    def test_ess_below_gate_blocks(self):
        check = check_weight_gates({"ess_fraction": 0.01}, min_ess_fraction=0.05)
        assert not check.passed and "0.0100" in check.detail

    @pytest.mark.parametrize("gates", [
        {"khat": {"status": "fail", "value": 0.9}},
        [{"name": "khat", "status": "fail"}],
    ])
    def test_failing_diagnostic_gate_blocks(self, gates):
        check = check_weight_gates({"ess_fraction": 0.5, "gates": gates}, 0.05)
        assert not check.passed and "khat=fail" in check.detail

    def test_warning_blocks_only_when_configured(self):
        diagnostics = {"ess_fraction": 0.5, "gates": {"domain_auc": {"status": "warn"}}}
        assert check_weight_gates(diagnostics, 0.05, allow_warnings=True).passed
        assert not check_weight_gates(diagnostics, 0.05, allow_warnings=False).passed

    def test_backfill_of_an_older_date_never_demotes_a_newer_champion(self):
        assert not check_recency("2026-11-20", "2026-11-28").passed
        assert check_recency("2026-11-28", "2026-11-28").passed
        d = decide(model("3", 0.1, run_date="2026-11-20"),
                   model("2", 0.2, run_date="2026-11-28"), interval(-0.1, -0.11, -0.09))
        assert not d.promote and "recency" in d.reason

    def test_decision_lists_every_check_with_numbers(self):
        d = decide(model("2", 0.149), model("1", 0.150),
                   interval(-0.001, -0.0015, -0.0005)).to_dict()
        assert [c["name"] for c in d["checks"]] == ["validation", "weight_gates", "recency",
                                                    "metric"]
        assert d["challenger"]["value"] == 0.149 and d["champion"]["value"] == 0.150
        assert d["tolerance"] == 0.001 and d["metric"] == "logloss" and d["lower_is_better"]
        assert d["worse_by"] == pytest.approx(-0.001)
        assert d["worse_by_upper"] == pytest.approx(-0.0005)
