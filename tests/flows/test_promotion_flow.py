"""Champion/challenger, idempotent re-runs and caching, through the real daily_retrain flow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

from flows.daily_retrain import StageFailed, daily_retrain
from is_core.release.registry import JOURNAL_FILE, ModelRegistry
from is_core.release.runs import RunFolders
from tests.conftest import REPO_ROOT, RUN_DATE, small_config

pytestmark = pytest.mark.usefixtures("prefect_harness")

NON_DETERMINISTIC = ("timings_seconds",)  # wall-clock durations; nothing else may differ


def report_of(run_dir: Path) -> dict:
    report = json.loads((run_dir / "report.json").read_text())
    for key in NON_DETERMINISTIC:
        report.pop(key, None)
    return report


def task_states(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs}


@pytest.fixture(scope="module")
def champion_run(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A first run: no champion yet, so its model becomes champion v1 (two candidates, weighted
    and unweighted, so that the weighted one is the challenger when the weighting pays)."""
    out = tmp_path_factory.mktemp("promotion-runs")
    config = small_config(small_data_root, out, train={"recalibrate": False})
    result = daily_retrain(config=config, run_date=RUN_DATE)
    run_dir = out / RUN_DATE.isoformat()
    return config, result, run_dir, ModelRegistry(out / "registry")


class TestFirstRun:
    def test_weighting_that_paid_makes_the_weighted_model_champion(self, champion_run):
        config, result, run_dir, registry = champion_run
        report = report_of(run_dir)
        decision = report["promotion"]
        # the precondition, read from the evaluate stage's interval (the verdict's numbers)
        difference = report["metrics"]["differences"]["weighted"]["logloss"]
        assert difference["ci_high"] < config.promotion.tolerance, difference
        assert decision["weighting"]["applied"]
        assert decision["weighting"]["differences"]["weighted"] == difference
        assert decision["promote"] and decision["champion"] is None
        assert result["promotion"]["promote"]
        assert registry.champion().version == decision["challenger"]["version"] == "1"
        assert decision["challenger"]["model"] == "weighted"
        assert registry.champion().card["weighting"] == "importance"
        assert (registry.champion().model_path.read_bytes()
                == (run_dir / "model.ubj").read_bytes())
        assert "Champion now: v1, the importance-weighted booster" in report["verdict"]["text"]
        # the switch was committed: no journal left, no commit marker in the run folder
        assert not (registry.root / JOURNAL_FILE).exists()
        assert not (run_dir / ".champion-switch").exists()

    def test_decision_numbers_are_the_evaluation_numbers(self, champion_run):
        _, _, run_dir, _ = champion_run
        report = report_of(run_dir)
        decision = report["promotion"]
        assert decision["evaluated_on"] == report["metrics"]["evaluated_on"]
        assert decision["n"] == report["metrics"]["n"]
        assert decision["challenger"]["metrics"]["logloss"] == pytest.approx(
            report["metrics"]["weighted"]["logloss"], rel=1e-12)


@pytest.fixture(scope="module")
def lost_run(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """Tolerance 0, no recalibrated candidate and the weighted booster's unscaled
    min_child_weight: the weighting must be shown better, which this small sample does not
    show (the test asserts that precondition)."""
    out = tmp_path_factory.mktemp("lost-runs")
    config = small_config(small_data_root, out, promotion={"tolerance": 0.0},
                          train={"recalibrate": False, "weighted_min_child_weight": "same"})
    daily_retrain(config=config, run_date=RUN_DATE)
    return out / RUN_DATE.isoformat(), ModelRegistry(out / "registry")


class TestWeightingLostOnDayOne:

    def test_the_unweighted_baseline_is_promoted_as_such(self, lost_run):
        run_dir, registry = lost_run
        report = report_of(run_dir)
        decision = report["promotion"]
        difference = report["metrics"]["differences"]["weighted"]["logloss"]
        assert difference["ci_high"] >= 0.0, difference  # the precondition
        assert decision["promote"] and not decision["weighting"]["applied"]
        assert decision["challenger"]["model"] == "unweighted"
        champion = registry.champion()
        assert champion.card["weighting"] == "not applied"
        assert "not shown non-inferior" in champion.card["weighting_reason"]
        assert (champion.model_path.read_bytes()
                == (run_dir / "baseline_model.ubj").read_bytes())
        assert "today's unweighted baseline (weighting not applied" in report["verdict"]["text"]
        assert decision["challenger"]["metrics"]["logloss"] == pytest.approx(
            report["metrics"]["unweighted"]["logloss"], rel=1e-12)


class TestIdempotentRerun:
    def test_same_date_gives_same_model_bytes_report_and_version(self, champion_run):
        config, _, run_dir, registry = champion_run
        model_before = (run_dir / "model.ubj").read_bytes()
        baseline_before = (run_dir / "baseline_model.ubj").read_bytes()
        report_before = report_of(run_dir)
        with temporary_settings(updates={PREFECT_TASKS_REFRESH_CACHE: True}):  # really retrain
            daily_retrain(config=config, run_date=RUN_DATE)
        assert (run_dir / "model.ubj").read_bytes() == model_before
        assert (run_dir / "baseline_model.ubj").read_bytes() == baseline_before
        assert report_of(run_dir) == report_before
        assert [v.version for v in registry.versions()] == ["1"]
        assert registry.champion().version == "1"

    def test_rerun_hits_the_stage_cache(self, champion_run):
        config, _, run_dir, _ = champion_run
        model_before = (run_dir / "model.ubj").read_bytes()
        state = daily_retrain(config=config, run_date=RUN_DATE, return_state=True)
        assert state.is_completed()
        states = task_states(state.state_details.flow_run_id)
        assert states["fit-proposal"] == "Cached" and states["train"] == "Cached"
        assert states["weights"] == "Completed"
        assert (run_dir / "model.ubj").read_bytes() == model_before

    def test_deleted_cache_folder_is_recomputed_not_trusted(self, champion_run):
        import shutil

        config, _, run_dir, _ = champion_run
        shutil.rmtree(Path(config.output_root) / ".cache" / "train")
        state = daily_retrain(config=config, run_date=RUN_DATE, return_state=True)
        assert state.is_completed()
        assert task_states(state.state_details.flow_run_id)["train"] == "Completed"
        assert (run_dir / "model.ubj").is_file()


class TestChallenger:
    def test_worse_challenger_is_not_promoted(self, champion_run):
        config, _, run_dir, registry = champion_run
        # One depth-1 tree with a tiny learning rate predicts almost the base rate everywhere:
        # a strictly worse CTR model than the champion's 60 trees on the same holdout.
        weak = config.model_copy(update={
            "train": config.train.model_copy(update={"n_estimators": 1, "max_depth": 1,
                                                     "learning_rate": 0.01}),
            "promotion": config.promotion.model_copy(update={"tolerance": 0.0}),
        })
        daily_retrain(config=weak, run_date=RUN_DATE)
        report = report_of(run_dir)
        decision = report["promotion"]
        champion_logloss = decision["champion"]["value"]
        # both of today's models lose to the champion, whichever is the challenger
        for name in ("weighted", "unweighted"):
            assert report["metrics"][name]["logloss"] > champion_logloss
        assert not decision["promote"]
        assert decision["champion"]["version"] == "1"
        assert decision["challenger"]["version"] != "1"
        assert decision["challenger"]["value"] > champion_logloss
        assert decision["worse_by"] == pytest.approx(
            decision["challenger"]["value"] - champion_logloss)
        assert decision["worse_by_upper"] >= decision["worse_by"]
        assert {c["name"]: c["passed"] for c in decision["checks"]}["metric"] is False
        assert registry.champion().version == "1"
        assert "Champion unchanged: v1" in report["verdict"]["text"]

    def test_failure_inside_promotion_keeps_the_old_champion(self, champion_run, monkeypatch):
        config, _, run_dir, registry = champion_run
        champion_before = registry.alias()
        report_before = (run_dir / "report.json").read_bytes()
        other = config.model_copy(update={
            "train": config.train.model_copy(update={"n_estimators": 45}),
            "promotion": config.promotion.model_copy(update={"tolerance": 1.0}),
        })

        def disk_full(self):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(RunFolders, "publish", disk_full)
        with pytest.raises(StageFailed, match=r"stage 'publish'.*No space left"):
            daily_retrain(config=other, run_date=RUN_DATE)
        assert registry.alias() == champion_before
        assert not (registry.root / JOURNAL_FILE).exists()
        events = registry.history()
        assert [e["event"] for e in events[-2:]] == ["set", "restore"]
        assert events[-2]["version"] != champion_before.version
        assert (run_dir / "report.json").read_bytes() == report_before


KILL_DURING_PUBLISH = """
import json, os, signal, sys
from is_core.config import IsbenchConfig
from is_core.release.runs import RunFolders
from flows.daily_retrain import daily_retrain
from tests.conftest import RUN_DATE

def killed(self):  # the champion alias is switched; the run folder is not yet published
    os.kill(os.getpid(), signal.SIGKILL)

RunFolders.publish = killed
daily_retrain(config=IsbenchConfig.model_validate(json.load(open(sys.argv[1]))),
              run_date=RUN_DATE)
"""


@pytest.mark.slow
class TestKilledDuringPromotion:
    def test_sigkill_between_switch_and_publish_is_rolled_back(self, champion_run, tmp_path):
        import os
        import signal
        import subprocess
        import sys

        config, _, run_dir, registry = champion_run
        champion_before = registry.alias()
        report_before = (run_dir / "report.json").read_bytes()
        other = config.model_copy(update={
            "train": config.train.model_copy(update={"n_estimators": 35}),
            "promotion": config.promotion.model_copy(update={"tolerance": 1.0}),
        })
        config_file = tmp_path / "config.json"
        config_file.write_text(other.model_dump_json())
        from prefect.settings import PREFECT_API_URL

        # The child talks to this session's test server: an ephemeral server of its own would
        # outlive the SIGKILL as an orphan.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
                    "PREFECT_API_URL": PREFECT_API_URL.value()})
        log = tmp_path / "child.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", KILL_DURING_PUBLISH, str(config_file)],
                cwd=REPO_ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
            try:
                returncode = proc.wait(timeout=300)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)  # only the session we started
                    proc.wait()
        assert returncode == -signal.SIGKILL, log.read_text()[-3000:]
        # killed inside the window: the alias moved and no rollback hook could run ...
        assert registry.alias() != champion_before
        assert (registry.root / JOURNAL_FILE).exists()
        # ... so the journal rolls it back
        assert registry.recover() == "rolled back"
        assert registry.alias() == champion_before
        assert (run_dir / "report.json").read_bytes() == report_before
