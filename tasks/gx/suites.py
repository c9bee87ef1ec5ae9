"""Great Expectations 1.x suites for the input contract, built from the config.

``is_core`` must not import Great Expectations, so the suites live beside the tasks that run
them. Two suites per data role (source, target, holdout):

* ``isbench_<role>``: the contract of the window — row-count bounds, columns present, non-null
  (the label and impression id; the features too under ``validation.allow_missing_features:
  false``), numeric dtypes, label in {0, 1}, CTR plausibility, finite numbers in their ranges,
  categorical cardinality bounds, unique impression ids, logging propensity in (0, 1] and, given
  a run date, partition freshness (the newest event time near the end of the run date);
* ``isbench_<role>_drift``: the run date's own day against bounds learned from the reference
  day (:func:`is_core.data.contract.drift_bounds`): row count, CTR, numeric means, cardinalities
  and each feature's share of missing values.

A categorical's type (text, integers, booleans or ``category``, all coded by their level text)
is checked by :func:`is_core.data.contract.categorical_type_records`, not here: Great
Expectations' type rules see the pandas dtype, which for an integer column with nulls is float.

Every expectation carries its own ``meta.fix`` (what to do when it fails), which
:mod:`tasks.gx.runner` copies into each result record. The suites of the default config are
versioned under ``expectations/`` and regenerated with ``isbench suites`` (``--check`` verifies
they are current: :func:`check_suites`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import great_expectations as gx
import great_expectations.expectations as gxe

from is_core.config import IsbenchConfig
from is_core.data.contract import freshness_window
from tasks.gx.runner import context_for

SUITE_VERSION = 3
"""Bump when the suites' rules change; written into each suite's ``meta``."""
SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations"
ROLES = ("source", "target", "holdout")
NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64",
                 "float32", "float64", "Float32", "Float64"]
FINITE_BOUND = 1e300  # "between ±1e300" rejects ±inf, which GX's null checks do not see

FIX_MISSING = ("the upstream schema lost this column: fix the export, or remove the column from "
               "the config's `columns`")
FIX_NULL = "impute or drop the null values upstream, remove the column from the features, or " \
           "set `validation.mode: quarantine` to drop such rows"
FIX_NULL_FEATURE = ("`validation.allow_missing_features: false` refuses missing feature values: "
                    "impute or drop them upstream, set `validation.mode: quarantine` to drop "
                    "such rows, or allow them (a missing categorical is its own level, a "
                    "missing numeric gets a missing indicator in the proposal model)")
FIX_LABEL = "the label must be 0 or 1 (one click flag per impression); fix the label export"
FIX_CTR = ("the click rate is implausible (all zeros, all ones or a broken join): check the label "
           "export, or adjust `validation.ctr_range`")
FIX_RANGE = ("values outside the allowed range (or ±inf): fix the upstream computation of this "
             "column, or adjust `validation.numeric_ranges`")
FIX_NUMERIC_TYPE = ("the column has the wrong dtype: cast it upstream or move it between "
                    "columns.numeric and columns.categorical")
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


def _labeled(role: str) -> bool:
    """Whether ``role``'s files carry the label (the target needs none)."""
    return role in ("source", "holdout")


def build_suite(config: IsbenchConfig, role: str,
                run_date: Any | None = None) -> gx.ExpectationSuite:
    """The window suite of ``role`` (source, target or holdout) under ``config``.

    With ``run_date`` (a date) and a configured timestamp column, the suite also checks partition
    freshness; without, it is the static suite versioned under ``expectations/``. A Great
    Expectations context must exist (:func:`tasks.gx.runner.context_for`).
    """
    cols, vc = config.columns, config.validation
    expectations: list[Any] = []
    add = expectations.append
    add(gxe.ExpectTableRowCountToBeBetween(min_value=max(vc.min_rows, 1), max_value=vc.max_rows,
                                           meta={"fix": FIX_ROWS}))
    required = [*([cols.label] if _labeled(role) else []),
                *([cols.impression_id] if cols.impression_id else [])]
    for col in [*cols.features, *required]:
        add(gxe.ExpectColumnToExist(column=col, meta={"fix": FIX_MISSING}))
        if col in required or not vc.allow_missing_features:
            add(gxe.ExpectColumnValuesToNotBeNull(
                column=col, meta={"fix": FIX_NULL if col in required else FIX_NULL_FEATURE}))
    if _labeled(role):
        add(gxe.ExpectColumnValuesToBeInSet(column=cols.label, value_set=[0, 1],
                                            meta={"fix": FIX_LABEL}))
        lo, hi = vc.ctr_range
        add(gxe.ExpectColumnMeanToBeBetween(column=cols.label, min_value=lo, max_value=hi,
                                            meta={"fix": FIX_CTR}))
    for col in cols.numeric:
        add(gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=NUMERIC_TYPES,
                                                 meta={"fix": FIX_NUMERIC_TYPE}))
        low, high = vc.numeric_ranges.get(col, (None, None))
        add(gxe.ExpectColumnValuesToBeBetween(
            column=col, min_value=-FINITE_BOUND if low is None else low,
            max_value=FINITE_BOUND if high is None else high, meta={"fix": FIX_RANGE}))
    lo, hi = vc.cardinality_range
    for col in cols.categorical:
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
        # ISO strings (as versioned): GX compares them with the column's max; its hints lack str
        add(gxe.ExpectColumnMaxToBeBetween(
            column=cols.timestamp,
            min_value=lo_ts.isoformat(), max_value=hi_ts.isoformat(),  # type: ignore[arg-type]
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
    for col, share in bounds.get("null_share", {}).items():
        if col in cols.features and share["max"] < 1:
            # "not null, mostly": fails when more than 1 - mostly of the rows are null
            add(gxe.ExpectColumnValuesToNotBeNull(
                column=col, mostly=round(1 - share["max"], 6),
                meta={**meta, "check": "null share drift", "fix": _null_share_fix(share)}))
    return _suite(f"isbench_{role}_drift", expectations,
                  {"isbench_suite_version": SUITE_VERSION, "role": role,
                   "reference_day": bounds.get("reference_day")})


def _null_share_fix(share: dict[str, float]) -> str:
    return (f"the share of missing values rose from {share['reference']:.2%} on the reference "
            f"day to more than {share['max']:.2%} (a broken join or a field lost upstream?): "
            "fix the upstream data; if the change is real and expected, re-run once with "
            "`validation.reference_day: none` to accept it as the new reference")


# ---------------------------------------------------------------------------- versioned suites
def suite_json(suite: gx.ExpectationSuite) -> dict[str, Any]:
    """A suite as deterministic JSON (no random ids), as stored under ``expectations/``."""
    raw = cast(dict[str, Any], suite.to_json_dict())  # a suite is always a JSON object
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


def check_suites(config: IsbenchConfig, out_dir: Path) -> list[str]:
    """The names of the suite files in ``out_dir`` that are missing or differ from what
    :func:`write_suites` generates now (empty when they are current)."""
    with tempfile.TemporaryDirectory() as tmp:
        return [p.name for p in write_suites(config, Path(tmp))
                if not (out_dir / p.name).is_file()
                or (out_dir / p.name).read_text(encoding="utf-8") != p.read_text(encoding="utf-8")]
