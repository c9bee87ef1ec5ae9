"""``validation.mode: quarantine`` on the Dask engine against the local engine (issue 13).

The same few bad rows in one of the source's three partitions (the run date's): ±inf features,
propensities outside (0, 1] and impression ids that an earlier partition already holds (a repeat
only the window, not the partition, shows). Both engines must drop exactly the same rows with
the same rules, train on the kept rows and give the same final weights (to 1e-9); over
``validation.max_quarantine_share`` both must fail at ``validate`` with the same records and
text, and publish nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.daily_retrain import StageFailed, daily_retrain
from is_core.release.registry import ModelRegistry
from tests.conftest import RUN_DATE, small_config
from tests.flows.test_dask_engine import FAST

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]
DAY = RUN_DATE.isoformat()
QUARANTINE = {"mode": "quarantine", "max_quarantine_share": 0.01, "data_docs": False}
LEAN = {"evaluation": {"n_boot": 20}, "weights": {"doubly_robust": False},
        "promotion": {"enabled": False}, "tracking": {"events": False, "history": False}}
"""What the quarantined runs skip (nothing quarantine changes): the doubly robust outcome
model, the promotion gate, most bootstrap replicates, the history page."""
BAD = {"inf": 7, "propensity": 4, "repeated": 3}
"""Bad rows written into the run date's source partition: ±inf ``item_popularity``,
``logging_propensity`` 0, and ids copied from the first day's partition."""


@pytest.fixture(scope="module")
def dirty_root(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("dirty") / "data"
    shutil.copytree(small_data_root, data, ignore=shutil.ignore_patterns("truth"))
    days = sorted(p.name for p in (data / "source").iterdir())
    assert len(days) == 3 and days[-1] == f"dt={DAY}"
    earlier = pd.read_parquet(data / "source" / days[0] / "part-0.parquet")
    path = data / "source" / f"dt={DAY}" / "part-0.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame.index[:BAD["inf"]], "item_popularity"] = np.inf
    frame.loc[frame.index[10:10 + BAD["propensity"]], "logging_propensity"] = 0.0
    frame.loc[frame.index[20:20 + BAD["repeated"]], "impression_id"] = (
        earlier["impression_id"].iloc[:BAD["repeated"]].to_numpy())
    frame.to_parquet(path, index=False)
    return data


def _quarantine_configs(data: Path, out: Path, cluster, lean: bool = True,
                        **validation) -> tuple:
    """The local and the Dask engine's configs in quarantine mode (``validation``: more)."""
    overrides = {**FAST, **(LEAN if lean else {}),
                 "validation": {**FAST["validation"], **QUARANTINE, **validation}}
    return (small_config(data, out / "local", **overrides),
            small_config(data, out / "dask", **overrides, engine="dask",
                         dask={"address": cluster.scheduler_address}))


@pytest.fixture(scope="module")
def quarantined_runs(dirty_root: Path, tmp_path_factory: pytest.TempPathFactory,
                     cluster) -> dict:
    runs = {}
    configs = _quarantine_configs(dirty_root, tmp_path_factory.mktemp("quarantine"), cluster)
    for name, config in zip(("local", "dask"), configs, strict=True):
        run_dir = Path(daily_retrain(config=config, run_date=RUN_DATE)["run_dir"])
        runs[name] = (run_dir, json.loads((run_dir / "report.json").read_text()))
    return runs


class TestSameQuarantine:
    def test_the_same_rows_are_dropped_with_the_same_rules(self, quarantined_runs):
        local_dir, dask_dir = (quarantined_runs[e][0] for e in ("local", "dask"))
        local = pd.read_parquet(local_dir / "validation" / "quarantine" / "source.parquet")
        dask_path = dask_dir / "validation" / "quarantine" / "source.parquet"
        assert dask_path.is_dir()  # one file per partition that dropped rows, read whole
        dask = pd.read_parquet(dask_path)
        assert len(local) == sum(BAD.values())
        assert list(dask.columns) == list(local.columns)
        pd.testing.assert_frame_equal(dask.reset_index(drop=True), local, check_dtype=False)
        rules = dict(zip(local["impression_id"], local["quarantine_rules"], strict=True))
        assert sorted(set(rules.values())) == [
            "duplicate_id:impression_id", "not_finite_or_out_of_range:item_popularity",
            "propensity_range:logging_propensity"]
        assert not (dask_dir / ".scratch").exists()
        assert not list((dask_dir / "validation" / "quarantine").glob(".*"))

    def test_the_counts_and_verdicts_are_the_local_engines(self, quarantined_runs):
        local, dask = (quarantined_runs[e][1]["validation"] for e in ("local", "dask"))
        assert set(dask) == set(local)
        for role in local:
            assert dask[role]["quarantine"] == local[role]["quarantine"], role
            assert dask[role]["rows"] == local[role]["rows"], role
            assert dask[role]["success"] is local[role]["success"] is True
            assert sorted((r["rule"], str(r["column"]), r["success"], str(r["observed"]))
                          for r in dask[role]["results"]) == sorted(
                (r["rule"], str(r["column"]), r["success"], str(r["observed"]))
                for r in local[role]["results"]), role
        assert local["source"]["quarantine"]["dropped"] == sum(BAD.values())
        assert local["source"]["quarantine"]["by_rule"] == {
            "not_finite_or_out_of_range:item_popularity": BAD["inf"],
            "propensity_range:logging_propensity": BAD["propensity"],
            "duplicate_id:impression_id": BAD["repeated"]}

    def test_training_sees_the_kept_rows_with_the_local_engines_weights(self, quarantined_runs):
        local_dir, dask_dir = (quarantined_runs[e][0] for e in ("local", "dask"))
        local = pd.read_parquet(local_dir / "weights.parquet")
        dask = pd.read_parquet(dask_dir / "weights.parquet")
        rejected = pd.read_parquet(local_dir / "validation" / "quarantine" / "source.parquet")
        rows = quarantined_runs["local"][1]["validation"]["source"]["quarantine"]["rows"]
        assert len(local) == rows - sum(BAD.values())
        np.testing.assert_array_equal(dask["row_id"], local["row_id"])
        np.testing.assert_array_equal(dask["impression_id"], local["impression_id"])
        assert local["impression_id"].is_unique
        first_rows = rejected.loc[rejected["quarantine_rules"] != "duplicate_id:impression_id"]
        assert not set(first_rows["impression_id"]) & set(local["impression_id"])
        np.testing.assert_allclose(dask["final_weight"], local["final_weight"], rtol=1e-9,
                                   atol=0)


class TestOverTheShare:
    def test_both_engines_fail_alike_and_publish_nothing(self, dirty_root, tmp_path,
                                                         cluster):
        failed = []
        for config in _quarantine_configs(dirty_root, tmp_path / "out", cluster, lean=False,
                                          max_quarantine_share=0.001):
            with pytest.raises(StageFailed) as info:
                daily_retrain(config=config, run_date=RUN_DATE)
            day = Path(config.output_root) / DAY
            assert not (day / "report.json").exists()
            registry = ModelRegistry(config.promotion.registry_root(config.output_root))
            assert registry.alias() is None
            kept = [p for p in (day / "failures").iterdir() if p.name.endswith("-validation")]
            assert len(kept) == 1 and not (kept[0] / "quarantine").exists()
            assert json.loads((kept[0] / "results.json").read_text())["source"][
                "success"] is False
            cause = info.value.__cause__
            failed.append((getattr(cause, "message", None), cause.failures,
                           "failed at stage 'validate'" in str(info.value)))
        (local_message, local_records, local_stage), dask_failure = failed
        assert dask_failure == (local_message, local_records, True) and local_stage
        assert ("source", "quarantine_share_at_most", "item_popularity") in {
            (r["role"], r["rule"], r["column"]) for r in local_records}
        assert f"{sum(BAD.values())} of" not in local_message  # per rule, not all together
        assert f"{BAD['inf']} of " in local_message
