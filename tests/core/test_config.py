"""The configuration model: defaults run, files load, mistakes are named."""

from __future__ import annotations

import datetime as dt

import pytest

from is_core.config import IsbenchConfig
from is_core.errors import ConfigError
from is_core.release.runs import run_date_for
from tests.conftest import REPO_ROOT


class TestLoading:
    def test_defaults_are_valid(self):
        config = IsbenchConfig()
        assert config.columns.label == "clicked" and config.data.window_days == 7

    def test_yaml_and_toml_give_the_same_config(self, tmp_path):
        (tmp_path / "c.yaml").write_text("data:\n  window_days: 3\ntimezone: Europe/Berlin\n")
        (tmp_path / "c.toml").write_text('timezone = "Europe/Berlin"\n[data]\nwindow_days = 3\n')
        a = IsbenchConfig.from_file(tmp_path / "c.yaml")
        b = IsbenchConfig.from_file(tmp_path / "c.toml")
        assert a == b and a.data.window_days == 3

    def test_unknown_key_is_rejected_with_its_path(self, tmp_path):
        (tmp_path / "c.yaml").write_text("data:\n  windows_days: 3\n")
        with pytest.raises(ConfigError, match=r"data\.windows_days: Extra inputs"):
            IsbenchConfig.from_file(tmp_path / "c.yaml")

    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigError, match="not found"):
            IsbenchConfig.from_file(tmp_path / "absent.yaml")

    def test_label_listed_as_feature(self):
        with pytest.raises(ConfigError, match="also listed as a feature"):
            IsbenchConfig.from_mapping({"columns": {"numeric": ["clicked"]}})

    def test_unknown_timezone(self):
        with pytest.raises(ConfigError, match="unknown timezone 'Mars/Olympus'"):
            IsbenchConfig.from_mapping({"timezone": "Mars/Olympus"})

    def test_round_trips_through_json(self):
        config = IsbenchConfig.from_mapping({"data": {"window_days": 2}})
        assert IsbenchConfig.model_validate(config.model_dump(mode="json")) == config


class TestPaths:
    def test_role_paths_stay_inside_the_data_root(self, tmp_path):
        config = IsbenchConfig.from_mapping({"data": {"root": str(tmp_path),
                                                      "source": "../elsewhere"}})
        with pytest.raises(ConfigError, match="outside the data root"):
            config.data.path_of("source")
        assert config.data.path_of("target") == (tmp_path / "target").resolve()


class TestRunDate:
    def test_scheduled_time_in_timezone_minus_lag(self):
        # 01:30 UTC on the 29th is still the 28th in New York: the run is for the 27th.
        scheduled = dt.datetime(2026, 11, 29, 1, 30, tzinfo=dt.UTC)
        assert run_date_for(scheduled, "America/New_York", 1) == dt.date(2026, 11, 27)
        assert run_date_for(scheduled, "UTC", 1) == dt.date(2026, 11, 28)
        assert run_date_for(scheduled, "UTC", 0) == dt.date(2026, 11, 29)


def test_configs_default_yaml_is_the_model_default():
    """configs/default.yaml documents every key; it must not drift from the code's defaults."""

    path = REPO_ROOT / "configs" / "default.yaml"
    assert IsbenchConfig.from_file(path) == IsbenchConfig()


def test_the_demo_config_uses_the_demo_logs_exact_logging_policy():
    """configs/demo.yaml (what ``isbench demo`` runs) weights by the logged propensities: its
    target propensity is the uniform exploration policy of the demo's world."""
    from is_core.simulate.clicklog import ClickScenario

    config = IsbenchConfig.from_file(REPO_ROOT / "configs" / "demo.yaml")
    world = ClickScenario()
    assert config.proposal.learner == "logged_propensity"
    assert config.proposal.target_propensity == pytest.approx(
        1 / (world.n_items * world.n_positions), rel=1e-12)
    assert config.proposal.context_features == ["user_segment"]
    assert config.columns == IsbenchConfig().columns
