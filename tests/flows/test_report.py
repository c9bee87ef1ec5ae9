"""The run report: verdict text generated from the numbers, weight profile, and a
self-contained report.html written by the daily_retrain flow with stable artifact keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from flows.daily_retrain import daily_retrain
from is_core.report.content import verdict, weight_profile
from is_core.report.render import render_html
from tests.conftest import RUN_DATE, small_config


def _metrics(diff: tuple[float, float, float], calib: tuple[float, float],
             evaluated_on: str = "target_holdout") -> dict:
    value, low, high = diff
    model = {"auc": 0.7, "logloss": 0.1, "ece": 0.01}
    return {
        "evaluated_on": evaluated_on,
        "weighted": {**model, "logloss": 0.1 + value, "calibration_ratio": calib[0]},
        "unweighted": {**model, "calibration_ratio": calib[1]},
        "delta": {"logloss": {"value": 9.0, "ci_low": 8.0, "ci_high": 10.0}},
        "differences": {"weighted": {"logloss": {"value": value, "ci_low": low,
                                                 "ci_high": high}}},
    }


class TestVerdict:
    @pytest.mark.parametrize(("diff", "word"), [
        ((-0.004, -0.006, -0.002), "improved"),
        ((0.004, 0.002, 0.006), "worsened"),
        ((-0.001, -0.003, 0.001), "did not significantly change"),
    ])
    def test_outcome_follows_the_paired_interval(self, diff, word):
        v = verdict(_metrics(diff, (0.99, 0.95)))
        assert v["logloss"] == word
        assert v["text"].startswith(f"Importance weighting {word} target holdout logloss")
        # X ± Y: the paired bootstrap difference and its half-width, not the delta-method one
        assert f"{diff[0]:+.5f} ± {(diff[2] - diff[1]) / 2:.5f}" in v["text"]
        assert "+9.00000" not in v["text"]

    def test_without_a_holdout_it_names_the_weighted_source_split(self):
        # Regression: the verdict said "source split importance weighted logloss", which did not
        # tell a reader that no target holdout existed and the numbers are IS estimates.
        v = verdict(_metrics((-0.004, -0.006, -0.002), (1, 1),
                             evaluated_on="source_split_importance_weighted"))
        assert v["text"].startswith(
            "Importance weighting improved logloss on an importance-weighted source split "
            "(no target holdout): ")

    def test_calibration_direction(self):
        assert verdict(_metrics((0, -1, 1), (0.99, 0.95)))["calibration"] == (
            "closer to 1 with weighting")
        assert verdict(_metrics((0, -1, 1), (1.10, 1.02)))["calibration"] == (
            "further from 1 with weighting")

    def test_promotion_decision_is_stated_with_its_reason(self):
        v = verdict(_metrics((-0.004, -0.006, -0.002), (1, 1)),
                    {"promote": False, "reason": "keep champion v1; metric worse"})
        assert v["promote"] is False
        assert "Promote: no because keep champion v1; metric worse." in v["text"]


class TestWeightProfile:
    def test_histogram_counts_every_positive_weight(self):
        rng = np.random.default_rng(0)
        raw = np.r_[np.exp(rng.normal(0, 1.5, 5000)), 0.0]
        profile = weight_profile(raw, raw / raw.mean())
        h = profile["histogram"]
        assert sum(h["raw"]) == sum(h["final"]) == 5000
        assert profile["zeros"] == {"raw": 1, "final": 1}
        assert len(h["log10_edges"]) == len(h["raw"]) + 1

    def test_ess_never_falls_as_the_cap_tightens(self):
        # Capping the largest weights at c: ESS(c) = (A + kc)^2 / (B + kc^2) over the k capped
        # rows, with A, B the sum and sum of squares of the others; dESS/dc has the sign of
        # B - cA ≤ 0 because every uncapped weight is ≤ c. So ESS/n is non-increasing in the cap.
        rng = np.random.default_rng(1)
        raw = np.exp(rng.normal(0, 2.0, 20_000))
        sweep = weight_profile(raw, raw)["clip_sweep"]
        quantiles = [s["quantile"] for s in sweep]
        assert quantiles == sorted(quantiles, reverse=True) and quantiles[0] == 1.0
        ess = [s["ess_fraction"] for s in sweep]
        assert all(b >= a - 1e-12 for a, b in zip(ess, ess[1:], strict=False))
        # lognormal(σ=2) weights: ESS/n = exp(-σ²) ≈ 0.018 in the population; heavy tail k̂ > 0.5
        assert sweep[0]["ess_fraction"] < 0.1 and sweep[0]["khat"] > 0.5


@pytest.fixture(scope="module")
def run_dir(prefect_harness, small_data_root: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Path:
    out = tmp_path_factory.mktemp("report-runs")
    config = small_config(small_data_root, out, evaluation={"n_boot": 50})
    result = daily_retrain(config=config, run_date=RUN_DATE)
    return Path(result["run_dir"])


@pytest.mark.usefixtures("prefect_harness")
class TestRunReport:
    def test_report_json_has_intervals_and_curves(self, run_dir):
        report = json.loads((run_dir / "report.json").read_text())
        m = report["metrics"]
        for model in ("weighted", "unweighted"):
            for metric in ("auc", "logloss", "ne", "ece", "calibration_ratio"):
                ci = m["intervals"][model][metric]
                assert ci["ci_low"] <= m[model][metric] <= ci["ci_high"], (model, metric)
            assert len(m["reliability"][model]) >= 5
        assert m["bootstrap"] == {"n_boot": 50, "level": 0.95}
        assert "labeled target holdout" in m["evaluation_note"]
        d = m["differences"]["weighted"]["logloss"]
        assert f"{d['value']:+.5f}" in report["verdict"]["text"]

    def test_html_is_self_contained_with_plots_and_tables(self, run_dir):
        page = (run_dir / "report.html").read_text()
        assert page.startswith("<!DOCTYPE html>")
        assert "<script" not in page and "<link" not in page and " src=" not in page
        # the only URL is the SVG namespace, which browsers never fetch
        assert set(re.findall(r"https?://[^\"' )]+", page)) == {"http://www.w3.org/2000/svg"}
        assert page.count("<svg") >= 4 and page.count("<table") >= 4
        for title in ("Importance weights (log scale)", "ESS/n against the clip level",
                      "Pareto k̂ against the clip level",
                      "Reliability: observed CTR against mean prediction"):
            assert title in page
        report = json.loads((run_dir / "report.json").read_text())
        assert render_html(report) == page  # the file is exactly the rendering of report.json

    def test_link_artifact_points_at_the_published_html(self, run_dir):
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        with get_client(sync_client=True) as client:
            found = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["isbench-report-html"])))
        assert found, "no artifact with key isbench-report-html"
        uri = (run_dir / "report.html").resolve().as_uri()
        assert any(a.data.endswith(f"({uri})") for a in found), [a.data for a in found]
