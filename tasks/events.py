"""Prefect events that automations can act on: a run's figures, its gates, the champion.

Five events, all about the resource ``isbench.pipeline.<config.name>``:

* ``isbench.run.completed``: a run was published; its key figures are the payload
  (:func:`run_completed_event`);
* ``isbench.gate.warned`` / ``isbench.gate.failed``: one per weight gate that warned or failed
  (:func:`gate_events`), and one ``isbench.gate.failed`` for a failed validation, naming every
  failed check (:func:`validation_failed_event`); the gate, its status, value and thresholds are
  resource labels too, so an automation's ``match`` can filter on them;
* ``isbench.champion.promoted`` / ``isbench.champion.kept``: the promotion decision, sent only
  after the run folder was published, i.e. after the alias switch took effect
  (:func:`champion_event`).

Related resources follow Prefect's convention (``prefect.resource.role`` names each one's part):
the flow run (``prefect.flow-run.<id>``, role ``flow-run``) and, where a model version is
involved, ``isbench.model.<config.name>.v<version>`` (role ``model``; the losing challenger of a
``champion.kept`` has role ``challenger``). Prefect's events worker adds the flow, the
deployment and the task run from the run context.

The builders are pure functions of the small summaries the stages already hand on; the
``emit_*`` functions send them with :func:`prefect.events.emit_event` when
``config.tracking.events`` is on, and never fail the run: anything that goes wrong while
building or handing over an event is one warning in the log. Prefect sends the events in the
background, so a server that cannot be reached is Prefect's own warning, not an error of the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.exceptions import MissingContextError
from prefect.runtime import flow_run

from is_core.config import IsbenchConfig
from is_core.errors import DataValidationError

RUN_COMPLETED = "isbench.run.completed"
GATE_WARNED = "isbench.gate.warned"
GATE_FAILED = "isbench.gate.failed"
CHAMPION_PROMOTED = "isbench.champion.promoted"
CHAMPION_KEPT = "isbench.champion.kept"
VALIDATION_GATE = "validation"
"""The gate name of a failed validation (its value: the number of failed checks)."""
MAX_CHECKS = 50
"""Failed validation checks listed in an event; the count is always complete."""
_GATE_EVENTS = {"warn": GATE_WARNED, "fail": GATE_FAILED}


class EventSpec(TypedDict):
    """The keyword arguments of one :func:`prefect.events.emit_event` call."""

    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]


# ---------------------------------------------------------------------------- resources
def pipeline_resource(name: str, **labels: str) -> dict[str, str]:
    """The pipeline as an event's primary resource, with extra ``labels``."""
    return {"prefect.resource.id": f"isbench.pipeline.{name}",
            "prefect.resource.name": name, **labels}


def flow_run_resource(flow_run_id: str | None, flow_run_name: str | None = None
                      ) -> list[dict[str, str]]:
    """The flow run as a related resource (role ``flow-run``); none outside a flow run."""
    if not flow_run_id:
        return []
    resource = {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
                "prefect.resource.role": "flow-run"}
    if flow_run_name:
        resource["prefect.resource.name"] = flow_run_name
    return [resource]


def model_resource(name: str, version: str | int, role: str = "model") -> dict[str, str]:
    """A registered model version ``isbench.model.<name>.v<version>`` as a related resource."""
    return {"prefect.resource.id": f"isbench.model.{name}.v{version}",
            "prefect.resource.name": f"{name} v{version}", "prefect.resource.role": role}


def _label(value: float | None) -> str | None:
    return None if value is None else f"{value:.6g}"


def _number(value: Any) -> float | None:
    """A float for the payload; None for a missing or non-finite figure (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------------- builders
def gate_events(name: str, gates: Sequence[Mapping[str, Any]], run_date: str,
                flow_run_id: str | None = None, flow_run_name: str | None = None
                ) -> list[EventSpec]:
    """One ``isbench.gate.warned`` / ``isbench.gate.failed`` per weight gate that warned or
    failed (the :class:`~is_core.weights.diagnostics.GateResult` dicts of
    ``diagnostics["gates"]`` or of a :class:`WeightDiagnosticsError`'s ``details["gates"]``)."""
    events: list[EventSpec] = []
    for gate in gates:
        event = _GATE_EVENTS.get(gate["status"])
        if event is None:
            continue
        figures = {"value": _number(gate["value"]),
                   "warn_threshold": _number(gate["warn_threshold"]),
                   "fail_threshold": _number(gate["fail_threshold"])}
        labels = {f"isbench.gate.{k}": text for k, v in figures.items()
                  if (text := _label(v)) is not None}
        events.append(EventSpec(
            event=event,
            resource=pipeline_resource(name, **{"isbench.gate": gate["gate"],
                                                "isbench.gate.status": gate["status"],
                                                "isbench.run-date": run_date}, **labels),
            related=flow_run_resource(flow_run_id, flow_run_name),
            payload={"run_date": run_date, "gate": gate["gate"], "status": gate["status"],
                     **figures, "message": gate.get("message", "")}))
    return events


def validation_failed_event(name: str, failures: Sequence[Mapping[str, Any]], run_date: str,
                            flow_run_id: str | None = None, flow_run_name: str | None = None
                            ) -> EventSpec:
    """One ``isbench.gate.failed`` for a failed validation: gate ``validation``, value the
    number of failed checks (fail threshold 0), ``checks`` the first :data:`MAX_CHECKS` of them
    (role, column, rule, observed, expected, fix; long values cut to 200 characters)."""
    checks = [{key: str(f.get(key))[:200] if f.get(key) is not None else None
               for key in ("role", "column", "rule", "observed", "expected", "fix")}
              for f in failures[:MAX_CHECKS]]
    return EventSpec(
        event=GATE_FAILED,
        resource=pipeline_resource(name, **{
            "isbench.gate": VALIDATION_GATE, "isbench.gate.status": "fail",
            "isbench.gate.value": str(len(failures)), "isbench.gate.fail_threshold": "0",
            "isbench.run-date": run_date}),
        related=flow_run_resource(flow_run_id, flow_run_name),
        payload={"run_date": run_date, "gate": VALIDATION_GATE, "status": "fail",
                 "value": len(failures), "warn_threshold": None, "fail_threshold": 0,
                 "checks": checks, "checks_omitted": max(len(failures) - MAX_CHECKS, 0)})


def run_completed_payload(run_date: str, verdict: Mapping[str, Any],
                          weights: Mapping[str, Any], metrics: Mapping[str, Any],
                          decision: Mapping[str, Any] | None, run_dir: str | Path
                          ) -> dict[str, Any]:
    """The key figures of a published run (the payload of ``isbench.run.completed``)."""
    d = weights["diagnostics"]
    snis, naive = weights["target_ctr"]["snis"], weights["target_ctr"]["naive"]
    return {
        "run_date": run_date,
        "verdict": verdict["text"],
        "selected": (decision or {}).get("challenger", {}).get("model"),
        "promote": None if decision is None else bool(decision["promote"]),
        "ess_fraction": _number(d["ess_fraction"]),
        "khat": _number(d["khat"]),
        "domain_auc": _number(d.get("domain_auc")),
        "max_weight_share": _number(d["max_weight_share"]),
        "gates": {g["gate"]: g["status"] for g in d.get("gates", [])},
        "snis_target_ctr": _number(snis["value"]),
        "snis_ci_low": _number(snis.get("ci_low")),
        "snis_ci_high": _number(snis.get("ci_high")),
        "naive_ctr": _number(naive["value"]),
        "evaluated_on": metrics["evaluated_on"],
        "logloss": {candidate: _number(m["logloss"])
                    for candidate, m in metrics["candidates"].items()},
        "run_dir": str(run_dir),
        "report": str(Path(run_dir) / "report.json"),
    }


def run_completed_event(name: str, payload: dict[str, Any], decision: Mapping[str, Any] | None,
                        flow_run_id: str | None = None, flow_run_name: str | None = None
                        ) -> EventSpec:
    """``isbench.run.completed`` with :func:`run_completed_payload`; today's registered
    challenger, when there is one, is the related ``model``."""
    related = flow_run_resource(flow_run_id, flow_run_name)
    if decision is not None and decision.get("challenger"):
        related.append(model_resource(name, decision["challenger"]["version"]))
    return EventSpec(event=RUN_COMPLETED,
                     resource=pipeline_resource(name, **{"isbench.run-date": payload["run_date"]}),
                     related=related, payload=payload)


def champion_event(name: str, decision: Mapping[str, Any], run_date: str,
                   flow_run_id: str | None = None, flow_run_name: str | None = None
                   ) -> EventSpec:
    """``isbench.champion.promoted`` (related ``model``: the new champion) or
    ``isbench.champion.kept`` (``model``: the champion kept, if any; ``challenger``: today's
    version) from the promotion gate's decision."""
    challenger, champion = decision["challenger"], decision.get("champion")
    promoted = bool(decision["promote"])
    related = flow_run_resource(flow_run_id, flow_run_name)
    if promoted:
        related.append(model_resource(name, challenger["version"]))
    else:
        if champion:
            related.append(model_resource(name, champion["version"]))
        related.append(model_resource(name, challenger["version"], role="challenger"))
    return EventSpec(
        event=CHAMPION_PROMOTED if promoted else CHAMPION_KEPT,
        resource=pipeline_resource(name, **{"isbench.run-date": run_date}),
        related=related,
        payload={"run_date": run_date, "promote": promoted, "reason": decision["reason"],
                 "metric": decision.get("metric"),
                 "challenger": {"version": challenger["version"], "model": challenger["model"],
                                "value": _number(challenger.get("value"))},
                 "champion": None if not champion else {
                     "version": champion["version"], "run_date": champion.get("run_date")},
                 "champion_version": challenger["version"] if promoted
                 else (champion or {}).get("version")})


# ---------------------------------------------------------------------------- sending
def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _current_flow_run() -> tuple[str | None, str | None]:
    """The flow run's id (in a flow or a task) and, without an API call, its name."""
    context = FlowRunContext.get()
    name = context.flow_run.name if context is not None and context.flow_run else None
    return flow_run.id, name


def send(config: IsbenchConfig, build: Callable[[str | None, str | None], list[EventSpec]]
         ) -> int:
    """Build the events (``build(flow_run_id, flow_run_name)``) and hand them to Prefect's
    events worker; return how many were handed over. Nothing when ``config.tracking.events`` is
    off; any error is one warning, never an exception."""
    sent = 0
    if not config.tracking.events:
        return sent
    try:
        for spec in build(*_current_flow_run()):
            sent += emit_event(**spec) is not None
    except Exception as exc:  # noqa: BLE001 - an optional integration never fails the run
        _logger().warning("Prefect events not sent (%s: %s); the run goes on",
                          type(exc).__name__, exc)
    return sent


def emit_gate_events(config: IsbenchConfig, gates: Sequence[Mapping[str, Any]], run_date: str
                     ) -> int:
    """Send :func:`gate_events` (called by the weights stage, on warn and on fail)."""
    return send(config, lambda run_id, run_name: gate_events(config.name, gates, run_date,
                                                             run_id, run_name))


def emit_validation_failed(config: IsbenchConfig, error: DataValidationError, run_date: str
                           ) -> int:
    """Send :func:`validation_failed_event` (called by the validate stage before it raises)."""
    return send(config, lambda run_id, run_name: [validation_failed_event(
        config.name, error.failures, run_date, run_id, run_name)])


def emit_run_events(config: IsbenchConfig, run_date: dt.date, summary: Mapping[str, Any],
                    weights: Mapping[str, Any], metrics: Mapping[str, Any],
                    decision: Mapping[str, Any] | None, run_dir: str | Path) -> int:
    """Send ``isbench.run.completed`` and, with a promotion decision, ``isbench.champion.*``
    (called by the flow once the run folder is published)."""
    date = run_date.isoformat()

    def build(run_id: str | None, run_name: str | None) -> list[EventSpec]:
        payload = run_completed_payload(date, summary["verdict"], weights, metrics, decision,
                                        Path(run_dir).resolve())
        specs = [run_completed_event(config.name, payload, decision, run_id, run_name)]
        if decision is not None:
            specs.append(champion_event(config.name, decision, date, run_id, run_name))
        return specs

    return send(config, build)
