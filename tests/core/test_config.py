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
        with pytest.raises(ConfigError, match=r"data\.windows_days \(line 2\): unknown key"):
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


class TestFileErrors:
    """Issue 11: every mistake in a config file is a ConfigError naming the file, the line and
    the key, and saying what to do (a YAML or TOML syntax error was a bare parser error)."""

    @pytest.mark.parametrize(("name", "text", "where"), [
        ("c.yaml", "data:\n  window_days: 3\nx: [1, 2\n",
         r"invalid YAML in .*c\.yaml, line 4, column 1: expected ',' or ']', but got "
         r"'<stream end>' \(while parsing a flow sequence at line 3, column 4\)"),
        ("c.yaml", "data:\n  window_days: 3\n root: x\n",
         r"invalid YAML in .*c\.yaml, line 3, column 2: "),
        ("c.toml", "[proposal\nC = 1\n",
         r"invalid TOML in .*c\.toml, line 1, column 10: Expected ']' at the end of a table "
         r"declaration\. Fix: correct the TOML syntax at line 1 of "),
        ("c.toml", 'timezone = "UTC\n', r"invalid TOML in .*c\.toml, line 1, column 16: "),
    ], ids=["yaml_unclosed_list", "yaml_bad_indent", "toml_unclosed_table", "toml_open_string"])
    def test_syntax_error_names_line_and_column(self, tmp_path, name, text, where):
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=where) as info:
            IsbenchConfig.from_file(tmp_path / name)
        assert info.value.fix.startswith("correct the ")

    def test_yaml_python_tag_is_a_config_error(self, tmp_path):
        (tmp_path / "c.yaml").write_text("!!python/object/apply:os.system ['true']\n")
        with pytest.raises(ConfigError, match=r"line 1, column 1: could not determine a "
                           r"constructor"):
            IsbenchConfig.from_file(tmp_path / "c.yaml")

    def test_unknown_key_suggests_the_close_one(self, tmp_path):
        (tmp_path / "c.toml").write_text("[proposal]\nn_folds = 3\n[data]\nwindowdays = 2\n")
        with pytest.raises(ConfigError) as info:
            IsbenchConfig.from_file(tmp_path / "c.toml")
        assert "data.windowdays (line 4): unknown key (did you mean data.window_days?)" in str(
            info.value)
        assert info.value.fix == "rename data.windowdays to data.window_days"

    def test_unknown_key_without_a_close_one(self):
        with pytest.raises(ConfigError, match=r"^invalid config: zzz: unknown key\. Fix: remove "
                           r"zzz"):
            IsbenchConfig.from_mapping({"zzz": 1})

    def test_bad_value_names_key_line_value_and_meaning(self, tmp_path):
        (tmp_path / "c.yaml").write_text("proposal:\n  n_folds: 3\n  C: -1\n")
        with pytest.raises(ConfigError) as info:
            IsbenchConfig.from_file(tmp_path / "c.yaml")
        assert str(info.value).startswith(
            f"invalid config {tmp_path / 'c.yaml'}: proposal.C (line 3): Input should be "
            "greater than 0 (got -1). Fix: give proposal.C (Inverse L2 strength of the logistic "
            "regression) a valid value")
        assert info.value.details["keys"] == ["proposal.C"]

    def test_validator_error_keeps_its_own_fix(self, tmp_path):
        (tmp_path / "c.yaml").write_text("weights:\n  clip: hard\n")
        with pytest.raises(ConfigError) as info:
            IsbenchConfig.from_file(tmp_path / "c.yaml")
        assert "weights (line 1): weights.clip='hard' needs weights.clip_max_weight" in (
            info.value.what)
        assert info.value.fix.startswith("set weights.clip_max_weight")

    def test_top_level_must_be_a_mapping(self, tmp_path):
        (tmp_path / "c.yaml").write_text("- 1\n- 2\n")
        with pytest.raises(ConfigError, match="its top level is a list, not a mapping"):
            IsbenchConfig.from_file(tmp_path / "c.yaml")

    def test_empty_file_is_the_defaults(self, tmp_path):
        (tmp_path / "c.yaml").write_text("# nothing yet\n")
        assert IsbenchConfig.from_file(tmp_path / "c.yaml") == IsbenchConfig()


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
    # the same columns as the default, with the position kept away from the CTR models
    assert config.columns == IsbenchConfig().columns.model_copy(update={"exposure": ["position"]})
    assert "position" not in config.columns.ctr_numeric


@pytest.mark.parametrize("exposure, match", [
    (["positon"], "not in columns.numeric or columns.categorical"),
])
def test_exposure_features_must_be_typed_features(exposure, match):
    with pytest.raises(ConfigError, match=match):
        IsbenchConfig.from_mapping({"columns": {"exposure": exposure}})


def test_every_feature_as_exposure_leaves_the_ctr_model_nothing():
    columns = {"numeric": ["position"], "categorical": [], "exposure": ["position"]}
    with pytest.raises(ConfigError, match="no feature"):
        IsbenchConfig.from_mapping({"columns": columns})
