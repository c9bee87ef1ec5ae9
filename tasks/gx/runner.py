"""Running Great Expectations: the ephemeral context, batches, result records and Data Docs.

A :class:`Batch` is one frame with one suite; :func:`run_batches` validates batches in one GX
context, optionally builds Data Docs of all results, and frees what GX held. Each expectation's
result becomes a small, JSON-friendly record (role, rule, column, observed, expected, fix) for
the error message, the report and the Prefect artifact.

A :class:`MergedBatch` is one suite's results computed elsewhere (the Dask engine merges each
expectation's numbers over the partitions, :mod:`tasks.gx.partitioned`);
:func:`build_docs_from_merged` turns them into GX validation results and builds the same Data
Docs from them.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.validator.validation_statistics import calc_validation_statistics

from is_core.errors import DataContractError

logging.getLogger("great_expectations").setLevel(logging.WARNING)

EXPECTED_TEXT = {
    "expect_column_to_exist": "column present",
    "expect_column_values_to_not_be_null": "no nulls",
    "expect_column_values_to_be_unique": "unique values",
}
"""The ``expected`` text of the rules whose only argument is the column."""


@dataclass
class Batch:
    """One frame to validate with one suite (``name`` labels it in Data Docs and records)."""

    name: str
    role: str
    suite: gx.ExpectationSuite
    frame: pd.DataFrame


@dataclass(frozen=True)
class MergedResult:
    """One expectation's result computed outside GX (merged from partial results): ``rule`` and
    ``kwargs`` name the expectation of the suite it belongs to (``batch_id`` ignored),
    ``result`` is GX's result dict with the merged numbers (``observed_value``, or
    ``element_count``, ``unexpected_count``, ``unexpected_percent``, ...)."""

    rule: str
    kwargs: dict[str, Any]
    success: bool
    result: dict[str, Any]
    exception_info: dict[str, Any] | None = None


@dataclass
class MergedBatch:
    """One suite's merged results (``name`` labels it as :class:`Batch` does; ``markers``, the
    batch markers Data Docs show, say where the results come from)."""

    name: str
    suite: gx.ExpectationSuite
    results: Sequence[MergedResult]
    markers: dict[str, Any] = field(default_factory=dict)


def context_for(docs_dir: Path | None = None) -> Any:
    """A fresh ephemeral GX context; with ``docs_dir``, a Data Docs site writing there.

    Suites can only be built once a context exists (GX binds them to the current one).
    """
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(site_name="isbench", site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              # GX requires an absolute base_directory (relative run roots
                              # such as the default "runs" are resolved here).
                              "base_directory": str(Path(docs_dir).resolve())},
        })
    return context


def run_batches(batches: Sequence[Batch], docs_dir: Path | None = None,
                context: Any | None = None) -> dict[str, dict[str, Any]]:
    """Validate each batch; with ``docs_dir``, build Data Docs of all results into it.

    ``context`` must come from :func:`context_for` (with the same ``docs_dir``) when given.

    Returns per batch name: rows, suite, success, evaluated, failed, failures and one record per
    expectation (:func:`_record`).
    """
    context = context or context_for(docs_dir)
    out = {}
    try:
        for batch in batches:
            out[batch.name] = _run_one(context, batch)
        if docs_dir is not None:
            _build_docs(context, docs_dir)
    finally:
        _forget(context, batches)
    return out


def build_docs_from_merged(batches: Sequence[MergedBatch], docs_dir: Path, context: Any
                           ) -> None:
    """Build Data Docs into ``docs_dir`` of results that no single GX run computed: one GX
    validation result per batch (an ``ExpectationSuiteValidationResult`` of one
    ``ExpectationValidationResult`` per merged result, carrying the suite's own expectation
    configuration), stored in the context's validation results store and rendered by
    ``build_data_docs``, so the pages are those :func:`run_batches` writes.

    ``context`` must come from :func:`context_for` with the same ``docs_dir`` (the suites are
    built in it). Raises :class:`~is_core.errors.DataContractError` when a result names no
    expectation of its suite.
    """
    run_id = RunIdentifier(run_time=dt.datetime.now(dt.UTC))
    try:
        for batch in batches:
            suite = context.suites.add(batch.suite)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
                run_id=run_id, batch_identifier=f"isbench_{batch.name}-{batch.name}")
            context.validation_results_store.store_validation_results(
                suite_validation_result=_merged_validation(suite, batch, run_id),
                suite_validation_result_identifier=key)
        _build_docs(context, docs_dir)
    finally:
        _forget(context, batches)


def _merged_validation(suite: gx.ExpectationSuite, batch: MergedBatch, run_id: RunIdentifier
                       ) -> ExpectationSuiteValidationResult:
    """``batch``'s results as GX's validation result of ``suite`` (its statistics computed by
    GX's own ``calc_validation_statistics``)."""
    configs: dict[str, list[Any]] = {}
    for expectation in suite.expectations:
        config = expectation.configuration
        configs.setdefault(_expectation_key(config.type, config.kwargs), []).append(config)
    results = []
    for merged in batch.results:
        matches = configs.get(_expectation_key(merged.rule, merged.kwargs))
        if not matches:
            raise DataContractError(
                f"{merged.rule} with {merged.kwargs} is no expectation of suite {suite.name}: "
                "the merged per-partition results and the suite disagree",
                fix="rebuild the suite and the partition results from the same config (a suite "
                    "changed between validating the partitions and building the Data Docs)",
                details={"suite": suite.name, "rule": merged.rule})
        results.append(ExpectationValidationResult(
            success=merged.success, expectation_config=matches.pop(0), result=merged.result,
            exception_info=merged.exception_info))
    stats = calc_validation_statistics(results)
    validation = ExpectationSuiteValidationResult(
        success=stats.success, results=results, suite_name=suite.name,
        statistics={"evaluated_expectations": stats.evaluated_expectations,
                    "successful_expectations": stats.successful_expectations,
                    "unsuccessful_expectations": stats.unsuccessful_expectations,
                    "success_percent": stats.success_percent},
        meta={"great_expectations_version": gx.__version__,
              "batch_markers": _jsonable(batch.markers)},
        batch_id=f"isbench_{batch.name}-{batch.name}")
    # as ValidationDefinition.run adds them (after the constructor's JSON check)
    validation.meta["run_id"], validation.meta["validation_time"] = run_id, run_id.run_time
    return validation


def _expectation_key(rule: str, kwargs: dict[str, Any]) -> str:
    """An expectation's type and arguments (without ``batch_id``) as one comparable text."""
    return json.dumps([rule, {k: v for k, v in kwargs.items() if k != "batch_id"}],
                      sort_keys=True, default=str)


def _build_docs(context: Any, docs_dir: Path) -> None:
    """Render the context's Data Docs site (:func:`context_for`) without its heavy assets."""
    context.build_data_docs(site_names=["isbench"])
    for heavy in ("fonts", "images"):  # 4 MB of static assets per run; pages use CDNs
        shutil.rmtree(docs_dir / "static" / heavy, ignore_errors=True)


def _run_one(context: Any, batch: Batch) -> dict[str, Any]:
    """Validate one batch (its GX objects are locals here, so they are garbage once it returns:
    :func:`_forget` can then free them)."""
    source = context.data_sources.add_pandas(f"isbench_{batch.name}")
    definition = source.add_dataframe_asset(batch.name).add_batch_definition_whole_dataframe(
        "window")
    suite = context.suites.add(batch.suite)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=batch.name, data=definition, suite=suite))
    result = validation.run(batch_parameters={"dataframe": batch.frame}, result_format="SUMMARY")
    records = [_record(r, batch.role) for r in result.results]
    failed = [r for r in records if not r["success"]]
    return {"role": batch.role, "suite": suite.name, "rows": int(len(batch.frame)),
            "success": bool(result.success), "evaluated": len(records), "failed": len(failed),
            "failures": failed, "results": records}


def _forget(context: Any, batches: Sequence[Batch] | Sequence[MergedBatch]) -> None:
    """Delete what :func:`run_batches` (or :func:`build_docs_from_merged`) added to ``context``.

    ``gx.get_context()`` keeps the context as the process's current project after the call, and
    each pandas data source caches the frames it validated: without this, a flow run would hold
    the whole validated window (0.7 GB for 1M + 1M rows) until the process exits.
    """
    for batch in batches:
        for store, name in ((context.validation_definitions, batch.name),
                            (context.suites, batch.suite.name),
                            (context.data_sources, f"isbench_{batch.name}")):
            try:
                store.delete(name)
            except Exception:  # noqa: BLE001 - not added (the run failed before it): nothing held
                pass
    gc.collect()  # GX's validators and batches reference each other: only the cycle GC frees them


def _record(result: Any, role: str) -> dict[str, Any]:
    """One expectation's result as a record: role, success, rule, column, observed, expected,
    fix (the expectation's ``meta.fix``) and engine."""
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    expected = {k: v for k, v in kwargs.items() if k != "column"}
    meta = cfg.meta or {}
    return {
        "role": role,
        "success": bool(result.success),
        "rule": cfg.type,
        "column": kwargs.get("column"),
        "observed": _jsonable(_observed(result)),
        "expected": _jsonable(expected) or EXPECTED_TEXT.get(cfg.type, "-"),
        "fix": meta.get("fix", "fix the upstream data"),
        "engine": "great_expectations",
    }


def _observed(result: Any) -> Any:
    """What the expectation saw: its observed value, a count and sample of unexpected values,
    or why it could not be evaluated."""
    details = result.result or {}
    exception = result.exception_info or {}
    if result.expectation_config.type == "expect_column_to_exist":
        return "column present" if result.success else "column missing"
    if "observed_value" in details:
        return details["observed_value"]
    if "unexpected_count" in details:
        count = details["unexpected_count"]
        sample = [str(v) for v in (details.get("partial_unexpected_list") or [])[:5]]
        return (f"{count} unexpected value(s) ({details.get('unexpected_percent', 0):.3g} "
                f"%), e.g. {sample}" if count else "0 unexpected values")
    if exception.get("raised_exception"):
        return f"not evaluated: {str(exception.get('exception_message'))[:200]}"
    return None


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, NaN as None and anything else as text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)
