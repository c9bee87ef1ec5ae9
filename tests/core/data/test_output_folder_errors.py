"""Output folders that cannot be written (issue 20, item 4d): a read-only or full output folder
ended in a raw ``[Errno 30]`` and exit 1; it is an :class:`OutputFolderError` naming the folder
and the fix (exit 3 on the command line: tests/e2e/test_cli.py)."""

from __future__ import annotations

import datetime as dt
import errno
import os
import pickle
from pathlib import Path

import pytest

from is_core.data import atomic
from is_core.data.atomic import output_folder_errors, write_json_atomic
from is_core.errors import IsbenchError, OutputFolderError
from is_core.release.registry import ModelRegistry
from is_core.release.runs import RunFolders

DAY = dt.date(2026, 11, 28)


def _blocked(tmp_path: Path) -> Path:
    """A folder path below a regular file: no user, root included, can create it."""
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path / "a_file" / "runs"


def _raise_oserror(number: int):
    def fail(*args, **kwargs):
        raise OSError(number, os.strerror(number), str(args[0]) if args else None)
    return fail


class TestOutputFolderError:
    def test_is_an_isbench_error_and_an_oserror_with_exit_code_3(self):
        error = OutputFolderError("cannot write x", fix="make x writable")
        assert isinstance(error, IsbenchError) and isinstance(error, OSError)
        assert error.exit_code == 3 and IsbenchError("x").exit_code == 2

    def test_survives_pickling_with_its_details(self, tmp_path):
        with pytest.raises(OutputFolderError) as info:
            write_json_atomic({}, _blocked(tmp_path) / "x.json")
        again = pickle.loads(pickle.dumps(info.value))
        assert again.fix == info.value.fix and again.details["errno"] == errno.ENOTDIR


class TestAtomicWrites:
    def test_a_folder_below_a_file(self, tmp_path):
        target = _blocked(tmp_path) / "2026-11-28" / "report.json"
        with pytest.raises(OutputFolderError) as info:
            write_json_atomic({"a": 1}, target)
        error = info.value
        assert f"cannot write the output folder {target.parent}" in error.what
        assert "[Errno 20]" in error.what
        assert error.fix.startswith(f"make {target.parent} writable for this user")
        assert error.details["errno"] == errno.ENOTDIR
        assert error.details["path"] == str(target.parent)
        assert str(error) == error.message  # not the bare "[Errno 20] ..." of an OSError

    def test_a_read_only_file_system(self, tmp_path, monkeypatch):
        monkeypatch.setattr(atomic.tempfile, "mkstemp", _raise_oserror(errno.EROFS))
        with pytest.raises(OutputFolderError) as info:
            write_json_atomic({"a": 1}, tmp_path / "out" / "x.json")
        assert "Read-only file system ([Errno 30]" in info.value.what
        assert str(tmp_path / "out") in info.value.message
        assert "`output_root`" in info.value.fix and "re-run the date" in info.value.fix

    def test_a_full_disk_asks_for_space(self, tmp_path, monkeypatch):
        monkeypatch.setattr(atomic.os, "fsync", _raise_oserror(errno.ENOSPC))
        with pytest.raises(OutputFolderError) as info:
            write_json_atomic({"a": 1}, tmp_path / "x.json")
        assert info.value.fix.startswith(f"free space on the disk of {tmp_path}")
        assert [p.name for p in tmp_path.iterdir()] == []  # the temporary file is gone

    def test_a_transient_error_passes_unchanged(self):
        with pytest.raises(OSError) as info, output_folder_errors("/somewhere"):
            raise OSError(errno.EIO, "Input/output error")
        assert type(info.value) is OSError  # the tasks retry it (tasks.stages.is_transient)

    def test_a_read_only_folder(self, tmp_path):
        if os.geteuid() == 0:
            pytest.skip("root writes into a 0o555 folder: covered by the two tests above")
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            with pytest.raises(OutputFolderError, match=r"\[Errno 13\]"):
                write_json_atomic({}, folder / "x.json")
        finally:
            folder.chmod(0o755)


class TestRunFoldersAndRegistry:
    def test_run_folders_of_an_unwritable_root(self, tmp_path):
        root = _blocked(tmp_path)
        with pytest.raises(OutputFolderError) as info:
            RunFolders.create(root, DAY)
        assert f"cannot write the output folder {root}:" in info.value.what
        assert info.value.details["file"].startswith(str(root))

    def test_run_folders_on_a_read_only_file_system(self, tmp_path, monkeypatch):
        monkeypatch.setattr(Path, "mkdir", _raise_oserror(errno.EROFS))
        with pytest.raises(OutputFolderError, match=r"Read-only file system \(\[Errno 30\]"):
            RunFolders.create(tmp_path / "runs", DAY)

    def test_the_lock_is_released_when_staging_cannot_be_made(self, tmp_path, monkeypatch):
        real_mkdir = Path.mkdir

        def no_staging(self: Path, *args, **kwargs):
            if ".staging" in self.parts:
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", no_staging)
        with pytest.raises(OutputFolderError, match="free space"):
            RunFolders.create(tmp_path, DAY)
        monkeypatch.setattr(Path, "mkdir", real_mkdir)
        RunFolders.create(tmp_path, DAY).release()  # the date is not left locked

    def test_registry_of_an_unwritable_folder(self, tmp_path):
        root = _blocked(tmp_path) / "registry"
        with pytest.raises(OutputFolderError, match="`promotion.registry`") as info:
            ModelRegistry(root).recover()  # every writer of the registry takes its lock first
        assert f"cannot write the output folder {root}:" in info.value.what
