"""Great Expectations 1.x suites for the input contract, and their results as plain records.

``is_core`` must not import Great Expectations, so the suites live beside the tasks that run
them. Two suites per data role (source, target, holdout):

* ``isbench_<role>``: the contract of the window — row-count bounds, columns present, non-null,
  dtypes, label in {0, 1}, CTR plausibility, finite numbers in their ranges, categorical
  cardinality bounds, unique impression ids, logging propensity in (0, 1] and, given a run date,
  partition freshness (the newest event time near the end of the run date);
* ``isbench_<role>_drift``: the run date's own day against bounds learned from the reference
  day (:func:`is_core.data.contract.drift_bounds`): row count, CTR, numeric means, cardinalities.

Every expectation carries its own ``meta.fix`` (what to do when it fails); results become small
dicts (role, rule, column, observed, expected, fix) for the error message, the report and the
Prefect artifact. The suites of the default config are versioned under ``expectations/`` and
regenerated with ``python -m tasks.expectations`` (``--check`` verifies they are current).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from is_core.config import IsbenchConfig
from is_core.data.contract import freshness_window

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

logging.getLogger("great_expectations").setLevel(logging.WARNING)

SUITE_VERSION = 2
"""Bump when the suites' rules change; written into each suite's ``meta``."""
SUITES_DIR = Path(__file__).resolve().parents[1] / "expectations"
ROLES = ("source", "target", "holdout")
NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64",
                 "float32", "float64", "Float32", "Float64"]
FINITE_BOUND = 1e300  # "between ±1e300" rejects ±inf, which GX's null checks do not see

FIX_MISSING = ("the upstream schema lost this column: fix the export, or remove the column from "
               "the config's `columns`")
FIX_NULL = "impute or drop the null values upstream, remove the column from the features, or " \
           "set `validation.mode: quarantine` to drop such rows"
FIX_LABEL = "the label must be 0 or 1 (one click flag per impression); fix the label export"
FIX_CTR = ("the click rate is implausible (all zeros, all ones or a broken join): check the label "
           "export, or adjust `validation.ctr_range`")
FIX_RANGE = ("values outside the allowed range (or ±inf): fix the upstream computation of this "
             "column, or adjust `validation.numeric_ranges`")
FIX_NUMERIC_TYPE = ("the column has the wrong dtype: cast it upstream or move it between "
                    "columns.numeric and columns.categorical")
FIX_TEXT_TYPE = ("categorical columns must be text: cast it to string upstream or list it under "
                 "columns.numeric")
FIX_CARDINALITY = ("the number of distinct values is outside `validation.cardinality_range` "
                   "(an id leaked into a category, or the column is constant): fix the column")
FIX_UNIQUE = ("duplicate impression ids: the day was exported twice or joined badly; "
              "de-duplicate upstream")
FIX_PROPENSITY = ("logging propensities must be in (0, 1]: a 0 makes inverse-propensity weights "
                  "infinite; fix the logger's export")
FIX_ROWS = ("the row count is outside `validation.min_rows`/`max_rows`: check the upstream "
            "export of these days")
FIX_FRESH = ("the newest event is too old (a stale or partial partition) or lies after the run "
             "date (wrong partition or time zone): re-export the run date, or adjust "
             "`validation.freshness_hours`")
FIX_DRIFT = ("today's data moved far from the reference day (the last good run): if the change "
             "is real and expected, re-run once with `validation.reference_day: none` to accept "
             "it as the new reference; otherwise fix the upstream data")

EXPECTED_TEXT = {
    "expect_column_to_exist": "column present",
    "expect_column_values_to_not_be_null": "no nulls",
    "expect_column_values_to_be_unique": "unique values",
}


def _labeled(role: str) -> bool:
    return role in ("source", "holdout")


def build_suite(config: IsbenchConfig, role: str,
                run_date: Any | None = None) -> gx.ExpectationSuite:
    """The window suite of ``role`` (source, target or holdout) under ``config``.

    With ``run_date`` (a date) and a configured timestamp column, the suite also checks partition
    freshness; without, it is the static suite versioned under ``expectations/``. A Great
    Expectations context must exist (:func:`_context`).
    """
    cols, vc = config.columns, config.validation
    expectations: list[Any] = []
    add = expectations.append
    add(gxe.ExpectTableRowCountToBeBetween(min_value=max(vc.min_rows, 1), max_value=vc.max_rows,
                                           meta={"fix": FIX_ROWS}))
    required = [*cols.features, *([cols.label] if _labeled(role) else [])]
    if cols.impression_id:
        required.append(cols.impression_id)
    for col in required:
        add(gxe.ExpectColumnToExist(column=col, meta={"fix": FIX_MISSING}))
        add(gxe.ExpectColumnValuesToNotBeNull(column=col, meta={"fix": FIX_NULL}))
    if _labeled(role):
        add(gxe.ExpectColumnValuesToBeInSet(column=cols.label, value_set=[0, 1],
                                            meta={"fix": FIX_LABEL}))
        lo, hi = vc.ctr_range
        add(gxe.ExpectColumnMeanToBeBetween(column=cols.label, min_value=lo, max_value=hi,
                                            meta={"fix": FIX_CTR}))
    for col in cols.numeric:
        add(gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=NUMERIC_TYPES,
                                                 meta={"fix": FIX_NUMERIC_TYPE}))
        lo, hi = vc.numeric_ranges.get(col, (None, None))
        add(gxe.ExpectColumnValuesToBeBetween(
            column=col, min_value=-FINITE_BOUND if lo is None else lo,
            max_value=FINITE_BOUND if hi is None else hi, meta={"fix": FIX_RANGE}))
    lo, hi = vc.cardinality_range
    for col in cols.categorical:
        add(gxe.ExpectColumnValuesToBeOfType(column=col, type_="str",
                                             meta={"fix": FIX_TEXT_TYPE}))
        add(gxe.ExpectColumnUniqueValueCountToBeBetween(column=col, min_value=lo, max_value=hi,
                                                        meta={"fix": FIX_CARDINALITY}))
    if cols.impression_id:
        add(gxe.ExpectColumnValuesToBeUnique(column=cols.impression_id,
                                             meta={"fix": FIX_UNIQUE}))
    if role == "source" and cols.logging_propensity:
        add(gxe.ExpectColumnValuesToBeBetween(column=cols.logging_propensity, min_value=0,
                                              max_value=1, strict_min=True,
                                              meta={"fix": FIX_PROPENSITY}))
    if run_date is not None and cols.timestamp and vc.freshness_hours is not None:
        lo_ts, hi_ts = freshness_window(run_date, vc.freshness_hours)
        add(gxe.ExpectColumnMaxToBeBetween(
            column=cols.timestamp, min_value=lo_ts.isoformat(), max_value=hi_ts.isoformat(),
            meta={"fix": FIX_FRESH, "check": "partition freshness"}))
    return _suite(f"isbench_{role}", expectations,
                  {"isbench_suite_version": SUITE_VERSION, "role": role})


def _suite(name: str, expectations: list[Any], meta: dict[str, Any]) -> gx.ExpectationSuite:
    """A suite of ``expectations`` built in one go: ``ExpectationSuite.add_expectation``
    compares each new expectation with every earlier one (quadratic: 4 s for the 500
    expectations of three 40-column suites); the suites built here hold no duplicates."""
    return gx.ExpectationSuite(name=name, expectations=expectations, meta=meta)


def build_drift_suite(config: IsbenchConfig, role: str,
                      bounds: dict[str, Any]) -> gx.ExpectationSuite:
    """The drift suite of ``role``: the run date's day within ``bounds``
    (:func:`is_core.data.contract.drift_bounds` of the reference day)."""
    cols = config.columns
    meta = {"fix": FIX_DRIFT, "reference_day": bounds.get("reference_day")}
    expectations: list[Any] = []
    add = expectations.append
    lo, hi = bounds["rows"]
    add(gxe.ExpectTableRowCountToBeBetween(min_value=lo, max_value=hi, meta=meta))
    if bounds.get("ctr") and _labeled(role):
        lo, hi = bounds["ctr"]
        add(gxe.ExpectColumnMeanToBeBetween(column=cols.label, min_value=lo, max_value=hi,
                                            meta=meta))
    for col, (lo, hi) in bounds["numeric_mean"].items():
        if col in cols.numeric:
            add(gxe.ExpectColumnMeanToBeBetween(column=col, min_value=lo, max_value=hi,
                                                meta=meta))
    for col, (lo, hi) in bounds["cardinality"].items():
        if col in cols.categorical:
            add(gxe.ExpectColumnUniqueValueCountToBeBetween(column=col, min_value=lo,
                                                            max_value=hi, meta=meta))
    return _suite(f"isbench_{role}_drift", expectations,
                  {"isbench_suite_version": SUITE_VERSION, "role": role,
                   "reference_day": bounds.get("reference_day")})


# ---------------------------------------------------------------------------- running
@dataclass
class Batch:
    """One frame to validate with one suite (``name`` labels it in Data Docs and records)."""

    name: str
    role: str
    suite: gx.ExpectationSuite
    frame: pd.DataFrame


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
            context.build_data_docs(site_names=["isbench"])
            for heavy in ("fonts", "images"):  # 4 MB of static assets per run; pages use CDNs
                shutil.rmtree(docs_dir / "static" / heavy, ignore_errors=True)
    finally:
        _forget(context, batches)
    return out


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


def _forget(context: Any, batches: Sequence[Batch]) -> None:
    """Delete what :func:`run_batches` added to ``context``.

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


def validate_frame(frame: pd.DataFrame, config: IsbenchConfig, role: str,
                   run_date: Any | None = None) -> dict[str, Any]:
    """Run the ``role`` window suite on ``frame``; return a summary with one record per
    expectation (no Data Docs, no drift: the quick path for tests and notebooks)."""
    context = context_for()
    batch = Batch(role, role, build_suite(config, role, run_date), frame)
    return run_batches([batch], context=context)[role]


def _record(result: Any, role: str) -> dict[str, Any]:
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    details = result.result or {}
    exception = result.exception_info or {}
    if cfg.type == "expect_column_to_exist":
        observed: Any = "column present" if result.success else "column missing"
    elif "observed_value" in details:
        observed = details["observed_value"]
    elif "unexpected_count" in details:
        count = details["unexpected_count"]
        sample = [str(v) for v in (details.get("partial_unexpected_list") or [])[:5]]
        observed = (f"{count} unexpected value(s) ({details.get('unexpected_percent', 0):.3g} "
                    f"%), e.g. {sample}" if count else "0 unexpected values")
    elif exception.get("raised_exception"):
        observed = f"not evaluated: {str(exception.get('exception_message'))[:200]}"
    else:
        observed = None
    expected = {k: v for k, v in kwargs.items() if k != "column"}
    meta = cfg.meta or {}
    return {
        "role": role,
        "success": bool(result.success),
        "rule": cfg.type,
        "column": kwargs.get("column"),
        "observed": _jsonable(observed),
        "expected": _jsonable(expected) or EXPECTED_TEXT.get(cfg.type, "-"),
        "fix": meta.get("fix", "fix the upstream data"),
        "engine": "great_expectations",
    }


def _jsonable(value: Any) -> Any:
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


# ---------------------------------------------------------------------------- versioned suites
def suite_json(suite: gx.ExpectationSuite) -> dict[str, Any]:
    """A suite as deterministic JSON (no random ids), as stored under ``expectations/``."""
    raw = suite.to_json_dict()
    raw.pop("id", None)
    for expectation in raw.get("expectations", []):
        expectation.pop("id", None)
    return raw


def write_suites(config: IsbenchConfig, out_dir: Path, run_date: Any | None = None,
                 roles: Sequence[str] = ROLES) -> list[Path]:
    """Write the window suite of each role as ``<out_dir>/isbench_<role>.json``."""
    context_for()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for role in roles:
        suite = build_suite(config, role, run_date)
        path = out_dir / f"{suite.name}.json"
        path.write_text(json.dumps(suite_json(suite), indent=2, sort_keys=True) + "\n",
                        encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.expectations [--config F] [--out DIR] [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m tasks.expectations",
                                     description="(Re)generate the versioned GX suites.")
    parser.add_argument("--config", help="YAML/TOML config (default: built-in defaults)")
    parser.add_argument("--out", default=str(SUITES_DIR), help="folder of the suite files")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the files in --out differ from what the code generates")
    args = parser.parse_args(argv)
    config = IsbenchConfig.from_file(args.config) if args.config else IsbenchConfig()
    out = Path(args.out)
    if not args.check:
        for path in write_suites(config, out):
            print(f"wrote {path}")
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        stale = [p.name for p in write_suites(config, Path(tmp))
                 if not (out / p.name).is_file()
                 or (out / p.name).read_text(encoding="utf-8") != p.read_text(encoding="utf-8")]
    if stale:
        print(f"stale or missing suite files in {out}: {stale}; regenerate them with "
              "`python -m tasks.expectations`", file=sys.stderr)
        return 1
    print(f"suites in {out} are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
