"""The promotion gate as a pure function: each of its checks, one behaviour per test."""

from __future__ import annotations

import pytest

from is_core.config import PromotionConfig
from is_core.release.promotion import (
    check_metric,
    check_recency,
    check_weight_gates,
    check_weighting,
    decide_promotion,
    metric_value,
)

VALID = {"source": {"success": True}, "target": {"success": True}}
DIAGNOSTICS = {"ess_fraction": 0.4}


def model(version: str, logloss: float, auc: float = 0.7, calibration_ratio: float = 1.0,
          run_date: str = "2026-11-28") -> dict:
    return {"version": version, "run_date": run_date,
            "metrics": {"logloss": logloss, "auc": auc, "calibration_ratio": calibration_ratio}}


def decide(challenger, champion, config=None, validation=VALID, diagnostics=DIAGNOSTICS,
           baseline=None):
    return decide_promotion(config or PromotionConfig(tolerance=0.001), min_ess_fraction=0.05,
                            validation=validation, diagnostics=diagnostics,
                            challenger=challenger, champion=champion,
                            evaluated_on="target_holdout", n=1000, baseline=baseline)


class TestMetricCheck:
    def test_worse_challenger_beyond_tolerance_is_not_promoted(self):
        d = decide(model("2", logloss=0.160), model("1", logloss=0.150))
        assert not d.promote
        assert d.worse_by == pytest.approx(0.010)
        assert "metric" in d.reason and "keep champion v1" in d.reason

    def test_slightly_worse_within_tolerance_is_promoted(self):
        d = decide(model("2", logloss=0.1505), model("1", logloss=0.150))
        assert d.promote and d.worse_by == pytest.approx(0.0005)

    def test_better_challenger_is_promoted(self):
        d = decide(model("2", logloss=0.149), model("1", logloss=0.150))
        assert d.promote and d.worse_by == pytest.approx(-0.001)

    def test_auc_is_higher_is_better(self):
        config = PromotionConfig(metric="auc", tolerance=0.0)
        worse = decide(model("2", 0.1, auc=0.69), model("1", 0.2, auc=0.70), config)
        better = decide(model("2", 0.2, auc=0.71), model("1", 0.1, auc=0.70), config)
        assert (worse.promote, better.promote) == (False, True)

    def test_calibration_error_is_distance_from_one(self):
        assert metric_value({"calibration_ratio": 0.9}, "calibration_error") == pytest.approx(0.1)
        assert metric_value({"calibration_ratio": 1.2}, "calibration_error") == pytest.approx(0.2)
        config = PromotionConfig(metric="calibration_error", tolerance=0.0)
        d = decide(model("2", 0.1, calibration_ratio=1.05),
                   model("1", 0.1, calibration_ratio=0.9), config)
        assert d.promote and d.worse_by == pytest.approx(-0.05)

    def test_first_model_is_promoted_without_comparison(self):
        d = decide(model("1", logloss=0.3), None)
        assert d.promote and d.champion is None and d.worse_by is None
        assert "no champion" in d.reason

    def test_non_finite_metric_never_promotes(self):
        check, _ = check_metric("logloss", float("nan"), 0.15, 0.001)
        assert not check.passed


class TestOtherChecks:
    def test_failed_validation_blocks(self):
        d = decide(model("2", 0.1), model("1", 0.2),
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
                   model("2", 0.2, run_date="2026-11-28"))
        assert not d.promote and "recency" in d.reason

    def test_decision_lists_every_check_with_numbers(self):
        d = decide(model("2", 0.149), model("1", 0.150)).to_dict()
        assert [c["name"] for c in d["checks"]] == ["validation", "weight_gates", "recency",
                                                    "metric", "weighting"]
        assert d["challenger"]["value"] == 0.149 and d["champion"]["value"] == 0.150
        assert d["tolerance"] == 0.001 and d["metric"] == "logloss" and d["lower_is_better"]


class TestWeightingCheck:
    """A weighted challenger must not lose to today's unweighted baseline on the same rows."""

    def test_weighting_that_costs_more_than_the_tolerance_blocks_promotion(self):
        d = decide(model("2", logloss=0.152), None, baseline={"metrics": model("b", 0.150)[
            "metrics"]})
        assert not d.promote
        assert "weighting: weighted logloss 0.152000 vs unweighted baseline 0.150000" in d.reason
        assert "no champion" in d.reason

    def test_weighting_within_the_tolerance_or_better_passes(self):
        assert check_weighting("logloss", 0.1505, 0.150, 0.001).passed
        assert check_weighting("logloss", 0.140, 0.150, 0.001).passed
        assert check_weighting("auc", 0.71, 0.70, 0.0).passed
        assert not check_weighting("auc", 0.69, 0.70, 0.005).passed

    def test_no_baseline_means_no_requirement(self):
        check = check_weighting("logloss", 0.5, None, 0.001)
        assert check.passed and "not required" in check.detail

    def test_non_finite_metric_fails(self):
        assert not check_weighting("logloss", float("nan"), 0.150, 0.001).passed
