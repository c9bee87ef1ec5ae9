"""The cache keys of the deterministic stages: the code fingerprint covers every module of
``is_core``, subpackages included."""

from __future__ import annotations

import shutil
from pathlib import Path

import is_core
from tasks import caching
from tasks.caching import code_fingerprint, source_fingerprint


def _copy_of_is_core(tmp_path: Path) -> Path:
    copy = tmp_path / "is_core"
    shutil.copytree(Path(is_core.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy


class TestCodeFingerprint:
    def test_editing_a_module_in_a_subpackage_changes_it(self, tmp_path):
        """Regression: the fingerprint hashed ``is_core/*.py`` only, so after the move into
        subpackages an edit of the proposal model would have left the cached proposal and
        training stages in place, and a re-run would have served the old code's results."""
        root = _copy_of_is_core(tmp_path)
        before = source_fingerprint(root)
        domain = root / "weights" / "domain.py"
        domain.write_text(domain.read_text() + "\n# an edit\n")
        assert source_fingerprint(root) != before

    def test_moving_a_module_changes_it(self, tmp_path):
        root = _copy_of_is_core(tmp_path)
        before = source_fingerprint(root)
        (root / "weights" / "psis.py").rename(root / "weights" / "pareto.py")
        assert source_fingerprint(root) != before

    def test_files_outside_the_sources_do_not_count(self, tmp_path):
        root = _copy_of_is_core(tmp_path)
        before = source_fingerprint(root)
        (root / "weights" / "notes.txt").write_text("not code")
        assert source_fingerprint(root) == before

    def test_the_library_fingerprint_is_that_of_the_installed_package(self):
        assert code_fingerprint() == source_fingerprint(Path(is_core.__file__).parent)

    def test_the_stage_key_follows_the_code(self, monkeypatch, tmp_path):
        from is_core.config import IsbenchConfig

        inputs = {"run_date": "2026-11-28", "days": ["2026-11-28"],
                  "roles": {"source": {"files": [], "fingerprint": "abc", "columns": []}}}
        config = IsbenchConfig()
        key = caching.stage_fingerprint("proposal", config, inputs)
        monkeypatch.setattr(caching, "code_fingerprint", lambda: "other code")
        assert caching.stage_fingerprint("proposal", config, inputs) != key


class TestChampionDependency:
    """Regression guard for issue 12: ``train.sampling: loss`` draws its sample with the
    champion's scores, so the train stage's cache key must change with the champion (else a
    re-run after a promotion would serve the sample of the old champion)."""

    def test_the_train_key_follows_the_champion_only_for_loss_sampling(self, tmp_path):
        import numpy as np
        import pandas as pd

        from is_core.config import IsbenchConfig
        from is_core.ctr.model import WeightedCTRModel
        from is_core.release.registry import ModelRegistry

        inputs = {"run_date": "2026-11-28", "days": ["2026-11-28"],
                  "roles": {"source": {"files": [], "fingerprint": "abc", "columns": []}}}
        loss = IsbenchConfig.model_validate({"output_root": str(tmp_path), "train": {
            "sampling": "loss", "keep_fraction": 0.1}})
        negative = loss.model_copy(update={"train": loss.train.model_copy(
            update={"sampling": "negative"})})
        assert caching.stage_dependencies("train", loss) is None  # no champion yet
        before = {c.train.sampling: caching.stage_fingerprint("train", c, inputs)
                  for c in (loss, negative)}
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"x": rng.normal(size=200)})
        registry = ModelRegistry(tmp_path / "registry")
        for seed in (1, 2):
            model = WeightedCTRModel(["x"], [], n_estimators=3, random_state=seed).fit(
                frame, (rng.random(200) < 0.3).astype(int))
            version, _ = registry.register(model.save(tmp_path / f"m{seed}" / "model.ubj"))
            registry.set_alias(version.version)
            depends = caching.stage_dependencies("train", loss)
            assert depends == {"champion_path": str(version.path) + "/model.ubj",
                               "champion_digest": version.digest}
            key = caching.stage_fingerprint("train", loss, inputs)
            assert key != before["loss"]
            before["loss"] = key
        assert caching.stage_fingerprint("train", negative, inputs) == before["negative"]
        assert caching.stage_dependencies("proposal", loss) is None
