"""The flow enforces the weight gates: a failed gate fails the run at stage 'weights'."""

from __future__ import annotations

import json

import pytest

from flows.daily_retrain import StageFailed, daily_retrain
from tests.conftest import RUN_DATE, small_config

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_failed_weight_gate_fails_the_run_and_is_recorded(small_data_root, tmp_path):
    config = small_config(small_data_root, tmp_path / "runs", weights={"min_ess_fraction": 0.99})
    with pytest.raises(StageFailed, match=r"stage 'weights'.*ess_fraction = .* < 0\.99"):
        daily_retrain(config=config, run_date=RUN_DATE)
    run_dir = tmp_path / "runs" / RUN_DATE.isoformat()
    assert not (run_dir / "weights.parquet").exists()  # nothing published
    (record_path,) = (run_dir / "failures").glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["error"] == "WeightDiagnosticsError"
    gates = {g["gate"]: g["status"] for g in record["details"]["gates"]}
    assert gates["ess_fraction"] == "fail"
