"""Security: models are XGBoost UBJSON/JSON and never unpickled; config keys are strict; data paths
stay inside the data root; nothing binds the Prefect server beyond 127.0.0.1."""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from is_core.config import IsbenchConfig
from is_core.ctr.model import WeightedCTRModel, metadata_path
from is_core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("is_core", "tasks", "flows", "deployments")
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=400),
                          "c": pd.array(rng.choice(["a", "b"], 400), dtype="str")})
    y = (rng.random(400) < 1 / (1 + np.exp(-frame["x"]))).astype(int)
    model = WeightedCTRModel(numeric=["x"], categorical=["c"], n_estimators=5,
                             early_stopping_rounds=2, random_state=0).fit(frame, y)
    return model.save(tmp_path_factory.mktemp("model") / "model.ubj")


class _Exploit:
    """Unpickling this writes a marker file: proof that a loader executed pickle data."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


class TestModelsAreNeverPickled:
    def test_saved_model_is_ubjson_with_json_metadata(self, saved_model):
        data = saved_model.read_bytes()
        assert data[:1] == b"{"  # a UBJSON object, as XGBoost writes it
        assert data[:1] != b"\x80"  # not a pickle stream (protocol 2+ starts with 0x80)
        meta = metadata_path(saved_model).read_text()
        assert '"format": "xgboost-ubj"' in meta

    def test_loading_a_pickle_disguised_as_a_model_executes_nothing(self, saved_model,
                                                                    tmp_path):
        marker = tmp_path / "marker"
        fake = tmp_path / "model.ubj"
        fake.write_bytes(pickle.dumps(_Exploit(marker)))
        metadata_path(fake).write_bytes(metadata_path(saved_model).read_bytes())
        with pytest.raises(Exception):  # noqa: B017 - xgboost's parse error type varies
            WeightedCTRModel.load(fake)
        assert not marker.exists()

    @pytest.mark.parametrize("package", PACKAGES)
    def test_no_package_imports_a_pickle_like_serializer(self, package):
        offenders = []
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module
                         else [])
                offenders += [f"{path.name}: {n}" for n in names
                              if n.split(".")[0] in UNSAFE_MODULES]
        assert not offenders

    def test_published_run_models_load_without_pickle(self, saved_model, monkeypatch):
        def refuse(*args, **kwargs):
            raise AssertionError("pickle.load called while loading a model")

        monkeypatch.setattr(pickle, "load", refuse)
        monkeypatch.setattr(pickle, "loads", refuse)
        p = WeightedCTRModel.load(saved_model).predict_proba(pd.DataFrame(
            {"x": [0.0, 1.0], "c": pd.array(["a", "b"], dtype="str")}))
        assert np.all((p > 0) & (p < 1))


class TestConfigIsStrict:
    @pytest.mark.parametrize("raw, key", [
        ({"unknown_top": 1}, "unknown_top"),
        ({"data": {"sourec": "x"}}, "data.sourec"),
        ({"validation": {"max_quarantine_shar": 0.1}}, "validation.max_quarantine_shar"),
        ({"weights": {"clip_quantile": 0.99, "clip_q": 1}}, "weights.clip_q"),
    ])
    def test_unknown_keys_are_rejected_naming_the_key(self, raw, key):
        with pytest.raises(ConfigError, match=rf"{key}: unknown key"):
            IsbenchConfig.from_mapping(raw)

    def test_unknown_key_in_a_yaml_file(self, tmp_path):
        path = tmp_path / "config.yaml"
        path.write_text("data:\n  window_days: 3\n  windowdays: 4\n")
        with pytest.raises(ConfigError, match=r"data\.windowdays"):
            IsbenchConfig.from_file(path)

    def test_yaml_cannot_construct_python_objects(self, tmp_path):
        marker = tmp_path / "marker"
        path = tmp_path / "config.yaml"
        path.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
        with pytest.raises(Exception):  # noqa: B017 - yaml.safe_load's ConstructorError
            IsbenchConfig.from_file(path)
        assert not marker.exists()

    def test_config_is_frozen(self):
        config = IsbenchConfig()
        with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError
            config.output_root = "/elsewhere"  # type: ignore[misc]


class TestPathsStayInTheDataRoot:
    @pytest.mark.parametrize("rel", ["../outside", "/etc", "source/../../outside"])
    def test_escaping_paths_are_refused(self, tmp_path, rel):
        config = IsbenchConfig.model_validate({"data": {"root": str(tmp_path / "root"),
                                                        "source": rel}})
        with pytest.raises(ConfigError, match="points outside the data root"):
            config.data.path_of("source")

    def test_symlink_out_of_the_root_is_refused(self, tmp_path):
        (tmp_path / "root").mkdir()
        (tmp_path / "secret").mkdir()
        os.symlink(tmp_path / "secret", tmp_path / "root" / "source")
        config = IsbenchConfig.model_validate({"data": {"root": str(tmp_path / "root")}})
        with pytest.raises(ConfigError, match="data.source"):
            config.data.path_of("source")

    def test_paths_inside_the_root_resolve(self, tmp_path):
        config = IsbenchConfig.model_validate({"data": {"root": str(tmp_path),
                                                        "source": "logs/./source"}})
        assert config.data.path_of("source") == (tmp_path / "logs" / "source").resolve()


class TestPrefectServerBinding:
    def test_default_api_host_is_loopback(self):
        from prefect.settings import get_current_settings

        assert get_current_settings().server.api.host == "127.0.0.1"

    def test_no_project_file_binds_all_interfaces(self):
        # Only the project's own (tracked) files: generated ones such as
        # isbench.egg-info/PKG-INFO embed the README, whose security section names 0.0.0.0
        # (regression: the test failed in a fresh clone after `pip install -e .`).
        import subprocess

        tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
        candidates = ([REPO / line for line in tracked.stdout.splitlines()]
                      if tracked.returncode == 0 else list(REPO.rglob("*")))
        files = [p for p in candidates if p.is_file() and p.suffix in
                 {".py", ".yaml", ".yml", ".toml", ".sh", ".cfg"} | {""}
                 and not any(part.startswith(".") or part.endswith(".egg-info")
                             for part in p.relative_to(REPO).parts)
                 and "node_modules" not in p.parts and p.stat().st_size < 1_000_000]
        assert any(p.name == "prefect.yaml" for p in files)
        files.append(REPO / "Makefile")
        offenders = [str(p.relative_to(REPO)) for p in files if p.is_file()
                     and p != Path(__file__) and any(
                         host in p.read_text(errors="ignore") for host in ("0.0.0.0", "[::]"))]
        assert not offenders
