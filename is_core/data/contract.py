r"""The input contract's statistics: schemas, reference-day drift bounds, quarantine of bad rows.

Great Expectations runs the suites (the package ``tasks/gx/``); everything numeric the suites are
parameterized with is computed here, in plain pandas, so it can be tested without GX:

* :func:`schema_checks` compares the files of a window with each other and with the reference
  day (a column that changed type between days is invisible once the days are concatenated);
  :func:`categorical_type_records` checks that each categorical holds values with a level text
  (text, integers, booleans or a pandas ``category``);
* :func:`day_profile` summarizes one day of one role, and :func:`drift_bounds` turns the profile
  of the *reference day* (the newest day of the last published run) into bounds for today;
* :func:`row_problems` / :func:`quarantine_rows` find and drop the rows that break a row-level
  rule, for the opt-in quarantine mode;
* :func:`unseen_category_records` measures target/holdout rows whose category never occurs in
  the source window (the model has never seen them, and the proposal cannot weight them).

**Missing feature values.** With ``validation.allow_missing_features`` (the default) a missing
feature value is data, not an error: a missing categorical is its own level, a missing numeric is
NaN (XGBoost takes it natively; the proposal model gives it a missing indicator and the mean,
:mod:`is_core.weights._design`). What fails instead is a *jump* of a feature's share of missing
values against the reference day (:func:`drift_bounds`). ``allow_missing_features: false``
restores the strict contract: any missing feature value fails (or is quarantined). ±inf is
always a bad value.

Every check returns *records* of the same shape as the GX results (role, rule, column,
observed, expected, fix, success), so the error message, report and artifact list both alike.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from is_core.config import IsbenchConfig, ValidationConfig
from is_core.data.features import category_codes, category_levels
from is_core.errors import DataValidationError

ENGINE = "isbench"
DRIFT_Z = 4.0
"""Sampling-noise allowance of the drift bounds, in standard errors (see :func:`drift_bounds`)."""
MAX_NULL_SHARE_INCREASE = 0.05
"""Largest rise of a feature's share of missing values over the reference day's, as an absolute
share (0.05: five percentage points, e.g. 0.3 % → 5.3 %), beyond sampling noise
(:func:`drift_bounds`). A rise that large in one day is a broken join or a field lost upstream,
not a change in the traffic."""

PROFILE_SCHEMA_VERSION = 2
"""2: each feature's profile has its ``null_share``."""


def contract_record(role: str, rule: str, column: str | None, observed: Any, expected: Any,
                    fix: str, success: bool = False) -> dict[str, Any]:
    """One check result in the shape shared with the Great Expectations records."""
    return {"role": role, "success": bool(success), "rule": rule, "column": column,
            "observed": observed, "expected": expected, "fix": fix, "engine": ENGINE}


# ---------------------------------------------------------------------------- schema
def allowed_columns(config: IsbenchConfig) -> set[str]:
    """Columns an input file may carry: the configured ones, the optional ones and the allowlist."""
    cols = config.columns
    optional = [cols.label, cols.impression_id, cols.timestamp, cols.logging_propensity]
    return {*cols.features, *(c for c in optional if c), *config.validation.extra_columns}


def schema_checks(
    schemas: Sequence[tuple[str, dict[str, str]]],
    config: IsbenchConfig,
    role: str,
    reference_schema: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Check the per-file schemas ``(label, {column: type})`` of one role's window.

    Three rules: no column outside the contract (unless ``validation.unexpected_columns`` is
    ``"ignore"``); every file has the same type for each contract column (a day exported with a
    different schema); and the types equal those of the reference day's files.
    """
    if not schemas:
        return []
    allowed = allowed_columns(config)
    records: list[dict[str, Any]] = []
    if config.validation.unexpected_columns == "fail":
        seen: dict[str, str] = {}
        for label, schema in schemas:
            for col in schema:
                if col not in allowed and col not in seen:
                    seen[col] = label
        for col, label in seen.items():
            records.append(contract_record(
                role, "expect_no_unexpected_columns", col, f"present in {label}",
                "only configured columns",
                "a column outside the contract appeared (upstream schema change?): add it to "
                "`validation.extra_columns` if it is expected, or to `columns` to use it"))
    categorical = set(config.columns.categorical)
    first_label, first = schemas[0]
    for label, schema in schemas[1:]:
        for col in sorted(set(first) & set(schema) & allowed):
            if _type_changed(col, schema, first, categorical):
                records.append(contract_record(
                    role, "expect_schema_unchanged_across_days", col,
                    f"{_shown_type(col, schema, categorical)} in {label}",
                    f"{_shown_type(col, first, categorical)} (as in {first_label})",
                    _categorical_kind_fix(col, label, first_label) if col in categorical else
                    "the column's type changed between days of the window: re-export the "
                    "changed days with the old type, or migrate all days"))
    if reference_schema:
        newest_label, newest = schemas[-1]
        for col in sorted(set(newest) & set(reference_schema) & allowed):
            if _type_changed(col, newest, reference_schema, categorical):
                fix = (_categorical_kind_fix(col, newest_label, "the reference day") + "; "
                       if col in categorical else
                       "the column's type differs from the last good run's: fix the export, or ")
                records.append(contract_record(
                    role, "expect_schema_unchanged_since_reference_day", col,
                    f"{_shown_type(col, newest, categorical)} in {newest_label}",
                    _shown_type(col, reference_schema, categorical),
                    fix + "if the change is intended re-run with `validation.reference_day: "
                    "none` once"))
    return records


def _type_changed(col: str, schema: dict[str, str], other: dict[str, str],
                  categorical: set[str]) -> bool:
    """Whether ``col`` changed type: a categorical when its :func:`categorical_kind` did (int32
    and int64 code the same levels), any other column when its type did."""
    if col in categorical:
        return categorical_kind(schema[col]) != categorical_kind(other[col])
    return schema[col] != other[col]


def _shown_type(col: str, schema: dict[str, str], categorical: set[str]) -> str:
    kind = categorical_kind(schema[col])
    return f"{kind} ({schema[col]})" if col in categorical and kind != schema[col] else schema[col]


def _categorical_kind_fix(col: str, day: str, other_day: str) -> str:
    return (f"the categorical {col!r} holds another kind of value on {day} than on "
            f"{other_day}: an integer 17 and a text \"17\" are one level, but a column of "
            "integers one day and of text another is a schema change (text may hold \"017\" "
            "or \"n/a\"): cast it to one type upstream on every day (re-export the changed "
            "days)")


_TEXT_TYPES = {"string", "large_string", "utf8", "large_utf8", "str", "object"}
_BOOLEAN_TYPES = {"bool", "boolean"}
_NUMBER_TYPE = re.compile(r"(u?int|U?Int|float|Float)\d*|double|halffloat")


def categorical_kind(type_name: str) -> str:
    """How a categorical's file type (an Arrow type name, or a pandas dtype for CSV) stores its
    levels: ``"text"``, ``"number"`` (integers; floats, since an integer column with nulls reads
    as float from CSV), ``"boolean"``, or the type name itself for any other type. A pandas
    ``category`` (Arrow ``dictionary<values=...>``) is the kind of its values.

    Within one kind the level texts agree (:func:`is_core.data.features.level_text`: 17 and
    17.0 are ``"17"``); across kinds they need not (the text ``"017"`` is no integer), so a
    change of kind between days is a schema change.
    """
    name = type_name.strip()
    if name.startswith("dictionary<values="):
        name = name[len("dictionary<values="):].split(",", 1)[0].strip()
    if name in _TEXT_TYPES:
        return "text"
    if name in _BOOLEAN_TYPES:
        return "boolean"
    if _NUMBER_TYPE.fullmatch(name):
        return "number"
    return name


_LEVEL_VALUES = {"string", "integer", "boolean", "empty", "mixed-integer"}
"""Inferred kinds (:func:`pandas.api.types.infer_dtype`) whose values all have a level text.
``mixed-integer`` (integers and text in one column) comes from concatenating an integer day
and a text day: :func:`schema_checks` fails it as the schema change it is."""
_WHOLE_FLOAT_VALUES = {"floating", "mixed-integer-float", "integer-na"}
"""Inferred kinds that are levels when every value is whole (an integer column with nulls)."""


def categorical_type_records(frame: pd.DataFrame, config: IsbenchConfig, role: str
                             ) -> list[dict[str, Any]]:
    """Per categorical feature, whether its values have a level text
    (:func:`is_core.data.features.level_text`): text, integers, booleans, a pandas ``category``
    of those, or floats that are all whole numbers (how an integer column with nulls reads).

    Refused: fractional floats (0.1 + 0.2 prints as ``0.30000000000000004``: no stable level),
    dates, bytes and other objects. Missing values are ignored here (they are a level).
    """
    records = []
    for col in config.columns.categorical:
        if col not in frame:
            continue
        values = frame[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = pd.Series(values.cat.categories)
        kind = pd.api.types.infer_dtype(values, skipna=True)
        ok = kind in _LEVEL_VALUES or (kind in _WHOLE_FLOAT_VALUES and _all_whole(values))
        records.append(contract_record(
            role, "expect_categorical_values_to_be_levels", col,
            f"{frame[col].dtype} ({kind} values)",
            "text, integer, boolean or category values",
            "a categorical needs values with a stable text: cast it upstream to text or "
            "integers (the integer 17 and the text \"17\" are one level; a missing value is "
            "its own level), or list it under columns.numeric if it is a measurement",
            success=ok))
    return records


def _all_whole(values: pd.Series) -> bool:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    x = x[~np.isnan(x)]
    return bool(np.all(np.isfinite(x) & (x == np.round(x))))


# ---------------------------------------------------------------------------- row-level rules
ROW_RULES = {
    "null": "expect_column_values_to_not_be_null",
    "label_domain": "expect_column_values_to_be_in_set",
    "not_finite_or_out_of_range": "expect_column_values_to_be_between",
    "propensity_range": "expect_column_values_to_be_between",
    "duplicate_id": "expect_column_values_to_be_unique",
}
"""Row-level rules quarantine may act on, and the GX expectation type each one mirrors."""


def row_problems(frame: pd.DataFrame, config: IsbenchConfig, role: str) -> pd.DataFrame:
    """Boolean masks (one column per ``<reason>:<column>``) of the rows breaking a row-level rule.

    Reasons: ``null`` (a required column is null: the label and the impression id, and the
    features only under ``validation.allow_missing_features: false``), ``label_domain``
    (label not 0/1),
    ``not_finite_or_out_of_range`` (a numeric feature is ±inf or outside
    ``validation.numeric_ranges``), ``propensity_range`` (logging propensity not in (0, 1]) and
    ``duplicate_id`` (every repeat of an impression id after its first row).
    """
    cols, vc = config.columns, config.validation
    labeled = role in ("source", "holdout")
    required = [*([] if vc.allow_missing_features else cols.features),
                *([cols.label] if labeled else []),
                *([cols.impression_id] if cols.impression_id else [])]
    masks: dict[str, pd.Series] = {}
    for col in required:
        if col in frame:
            masks[f"null:{col}"] = frame[col].isna()
    if labeled and cols.label in frame:
        label = frame[cols.label]
        masks[f"label_domain:{cols.label}"] = label.notna() & ~label.isin([0, 1])
    for col in cols.numeric:
        if col not in frame or not pd.api.types.is_numeric_dtype(frame[col]):
            continue
        x = frame[col].astype(float)
        bad = x.isin([np.inf, -np.inf])
        lo, hi = vc.numeric_ranges.get(col, (None, None))
        if lo is not None:
            bad |= x < lo
        if hi is not None:
            bad |= x > hi
        masks[f"not_finite_or_out_of_range:{col}"] = bad
    prop = cols.logging_propensity
    if role == "source" and prop and prop in frame:
        p = pd.to_numeric(frame[prop], errors="coerce")
        masks[f"propensity_range:{prop}"] = p.notna() & ~((p > 0) & (p <= 1))
    if cols.impression_id and cols.impression_id in frame:
        masks[f"duplicate_id:{cols.impression_id}"] = frame[cols.impression_id].duplicated()
    return pd.DataFrame(masks, index=frame.index)


def quarantine_rows(
    frame: pd.DataFrame, config: IsbenchConfig, role: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop the rows breaking a row-level rule; fail if their share exceeds the configured one.

    Returns the kept rows (original order, fresh index) and a summary: rows, dropped, share,
    and the count per ``<reason>:<column>`` (a row breaking two rules counts under both).

    Raises
    ------
    DataValidationError
        when ``dropped / rows > validation.max_quarantine_share``, naming the rules that dropped
        the most rows.
    """
    problems = row_problems(frame, config, role)
    bad = problems.any(axis=1).to_numpy() if problems.shape[1] else np.zeros(len(frame), bool)
    n, dropped = len(frame), int(bad.sum())
    share = dropped / n if n else 0.0
    by_rule = {str(k): int(v) for k, v in problems.sum().items() if v}
    summary = {"role": role, "rows": n, "dropped": dropped, "share": share,
               "max_share": config.validation.max_quarantine_share, "by_rule": by_rule}
    if share > config.validation.max_quarantine_share:
        top = sorted(by_rule.items(), key=lambda kv: -kv[1])
        failures = [contract_record(
            role, "quarantine_share_at_most", key.split(":", 1)[1],
            f"{count} of {n} rows break {key.split(':', 1)[0]}",
            f"all quarantined rows together <= {config.validation.max_quarantine_share:.2%} "
            f"(observed {share:.2%})",
            "too many bad rows to drop silently: fix the upstream data, or raise "
            "`validation.max_quarantine_share` if this loss is acceptable") for key, count in top]
        raise DataValidationError(failures, role=role)
    kept = frame.loc[~bad].reset_index(drop=True)
    return kept, summary


# ---------------------------------------------------------------------------- freshness
def local_naive_timestamps(values: pd.Series, timezone: str) -> pd.Series:
    """Event times as naive timestamps in ``timezone`` (aware ones are converted; text parsed).

    Naive input is taken to be in ``timezone`` already. Unparseable values become NaT.
    """
    ts = values if pd.api.types.is_datetime64_any_dtype(values) else pd.to_datetime(
        values, errors="coerce", utc=False, format="mixed")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert(ZoneInfo(timezone)).dt.tz_localize(None)
    return ts


def freshness_window(run_date: dt.date, freshness_hours: float
                     ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Bounds on the newest event time: ``[end - freshness_hours, end]``, ``end`` = the end of
    the run date (local midnight after it). Later events mean a wrong partition or time zone."""
    end = pd.Timestamp(run_date + dt.timedelta(days=1))
    return end - pd.Timedelta(hours=freshness_hours), end


# ---------------------------------------------------------------------------- drift
def day_profile(frame: pd.DataFrame, config: IsbenchConfig, role: str,
                schema: dict[str, str] | None = None, day: str | None = None) -> dict[str, Any]:
    """Summary of one day of one role, from which the next runs' drift bounds are learned.

    rows; CTR (mean label, labeled roles); per numeric feature the mean and standard deviation
    of its finite values; per categorical feature the number of distinct values; per feature its
    share of missing values (``null_share``); the file schema.
    """
    cols = config.columns
    out: dict[str, Any] = {"schema_version": PROFILE_SCHEMA_VERSION, "role": role, "day": day,
                           "rows": int(len(frame)), "ctr": None, "numeric": {},
                           "categorical": {}, "null_share": {}, "schema": dict(schema or {})}
    if role in ("source", "holdout") and cols.label in frame and len(frame):
        out["ctr"] = float(pd.to_numeric(frame[cols.label], errors="coerce").mean())
    for col in cols.numeric:
        if col in frame and pd.api.types.is_numeric_dtype(frame[col]):
            x = frame[col].to_numpy(dtype=float, na_value=np.nan)
            x = x[np.isfinite(x)]
            if len(x) >= 2:
                out["numeric"][col] = {"mean": float(x.mean()), "std": float(x.std(ddof=1))}
    for col in cols.categorical:
        if col in frame:
            out["categorical"][col] = {"cardinality": int(frame[col].nunique())}
    for col in cols.features:
        if col in frame and len(frame):
            out["null_share"][col] = float(frame[col].isna().mean())
    return out


def drift_bounds(reference: dict[str, Any], vc: ValidationConfig,
                 max_null_share_increase: float = MAX_NULL_SHARE_INCREASE) -> dict[str, Any]:
    r"""Bounds for today's day of a role, learned from the reference day's :func:`day_profile`.

    With :math:`r` = ``max_ratio_change``, :math:`k` = ``max_mean_shift_sd``, :math:`z` =
    ``DRIFT_Z`` = 4 and the reference day's :math:`n_0` rows:

    * rows in :math:`[n_0 / r,\ r\, n_0]`;
    * categorical cardinality in :math:`[\lceil c_0 / r \rceil,\ \lfloor r\, c_0 \rfloor]`;
    * CTR in :math:`[p_0 / r - m,\ r\, p_0 + m]`, and each numeric mean in
      :math:`\mu_0 \pm (k\,\sigma_0 + m_\mu)`, where the margin covers sampling noise: the
      difference of today's and the reference day's estimate has standard error
      :math:`\sqrt{s^2/n_0 + s^2/n_1}`, and since the row bound gives :math:`n_1 \ge n_0/r`, this
      is at most :math:`s\sqrt{(1 + r)/n_0}`; so :math:`m = z\, s \sqrt{(1+r)/n_0}` with
      :math:`s^2 = p_0(1-p_0)` (CTR) or :math:`\sigma_0^2` (means). A no-drift day thus fails a
      bound with probability below :math:`10^{-4}` per bound, while a shift of more than
      :math:`k` standard deviations (a standardized mean difference) or a factor :math:`r` fails;
    * each feature's share of missing values at most :math:`\pi_0 + \Delta + m_\pi`, with
      :math:`\pi_0` the reference day's share, :math:`\Delta` = ``max_null_share_increase``
      (:data:`MAX_NULL_SHARE_INCREASE`, an absolute share) and the noise margin
      :math:`m_\pi = z \sqrt{\pi_0 (1 - \pi_0) (1 + r) / n_0}` as for the CTR. Only a rise
      fails (fewer missing values is no reason to stop); a profile older than version 2 has no
      shares, hence no such bound.
    """
    r, k = vc.max_ratio_change, vc.max_mean_shift_sd
    n0 = max(int(reference["rows"]), 1)
    noise = DRIFT_Z * math.sqrt((1 + r) / n0)
    out: dict[str, Any] = {
        "reference_day": reference.get("day"),
        "rows": [math.floor(n0 / r), math.ceil(n0 * r)],
        "ctr": None, "numeric_mean": {}, "cardinality": {}, "null_share": {},
    }
    p0 = reference.get("ctr")
    if p0 is not None and np.isfinite(p0):
        margin = noise * math.sqrt(p0 * (1 - p0))
        out["ctr"] = [max(0.0, p0 / r - margin), min(1.0, p0 * r + margin)]
    for col, s in reference.get("numeric", {}).items():
        half = k * s["std"] + noise * s["std"]
        out["numeric_mean"][col] = [s["mean"] - half, s["mean"] + half]
    for col, s in reference.get("categorical", {}).items():
        c0 = s["cardinality"]
        out["cardinality"][col] = [max(1, math.ceil(c0 / r)), max(1, math.floor(c0 * r))]
    for col, share in reference.get("null_share", {}).items():
        most = share + max_null_share_increase + noise * math.sqrt(share * (1 - share))
        out["null_share"][col] = {"reference": share, "max": min(1.0, most)}
    return out


# ---------------------------------------------------------------------------- unseen categories
def unseen_category_records(
    source: pd.DataFrame, other: pd.DataFrame, config: IsbenchConfig, role: str
) -> list[dict[str, Any]]:
    """Per categorical feature, the share of ``other``'s rows whose value never occurs in the
    source window; fails above ``validation.max_unseen_category_share``.

    Such rows are scored by the CTR model with a category it never saw, and the proposal model
    has no source rows to weight for them (the source does not cover the target's support).
    """
    limit = config.validation.max_unseen_category_share
    records = []
    for col in config.columns.categorical:
        if col not in source or col not in other or not len(other):
            continue
        # by level text: an int 17 in the source and a text "17" in the target are one level
        unseen = pd.Series(category_codes(other[col], category_levels(source[col]),
                                          missing=-2) == -1, index=other.index)
        share = float(unseen.mean())
        examples = [str(v) for v in pd.unique(other.loc[unseen, col])[:5]]
        records.append(contract_record(
            role, "expect_categories_seen_in_source", col,
            f"{share:.2%} of rows unseen" + (f", e.g. {examples}" if examples else ""),
            f"<= {limit:.2%} of rows",
            "the source window lacks categories the target has (new items or a renamed "
            "category): widen `data.window_days`, fix the category mapping, or raise "
            "`validation.max_unseen_category_share`", success=share <= limit))
    return records
