"""The validate stage on the Dask engine: the same checks, run partition by partition.

Great Expectations 1.x has no Dask execution engine, so each partition (one input file) is
validated on a worker with the role's pandas suite (:func:`tasks.gx.suites.build_suite`, and the
drift suite on the run date's partitions), and the results are merged into one record per
check, with the local engine's rules, texts and failure messages:

* row rules (not null, in set, between, types): unexpected counts add up; ``mostly`` is judged
  on the sums;
* table rules are judged again on merged statistics: the row count (a sum), a column's mean (a
  count-weighted mean), its distinct values (a union), its maximum, and the uniqueness of the
  impression ids over the window (a ``dask.dataframe`` value count);
* isbench's checks merge their numbers: the magnitudes' counts and ranges, each day's rows and
  event times, the unseen categories (the source's levels, merged first), the ids shared
  between roles (partition pairs);
* the day profile (the next run's reference) from merged sums; its quantiles merged from
  per-partition quantile summaries (1001 points each, exact when the day is one partition).

With ``validation.data_docs``, the client builds GX Data Docs of the merged results at the
local engine's path (``validation/data_docs/``, also on failure): one GX validation result per
suite the local engine runs (each role's window suite, and its drift suite given a reference
day), each expectation's result carrying its merged verdict and numbers (observed value, or
unexpected counts and samples), rendered by GX (:func:`tasks.gx.runner.build_docs_from_merged`).
As on the local engine, isbench's own checks are in ``results.json`` and the report, not in the
Data Docs. A failure to build them is a warning and leaves the verdicts as they are.

In quarantine mode (:func:`quarantine_window`) each partition first finds, on its worker, its
rows breaking a row rule with the local engine's code (:func:`is_core.data.contract.row_problems`;
an impression id is also a repeat when an earlier partition holds it: :func:`repeated_ids`) and
writes its dropped rows with their rules and its kept rows (one scratch file per partition, only
read when the role lost rows); the client adds up the counts, judges
``validation.max_quarantine_share`` on the role's totals (the local record and error), renames
the dropped rows' folder to ``validation/quarantine/<role>.parquet`` (a folder of
``part-00000.parquet`` files numbered by partition, read whole by ``pandas.read_parquet``) and
points the checks, and the later stages (the ``clean_input`` entry), at the kept files. As
locally, the schema, type and day checks see the rows as read, every other check the kept rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from is_core.config import IsbenchConfig
from is_core.data.atomic import write_json_atomic, write_parquet_atomic
from is_core.data.contract import (
    categorical_type_records,
    day_row_count_records,
    drift_bounds,
    event_day_records,
    local_naive_timestamps,
    outside_text,
    quarantine_summary,
    reference_range,
    reference_range_records,
    row_problems,
    sanity_bound_records,
    schema_checks,
    shared_ids,
    unseen_category_records,
    window_day_stats,
)
from is_core.data.features import category_levels
from is_core.data.io import InputFile, read_input_files, read_schema_of
from is_core.data.stage import Inputs, Role, input_files
from is_core.errors import DataValidationError
from is_core.release.runs import PROFILE_FILE, VALIDATION_DIR
from tasks.gx.window import (
    _label,
    _raise_on_failures,
    _reference_roles,
    clean_entry,
    inputs_after_quarantine,
    keep_quarantine_failure,
    rejected_rows,
    write_kept,
)

if TYPE_CHECKING:  # Great Expectations is imported where the suites run or the docs are built
    from tasks.gx.runner import MergedResult

Record = dict[str, Any]
Merged = tuple[Record, "MergedResult"]
"""One expectation's record and its merged GX result (what Data Docs show)."""
ROW_RULES = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set",
             "expect_column_values_to_be_between", "expect_column_values_to_be_in_type_list",
             "expect_column_values_to_be_of_type"}


def _frame(file: InputFile, config: IsbenchConfig, columns: list[str]) -> pd.DataFrame:
    """One partition as the local validation reads it (timestamps as local naive times)."""
    frame = read_input_files([file], columns, role="validate")
    ts = config.columns.timestamp
    if ts and ts in frame:
        frame[ts] = local_naive_timestamps(frame[ts], config.timezone)
    return frame


def _suite_results(frame: pd.DataFrame, config: IsbenchConfig, role: str, run_date: dt.date,
                   bounds: dict[str, Any] | None) -> list[tuple[Record, dict[str, Any]]]:
    """The role's window suite (and, given drift bounds, its drift suite) on one partition:
    each expectation's record and its raw numbers."""
    import great_expectations as gx

    from tasks.gx.runner import _record, context_for
    from tasks.gx.suites import build_drift_suite, build_suite

    context = context_for()
    suites = [("window", build_suite(config, role, run_date))]
    if bounds is not None:
        suites.append(("drift", build_drift_suite(config, role, bounds)))
    out = []
    for kind, suite in suites:
        name = f"isbench_{role}_{kind}_{id(frame)}"
        source = context.data_sources.add_pandas(name)
        definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("p")
        validation = gx.ValidationDefinition(name=name, data=definition,
                                             suite=context.suites.add(suite))
        result = validation.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        for r in result.results:
            raw = dict(r.result or {})
            cfg = r.expectation_config
            raw["kind"], raw["kwargs"] = kind, dict(cfg.kwargs) if cfg is not None else {}
            raw["exception"] = dict(r.exception_info or {})
            out.append((_record(r, role), raw))
        context.suites.delete(suite.name)
        context.data_sources.delete(name)
    return out


def _magnitudes(frame: pd.DataFrame, config: IsbenchConfig, role: str,
                reference: dict[str, Any] | None) -> dict[str, Any]:
    """The magnitude records of one partition with the numbers their merge needs."""
    out: dict[str, Any] = {"sanity": [], "reference": []}
    bound = config.validation.max_abs_value
    for record in sanity_bound_records(frame, config, role):
        x = frame[record["column"]].to_numpy(dtype=float, na_value=np.nan)
        out["sanity"].append((record, _outside(frame, x, np.isfinite(x) & (np.abs(x) > bound))))
    if reference is not None:
        k = config.validation.magnitude_widening
        for record in reference_range_records(frame, config, role, reference):
            lo, hi = cast(tuple[float, float],
                          reference_range(reference["numeric"][record["column"]], k))
            x = frame[record["column"]].to_numpy(dtype=float, na_value=np.nan)
            out["reference"].append((record, _outside(frame, x, np.isfinite(x)
                                                      & ((x < lo) | (x > hi)))))
    return out


def _outside(frame: pd.DataFrame, x: np.ndarray, outside: np.ndarray) -> dict[str, Any]:
    finite = x[np.isfinite(x)]
    return {"count": int(outside.sum()), "n": len(x),
            "range": (float(finite.min()), float(finite.max())) if len(finite) else None,
            "days": sorted({str(d) for d in frame.loc[outside, "dt"]})
            if outside.any() and "dt" in frame else []}


def _profile_part(frame: pd.DataFrame, config: IsbenchConfig) -> dict[str, Any]:
    """One run-date partition's part of :func:`is_core.data.contract.day_profile`."""
    cols = config.columns
    out: dict[str, Any] = {"rows": len(frame), "label": None, "numeric": {}, "distinct": {},
                           "nulls": {}}
    if cols.label in frame:
        y = pd.to_numeric(frame[cols.label], errors="coerce")
        out["label"] = (float(y.sum()), int(y.notna().sum()))
    for col in cols.numeric:
        if col in frame and pd.api.types.is_numeric_dtype(frame[col]):
            x = frame[col].to_numpy(dtype=float, na_value=np.nan)
            x = x[np.isfinite(x)]
            out["numeric"][col] = {"n": len(x), "sum": float(x.sum()), "sq": float(x @ x),
                                   "q": np.quantile(x, np.linspace(0, 1, 1001)) if len(x)
                                   else None,
                                   "exact": np.quantile(x, [0.01, 0.5, 0.99]) if len(x)
                                   else None}
    for col in cols.categorical:
        if col in frame:
            out["distinct"][col] = set(frame[col].dropna().unique())
    for col in cols.features:
        if col in frame:
            out["nulls"][col] = int(frame[col].isna().sum())
    return out


def check_partition(file: InputFile, index: int, first: int, n: int, config: IsbenchConfig,
                    role: str, columns: list[str], days: list[str], run_date: dt.date,
                    reference: dict[str, Any] | None) -> dict[str, Any]:
    """Every check of one partition (on a worker): GX records with their numbers, isbench's
    records and numbers, the statistics the window-level rules and the profile merge."""
    frame = _frame(file, config, columns)
    today = file.day is None or file.day == run_date
    bounds = drift_bounds(reference, config.validation) if reference and today else None
    return {
        "rows": len(frame), "gx": _suite_results(frame, config, role, run_date, bounds),
        **_as_read(frame, config, role, days),
        "magnitudes": _magnitudes(frame, config, role, reference if today else None),
        "sums": {c: (float(pd.to_numeric(frame[c], errors="coerce").sum()),
                     int(frame[c].notna().sum())) for c in columns
                 if c in frame and pd.api.types.is_numeric_dtype(frame[c])},
        "distinct": {c: set(frame[c].dropna().unique()) for c in config.columns.categorical
                     if c in frame},
        "levels": {c: set(category_levels(frame[c])) for c in config.columns.categorical
                   if c in frame},
        "profile": _profile_part(frame, config) if today else None,
    }


def _as_read(frame: pd.DataFrame, config: IsbenchConfig, role: str, days: list[str]
             ) -> dict[str, Any]:
    """One partition's numbers of the checks the local engine runs on the rows as read (in
    quarantine mode, before any row is dropped): the categoricals' types, each day's rows and
    event times; and the newest event (the ``expect_column_max`` table rule)."""
    ts = config.columns.timestamp
    return {"types": categorical_type_records(frame, config, role),
            "days": window_day_stats(frame, days, ts if ts in frame else None),
            "max": {c: frame[c].max() for c in ([ts] if ts and ts in frame else [])}}


def _between(value: Any, kwargs: dict[str, Any]) -> bool:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if isinstance(value, pd.Timestamp):
        lo = None if lo is None else pd.Timestamp(lo)
        hi = None if hi is None else pd.Timestamp(hi)
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _row_rule(entries: list[tuple[Record, dict[str, Any]]]) -> tuple[Record, dict[str, Any]]:
    """A row rule's merged record and GX result: unexpected counts and samples added up."""
    record, raw = entries[0]
    if "unexpected_count" not in raw:  # type rules: the dtype each partition saw
        return _first_failed(entries)
    count = sum(int(r.get("unexpected_count") or 0) for _, r in entries)
    element = sum(int(r.get("element_count") or 0) for _, r in entries)
    missing = (sum(int(r.get("missing_count") or 0) for _, r in entries)
               if "missing_count" in raw else None)
    values = [v for _, r in entries for v in (r.get("partial_unexpected_list") or [])]
    sample = [str(v) for v in values][:5]
    counted = element - (missing or 0)
    pct = 100.0 * count / counted if counted else 0.0
    mostly = raw["kwargs"].get("mostly")
    success = (count == 0 if mostly is None
               else not element or 1 - count / element >= mostly)
    observed = (f"{count} unexpected value(s) ({pct:.3g} %), e.g. {sample}" if count
                else "0 unexpected values")
    return ({**record, "success": bool(success), "observed": observed},
            _unexpected_result(element, missing, count, values))


def _unexpected_result(element: int, missing: int | None, count: int, values: list[Any]
                       ) -> dict[str, Any]:
    """GX's SUMMARY result of a row rule from merged numbers: counts, percentages (of the
    non-missing rows, as GX's ``unexpected_percent``) and the first 20 unexpected values with
    their counts (``values``: every partition's sample, in row order)."""
    counted = element - (missing or 0)
    partial = values[:20]
    tally: dict[Any, int] = {}
    for value in partial:
        tally[value] = tally.get(value, 0) + 1
    out: dict[str, Any] = {
        "element_count": element, "unexpected_count": count,
        "unexpected_percent": 100.0 * count / counted if counted else 0.0,
        "partial_unexpected_list": partial,
        "partial_unexpected_counts": [{"value": v, "count": k} for v, k in sorted(
            tally.items(), key=lambda vk: (-vk[1], str(vk[0])))]}
    if missing is not None:
        out |= {"missing_count": missing,
                "missing_percent": 100.0 * missing / element if element else None,
                "unexpected_percent_total": 100.0 * count / element if element else None,
                "unexpected_percent_nonmissing": out["unexpected_percent"]}
    return out


def _first_failed(entries: list[tuple[Record, dict[str, Any]]]) -> tuple[Record, dict[str, Any]]:
    """The first partition's failing entry, else the first entry (rules judged per file)."""
    failed = [e for e in entries if not e[0]["success"]]
    return failed[0] if failed else entries[0]


def _table_rule(entries: list[tuple[Record, dict[str, Any]]], parts: list[dict[str, Any]]
                ) -> tuple[Record, dict[str, Any]]:
    """A table rule judged again on the partitions' merged statistics (its record and GX
    result)."""
    from tasks.gx.runner import _jsonable

    record, raw = entries[0]
    rule, column, kwargs = record["rule"], record["column"], raw["kwargs"]
    if rule == "expect_column_to_exist":
        return _first_failed(entries)
    if rule == "expect_table_row_count_to_be_between":
        value: Any = sum(p["rows"] for p in parts)
    elif rule == "expect_column_mean_to_be_between":
        total, count = (sum(p["sums"].get(column, (0.0, 0))[k] for p in parts) for k in (0, 1))
        value = total / count if count else float("nan")
    elif rule == "expect_column_unique_value_count_to_be_between":
        value = len(set().union(*(p["distinct"].get(column, set()) for p in parts)))
    elif rule == "expect_column_max_to_be_between":
        maxima = [p["max"][column] for p in parts if pd.notna(p["max"].get(column))]
        value = max(maxima) if maxima else None
    else:
        return _first_failed(entries)
    success = value is not None and value == value and _between(value, kwargs)
    return ({**record, "success": bool(success), "observed": _jsonable(value)},
            {"observed_value": value})


def merge_suites(parts: list[dict[str, Any]]) -> dict[str, list[Merged]]:
    """Per suite (``window``: every partition; ``drift``: the run date's partitions), one
    record per expectation, in the order GX reported them, with its merged GX result (for
    Data Docs). The unique-ids rule is only marked (``_unique``): :func:`unique_ids` judges it
    over the window."""
    from tasks.gx.runner import MergedResult

    out: dict[str, list[Merged]] = {}
    for kind in ("window", "drift"):
        mine = [p for p in parts if any(raw["kind"] == kind for _, raw in p["gx"])]
        if not mine:
            continue
        lists = [[e for e in p["gx"] if e[1]["kind"] == kind] for p in mine]
        out[kind] = []
        for i in range(len(lists[0])):
            entries = [lst[i] for lst in lists]
            rule = entries[0][0]["rule"]
            if rule == "expect_column_values_to_be_unique":  # the rows' and nulls' sums
                record, result = entries[0][0] | {"_unique": True}, _row_rule(entries)[1]
            elif rule in ROW_RULES:
                record, result = _row_rule(entries)
            else:
                record, result = _table_rule(entries, mine)
            raised = [r["exception"] for _, r in entries
                      if (r.get("exception") or {}).get("raised_exception")]
            out[kind].append((record, MergedResult(
                rule, entries[0][1]["kwargs"], bool(record["success"]),
                {k: v for k, v in result.items() if k not in ("kind", "kwargs", "exception")},
                raised[0] if raised and not record["success"] else None)))
    return out


def _merged_quantiles(parts: list[dict[str, Any]], q: list[float]) -> list[float]:
    """Quantiles of the union of the partitions' values: exact from one partition, else by
    inverting the mixture of their 1001-point quantile summaries (linear between points)."""
    present = [p for p in parts if p["n"]]
    if len(present) == 1:
        return [float(v) for v in present[0]["exact"]]
    grid = np.linspace(0, 1, 1001)
    points = np.unique(np.concatenate([p["q"] for p in present]))
    total = sum(p["n"] for p in present)
    cdf = sum(p["n"] * np.interp(points, p["q"], grid) for p in present) / total
    return [float(np.interp(level, cdf, points)) for level in q]


def merge_profile(parts: list[dict[str, Any]], config: IsbenchConfig, role: str,
                  schema: dict[str, str] | None, day: str) -> dict[str, Any]:
    """:func:`is_core.data.contract.day_profile` of the run date from its partitions."""
    from is_core.data.contract import PROFILE_SCHEMA_VERSION

    cols = config.columns
    rows = sum(p["rows"] for p in parts)
    out: dict[str, Any] = {"schema_version": PROFILE_SCHEMA_VERSION, "role": role, "day": day,
                           "rows": int(rows), "ctr": None, "numeric": {}, "categorical": {},
                           "null_share": {}, "schema": dict(schema or {})}
    labels = [p["label"] for p in parts if p["label"] is not None]
    if role in ("source", "holdout") and labels and rows:
        total, count = (sum(x[k] for x in labels) for k in (0, 1))
        out["ctr"] = float(total / count) if count else float("nan")
    for col in cols.numeric:
        pieces = [p["numeric"][col] for p in parts if col in p["numeric"]]
        n = sum(x["n"] for x in pieces)
        if n >= 2:
            total, squares = sum(x["sum"] for x in pieces), sum(x["sq"] for x in pieces)
            q01, median, q99 = _merged_quantiles(pieces, [0.01, 0.5, 0.99])
            out["numeric"][col] = {"mean": float(total / n), "std": float(np.sqrt(
                max(squares - total * total / n, 0.0) / (n - 1))),
                "q01": q01, "median": median, "q99": q99}
    for col in cols.categorical:
        if any(col in p["distinct"] for p in parts):
            out["categorical"][col] = {"cardinality": len(set().union(
                *(p["distinct"].get(col, set()) for p in parts)))}
    for col in cols.features:
        if rows and any(col in p["nulls"] for p in parts):
            out["null_share"][col] = float(sum(p["nulls"].get(col, 0) for p in parts) / rows)
    return out


def merge_magnitudes(parts: list[dict[str, Any]], key: str, limit: float | None
                     ) -> list[Record]:
    """The magnitude records of the window (``sanity``) or of the run date (``reference``):
    counts, rows, ranges and days merged, judged again (``limit``: the share allowed outside;
    None: no row)."""
    lists = [p["magnitudes"][key] for p in parts if p["magnitudes"][key]]
    out = []
    for i in range(len(lists[0]) if lists else 0):
        entries = [lst[i] for lst in lists]
        count, n = sum(e[1]["count"] for e in entries), sum(e[1]["n"] for e in entries)
        ranges = [e[1]["range"] for e in entries if e[1]["range"] is not None]
        span = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
        days = sorted(set().union(*(e[1]["days"] for e in entries)))
        success = count == 0 if limit is None else (count / n if n else 0.0) <= limit
        out.append({**entries[0][0], "success": bool(success),
                    "observed": outside_text(count, n, span, days)})
    return out


def merge_types(parts: list[dict[str, Any]]) -> list[Record]:
    """Per categorical, the first partition's failing type record, else the first record."""
    lists = [p["types"] for p in parts]
    out = []
    for i in range(len(lists[0]) if lists else 0):
        failed = [lst[i] for lst in lists if not lst[i]["success"]]
        out.append(failed[0] if failed else lists[0][i])
    return out


def merge_days(parts: list[dict[str, Any]], config: IsbenchConfig, role: str,
               days: list[str]) -> list[Record]:
    """Each day's rows and event times merged; the local engine's day records."""
    frames = [p["days"] for p in parts if not p["days"].empty]
    if not frames:
        return []
    joined = pd.concat(frames)
    stats = pd.DataFrame({"rows": joined["rows"].groupby(level=0).sum(),
                          "first_event": joined["first_event"].groupby(level=0).min(),
                          "last_event": joined["last_event"].groupby(level=0).max()}
                         ).reindex(pd.Index(days, name="day"))
    stats["rows"] = stats["rows"].fillna(0).astype("int64")
    key, ts = config.data.partition_key, config.columns.timestamp
    records = day_row_count_records(stats, config.validation, role, key)
    if ts and all(ts in p["max"] for p in parts):
        records += event_day_records(stats, config.validation, role, ts, key, config.timezone)
    return records


def _ids(file: InputFile, column: str) -> pd.Series:
    return read_input_files([file], [column], role="validate")[column]


def _shared(file: InputFile, other: InputFile, column: str) -> np.ndarray:
    return shared_ids(_ids(file, column), _ids(other, column))


def unique_ids(client: Any, files: list[InputFile], merged: Merged) -> Merged:
    """``expect_column_values_to_be_unique`` over the window: the rows whose id occurs more
    than once in any partition (a ``dask.dataframe`` value count over the partitions); its
    record and GX result (``merged``: the first partition's, from :func:`merge_suites`)."""
    import dataclasses

    import dask
    import dask.dataframe as dd

    record, result = merged
    column = record["column"]

    with dask.config.set({"dataframe.convert-string": False}):
        ids = dd.from_map(_ids, files, column=column,
                          meta=pd.Series([], dtype=_ids(files[0], column).dtype, name=column),
                          enforce_metadata=False)
        counts = ids.value_counts(split_out=max(1, len(files) // 4))
        dup, present = client.compute([counts[counts > 1], ids.count()], sync=True)
    count = int(dup.sum())
    values = [v for v, k in dup.sort_index().head(20).items() for _ in range(int(k))]
    sample = [str(v) for v in values][:5]
    pct = 100.0 * count / present if present else 0.0
    observed = (f"{count} unexpected value(s) ({pct:.3g} %), e.g. {sample}" if count
                else "0 unexpected values")
    element, missing = result.result["element_count"], result.result.get("missing_count")
    return ({k: v for k, v in record.items() if k != "_unique"} | {
        "success": count == 0, "observed": observed}, dataclasses.replace(
        result, success=count == 0,
        result=_unexpected_result(element, missing, count, values)))


def shared_id_records(client: Any, config: IsbenchConfig, roles: dict[str, list[InputFile]]
                      ) -> list[Record]:
    """:func:`is_core.data.contract.id_overlap_records` over partition pairs."""
    from is_core.data.contract import DISJOINT_ROLES, id_overlap_records
    from is_core.engine.partitions import safe_map

    col = config.columns.impression_id
    if not col or not config.validation.disjoint_role_ids:
        return []
    shared: dict[str, pd.DataFrame] = {}
    for role, other in DISJOINT_ROLES:
        if role not in roles or other not in roles:
            continue
        pairs = [(a, b) for a in roles[role] for b in roles[other]]
        found = client.gather(safe_map(client, _shared, [a for a, _ in pairs],
                                       [b for _, b in pairs], column=col))
        ids = pd.unique(np.concatenate(found)) if found else np.array([])
        shared[f"{role}|{other}"] = pd.DataFrame({col: ids})
    records = []
    for role, other in DISJOINT_ROLES:
        if f"{role}|{other}" in shared:
            both = shared[f"{role}|{other}"]
            records += [r for r in id_overlap_records({role: both, other: both}, config)
                        if r["role"] == role and other in str(r["expected"])]
    return records


def _unseen(file: InputFile, config: IsbenchConfig, levels: pd.DataFrame, role: str
            ) -> list[tuple[Record, int, int, list[str]]]:
    """One partition's unseen-category records with their numbers: rows, rows unseen, the
    first unseen values."""
    from is_core.data.features import category_codes

    frame = read_input_files([file], list(config.columns.categorical), role="validate")
    out = []
    for record in unseen_category_records(levels, frame, config, role):
        col = record["column"]
        unseen = category_codes(frame[col], category_levels(levels[col]), missing=-2) == -1
        examples = [str(v) for v in pd.unique(frame.loc[unseen, col])[:5]]
        out.append((record, len(frame), int(unseen.sum()), examples))
    return out


def unseen_records(client: Any, config: IsbenchConfig, roles: dict[str, list[InputFile]],
                   source_levels: dict[str, set[str]]) -> list[Record]:
    """:func:`is_core.data.contract.unseen_category_records` of target and holdout against
    the source window's levels (merged from its partitions)."""
    from is_core.engine.partitions import safe_map

    levels = pd.DataFrame({c: pd.Series(sorted(v), dtype=object)
                           for c, v in source_levels.items()})
    limit = config.validation.max_unseen_category_share
    out = []
    for role in ("target", "holdout"):
        if role not in roles or "source" not in roles:
            continue
        parts = client.gather(safe_map(client, _unseen, roles[role], config=config, levels=levels,
                                         role=role))
        for i in range(len(parts[0]) if parts and parts[0] else 0):
            entries = [p[i] for p in parts if len(p) > i]
            rows, unseen = sum(e[1] for e in entries), sum(e[2] for e in entries)
            share = unseen / rows if rows else 0.0
            examples = list(dict.fromkeys(x for e in entries for x in e[3]))[:5]
            out.append({**entries[0][0], "success": share <= limit,
                        "observed": f"{share:.2%} of rows unseen"
                        + (f", e.g. {examples}" if examples else "")})
    return out


# ---------------------------------------------------------------------------- quarantine
def _partition_ids(file: InputFile, index: int, column: str) -> pd.DataFrame:
    return pd.DataFrame({column: pd.unique(_ids(file, column)), "part": index})


def repeated_ids(client: Any, files: list[InputFile], column: str) -> pd.Series:
    """The ids found in more than one partition, each with the first partition holding it
    (a ``dask.dataframe`` group-by over each partition's distinct ids; only the repeated ids
    reach the client)."""
    import dask
    import dask.dataframe as dd

    with dask.config.set({"dataframe.convert-string": False}):
        meta = pd.DataFrame({column: pd.Series([], dtype=_ids(files[0], column).dtype),
                             "part": pd.Series([], dtype="int64")})
        ids = dd.from_map(_partition_ids, files, list(range(len(files))), column=column,
                          meta=meta, enforce_metadata=False)
        # dropna=False: a missing id repeats an earlier missing one, as pandas' duplicated()
        found = ids.groupby(column, dropna=False)["part"].agg(["min", "count"])
        repeated = client.compute(found[found["count"] > 1]["min"], sync=True)
    return cast(pd.Series, repeated)


def quarantine_partition(file: InputFile, index: int, first: int, n: int,
                         config: IsbenchConfig, role: str, columns: list[str], days: list[str],
                         repeated: pd.Series, out_dir: Path) -> dict[str, Any]:
    """One partition's quarantine (on a worker): the local engine's row rules
    (:func:`is_core.data.contract.row_problems`; an id is also a repeat when an earlier
    partition holds it, ``repeated``: :func:`repeated_ids`), the dropped rows with their rules
    written under ``validation/quarantine/.<role>.parquet.tmp/`` (renamed by the client), the
    kept rows as one scratch file (:func:`tasks.gx.window.write_kept`), the counts, and the
    numbers of the checks run on the rows as read (:func:`_as_read`)."""
    frame = _frame(file, config, columns)
    problems = row_problems(frame, config, role)
    key = f"duplicate_id:{config.columns.impression_id}"
    if key in problems and len(repeated):
        earlier = repeated.index[repeated.to_numpy() < index]
        problems[key] |= frame[config.columns.impression_id].isin(earlier)
    bad = problems.any(axis=1).to_numpy() if problems.shape[1] else np.zeros(len(frame), bool)
    if bad.any():
        write_parquet_atomic(rejected_rows(frame, problems),
                             _rejected_dir(out_dir, role, tmp=True) / f"part-{index:05d}.parquet")
    kept = frame.loc[~bad]
    day = file.day.isoformat() if file.day else None
    return {"rows": len(frame), "dropped": int(bad.sum()),
            "by_rule": {str(k): int(v) for k, v in problems.sum().items()},
            "clean": write_kept(kept, out_dir, role, day, index) if len(kept) else None,
            **_as_read(frame, config, role, days)}


def _rejected_dir(out_dir: Path, role: str, tmp: bool = False) -> Path:
    """``validation/quarantine/<role>.parquet``: a folder of per-partition files (``tmp``: the
    hidden folder the workers write, renamed once the role passed)."""
    name = f".{role}.parquet.tmp" if tmp else f"{role}.parquet"
    return out_dir / VALIDATION_DIR / "quarantine" / name


def quarantine_window(client: Any, config: IsbenchConfig, inputs: Inputs, out_dir: Path,
                      run_date: dt.date) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """:func:`tasks.gx.window._quarantine_window` partition by partition: the counts per
    role, the clean inputs entries (roles that lost rows) and each role's partitions' numbers
    on the rows as read. The role's share is judged on its summed counts
    (:func:`is_core.data.contract.quarantine_summary`); over it, the local engine's record,
    ``results.json`` and kept folder, and nothing of that role's quarantine left behind."""
    from is_core.engine.partitions import map_partitions, role_partitions

    quarantine: dict[str, Any] = {}
    clean: dict[str, Any] = {}
    as_read: dict[str, Any] = {}
    column = config.columns.impression_id
    for role in inputs["roles"]:
        parts = role_partitions(client, inputs, cast(Role, role))
        files = list(parts.files)
        columns = _read_columns(config, inputs, role, _schemas(config, files))
        repeated = (repeated_ids(client, files, column) if column and column in columns
                    else pd.Series([], dtype="int64"))
        results = map_partitions(client, parts, quarantine_partition, config=config, role=role,
                                 columns=columns, days=list(inputs["days"]),
                                 repeated=repeated, out_dir=out_dir)
        by_rule: dict[str, int] = {}
        for result in results:
            for rule, count in result["by_rule"].items():
                by_rule[rule] = by_rule.get(rule, 0) + count
        try:
            quarantine[role] = quarantine_summary(
                config, role, sum(r["rows"] for r in results),
                sum(r["dropped"] for r in results), {k: v for k, v in by_rule.items() if v})
        except DataValidationError as error:  # more bad rows than the allowed share
            shutil.rmtree(_rejected_dir(out_dir, role, tmp=True), ignore_errors=True)
            with contextlib.suppress(OSError):  # the workers' folder, if nothing else is in it
                _rejected_dir(out_dir, role).parent.rmdir()
            keep_quarantine_failure(config, run_date, out_dir / VALIDATION_DIR, role, error)
            raise
        as_read[role] = results
        if quarantine[role]["dropped"]:
            os.replace(_rejected_dir(out_dir, role, tmp=True), _rejected_dir(out_dir, role))
            clean[role] = clean_entry(inputs["roles"][role],
                                      [r["clean"] for r in results if r["clean"] is not None])
    return quarantine, clean, as_read


def _schemas(config: IsbenchConfig, files: list[InputFile]) -> list[tuple[str, dict[str, str]]]:
    return [(_label(f, config.data.partition_key), read_schema_of(f)) for f in files]


def _read_columns(config: IsbenchConfig, inputs: Inputs, role: str,
                  schemas: list[tuple[str, dict[str, str]]]) -> list[str]:
    """The columns validation reads: the role's, and the event time where every file has it."""
    columns = list(inputs["roles"][role]["columns"])
    ts = config.columns.timestamp
    if ts and all(ts in s for _, s in schemas):
        columns.append(ts)
    return columns


def _role_checks(client: Any, config: IsbenchConfig, inputs: Inputs, kept: Inputs,
                 role: str, ref_roles: dict[str, Any], run_date: dt.date) -> dict[str, Any]:
    """One role: its schema records (of the files as loaded, ``inputs``) and the futures of
    every partition's checks (of ``kept``: in quarantine mode the kept rows; on the
    workers; gathered by :func:`validate_window`, so that the roles run side by side)."""
    from is_core.engine.partitions import role_partitions, safe_map

    parts = role_partitions(client, kept, cast(Role, role))
    files = list(parts.files)
    schemas = _schemas(config, input_files(inputs, cast(Role, role)))
    records = schema_checks(schemas, config, role, ref_roles.get(role, {}).get("schema"))
    columns = _read_columns(config, inputs, role, schemas)
    index = range(len(parts))
    checked = safe_map(client, check_partition, files, list(index), list(parts.offsets[:-1]),
                       [parts.offsets[i + 1] - parts.offsets[i] for i in index],
                       config=config, role=role, columns=columns, days=list(inputs["days"]),
                       run_date=run_date, reference=ref_roles.get(role))
    return {"files": files, "schemas": schemas, "records": records, "parts": checked}


def validate_window(config: IsbenchConfig, inputs: Inputs, out_dir: Path, cluster: str
                    ) -> dict[str, Any]:
    """:func:`tasks.gx.window.validate_window` on the Dask engine (module docstring): the
    same summary, ``results.json``, ``profile.json`` and ``suites/``, and the same
    :class:`~is_core.errors.DataValidationError` on failure."""
    from is_core.engine.cluster import client_for
    from tasks.gx.runner import context_for
    from tasks.gx.suites import build_suite, suite_json

    client = client_for(cluster)
    run_date = dt.date.fromisoformat(inputs["run_date"])
    vdir = out_dir / VALIDATION_DIR
    vdir.mkdir(parents=True, exist_ok=True)
    ref_roles = _reference_roles(config, run_date)
    quarantine, clean, as_read = (quarantine_window(client, config, inputs, out_dir, run_date)
                                  if config.validation.mode == "quarantine" else ({}, {}, {}))
    kept = inputs_after_quarantine(inputs, {r: {"clean_input": e} for r, e in clean.items()})
    checked = {role: _role_checks(client, config, inputs, kept, role, ref_roles, run_date)
               for role in inputs["roles"]}
    for c in checked.values():
        c["parts"] = client.gather(c["parts"])
    records: list[Record] = []
    for role, c in checked.items():  # types and days: on the rows as read, as locally
        records += c["records"] + merge_types(as_read.get(role, c["parts"]))
        records += merge_days(as_read.get(role, c["parts"]), config, role, list(inputs["days"]))
    files = {role: c["files"] for role, c in checked.items()}
    if "source" in checked:
        levels = {col: set().union(*(p["levels"].get(col, set())
                                     for p in checked["source"]["parts"]))
                  for col in config.columns.categorical}
        records += unseen_records(client, config, files, levels)
    records += shared_id_records(client, config, files)
    for c in checked.values():
        records += merge_magnitudes(c["parts"], "sanity", None)
        records += merge_magnitudes(c["parts"], "reference",
                                    config.validation.max_magnitude_outlier_share)
    suites = {role: {kind: [unique_ids(client, c["files"], m) if m[0].get("_unique") else m
                            for m in merged] for kind, merged in merge_suites(c["parts"]).items()}
              for role, c in checked.items()}
    records += [r for kinds in suites.values() for merged in kinds.values() for r, _ in merged]
    context_for()
    for role in checked:
        suite = build_suite(config, role, run_date)
        write_json_atomic(suite_json(suite), vdir / "suites" / f"{suite.name}.json")
    docs = _data_docs(config, run_date, ref_roles, checked, suites, vdir)
    summary = _summary(config, checked, records, ref_roles, docs, quarantine, clean)
    write_json_atomic(summary, vdir / "results.json")
    _raise_on_failures(config, run_date, vdir, records, summary)
    write_json_atomic({"run_date": run_date.isoformat(), "roles": {
        role: merge_profile([p["profile"] for p in c["parts"] if p["profile"] is not None],
                            config, role, c["schemas"][-1][1] if c["schemas"] else None,
                            run_date.isoformat())
        for role, c in checked.items()}}, vdir / PROFILE_FILE)
    return summary


def _data_docs(config: IsbenchConfig, run_date: dt.date, ref_roles: dict[str, Any],
               checked: dict[str, Any], suites: dict[str, dict[str, list[Merged]]], vdir: Path
               ) -> str | None:
    """With ``validation.data_docs``, GX Data Docs of the merged suite results under
    ``data_docs/`` (:func:`tasks.gx.runner.build_docs_from_merged`: the pages the local engine
    writes, from the suites it runs); the index's path relative to the run folder, else None.

    Data Docs are a view of the verdicts, not a verdict: they are built in a temporary folder
    and renamed, and a failure to build them is one warning (no ``data_docs/``, None), so they
    never change the records, ``results.json`` or the error.
    """
    if not config.validation.data_docs:
        return None
    from tasks.gx.runner import MergedBatch, build_docs_from_merged, context_for
    from tasks.gx.suites import build_drift_suite, build_suite

    final, tmp = vdir / "data_docs", vdir / ".data_docs.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        context = context_for(tmp)  # the suites are built in the context that renders them
        batches = []
        for role, kinds in suites.items():
            for kind, merged in kinds.items():
                drift = kind == "drift"
                suite = (build_drift_suite(config, role, drift_bounds(ref_roles[role],
                                                                      config.validation))
                         if drift else build_suite(config, role, run_date))
                parts = [p for p in checked[role]["parts"]
                         if any(raw["kind"] == kind for _, raw in p["gx"])]
                batches.append(MergedBatch(
                    f"{role}_drift" if drift else role, suite, [m for _, m in merged],
                    {"engine": "dask", "merged_partitions": len(parts),
                     "rows": int(sum(p["rows"] for p in parts))}))
        build_docs_from_merged(batches, tmp, context)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except Exception as exc:  # noqa: BLE001 - optional output: never changes the verdicts
        shutil.rmtree(tmp, ignore_errors=True)
        _logger().warning("Data Docs not built on the Dask engine (the validation results "
                          "are complete in results.json): %s: %s", type(exc).__name__, exc)
        return None
    return f"{VALIDATION_DIR}/data_docs/index.html"


def _logger() -> Any:
    """The Prefect run's logger inside a flow or task, else this module's logger."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _summary(config: IsbenchConfig, checked: dict[str, Any], records: list[Record],
             ref_roles: dict[str, Any], docs: str | None, quarantine: dict[str, Any],
             clean: dict[str, Any]) -> dict[str, Any]:
    """Per role what :func:`tasks.gx.window._summarize` returns (``docs``: the Data Docs
    index, or None; ``quarantine`` and ``clean``: :func:`quarantine_window`'s)."""
    summary: dict[str, Any] = {}
    for role, c in checked.items():
        mine = [r for r in records if r["role"] == role]
        failed = [r for r in mine if not r["success"]]
        bounds = drift_bounds(ref_roles[role], config.validation) if role in ref_roles else None
        summary[role] = {
            "rows": int(sum(p["rows"] for p in c["parts"])), "evaluated": len(mine),
            "failed": len(failed), "success": not failed, "results": mine,
            "reference_day": bounds["reference_day"] if bounds else None,
            "drift_bounds": bounds, "quarantine": quarantine.get(role), "data_docs": docs,
            "clean_input": clean.get(role)}
    return summary
