"""Great Expectations 1.x suites for the input contract, and their results as plain records.

``is_core`` must not import Great Expectations, so the suites live beside the tasks that run
them. A suite is built from the config (which columns mean what) per data role; the results are
turned into small dicts (column, rule, observed, expected, fix) for the error message, the
report and the Prefect artifact.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd

from is_core.config import IsbenchConfig

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

logging.getLogger("great_expectations").setLevel(logging.WARNING)

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int64", "float32", "float64", "Float64"]
FINITE_BOUND = 1e300  # "between ±1e300" rejects ±inf, which GX's null checks do not see

FIXES = {
    "expect_column_to_exist": "the upstream schema lost this column: fix the export, or remove "
    "the column from the config's `columns`",
    "expect_column_values_to_not_be_null": "impute or drop the null values upstream, or remove "
    "the column from the features",
    "expect_column_values_to_be_in_set": "the label must be 0 or 1 (one click flag per "
    "impression); fix the label export",
    "expect_column_values_to_be_between": "values outside the allowed range (or ±inf): fix the "
    "upstream computation of this column",
    "expect_column_values_to_be_in_type_list": "the column has the wrong dtype: cast it upstream "
    "or move it between columns.numeric and columns.categorical",
    "expect_column_values_to_be_of_type": "categorical columns must be text: cast it to string "
    "upstream or list it under columns.numeric",
    "expect_column_values_to_be_unique": "duplicate impression ids: the day was exported twice "
    "or joined badly; de-duplicate upstream",
    "expect_table_row_count_to_be_between": "no rows for this window: check the upstream export "
    "of these days",
}


EXPECTED_TEXT = {
    "expect_column_to_exist": "column present",
    "expect_column_values_to_not_be_null": "no nulls",
    "expect_column_values_to_be_unique": "unique values",
}


def build_suite(config: IsbenchConfig, role: str) -> gx.ExpectationSuite:
    """The expectation suite of ``role`` (source, target or holdout) under ``config``."""
    cols = config.columns
    suite = gx.ExpectationSuite(name=f"isbench_{role}")
    add = suite.add_expectation
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    labeled = role in ("source", "holdout")
    required = [*cols.features, *([cols.label] if labeled else [])]
    if cols.impression_id:
        required.append(cols.impression_id)
    for col in required:
        add(gxe.ExpectColumnToExist(column=col))
        add(gxe.ExpectColumnValuesToNotBeNull(column=col))
    if labeled:
        add(gxe.ExpectColumnValuesToBeInSet(column=cols.label, value_set=[0, 1]))
    for col in cols.numeric:
        add(gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=NUMERIC_TYPES))
        add(gxe.ExpectColumnValuesToBeBetween(column=col, min_value=-FINITE_BOUND,
                                              max_value=FINITE_BOUND))
    for col in cols.categorical:
        add(gxe.ExpectColumnValuesToBeOfType(column=col, type_="str"))
    if cols.impression_id:
        add(gxe.ExpectColumnValuesToBeUnique(column=cols.impression_id))
    if role == "source" and cols.logging_propensity:
        add(gxe.ExpectColumnValuesToBeBetween(column=cols.logging_propensity, min_value=0,
                                              max_value=1, strict_min=True))
    return suite


def validate_frame(frame: pd.DataFrame, config: IsbenchConfig, role: str) -> dict[str, Any]:
    """Run the ``role`` suite on ``frame``; return a summary with one record per expectation."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(f"isbench_{role}")
        .add_dataframe_asset(role)
        .add_batch_definition_whole_dataframe("window")
    )
    suite = context.suites.add(build_suite(config, role))
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    records = [_record(r, role) for r in result.results]
    failed = [r for r in records if not r["success"]]
    return {
        "role": role,
        "suite": suite.name,
        "rows": int(len(frame)),
        "success": bool(result.success),
        "evaluated": len(records),
        "failed": len(failed),
        "failures": failed,
        "results": records,
    }


def _record(result: Any, role: str) -> dict[str, Any]:
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    details = result.result or {}
    if "observed_value" in details:
        observed: Any = details["observed_value"]
    elif "unexpected_count" in details:
        sample = [str(v) for v in (details.get("partial_unexpected_list") or [])[:5]]
        observed = f"{details['unexpected_count']} unexpected value(s), e.g. {sample}"
    elif result.exception_info and result.exception_info.get("raised_exception"):
        observed = "column missing" if cfg.type == "expect_column_to_exist" else str(
            result.exception_info.get("exception_message"))[:200]
    else:
        observed = "column missing" if cfg.type == "expect_column_to_exist" else None
    expected = {k: v for k, v in kwargs.items() if k != "column"}
    return {
        "role": role,
        "success": bool(result.success),
        "rule": cfg.type,
        "column": kwargs.get("column"),
        "observed": _jsonable(observed),
        "expected": _jsonable(expected) or EXPECTED_TEXT.get(cfg.type, "-"),
        "fix": FIXES.get(cfg.type, "fix the upstream data"),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
