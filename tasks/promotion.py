"""Prefect tasks of champion/challenger promotion: the gate, and the alias switch.

The gate (:func:`promotion_gate`) registers today's model and decides; it moves nothing. The
switch (:func:`switch_champion`) points the ``champion`` alias at the challenger. The flow calls
the switch inside a Prefect transaction together with the publication of the run folder::

    with transaction():
        switch_champion(config, decision)
        folders.publish()

If anything in that block raises, the transaction rolls back and the switch's rollback hook
(:func:`restore_previous_champion`) puts the previous alias record back, so a failed promotion
or publication never leaves a new champion behind. A process killed inside the block cannot run
the hook; the registry's switch journal covers that case (:meth:`ModelRegistry.recover`, run
before every decision): the switch stands only if the run folder was published with the
switch's commit marker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.transactions import Transaction, get_transaction

from is_core.config import IsbenchConfig
from is_core.ctr.stage import Evaluation, TrainedModels
from is_core.data.atomic import write_text_atomic
from is_core.data.stage import Inputs
from is_core.release.registry import AliasRecord, ModelRegistry
from is_core.release.stage import evaluate_promotion, registry_for
from is_core.weights.stage import WeightsResult
from tasks.stages import FREE_MEMORY, IO_RETRIES

PROMOTION_ARTIFACT = "isbench-promotion"
COMMIT_MARKER = ".champion-switch"
"""Written into the run's staging folder; its presence in the published folder commits a
journaled alias switch (see :mod:`is_core.release.registry`)."""


def render_decision(decision: dict[str, Any]) -> str:
    """The promotion decision as Markdown: outcome, numbers, and every check."""
    champ = decision["champion"]
    verdict = "PROMOTED" if decision["promote"] else "NOT PROMOTED"
    direction = "lower" if decision["lower_is_better"] else "higher"
    lines = [
        f"# Promotion: {verdict}",
        "",
        decision["reason"],
        "",
        f"Metric `{decision['metric']}` ({direction} is better), tolerance "
        f"{decision['tolerance']}, on `{decision['evaluated_on']}` ({decision['n']} rows).",
        "",
        "| model | version | run date | logloss | AUC | calibration ratio |",
        "|---|---|---|---|---|---|",
    ]
    challenger = decision["challenger"]
    for role, info in ((f"challenger ({challenger['model']})", challenger), ("champion", champ)):
        if info is None:
            lines.append(f"| {role} | none | | | | |")
            continue
        m = info["metrics"]
        lines.append(f"| {role} | v{info['version']} | {info['run_date']} | "
                     f"{m['logloss']:.6f} | {m['auc']:.4f} | {m['calibration_ratio']:.4f} |")
    weighting = decision["weighting"]
    lines += ["", f"Weighting {'applied' if weighting['applied'] else 'not applied'} "
              f"({weighting['candidate']}): {weighting['detail']}."]
    pairs = [(f"{name} − unweighted", diff) for name, diff in weighting["differences"].items()]
    for label, diff in [*pairs, ("challenger − champion", decision.get("champion_difference"))]:
        if diff:
            lines.append(f"Paired {decision['metric']} difference ({label}): "
                         f"{diff['value']:+.6f}, 95 % CI [{diff['ci_low']:+.6f}, "
                         f"{diff['ci_high']:+.6f}].")
    lines += ["", "| check | passed | detail |", "|---|---|---|"]
    lines += [f"| {c['name']} | {'yes' if c['passed'] else 'NO'} | {c['detail']} |"
              for c in decision["checks"]]
    lines += ["", f"Registry: `{decision['registry']}`", ""]
    return "\n".join(lines)


@task(name="promotion-gate", cache_policy=NO_CACHE, **IO_RETRIES, **FREE_MEMORY)
def promotion_gate(config: IsbenchConfig, inputs: Inputs, validation: dict[str, Any],
                   weights: WeightsResult, models: TrainedModels, metrics: Evaluation,
                   staging: Path, cluster: str | None = None) -> dict[str, Any]:
    """Pick and register today's challenger; re-score the champion on today's holdout;
    decide."""
    registry = registry_for(config.promotion, config.output_root)
    recovered = registry.recover()
    if recovered not in (None, "in progress"):
        get_run_logger().warning("an earlier run died while switching the champion: its "
                                 "switch was %s", recovered)
    if cluster is None:
        decision = evaluate_promotion(config.promotion, config.columns, inputs, validation,
                                      weights, models, metrics, staging, registry=registry,
                                      min_ess_fraction=config.weights.min_ess_fraction,
                                      evaluation_config=config.evaluation,
                                      random_state=config.random_state)
    else:  # the Dask engine: the same decision, the models scored on the workers
        from is_core.engine.stage import evaluate_promotion as dask_evaluate_promotion

        decision = dask_evaluate_promotion(
            config.promotion, config.columns, inputs, validation, weights, models, metrics,
            staging, registry=registry, min_ess_fraction=config.weights.min_ess_fraction,
            evaluation_config=config.evaluation, random_state=config.random_state,
            cluster=cluster)
    create_markdown_artifact(key=PROMOTION_ARTIFACT, markdown=render_decision(decision),
                             description=f"Champion/challenger decision, run date "
                             f"{inputs['run_date']}")
    get_run_logger().info(decision["reason"])
    return decision


@task(name="promote", cache_policy=NO_CACHE)
def switch_champion(config: IsbenchConfig, decision: dict[str, Any], staging: Path,
                    final: Path) -> dict[str, Any]:
    """Point the ``champion`` alias at the challenger (no-op when it already is).

    Must run inside a transaction, before ``staging`` is published as ``final``: the rollback
    hook restores the alias record found here, the commit hook closes the switch's journal.
    """
    registry = registry_for(config.promotion, config.output_root)
    version = decision["challenger"]["version"]
    before, after, token = registry.begin_switch(version, commit_marker=final / COMMIT_MARKER,
                                                 reason=decision["reason"])
    write_text_atomic(token, Path(staging) / COMMIT_MARKER)
    txn = get_transaction()
    if txn is not None:
        txn.set("registry_root", str(registry.root))
        txn.set("previous_champion", before.to_dict() if before else None)
        txn.set("commit_marker", str(Path(final) / COMMIT_MARKER))
    get_run_logger().info("champion: v%s (was %s)", after.version,
                          f"v{before.version}" if before else "none")
    return {"champion": after.version, "previous": before.version if before else None}


@switch_champion.on_rollback
def restore_previous_champion(txn: Transaction) -> None:
    """Rollback hook: put the alias back as it was before :func:`switch_champion`."""
    previous = txn.get("previous_champion", None)
    registry = ModelRegistry(txn.get("registry_root"))
    registry.abort_switch(AliasRecord(**previous) if previous else None,
                          reason="promotion rolled back")
    if txn.logger is not None:
        txn.logger.warning("promotion rolled back: champion restored to %s",
                           f"v{previous['version']}" if previous else "none")


@switch_champion.on_commit
def close_switch_journal(txn: Transaction) -> None:
    """Commit hook: the run is published, so the switch stands; drop its journal and marker."""
    ModelRegistry(txn.get("registry_root")).end_switch()
    Path(txn.get("commit_marker")).unlink(missing_ok=True)
