"""The model registry: versioned models and a ``champion`` alias, on a plain folder.

The idea is MLflow's model registry with aliases, reduced to files::

    <root>/
      versions/000001/model.ubj        the model's bytes (XGBoost UBJSON, never pickled)
      versions/000001/model.meta.json  its metadata (features, params, input fingerprints, ...)
      versions/000001/version.json     the version card: digest, run date, where it came from
      aliases/champion.json            which version is the champion, since when, and over what
      history.jsonl                    one line per alias change (set, restore), append-only
      switch-in-progress.json          journal of an alias switch not yet committed (see below)
      .lock                            an advisory lock (``fcntl.flock``) held by every writer

A version's identity is the SHA-256 of its model and metadata bytes (:func:`model_digest`), so
registering the same model twice returns the existing version: re-running a date with identical
inputs and config never creates a second version. Versions are immutable once written.

Every write is atomic: a new version is assembled in ``.incoming/`` and renamed into
``versions/``; an alias file is replaced with ``os.replace``. A crash therefore never leaves a
half-written version or alias visible. No Prefect here: the promotion task wraps
:meth:`ModelRegistry.begin_switch` in a Prefect transaction whose rollback restores the previous
alias with :meth:`ModelRegistry.restore_alias`.

A rollback hook cannot run when the process is killed (SIGKILL, OOM, power loss) between the
alias switch and the publication of its run. So a switch is journaled: :meth:`begin_switch`
writes ``switch-in-progress.json`` (previous alias record, the switching process, and a *commit
marker* file with a random token that the run publishes with its folder) before it moves the
alias, and :meth:`end_switch` removes it after the publication. :meth:`recover`, called before
every promotion decision and by ``isbench registry``, finishes a journal left by a dead
process: marker published → the switch stands; marker absent → the previous alias is restored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from is_core.ctr.model import metadata_path
from is_core.data.atomic import output_folder_errors, write_json_atomic, write_text_atomic
from is_core.errors import RegistryError

CHAMPION = "champion"
MODEL_FILE = "model.ubj"
VERSION_CARD = "version.json"
JOURNAL_FILE = "switch-in-progress.json"
_VERSION_WIDTH = 6


def model_digest(model_path: str | Path) -> str:
    """SHA-256 over a model's bytes and its metadata's bytes: the identity of a version.

    The files are labelled with the registry's own names (``model.ubj``, ``model.meta.json``)
    whatever they are called where they come from, so a model keeps its digest when it is
    copied into the registry (the unweighted baseline is ``baseline_model.ubj`` in a run).
    """
    model_path = Path(model_path)
    digest = hashlib.sha256()
    labels = (MODEL_FILE, metadata_path(Path(MODEL_FILE)).name)
    for label, path in zip(labels, (model_path, metadata_path(model_path)), strict=True):
        if not path.is_file():
            raise RegistryError(
                f"model file {path} not found",
                fix="register a model written by WeightedCTRModel.save (model.ubj + "
                "model.meta.json)",
            )
        digest.update(label.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelVersion:
    """One registered model: its number, digest and the run it came from."""

    version: str
    digest: str
    run_date: str | None
    registered_at: str
    path: str
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        return Path(self.path) / MODEL_FILE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AliasRecord:
    """Where an alias points: the version, since when, and the version it replaced."""

    alias: str
    version: str
    set_at: str
    previous: str | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelRegistry:
    """A folder of versioned models with aliases (``champion``).

    Parameters
    ----------
    root : str or Path
        The registry folder; created on first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ layout
    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def _alias_path(self, alias: str) -> Path:
        if not alias or "/" in alias or alias.startswith("."):
            raise RegistryError(f"invalid alias name {alias!r}",
                                fix="use a plain name such as 'champion'")
        return self.root / "aliases" / f"{alias}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the registry's advisory lock (serializes writers of this registry); a registry
        folder that cannot be written raises :class:`~is_core.errors.OutputFolderError`."""
        with output_folder_errors(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            lock_file = open(self.root / ".lock", "a+")  # noqa: SIM115 - closed by the with below
        with lock_file as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ versions
    def versions(self) -> list[ModelVersion]:
        """Every registered version, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        out = []
        for folder in sorted(self.versions_dir.iterdir()):
            card_path = folder / VERSION_CARD
            if folder.name.isdigit() and card_path.is_file():
                out.append(self._from_card(json.loads(card_path.read_text())))
        return out

    def get(self, version: str) -> ModelVersion:
        """The version ``version`` (e.g. ``"3"`` or ``"000003"``)."""
        folder = self.versions_dir / _folder_name(version)
        card_path = folder / VERSION_CARD
        if not card_path.is_file():
            known = [v.version for v in self.versions()]
            raise RegistryError(f"model version {version!r} not found in {self.root}",
                                fix=f"use one of the registered versions {known}")
        return self._from_card(json.loads(card_path.read_text()))

    def find(self, digest: str) -> ModelVersion | None:
        """The version whose model has this digest, if any."""
        return next((v for v in self.versions() if v.digest == digest), None)

    def register(self, model_path: str | Path, run_date: str | None = None,
                 card: dict[str, Any] | None = None) -> tuple[ModelVersion, bool]:
        """Register the model at ``model_path`` (with its ``.meta.json``); return it and whether
        it is new.

        A model whose digest is already registered returns the existing version unchanged.
        """
        model_path = Path(model_path)
        digest = model_digest(model_path)
        with self._locked():
            existing = self.find(digest)
            if existing is not None:
                return existing, False
            numbers = [int(v.version) for v in self.versions()]
            version = str(max(numbers, default=0) + 1)
            incoming = self.root / ".incoming" / f"{version}-{uuid.uuid4().hex[:8]}"
            incoming.mkdir(parents=True)
            try:
                shutil.copy2(model_path, incoming / MODEL_FILE)
                shutil.copy2(metadata_path(model_path), metadata_path(incoming / MODEL_FILE))
                if model_digest(incoming / MODEL_FILE) != digest:
                    raise RegistryError(
                        f"model {model_path} changed while it was being registered",
                        fix="re-run the date; something else is writing the run folder",
                    )
                final = self.versions_dir / _folder_name(version)
                record = {
                    "version": version,
                    "digest": digest,
                    "run_date": run_date,
                    "registered_at": _now(),
                    "path": str(final.resolve()),
                    "card": dict(card or {}),
                }
                write_json_atomic(record, incoming / VERSION_CARD)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(incoming, final)  # the folder appears complete or not at all
            except BaseException:
                shutil.rmtree(incoming, ignore_errors=True)
                raise
        return self._from_card(record), True

    # ------------------------------------------------------------------ aliases
    def alias(self, alias: str = CHAMPION) -> AliasRecord | None:
        """Where ``alias`` points now, or ``None`` when it was never set."""
        path = self._alias_path(alias)
        if not path.is_file():
            return None
        return AliasRecord(**json.loads(path.read_text()))

    def champion(self) -> ModelVersion | None:
        """The version the ``champion`` alias points at, or ``None``."""
        record = self.alias(CHAMPION)
        return None if record is None else self.get(record.version)

    def set_alias(self, version: str, alias: str = CHAMPION, reason: str = ""
                  ) -> tuple[AliasRecord | None, AliasRecord]:
        """Point ``alias`` at ``version``; return (the record it replaced, the new record).

        Setting an alias to the version it already points at changes nothing and returns the
        current record twice.
        """
        target = self.get(version)
        with self._locked():
            return self._set_alias_locked(target, alias, reason)

    def _set_alias_locked(self, target: ModelVersion, alias: str, reason: str
                          ) -> tuple[AliasRecord | None, AliasRecord]:
        before = self.alias(alias)
        if before is not None and before.version == target.version:
            return before, before
        after = AliasRecord(alias=alias, version=target.version, set_at=_now(),
                            previous=before.version if before else None, reason=reason)
        write_json_atomic(after.to_dict(), self._alias_path(alias))
        self._log({"event": "set", **after.to_dict()})
        return before, after

    # ------------------------------------------------------------------ journaled switches
    def begin_switch(self, version: str, commit_marker: str | Path, alias: str = CHAMPION,
                     reason: str = "") -> tuple[AliasRecord | None, AliasRecord, str]:
        """Journal, then point ``alias`` at ``version``; return (before, after, token).

        The switch counts as committed once a file ``commit_marker`` holding ``token`` exists
        (the caller writes it into its staging folder so that it appears with the published
        run), or once :meth:`end_switch` is called.
        """
        target = self.get(version)
        token = uuid.uuid4().hex
        with self._locked():
            self._recover_locked()
            before = self.alias(alias)
            write_json_atomic({
                "alias": alias, "version": target.version,
                "previous": before.to_dict() if before else None,
                "commit_marker": str(Path(commit_marker).resolve()), "token": token,
                "pid": os.getpid(), "host": socket.gethostname(), "started": _now(),
            }, self.root / JOURNAL_FILE)
            before, after = self._set_alias_locked(target, alias, reason)
        return before, after, token

    def end_switch(self) -> None:
        """The switch's run is published: drop the journal."""
        with self._locked():
            (self.root / JOURNAL_FILE).unlink(missing_ok=True)

    def abort_switch(self, record: AliasRecord | None, alias: str = CHAMPION,
                     reason: str = "rollback") -> None:
        """Restore ``record`` (see :meth:`restore_alias`) and drop the journal."""
        with self._locked():
            self._restore_locked(record, alias, reason)
            (self.root / JOURNAL_FILE).unlink(missing_ok=True)

    def recover(self) -> str | None:
        """Finish a switch journaled by a process that died; return what was done.

        ``"committed"`` (its run was published), ``"rolled back"`` (previous alias restored),
        ``"in progress"`` (its process is alive), or ``None`` (no journal).
        """
        with self._locked():
            return self._recover_locked()

    def _recover_locked(self) -> str | None:
        path = self.root / JOURNAL_FILE
        if not path.is_file():
            return None
        journal = json.loads(path.read_text())
        if journal["host"] == socket.gethostname() and _alive(journal["pid"]):
            return "in progress"
        marker = Path(journal["commit_marker"])
        committed = marker.is_file() and marker.read_text().strip() == journal["token"]
        if not committed:
            previous = journal["previous"]
            self._restore_locked(AliasRecord(**previous) if previous else None,
                                 journal["alias"], reason="recovered: the switching run "
                                 f"(pid {journal['pid']}) died before publishing")
        path.unlink()
        return "committed" if committed else "rolled back"

    def restore_alias(self, record: AliasRecord | None, alias: str = CHAMPION,
                      reason: str = "rollback") -> None:
        """Put ``alias`` back exactly as ``record`` says (``None``: remove the alias).

        Used by the promotion rollback hook; writing the same record twice is harmless.
        """
        with self._locked():
            self._restore_locked(record, alias, reason)

    def _restore_locked(self, record: AliasRecord | None, alias: str, reason: str) -> None:
        path = self._alias_path(alias)
        if record is None:
            path.unlink(missing_ok=True)
        else:
            write_json_atomic(record.to_dict(), path)
        self._log({"event": "restore", "alias": alias,
                   "version": record.version if record else None, "reason": reason,
                   "at": _now()})

    def history(self) -> list[dict[str, Any]]:
        """Every alias change, oldest first."""
        path = self.root / "history.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _log(self, event: dict[str, Any]) -> None:
        path = self.root / "history.jsonl"
        old = path.read_text() if path.is_file() else ""
        write_text_atomic(old + json.dumps(event, sort_keys=True) + "\n", path)

    @staticmethod
    def _from_card(record: dict[str, Any]) -> ModelVersion:
        return ModelVersion(**record)


def _folder_name(version: str) -> str:
    if not str(version).isdigit():
        raise RegistryError(f"model version {version!r} is not a number",
                            fix="versions are 1, 2, 3, ...")
    return str(int(version)).zfill(_VERSION_WIDTH)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (the current process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
