"""The Dask engine against the local engine: the same flow on the same small dataset, on a
LocalCluster of two worker processes (an existing cluster: the runs connect to its address).

The Dask engine must give the same final weights (to 1e-9: the fitting sample is the whole
window here, as it is the local engine's), the same validation verdicts and metrics within the
local engine's bootstrap intervals; a bad partition must fail the run with the local engine's
error and publish nothing; a worker killed mid-run must leave the champion and the published
outputs as they were (or the retried stage must finish the run).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.daily_retrain import StageFailed, daily_retrain
from is_core.ctr.model import WeightedCTRModel
from is_core.release.registry import ModelRegistry
from tests.conftest import RUN_DATE, small_config
from tests.flows.test_bad_inputs import snapshot

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]
DAY = RUN_DATE.isoformat()
#: Few trees, no recalibration (every xgboost.dask fit costs seconds of start-up), one
#: proposal learner, fewer replicates.
FAST = {"train": {"n_estimators": 20, "early_stopping_rounds": 5, "recalibrate": False},
        "proposal": {"learner": "logistic"}, "evaluation": {"n_boot": 50},
        "validation": {"data_docs": False}}


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as local:
        yield local


def _configs(data: Path, out: Path, cluster) -> tuple:
    local = small_config(data, out / "local", **FAST)
    dask = small_config(data, out / "dask", **FAST, engine="dask",
                        dask={"address": cluster.scheduler_address})
    return local, dask


@pytest.fixture(scope="module")
def both_runs(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory, cluster):
    local, dask = _configs(small_data_root, tmp_path_factory.mktemp("engines"), cluster)
    runs = {}
    for name, config in (("local", local), ("dask", dask)):
        result = daily_retrain(config=config, run_date=RUN_DATE)
        runs[name] = (config, Path(result["run_dir"]),
                      json.loads((Path(result["run_dir"]) / "report.json").read_text()))
    return runs


class TestSameResults:
    def test_the_final_weights_are_the_local_engines(self, both_runs):
        local = pd.read_parquet(both_runs["local"][1] / "weights.parquet")
        dask = pd.read_parquet(both_runs["dask"][1] / "weights.parquet")
        assert list(dask.columns) == list(local.columns)
        np.testing.assert_array_equal(dask["row_id"], local["row_id"])
        np.testing.assert_array_equal(dask["impression_id"], local["impression_id"])
        for column in ("raw_weight", "clipped_weight", "final_weight"):
            np.testing.assert_allclose(dask[column], local[column], rtol=1e-9, atol=0)

    def test_the_weight_diagnostics_and_gates_agree(self, both_runs):
        local, dask = (both_runs[e][2]["weights"] for e in ("local", "dask"))
        for key in ("ess_fraction", "raw_ess_fraction", "khat", "clip_log_cap",
                    "clipped_fraction", "max_weight_share"):
            assert dask[key] == pytest.approx(local[key], rel=1e-9), key
        for key in ("raw_quantiles", "final_quantiles"):
            assert dask[key] == pytest.approx(local[key], rel=1e-9), key
        assert [(g["gate"], g["status"]) for g in dask["gates"]] == [
            (g["gate"], g["status"]) for g in local["gates"]]

    def test_the_target_ctr_estimates_are_the_local_engines(self, both_runs):
        local, dask = (both_runs[e][2]["target_ctr"] for e in ("local", "dask"))
        for name in ("naive", "is_raw", "dr"):  # the bootstrap draws other replicates
            for key in ("value", "std_error", "ci_low", "ci_high"):
                assert dask[name][key] == pytest.approx(local[name][key], rel=1e-9), name
        assert dask["snis"]["value"] == pytest.approx(local["snis"]["value"], rel=1e-12)

    def test_the_proposal_aware_snis_interval_is_the_local_engines(self, both_runs):
        """The interval with the proposal's fitting error, from partition sums on Dask."""
        from is_core.weights.stage import PROPOSAL_AWARE_NOTE

        for engine in ("local", "dask"):
            assert both_runs[engine][2]["weights"]["snis_interval"] == PROPOSAL_AWARE_NOTE
        local, dask = (both_runs[e][2]["target_ctr"] for e in ("local", "dask"))
        assert dask["snis"]["estimator"] == local["snis"]["estimator"] == "snis_proposal_aware"
        for key in ("value", "std_error", "ci_low", "ci_high"):
            assert dask["snis"][key] == pytest.approx(local["snis"][key], rel=1e-9), key
        assert dask["snis_known_weights"]["std_error"] == pytest.approx(
            local["snis_known_weights"]["std_error"], rel=1e-9)

    def test_the_validation_verdicts_are_the_same(self, both_runs):
        local, dask = (both_runs[e][2]["validation"] for e in ("local", "dask"))
        assert set(dask) == set(local)
        for role in local:
            assert dask[role]["success"] is local[role]["success"] is True
            assert sorted((r["rule"], str(r["column"]), r["success"])
                          for r in dask[role]["results"]) == sorted(
                (r["rule"], str(r["column"]), r["success"]) for r in local[role]["results"])

    def test_metrics_lie_within_each_others_bootstrap_intervals(self, both_runs):
        local, dask = (both_runs[e][2]["candidates"] for e in ("local", "dask"))
        assert set(dask) == set(local)
        for name in local:
            for metric in ("logloss", "auc", "calibration_ratio"):
                for one, other in ((dask, local), (local, dask)):
                    low, high = other[name][f"{metric}_ci"]
                    assert low <= one[name][metric] <= high, (name, metric)

    def test_the_models_load_and_predict_without_dask(self, both_runs, small_data_root):
        holdout = pd.read_parquet(small_data_root / "holdout")
        for name in ("model.ubj", "baseline_model.ubj"):
            p = WeightedCTRModel.load(both_runs["dask"][1] / name).predict_proba(holdout)
            assert p.shape == (len(holdout),) and np.all((p > 0) & (p < 1))


def _failing(config, data: Path) -> tuple[str, list]:
    """Run on ``data``; the StageFailed text and the failed records, nothing published."""
    config = config.model_copy(update={"data": config.data.model_copy(
        update={"root": str(data)})})
    with pytest.raises(StageFailed) as info:
        daily_retrain(config=config, run_date=RUN_DATE)
    assert not (Path(config.output_root) / DAY / "report.json").exists()
    assert ModelRegistry(config.promotion.registry_root(config.output_root)).alias() is None
    failures = getattr(info.value.__cause__, "failures", [])
    return str(info.value), sorted((r["role"], r["rule"], str(r["column"])) for r in failures)


class TestFailingPartition:
    def test_bad_rows_in_one_partition_fail_as_on_the_local_engine(self, small_data_root,
                                                                     tmp_path, cluster):
        data = tmp_path / "data"
        shutil.copytree(small_data_root, data)
        path = data / "source" / f"dt={DAY}" / "part-0.parquet"
        frame = pd.read_parquet(path)
        frame.loc[frame.index[:10], "clicked"] = 5
        frame.to_parquet(path, index=False)
        results = [_failing(c, data) for c in _configs(data, tmp_path / "out", cluster)]
        (local_text, local_failed), (dask_text, dask_failed) = results
        assert dask_failed == local_failed
        assert ("source", "expect_column_values_to_be_in_set", "clicked") in dask_failed
        for text in (local_text, dask_text):
            assert "failed at stage 'validate'" in text

    def test_a_corrupt_file_fails_with_the_same_error(self, small_data_root, tmp_path,
                                                      cluster):
        data = tmp_path / "data"
        shutil.copytree(small_data_root, data)
        (data / "target" / f"dt={DAY}" / "part-0.parquet").write_bytes(b"PAR1 not really")
        (local_text, _), (dask_text, _) = [_failing(c, data) for c in
                                           _configs(data, tmp_path / "out", cluster)]
        assert dask_text == local_text
        assert "cannot read" in dask_text and "failed at stage 'load'" in dask_text


class TestKilledWorker:
    def test_the_champion_and_published_outputs_stay_untouched(self, both_runs, cluster):
        from distributed import Client

        earlier, _, _ = both_runs["dask"]
        config = earlier.model_copy(update={"train": earlier.train.model_copy(
            update={"n_estimators": 21})})  # a new train cache key: the stage runs
        before = snapshot(earlier.output_root)
        registry = ModelRegistry(earlier.promotion.registry_root(earlier.output_root))
        champion = registry.alias()
        with Client(cluster.scheduler_address) as client:
            pids = list(client.run(os.getpid).values())
        cache = Path(earlier.output_root) / ".cache" / "train"
        seen = set(cache.iterdir()) if cache.is_dir() else set()
        killed = threading.Event()

        def kill_when_training_starts() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if cache.is_dir() and set(cache.iterdir()) - seen:
                    time.sleep(0.5)  # inside xgboost.dask's training
                    os.kill(pids[0], signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=kill_when_training_starts, daemon=True)
        watcher.start()
        try:
            result = daily_retrain(config=config, run_date=RUN_DATE)
        except StageFailed as exc:
            assert "failed at stage 'train'" in str(exc)
            assert snapshot(earlier.output_root) == before
            assert registry.alias() == champion
        else:  # the stage was retried (or rescheduled) and the run finished
            assert (Path(result["run_dir"]) / "report.json").is_file()
            assert registry.alias() is not None
        watcher.join()
        assert killed.is_set()
