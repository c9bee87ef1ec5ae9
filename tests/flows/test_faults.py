"""Fault tolerance: transient IO errors are retried; crashes (an exception, SIGKILL) leave earlier
runs and the champion untouched with no half-written file visible; two runs of one date never
interleave (the run-date lock)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect.states import Completed, Failed

import is_core.data.atomic
import tasks.stages as task_stages
from flows.daily_retrain import StageFailed, daily_retrain
from is_core.ctr.model import WeightedCTRModel
from is_core.errors import (
    ConcurrentRunError,
    DataContractError,
    InvalidWeightsError,
    IsbenchError,
)
from is_core.release.registry import ModelRegistry
from is_core.release.runs import RunDateLock, RunFolders
from is_core.simulate.clicklog import ClickScenario, write_scenario
from tests.conftest import REPO_ROOT, RUN_DATE, small_config
from tests.flows.test_bad_inputs import TINY_ROWS, snapshot

pytestmark = pytest.mark.usefixtures("prefect_harness")

DAY = RUN_DATE.isoformat()


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-faults")
    write_scenario(root, ClickScenario(seed=6), end_date=RUN_DATE, n_days=2,
                   rows_per_day=TINY_ROWS)
    return root


@pytest.fixture(scope="module")
def earlier(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """One good run of RUN_DATE (published, champion set)."""
    config = small_config(tiny_root, tmp_path_factory.mktemp("runs-faults"),
                          data={"window_days": 2}, validation={"data_docs": False},
                          train={"n_estimators": 20, "early_stopping_rounds": 5})
    daily_retrain(config=config, run_date=RUN_DATE)
    return config


class _IsbenchOSError(IsbenchError, OSError):
    """Not in the family (none of it is an OSError); here to show the rule's precedence."""


def _fresh(config, **update):
    """``config`` with a different seed: the proposal and training caches miss."""
    return config.model_copy(update={"random_state": 1, **update})


def _visible(output_root: Path) -> list[Path]:
    """Files a reader can reach: no path component is hidden (staging, temporaries, locks)."""
    return [p for p in output_root.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(output_root).parts)]


def _no_partial_files(output_root: Path) -> None:
    """No visible temporary file, and every visible model (runs, registry) loads whole."""
    visible = _visible(output_root)
    assert not [p for p in visible if p.suffix == ".tmp"]
    models = [p for p in visible if p.suffix == ".ubj"]
    assert models
    for model in models:
        WeightedCTRModel.load(model)


# ---------------------------------------------------------------------------- retries
class TestTransientErrors:
    def test_transient_io_error_in_loading_is_retried(self, earlier, monkeypatch):
        calls = []
        real = task_stages.locate_inputs

        def flaky(*args, **kwargs):
            calls.append(time.monotonic())
            if len(calls) == 1:
                raise OSError(5, "Input/output error (simulated NFS hiccup)")
            return real(*args, **kwargs)

        monkeypatch.setattr(task_stages, "locate_inputs", flaky)
        result = daily_retrain(config=earlier, run_date=RUN_DATE)  # cached stages: fast
        assert len(calls) == 2
        assert calls[1] - calls[0] >= 2.0  # the first retry delay of IO_RETRIES
        assert Path(result["run_dir"], "report.json").is_file()

    def test_input_error_is_not_retried(self, earlier, tmp_path, monkeypatch):
        calls = []

        def missing(*args, **kwargs):
            calls.append(1)
            raise DataContractError("source partition dt=2026-11-28 is missing", fix="backfill")

        monkeypatch.setattr(task_stages, "locate_inputs", missing)
        config = earlier.model_copy(update={"output_root": str(tmp_path)})
        with pytest.raises(StageFailed, match="stage 'load'"):
            daily_retrain(config=config, run_date=RUN_DATE)
        assert len(calls) == 1

    def test_nan_log_weights_fail_once_and_record_the_fix(self, earlier, tmp_path, monkeypatch):
        """Regression (issue 18): a NaN in the log weights used to be a plain ValueError, which
        the weights task retried; it is an InvalidWeightsError now and fails at once."""
        calls = []
        real = task_stages._weights

        def nan_from_the_proposal(weights, columns, inputs, proposal, out_dir, **kwargs):
            calls.append(1)
            table = pd.read_parquet(proposal["path"])
            table.loc[3, "log_w"] = np.nan  # the proposal model broke on one row
            broken = tmp_path / "log_ratio_nan.parquet"
            table.to_parquet(broken)
            return real(weights, columns, inputs, {**proposal, "path": str(broken)}, out_dir,
                        **kwargs)

        monkeypatch.setattr(task_stages, "_weights", nan_from_the_proposal)
        config = earlier.model_copy(update={"output_root": str(tmp_path / "runs")})
        with pytest.raises(StageFailed, match=r"stage 'weights'.*NaN or \+inf") as info:
            daily_retrain(config=config, run_date=RUN_DATE)
        assert len(calls) == 1  # no retry
        assert isinstance(info.value.__cause__, InvalidWeightsError)
        [path] = (tmp_path / "runs" / DAY / "failures").glob("*.json")
        record = json.loads(path.read_text())
        assert record["error"] == "InvalidWeightsError" and record["stage"] == "weights"
        assert record["fix"] == info.value.__cause__.fix
        assert "the proposal model is broken upstream" in record["fix"]
        assert (record["details"]["nan"], record["details"]["posinf"]) == (1, 0)


class TestRetryCondition:
    """``retry_if_transient``: an allow-list, only an OSError that is not an IsbenchError."""

    @pytest.mark.parametrize(("error", "retry"), [
        (OSError(5, "Input/output error"), True),
        (ConnectionResetError("peer reset"), True),
        (TimeoutError("read timed out"), True),
        (ValueError("a bug"), False),
        (KeyError("column"), False),
        (InvalidWeightsError("log weights contain NaN", fix="fix the proposal"), False),
        (DataContractError("partition missing", fix="backfill"), False),
        (_IsbenchOSError("an isbench error that is also an OSError"), False),
    ], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v))
    def test_only_transient_failures_are_retried(self, error, retry):
        assert task_stages.is_transient(error) is retry
        state = Failed(data=error)
        assert task_stages.retry_if_transient(task_stages.load_inputs, None, state) is retry

    def test_a_completed_state_is_not_retried(self):
        assert task_stages.retry_if_transient(task_stages.load_inputs, None,
                                              Completed(data=1)) is False


# ---------------------------------------------------------------------------- crashes
class TestCrashDuringTraining:
    def test_exception_while_writing_the_model_leaves_everything_as_it_was(
        self, earlier, monkeypatch
    ):
        root = Path(earlier.output_root)
        before = snapshot(root)
        champion = ModelRegistry(earlier.promotion.registry_root(earlier.output_root)).alias()
        real_fsync, crashed = os.fsync, []

        def crash_on_model(fd: int) -> None:  # the model's bytes are half on disk right now
            if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and ".ubj." in os.readlink(
                    f"/proc/self/fd/{fd}"):
                crashed.append(fd)
                raise OSError(28, "No space left on device (simulated)")
            real_fsync(fd)

        monkeypatch.setattr(is_core.data.atomic.os, "fsync", crash_on_model)
        with pytest.raises(StageFailed, match="stage 'train'.*No space left"):
            daily_retrain(config=_fresh(earlier), run_date=RUN_DATE)
        # the crash did hit a model write, once: a full disk is an OutputFolderError, which no
        # retry cures (before it was a bare OSError, retried once)
        assert len(crashed) == 1
        monkeypatch.undo()
        assert snapshot(root) == before
        assert ModelRegistry(earlier.promotion.registry_root(earlier.output_root)).alias() == (
            champion)
        _no_partial_files(root)
        assert not any((root / ".staging").iterdir())
        shutil.rmtree(root / DAY / "failures")

    @pytest.mark.slow
    def test_sigkill_during_training(self, earlier, tmp_path):
        """A real process running the flow is killed with SIGKILL in the middle of training."""
        root = Path(earlier.output_root)
        before = snapshot(root)
        marker = tmp_path / "training-started"
        config = _fresh(earlier, random_state=2)
        script = textwrap.dedent(f"""
            import os, sys, time, json
            sys.path.insert(0, {str(REPO_ROOT)!r})
            import datetime as dt
            from is_core.ctr.model import WeightedCTRModel
            from is_core.config import IsbenchConfig
            from flows.daily_retrain import daily_retrain
            def slow_fit(self, *a, **k):
                open({str(marker)!r}, "w").write(str(os.getpid()))
                time.sleep(600)
            WeightedCTRModel.fit = slow_fit
            config = IsbenchConfig.model_validate(json.loads({config.model_dump_json()!r}))
            daily_retrain(config=config, run_date=dt.date.fromisoformat({DAY!r}))
        """)
        from prefect.settings import PREFECT_API_URL

        # The child uses this session's test API: an ephemeral server of its own would be
        # orphaned by the SIGKILL and outlive the test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
                    "PREFECT_API_URL": PREFECT_API_URL.value()})
        log = tmp_path / "child.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                deadline = time.monotonic() + 240
                while not marker.exists():
                    assert proc.poll() is None, log.read_text()[-3000:]
                    assert time.monotonic() < deadline, "the flow never reached training"
                    time.sleep(0.2)
                assert RunDateLock(root, RUN_DATE).holder()["pid"] == proc.pid
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)  # only the session we started
                    proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert snapshot(root) == before
        _no_partial_files(root)
        staged = list((root / ".staging").glob(f"{DAY}-*"))
        assert staged, "the killed run's staging folder is expected to remain (never published)"
        # the kernel released the dead process's lock: the next run of the date proceeds and
        # sweeps the dead run's staging folder
        RunDateLock(root, RUN_DATE).acquire(wait_seconds=0).release()
        folders = RunFolders.create(root, RUN_DATE)
        assert not any(p.exists() for p in staged)
        shutil.rmtree(folders.staging)
        folders.release()


# ---------------------------------------------------------------------------- concurrency
class TestConcurrentRunsOfOneDate:
    def test_second_run_fails_clearly_while_the_first_trains(self, earlier, monkeypatch):
        root = Path(earlier.output_root)
        started, release = threading.Event(), threading.Event()
        real_fit = WeightedCTRModel.fit

        def gated_fit(self, *args, **kwargs):
            started.set()
            assert release.wait(120)
            return real_fit(self, *args, **kwargs)

        monkeypatch.setattr(WeightedCTRModel, "fit", gated_fit)
        outcome: dict = {}

        def first():
            try:
                outcome["result"] = daily_retrain(config=_fresh(earlier, random_state=3),
                                                  run_date=RUN_DATE)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        thread = threading.Thread(target=first)
        thread.start()
        try:
            assert started.wait(120), "the first run never reached training"
            with pytest.raises(ConcurrentRunError) as info:
                daily_retrain(config=earlier, run_date=RUN_DATE)
            message = str(info.value)
            assert f"another run of {DAY} is in progress" in message
            assert f"'pid': {os.getpid()}" in message and "run_lock_wait_seconds" in message
        finally:
            release.set()
            thread.join(300)
        assert "error" not in outcome, outcome.get("error")
        report = json.loads((root / DAY / "report.json").read_text())
        assert report["config"]["random_state"] == 3  # the first run's output, whole
        assert not (root / DAY / "failures").exists()  # the refused run wrote nothing
        assert not any((root / ".staging").iterdir())

    def test_second_run_waits_when_configured(self, earlier, tmp_path):
        root = Path(earlier.output_root)
        holder = RunDateLock(root, RUN_DATE).acquire()
        timer = threading.Timer(1.5, holder.release)
        timer.start()
        started = time.monotonic()
        result = daily_retrain(config=earlier.model_copy(update={"run_lock_wait_seconds": 60}),
                               run_date=RUN_DATE)
        timer.join()
        assert time.monotonic() - started >= 1.5
        assert Path(result["run_dir"], "report.json").is_file()


class TestRunDateLock:
    """The lock itself, without Prefect."""

    def test_excludes_a_second_holder_in_the_same_process(self, tmp_path):
        with RunDateLock(tmp_path, RUN_DATE):
            with pytest.raises(ConcurrentRunError, match="run_lock_wait_seconds"):
                RunDateLock(tmp_path, RUN_DATE).acquire()
        RunDateLock(tmp_path, RUN_DATE).acquire().release()  # free again

    def test_other_dates_are_independent(self, tmp_path):
        with RunDateLock(tmp_path, RUN_DATE):
            RunDateLock(tmp_path, RUN_DATE + dt.timedelta(days=1)).acquire().release()

    def test_waiting_holder_gets_the_lock_when_released(self, tmp_path):
        first = RunDateLock(tmp_path, RUN_DATE).acquire()
        threading.Timer(0.5, first.release).start()
        second = RunDateLock(tmp_path, RUN_DATE).acquire(wait_seconds=10)
        assert second.held and second.holder()["pid"] == os.getpid()
        second.release()

    def test_a_killed_holder_releases_the_lock(self, tmp_path):
        code = ("import sys, time, datetime as dt; sys.path.insert(0, sys.argv[1]);"
                "from is_core.release.runs import RunDateLock;"
                "lock = RunDateLock(sys.argv[2], dt.date(2026, 11, 28)).acquire();"
                "print('held', flush=True); time.sleep(600)")
        proc = subprocess.Popen([sys.executable, "-c", code, str(REPO_ROOT),
                                 str(tmp_path)], stdout=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"held"
            with pytest.raises(ConcurrentRunError, match=f"'pid': {proc.pid}"):
                RunDateLock(tmp_path, RUN_DATE).acquire()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        RunDateLock(tmp_path, RUN_DATE).acquire().release()

    def test_failure_and_publish_release_the_lock(self, tmp_path):
        folders = RunFolders.create(tmp_path, RUN_DATE)
        folders.record_failure(RuntimeError("boom"))
        folders = RunFolders.create(tmp_path, RUN_DATE)
        (folders.scratch / "x").parent.mkdir(parents=True)
        (folders.scratch / "x").write_text("intermediate")
        (folders.staging / "report.json").write_text("{}")
        final = folders.publish()
        assert (final / "report.json").is_file() and not (final / ".scratch").exists()
        RunFolders.create(tmp_path, RUN_DATE).release()
