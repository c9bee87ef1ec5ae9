"""The proposal and weights stages (no Prefect): outputs, logged propensities, gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from is_core.config import ProposalConfig, WeightsConfig
from is_core.data.stage import locate_inputs
from is_core.errors import ConfigError, ParameterError, WeightDiagnosticsError
from is_core.simulate.clicklog import ClickScenario
from is_core.weights.stage import CLIP_KEYS, PROPOSAL_KEYS, compute_weights, fit_proposal
from tests.conftest import RUN_DATE, small_config

SCENARIO = ClickScenario(seed=3)  # the scenario of small_data_root
UNIFORM_TARGET_PROPENSITY = 1 / (SCENARIO.n_items * SCENARIO.n_positions)


def _run(data_root: Path, tmp_path: Path, **overrides):
    config = small_config(data_root, tmp_path / "runs", **overrides)
    inputs = locate_inputs(config.data, config.columns, RUN_DATE)
    out = tmp_path / "stage"
    out.mkdir(exist_ok=True)
    proposal = fit_proposal(config.proposal, config.columns, inputs, out,
                            random_state=config.random_state, n_jobs=config.train.n_jobs)
    return config, proposal, lambda: compute_weights(config.weights, config.columns, inputs,
                                                     proposal, out,
                                                     random_state=config.random_state)


@pytest.fixture(scope="module")
def default_proposal(small_data_root, tmp_path_factory):
    """One fitted default proposal shared by the tests that only vary the weights config."""
    return _run(small_data_root, tmp_path_factory.mktemp("proposal"))[1]


def _weights(data_root: Path, proposal: dict, tmp_path: Path, **overrides) -> dict:
    config = small_config(data_root, tmp_path / "runs", **overrides)
    inputs = locate_inputs(config.data, config.columns, RUN_DATE)
    return compute_weights(config.weights, config.columns, inputs, proposal, tmp_path,
                           random_state=config.random_state)


def test_default_weights_are_diagnosed_and_gated(small_data_root, default_proposal, tmp_path):
    proposal = default_proposal
    out = _weights(small_data_root, proposal, tmp_path)
    d = out["diagnostics"]
    assert {g["gate"] for g in d["gates"]} == {"ess_fraction", "khat", "domain_auc",
                                              "max_weight_share", "logged_spearman",
                                              "clipped_fraction"}
    assert all(g["status"] in ("pass", "warn") for g in d["gates"])
    assert d["clip_method"] == "auto" and 0 <= d["clipped_fraction"] <= 0.10
    assert "shift_kept" in d and "shift_kept" in d["clip"]["details"]
    assert proposal["numeric_basis"] in ("linear", "quadratic")
    frame = pd.read_parquet(out["path"])
    assert frame["final_weight"].mean() == pytest.approx(1.0)
    assert np.isfinite(frame["final_weight"]).all()
    assert set(out["target_ctr"]) >= {"naive", "is_raw", "snis", "snis_bootstrap", "dr"}
    for est in out["target_ctr"].values():
        assert 0.0 <= est["ci_low"] <= est["value"] <= est["ci_high"] <= 1.0, est


def test_a_linear_proposal_gives_the_proposal_aware_interval(small_data_root, tmp_path):
    _, proposal, weights = _run(small_data_root, tmp_path, proposal={"learner": "logistic"})
    assert Path(proposal["model_path"]).is_file()
    out = weights()
    ctr = out["target_ctr"]
    assert ctr["snis"]["estimator"] == "snis_proposal_aware"
    assert ctr["snis"]["value"] == pytest.approx(ctr["snis_known_weights"]["value"])
    assert out["diagnostics"]["snis_interval"].startswith("proposal-aware")


@pytest.mark.parametrize("overrides, reason", [
    ({"proposal": {"learner": "xgboost", "n_estimators": 20}}, "xgboost"),
    ({"weights": {"normalize_per": "day"}}, "per-day normalization"),
    ({"proposal": {"learner": "logged_propensity",
                   "target_propensity": UNIFORM_TARGET_PROPENSITY}}, "exact logged"),
])
def test_other_weights_keep_the_known_weights_interval_and_say_why(small_data_root, tmp_path,
                                                                   overrides, reason):
    _, _, weights = _run(small_data_root, tmp_path, **overrides)
    out = weights()
    assert out["target_ctr"]["snis"]["estimator"] == "snis"
    assert "snis_known_weights" not in out["target_ctr"]
    note = out["diagnostics"]["snis_interval"]
    assert note.startswith("known weights") and reason in note


def test_the_doubly_robust_estimate_can_be_turned_off(small_data_root, default_proposal,
                                                      tmp_path):
    out = _weights(small_data_root, default_proposal, tmp_path,
                   weights={"doubly_robust": False})
    assert "dr" not in out["target_ctr"]


def test_logged_propensity_weights_are_exact_policy_ratios(small_data_root, tmp_path):
    _, proposal, weights = _run(
        small_data_root, tmp_path,
        proposal={"learner": "logged_propensity",
                  "target_propensity": UNIFORM_TARGET_PROPENSITY})
    table = pd.read_parquet(proposal["path"])
    source = pd.concat([pd.read_parquet(p) for p in
                        sorted((small_data_root / "source").rglob("*.parquet"))])
    expected = np.log(UNIFORM_TARGET_PROPENSITY / source["logging_propensity"].to_numpy())
    np.testing.assert_allclose(table["log_w"].to_numpy(), expected, rtol=1e-12, atol=1e-12)
    assert table["log_w_logged"].equals(table["log_w"])
    comparison = proposal["logged_comparison"]
    assert -1 <= comparison["spearman"] <= 1 and comparison["nmse"] >= 0
    gate = {g["gate"]: g for g in weights()["diagnostics"]["gates"]}["logged_spearman"]
    assert gate["value"] == pytest.approx(comparison["spearman"])


def test_per_day_normalization(small_data_root, default_proposal, tmp_path):
    out = _weights(small_data_root, default_proposal, tmp_path, weights={"normalize_per": "day"})
    frame = pd.read_parquet(out["path"])
    for _, day in frame.groupby("dt"):
        assert day["final_weight"].mean() == pytest.approx(1.0)


def test_a_failing_gate_raises_with_every_gate_in_the_details(small_data_root, default_proposal,
                                                              tmp_path):
    with pytest.raises(WeightDiagnosticsError, match=r"ess_fraction = .* < 0\.99 \(fail\)") as e:
        _weights(small_data_root, default_proposal, tmp_path, weights={"min_ess_fraction": 0.99})
    assert {g["gate"] for g in e.value.details["gates"]} >= {"ess_fraction", "khat"}


def test_a_warning_gate_is_recorded_not_raised(small_data_root, default_proposal, tmp_path):
    d = _weights(small_data_root, default_proposal, tmp_path,
                 weights={"gates": {"min_ess_fraction_warn": 0.99}})["diagnostics"]
    assert {g["gate"]: g["status"] for g in d["gates"]}["ess_fraction"] == "warn"
    assert any(m.startswith("ess_fraction") for m in d["warnings"])


def test_logged_propensity_with_context_shift_recovers_the_exact_weights(small_data_root,
                                                                          tmp_path):
    # The scenario's source users follow q(u) ∝ exp(tau * a_segment(u)), target users are
    # uniform: p(u)/q(u) depends on user_segment only, which the context classifier (one-hot
    # logistic) represents exactly; the policy part pi_1/pi_0 is logged. So log w - log w_true
    # is one constant per segment and cross-fitting fold, a log ratio of segment frequencies
    # estimated on 2/3 of the rows: standard error sqrt(1.5 (1/n_source_seg + 1/n_target_seg)).
    _, proposal, _ = _run(
        small_data_root, tmp_path,
        proposal={"learner": "logged_propensity", "context_features": ["user_segment"],
                  "target_propensity": UNIFORM_TARGET_PROPENSITY})
    table = pd.read_parquet(proposal["path"])
    source = pd.concat([pd.read_parquet(p) for p in
                        sorted((small_data_root / "source").rglob("*.parquet"))])
    truth = pd.concat([pd.read_parquet(p) for p in sorted(
        (small_data_root / "truth" / "source_weights").rglob("*.parquet"))])
    truth = truth.set_index("impression_id")["true_weight"]
    error = table["log_w"].to_numpy() - np.log(truth.loc[source["impression_id"]].to_numpy())
    segments = source["user_segment"].to_numpy()
    target = pd.concat([pd.read_parquet(p) for p in
                        sorted((small_data_root / "target").rglob("*.parquet"))])
    for seg in np.unique(segments):
        err = error[segments == seg]
        assert len(np.unique(err.round(9))) <= 3  # one value per fold: exact policy part
        se = np.sqrt(1.5 * (1 / err.size + 1 / int((target["user_segment"] == seg).sum())))
        assert np.abs(err).max() < 4 * se, seg


class TestStagesNameTheConfigKey:
    """The library names its own parameter (``max_weight``); the stage names the config key
    (``weights.clip_max_weight``). The config model validates these keys itself, so only a
    config built without validation (``model_copy``) reaches the library's checks."""

    def test_clip_parameter_maps_to_its_weights_key(self, small_data_root, default_proposal,
                                                     tmp_path):
        config = small_config(small_data_root, tmp_path / "runs")
        weights = config.weights.model_copy(update={"clip": "hard", "clip_max_weight": None})
        inputs = locate_inputs(config.data, config.columns, RUN_DATE)
        with pytest.raises(ConfigError, match=r"weights\.clip_max_weight: clip method 'hard' "
                           "needs max_weight") as info:
            compute_weights(weights, config.columns, inputs, default_proposal, tmp_path,
                            random_state=0)
        assert isinstance(info.value.__cause__, ParameterError)
        assert info.value.__cause__.parameter == "max_weight"

    def test_proposal_parameter_maps_to_its_proposal_key(self, small_data_root, tmp_path):
        config = small_config(small_data_root, tmp_path / "runs")
        proposal = config.proposal.model_copy(update={"max_fit_rows": 5})
        inputs = locate_inputs(config.data, config.columns, RUN_DATE)
        with pytest.raises(ConfigError, match=r"proposal\.max_fit_rows: max_fit_rows=5"):
            fit_proposal(proposal, config.columns, inputs, tmp_path, random_state=0, n_jobs=1)

    def test_every_key_names_a_config_field(self):
        fields = {f"{section}.{name}" for section, model in
                  (("weights", WeightsConfig), ("proposal", ProposalConfig))
                  for name in model.model_fields}
        assert {*CLIP_KEYS.values(), *PROPOSAL_KEYS.values()} <= fields
