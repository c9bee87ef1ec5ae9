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
