"""The Prefect events of a run (tasks/events.py): what they carry, and that sending never fails.

The builders get real gate results (is_core's own gates on real weights) and a real
:class:`DataValidationError`; every event they build must be a valid Prefect ``Event``. The
sending tests use Prefect's real websocket events client pointed at a closed port. What a real
server receives is tested end to end in tests/e2e/test_server_e2e.py (``TestEvents``).
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from prefect.events import Event
from prefect.events.clients import PrefectEventsClient
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from is_core.config import IsbenchConfig
from is_core.errors import DataValidationError, WeightDiagnosticsError
from is_core.weights.diagnostics import (
    GateResult,
    WeightGates,
    diagnose_weights,
    enforce_gates,
    evaluate_gates,
)
from tasks import events

RUN_ID = "0b0b5e1c-6f7c-4c43-9d3a-2f1d1c7a9e01"


def _gate_results(**thresholds: float | None) -> list[GateResult]:
    """is_core's gates on 2000 log-normal weights, with some thresholds overridden."""
    log_w = np.random.default_rng(0).normal(0, 1, 2000)
    w = np.exp(log_w) / np.exp(log_w).mean()
    d = diagnose_weights(log_w, log_w, w, "none", float(log_w.max()), domain_auc=0.7)
    return evaluate_gates(d, WeightGates(**thresholds))  # type: ignore[arg-type]


def _gates(**thresholds: float | None) -> list[dict[str, Any]]:
    return [g.to_dict() for g in _gate_results(**thresholds)]


def _decision(promote: bool, champion: str | None) -> dict[str, Any]:
    """The fields of a promotion gate decision the events read."""
    return {"promote": promote, "reason": "because", "metric": "logloss",
            "challenger": {"version": "3", "model": "recalibrated", "value": 0.0712},
            "champion": None if champion is None else {"version": champion,
                                                       "run_date": "2026-11-27"}}


class TestGateEvents:
    def test_one_warned_event_per_warning_gate_with_labels_and_payload(self):
        gates = _gates(min_ess_fraction_warn=0.999)
        specs = events.gate_events("shop", gates, "2026-11-28", RUN_ID, "daily-retrain-x")
        assert [s["event"] for s in specs] == ["isbench.gate.warned"] * len(
            [g for g in gates if g["status"] == "warn"])
        ess = next(s for s in specs if s["payload"]["gate"] == "ess_fraction")
        value = next(g["value"] for g in gates if g["gate"] == "ess_fraction")
        assert ess["payload"]["value"] == pytest.approx(value)
        assert ess["payload"]["warn_threshold"] == 0.999
        assert ess["payload"]["fail_threshold"] == 0.01
        assert "ess_fraction" in ess["payload"]["message"]
        assert ess["resource"]["prefect.resource.id"] == "isbench.pipeline.shop"
        assert ess["resource"]["isbench.gate"] == "ess_fraction"
        assert ess["resource"]["isbench.gate.status"] == "warn"
        assert ess["resource"]["isbench.gate.warn_threshold"] == "0.999"
        assert float(ess["resource"]["isbench.gate.value"]) == pytest.approx(value, rel=1e-5)
        assert ess["related"] == [{"prefect.resource.id": f"prefect.flow-run.{RUN_ID}",
                                   "prefect.resource.role": "flow-run",
                                   "prefect.resource.name": "daily-retrain-x"}]
        Event(**ess)  # a valid Prefect event

    def test_passing_gates_send_nothing_and_a_failure_is_a_failed_event(self):
        assert events.gate_events("shop", _gates(min_ess_fraction_warn=None,
                                                 max_weight_share_warn=None,
                                                 max_khat_warn=None), "2026-11-28") == []
        with pytest.raises(WeightDiagnosticsError) as raised:
            enforce_gates(_gate_results(min_ess_fraction_fail=0.999))
        specs = events.gate_events("shop", raised.value.details["gates"], "2026-11-28")
        failed = [s for s in specs if s["event"] == "isbench.gate.failed"]
        assert [s["payload"]["gate"] for s in failed] == ["ess_fraction"]
        assert failed[0]["payload"]["fail_threshold"] == 0.999
        assert failed[0]["related"] == []  # outside a flow run: no flow-run resource
        for spec in specs:
            Event(**spec)

    def test_missing_figures_are_null_and_not_labels(self):
        gates = [{"gate": "logged_spearman", "value": float("nan"), "status": "warn",
                  "warn_threshold": 0.5, "fail_threshold": None, "message": ""}]
        (spec,) = events.gate_events("shop", gates, "2026-11-28")
        assert spec["payload"]["value"] is None and spec["payload"]["fail_threshold"] is None
        assert "isbench.gate.value" not in spec["resource"]
        assert "isbench.gate.fail_threshold" not in spec["resource"]


class TestValidationEvent:
    def test_names_every_failed_check_up_to_the_cap(self):
        failures = [{"role": "source", "column": f"c{i}", "rule": "not null",
                     "observed": "x" * 1000, "expected": 0, "fix": "fill it"}
                    for i in range(events.MAX_CHECKS + 3)]
        spec = events.validation_failed_event("shop", DataValidationError(failures).failures,
                                              "2026-11-28", RUN_ID)
        assert spec["event"] == "isbench.gate.failed"
        assert spec["resource"]["isbench.gate"] == "validation"
        assert spec["resource"]["isbench.gate.value"] == str(events.MAX_CHECKS + 3)
        p = spec["payload"]
        assert (p["gate"], p["value"], p["fail_threshold"]) == ("validation",
                                                                events.MAX_CHECKS + 3, 0)
        assert len(p["checks"]) == events.MAX_CHECKS and p["checks_omitted"] == 3
        assert p["checks"][0]["column"] == "c0" and len(p["checks"][0]["observed"]) == 200
        assert p["checks"][0]["expected"] == "0"
        Event(**spec)


def _run_parts() -> tuple[dict[str, Any], ...]:
    """verdict, weights, metrics as the flow holds them (only the keys the payload reads)."""
    verdict = {"text": "Importance weighting improved target holdout logloss ..."}
    weights = {"diagnostics": {"ess_fraction": 0.47, "khat": 0.03, "domain_auc": None,
                               "max_weight_share": 9e-5, "gates": _gates()},
               "target_ctr": {"snis": {"value": 0.0154, "ci_low": 0.0147, "ci_high": 0.0161},
                              "naive": {"value": 0.0343, "ci_low": 0.033, "ci_high": 0.035}}}
    metrics = {"evaluated_on": "target_holdout",
               "candidates": {"weighted": {"logloss": 0.0729}, "unweighted": {"logloss": 0.0726},
                              "recalibrated": {"logloss": 0.0713}}}
    return verdict, weights, metrics


class TestRunAndChampionEvents:
    def test_run_completed_payload_has_the_key_figures(self, tmp_path):
        verdict, weights, metrics = _run_parts()
        payload = events.run_completed_payload("2026-11-28", verdict, weights, metrics,
                                               _decision(True, None), tmp_path)
        assert payload["verdict"] == verdict["text"]
        assert (payload["selected"], payload["promote"]) == ("recalibrated", True)
        assert (payload["ess_fraction"], payload["khat"], payload["domain_auc"],
                payload["max_weight_share"]) == (0.47, 0.03, None, 9e-5)
        assert (payload["snis_target_ctr"], payload["snis_ci_low"], payload["snis_ci_high"],
                payload["naive_ctr"]) == (0.0154, 0.0147, 0.0161, 0.0343)
        assert payload["logloss"] == {"weighted": 0.0729, "unweighted": 0.0726,
                                      "recalibrated": 0.0713}
        assert payload["gates"]["ess_fraction"] == "pass"
        assert payload["report"] == str(tmp_path / "report.json")
        spec = events.run_completed_event("shop", payload, _decision(True, None), RUN_ID)
        assert [r["prefect.resource.role"] for r in spec["related"]] == ["flow-run", "model"]
        assert spec["related"][1]["prefect.resource.id"] == "isbench.model.shop.v3"
        Event(**spec)

    def test_without_promotion_there_is_no_selection_and_no_model(self, tmp_path):
        verdict, weights, metrics = _run_parts()
        payload = events.run_completed_payload("2026-11-28", verdict, weights, metrics, None,
                                               tmp_path)
        assert payload["selected"] is None and payload["promote"] is None
        assert events.run_completed_event("shop", payload, None)["related"] == []

    def test_promoted_names_the_new_champion_and_kept_the_one_kept(self):
        promoted = events.champion_event("shop", _decision(True, "2"), "2026-11-28", RUN_ID)
        assert promoted["event"] == "isbench.champion.promoted"
        assert promoted["payload"]["champion_version"] == "3"
        assert promoted["payload"]["champion"] == {"version": "2", "run_date": "2026-11-27"}
        assert [(r["prefect.resource.id"], r["prefect.resource.role"])
                for r in promoted["related"][1:]] == [("isbench.model.shop.v3", "model")]
        kept = events.champion_event("shop", _decision(False, "2"), "2026-11-28")
        assert kept["event"] == "isbench.champion.kept"
        assert kept["payload"]["champion_version"] == "2"
        assert [(r["prefect.resource.id"], r["prefect.resource.role"]) for r in kept["related"]
                ] == [("isbench.model.shop.v2", "model"), ("isbench.model.shop.v3", "challenger")]
        first = events.champion_event("shop", _decision(False, None), "2026-11-28")
        assert first["payload"]["champion_version"] is None
        for spec in (promoted, kept, first):
            Event(**spec)


@pytest.fixture()
def unreachable_server() -> Iterator[str]:
    """Prefect's real websocket events client, pointed at a port nothing listens on, as the
    events worker's client (an override: the session's worker stays connected to the harness),
    one connection attempt; the worker is drained before the override is lifted."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    EventsWorker.set_client_override(PrefectEventsClient, api_url=url, reconnection_attempts=0)
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
            EventsWorker.instance().drain()  # the worker's failed send happens here, at the latest
    finally:
        EventsWorker.set_client_override(None)


class TestSendingNeverFailsTheRun:
    def test_an_unreachable_server_does_not_raise(self, unreachable_server):
        started = time.perf_counter()
        handed = events.emit_gate_events(IsbenchConfig(), _gates(min_ess_fraction_warn=0.999),
                                         "2026-11-28")
        assert handed >= 1  # handed to the worker, whose send then fails in the background
        worker = EventsWorker.instance()
        assert worker.client_type is PrefectEventsClient
        assert dict(worker.client_options)["api_url"] == unreachable_server
        assert time.perf_counter() - started < 5

    def test_tracking_events_off_sends_nothing(self, unreachable_server):
        config = IsbenchConfig.model_validate({"tracking": {"events": False}})
        assert events.emit_gate_events(config, _gates(min_ess_fraction_warn=0.999),
                                       "2026-11-28") == 0

    def test_an_error_while_building_is_one_warning(self, caplog):
        date = dt.date(2026, 11, 28)
        with caplog.at_level(logging.WARNING, logger="tasks.events"):
            sent = events.emit_run_events(IsbenchConfig(), date, {"verdict": {}}, {}, {},
                                          None, "runs/2026-11-28")
        assert sent == 0
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "Prefect events not sent (KeyError" in warnings[0].getMessage()
