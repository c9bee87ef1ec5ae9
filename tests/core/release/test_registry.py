"""The model registry: versions by content, the champion alias, atomic switches and restores."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from is_core.ctr.model import metadata_path
from is_core.errors import RegistryError
from is_core.release.registry import CHAMPION, JOURNAL_FILE, ModelRegistry, model_digest


def fake_model(folder: Path, payload: bytes, meta: dict | None = None) -> Path:
    """A model.ubj + model.meta.json pair (the registry only hashes and copies bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.ubj"
    path.write_bytes(payload)
    (folder / "model.meta.json").write_text(json.dumps(meta or {"format": "xgboost-ubj"}))
    return path


class TestVersions:
    def test_same_bytes_register_once(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        first, new_first = registry.register(fake_model(tmp_path / "a", b"model-1"), "2026-11-27")
        again, new_again = registry.register(fake_model(tmp_path / "b", b"model-1"), "2026-11-27")
        assert (new_first, new_again) == (True, False)
        assert again == first
        assert [v.version for v in registry.versions()] == ["1"]

    def test_metadata_is_part_of_the_identity(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        a, _ = registry.register(fake_model(tmp_path / "a", b"same", {"run_date": "1"}))
        b, new = registry.register(fake_model(tmp_path / "b", b"same", {"run_date": "2"}))
        assert new and a.version == "1" and b.version == "2"

    def test_version_holds_an_exact_copy(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        source = fake_model(tmp_path / "a", b"\x00\x01model bytes")
        version, _ = registry.register(source, "2026-11-28", card={"note": "x"})
        assert version.model_path.read_bytes() == source.read_bytes()
        assert model_digest(version.model_path) == version.digest == model_digest(source)
        assert registry.get("000001") == registry.get("1") == version
        assert version.card == {"note": "x"} and version.run_date == "2026-11-28"
        assert not any((tmp_path / "registry" / ".incoming").iterdir())

    def test_unknown_version_names_the_known_ones(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        registry.register(fake_model(tmp_path / "a", b"m"))
        with pytest.raises(RegistryError, match=r"version '7' not found.*\['1'\]"):
            registry.get("7")

    def test_missing_metadata_is_refused(self, tmp_path):
        path = tmp_path / "model.ubj"
        path.write_bytes(b"m")
        with pytest.raises(RegistryError, match="model.meta.json not found"):
            ModelRegistry(tmp_path / "registry").register(path)

    def test_concurrent_registrations_get_distinct_numbers(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        paths = [fake_model(tmp_path / f"m{i}", f"model-{i}".encode()) for i in range(8)]
        threads = [threading.Thread(target=registry.register, args=(p,)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        versions = registry.versions()
        assert sorted(int(v.version) for v in versions) == list(range(1, 9))
        assert len({v.digest for v in versions}) == 8


class TestChampionAlias:
    def test_no_champion_before_the_first_promotion(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        assert registry.champion() is None and registry.alias() is None

    def test_set_records_the_previous_version(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        v1, _ = registry.register(fake_model(tmp_path / "a", b"1"))
        v2, _ = registry.register(fake_model(tmp_path / "b", b"2"))
        before, after = registry.set_alias(v1.version)
        assert before is None and after.previous is None
        before, after = registry.set_alias(v2.version, reason="better logloss")
        assert before.version == "1" and after.previous == "1" and after.version == "2"
        assert registry.champion() == v2
        assert [e["version"] for e in registry.history()] == ["1", "2"]

    def test_setting_the_current_version_changes_nothing(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        v1, _ = registry.register(fake_model(tmp_path / "a", b"1"))
        _, first = registry.set_alias(v1.version)
        before, after = registry.set_alias(v1.version)
        assert before == after == first
        assert len(registry.history()) == 1

    def test_restore_puts_back_the_exact_record(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        v1, _ = registry.register(fake_model(tmp_path / "a", b"1"))
        v2, _ = registry.register(fake_model(tmp_path / "b", b"2"))
        _, record_v1 = registry.set_alias(v1.version)
        previous, _ = registry.set_alias(v2.version)
        registry.restore_alias(previous)
        assert registry.alias(CHAMPION) == record_v1
        assert registry.history()[-1]["event"] == "restore"

    def test_restore_of_nothing_removes_the_alias(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        v1, _ = registry.register(fake_model(tmp_path / "a", b"1"))
        previous, _ = registry.set_alias(v1.version)
        registry.restore_alias(previous)
        assert registry.champion() is None

    def test_alias_to_an_unknown_version_is_refused(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        with pytest.raises(RegistryError, match="not found"):
            registry.set_alias("1")
        assert registry.alias() is None

    def test_alias_names_cannot_escape_the_registry(self, tmp_path):
        with pytest.raises(RegistryError, match="invalid alias"):
            ModelRegistry(tmp_path).alias("../x")


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def journal_of_dead_process(registry: ModelRegistry) -> None:
    """Make the pending switch look as if its process had been SIGKILLed."""
    path = registry.root / JOURNAL_FILE
    journal = json.loads(path.read_text())
    journal["pid"] = dead_pid()
    path.write_text(json.dumps(journal))


class TestSwitchJournal:
    """A process killed between the alias switch and its run's publication (no rollback hook
    runs) must not leave a new champion behind."""

    @pytest.fixture
    def registry_with_champion(self, tmp_path):
        registry = ModelRegistry(tmp_path / "registry")
        v1, _ = registry.register(fake_model(tmp_path / "a", b"1"))
        v2, _ = registry.register(fake_model(tmp_path / "b", b"2"))
        registry.set_alias(v1.version)
        return registry, v2

    def test_killed_before_publication_is_rolled_back(self, registry_with_champion, tmp_path):
        registry, v2 = registry_with_champion
        before, after, _ = registry.begin_switch(v2.version, tmp_path / "run" / ".marker")
        assert registry.champion() == v2
        journal_of_dead_process(registry)
        assert registry.recover() == "rolled back"
        assert registry.alias() == before and not (registry.root / JOURNAL_FILE).exists()

    def test_killed_after_publication_keeps_the_switch(self, registry_with_champion, tmp_path):
        registry, v2 = registry_with_champion
        marker = tmp_path / "run" / ".marker"
        _, after, token = registry.begin_switch(v2.version, marker)
        marker.parent.mkdir()
        marker.write_text(token)
        journal_of_dead_process(registry)
        assert registry.recover() == "committed"
        assert registry.alias() == after

    def test_stale_marker_of_an_earlier_run_does_not_commit(self, registry_with_champion,
                                                            tmp_path):
        registry, v2 = registry_with_champion
        marker = tmp_path / "run" / ".marker"
        marker.parent.mkdir()
        marker.write_text("token-of-an-earlier-run")
        before, _, _ = registry.begin_switch(v2.version, marker)
        journal_of_dead_process(registry)
        assert registry.recover() == "rolled back" and registry.alias() == before

    def test_switch_of_a_live_process_is_left_alone(self, registry_with_champion, tmp_path):
        registry, v2 = registry_with_champion
        registry.begin_switch(v2.version, tmp_path / "run" / ".marker")
        assert registry.recover() == "in progress"  # this very process is alive
        assert registry.champion() == v2
        registry.end_switch()
        assert registry.recover() is None and registry.champion() == v2

    def test_next_switch_recovers_a_dead_one_first(self, registry_with_champion, tmp_path):
        registry, v2 = registry_with_champion
        before, _, _ = registry.begin_switch(v2.version, tmp_path / "run" / ".marker")
        journal_of_dead_process(registry)
        v3, _ = registry.register(fake_model(tmp_path / "c", b"3"))
        _, after, _ = registry.begin_switch(v3.version, tmp_path / "run3" / ".marker")
        assert after.previous == before.version  # v2's dead switch was undone first


def test_a_model_keeps_its_digest_under_another_file_name(tmp_path):
    # the unweighted baseline is baseline_model.ubj in a run folder, model.ubj in the registry
    for name in ("model", "baseline_model"):
        (tmp_path / f"{name}.ubj").write_bytes(b"booster bytes")
        metadata_path(tmp_path / f"{name}.ubj").write_text("{}")
    assert model_digest(tmp_path / "model.ubj") == model_digest(tmp_path / "baseline_model.ubj")
    registry = ModelRegistry(tmp_path / "registry")
    version, new = registry.register(tmp_path / "baseline_model.ubj", run_date="2026-11-28")
    assert new and model_digest(version.model_path) == version.digest
