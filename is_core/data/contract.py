r"""The input contract's statistics: schemas, reference-day drift bounds, quarantine of bad rows.

Great Expectations runs the suites (the package ``tasks/gx/``); everything numeric the suites are
parameterized with is computed here, in plain pandas, so it can be tested without GX:

* :func:`schema_checks` compares the files of a window with each other and with the reference
  day (a column that changed type between days is invisible once the days are concatenated),
  by :func:`logical_type` (what differs between writers, such as widths, dictionary encoding
  or timestamp units, is no change);
  :func:`categorical_type_records` checks that each categorical holds values with a level text
  (text, integers, booleans or a pandas ``category``);
* :func:`day_profile` summarizes one day of one role, and :func:`drift_bounds` turns the profile
  of the *reference day* (the newest day of the last published run) into bounds for today;
* :func:`sanity_bound_records` fails a numeric feature holding a finite value beyond
  ``validation.max_abs_value`` (a sentinel such as 1e200, even on a first run), and
  :func:`reference_range_records` one whose run-date values leave the reference day's
  :func:`reference_range` (a sentinel such as -999999), naming the share of rows and the ranges
  before any weight is fitted;
* :func:`row_problems` / :func:`quarantine_rows` find and drop the rows that break a row-level
  rule, for the opt-in quarantine mode;
* :func:`unseen_category_records` measures target/holdout rows whose category never occurs in
  the source window (the model has never seen them, and the proposal cannot weight them);
* :func:`window_day_stats` summarizes each day of a role's window (rows, first and last event),
  from which :func:`day_row_count_records` fails a day far below the window's median day and
  :func:`event_day_records` a partition holding another day's events
  (:func:`partition_day_bounds`): a day wrong on its own, which the window's totals hide;
* :func:`id_overlap_records` fails holdout impression ids that are also source (or target) ids
  (:func:`shared_ids`): a leak that inflates the holdout's metrics.

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
from collections.abc import Callable, Sequence
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

PROFILE_SCHEMA_VERSION = 3
"""2: each feature's profile has its ``null_share``; 3: each numeric feature's has the quantiles
``q01``, ``median`` and ``q99`` of its finite values (:func:`reference_range`). Older profiles
still give the bounds they have the statistics for."""


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
    different schema); and the types equal those of the reference day's files. Types are
    compared as :func:`logical_type` (float32 and float64, a pandas ``category`` of text and
    text, or an INT96 and a microsecond timestamp are one type), a categorical's as
    :func:`categorical_kind`.
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
                    _type_change_fix(col, label, first_label, categorical)))
    if reference_schema:
        newest_label, newest = schemas[-1]
        for col in sorted(set(newest) & set(reference_schema) & allowed):
            if _type_changed(col, newest, reference_schema, categorical):
                records.append(contract_record(
                    role, "expect_schema_unchanged_since_reference_day", col,
                    f"{_shown_type(col, newest, categorical)} in {newest_label}",
                    _shown_type(col, reference_schema, categorical),
                    _type_change_fix(col, newest_label, "the reference day", categorical)
                    + "; if the change is intended re-run with `validation.reference_day: "
                    "none` once"))
    return records


def _type_of(col: str, categorical: set[str]) -> Callable[[str], str]:
    """How ``col``'s file types are compared: :func:`categorical_kind` for a categorical,
    :func:`logical_type` for any other column."""
    return categorical_kind if col in categorical else logical_type


def _type_changed(col: str, schema: dict[str, str], other: dict[str, str],
                  categorical: set[str]) -> bool:
    """Whether ``col`` changed type: a categorical when its :func:`categorical_kind` did (int32
    and int64 code the same levels), any other column when its :func:`logical_type` did
    (float32 and float64, or a ``category`` of text and text, are one type)."""
    type_of = _type_of(col, categorical)
    return type_of(schema[col]) != type_of(other[col])


def _shown_type(col: str, schema: dict[str, str], categorical: set[str]) -> str:
    """``"<compared type> (<file type>)"``, e.g. ``"float (double)"``."""
    kind = _type_of(col, categorical)(schema[col])
    return f"{kind} ({schema[col]})" if kind != schema[col] else schema[col]


def _type_change_fix(col: str, day: str, other_day: str, categorical: set[str]) -> str:
    if col in categorical:
        return (f"the categorical {col!r} holds another kind of value on {day} than on "
                f"{other_day}: an integer 17 and a text \"17\" are one level, but a column of "
                "integers one day and of text another is a schema change (text may hold "
                "\"017\" or \"n/a\"): cast it to one type upstream on every day (re-export the "
                "changed days)")
    return (f"{col!r} holds another type of value on {day} than on {other_day} (another "
            "width, a dictionary encoding or another timestamp unit would be the same type; "
            "this is not): re-export the changed days with the old type, or migrate all days")


_DICTIONARY_TYPE = re.compile(r"dictionary<values=(?P<values>.+), indices=\w+, ordered=\d>")
_TEXT_TYPES = {"string", "large_string", "utf8", "large_utf8", "string_view", "str", "object"}
_BINARY_TYPES = {"binary", "large_binary", "binary_view"}
_BOOLEAN_TYPES = {"bool", "boolean"}
_INTEGER_TYPE = re.compile(r"u?int(8|16|32|64)|U?Int(8|16|32|64)")
_FLOAT_TYPE = re.compile(r"float(16|32|64)?|Float(32|64)|double|halffloat")
_TIMESTAMP_TYPE = re.compile(
    r"(timestamp|datetime64)\[(s|ms|us|ns)(,\s*(tz=)?(?P<tz>[^\]]+))?\]")
_DATE_TYPE = re.compile(r"date(32|64)\[\w+\]")


def logical_type(type_name: str) -> str:
    """The logical type of a file's column type (an Arrow type name, or a pandas dtype for
    CSV), which is what must not change between days: writers differ in storage, not in
    meaning.

    ``"text"`` (``string``, ``large_string``, pandas ``str``/``object``), ``"integer"`` (signed
    or unsigned, any width, pandas ``Int64``), ``"float"`` (``float``/``float32``, ``double``/
    ``float64``, half floats), ``"boolean"``, ``"binary"``, ``"date"`` (``date32``,
    ``date64``), ``"timestamp"`` for naive timestamps of any unit (a Spark INT96 timestamp
    reads as ``timestamp[ns]``, pandas writes ``timestamp[us]``) and
    ``"timestamp[tz=<zone>]"`` for aware ones (a change of time zone, or between naive and
    aware, remains a change); the type name itself for any other type. A pandas ``category``
    (Arrow ``dictionary<values=..., indices=...>``) is the logical type of its values.

    Integers and floats are distinct: a column of counts that becomes a column of prices is a
    change (a categorical compares :func:`categorical_kind` instead, where they are one).
    """
    name = type_name.strip()
    dictionary = _DICTIONARY_TYPE.fullmatch(name)
    if dictionary:
        name = dictionary["values"].strip()
    if name in _TEXT_TYPES:
        return "text"
    if name in _BOOLEAN_TYPES:
        return "boolean"
    if name in _BINARY_TYPES:
        return "binary"
    if _INTEGER_TYPE.fullmatch(name):
        return "integer"
    if _FLOAT_TYPE.fullmatch(name):
        return "float"
    if _DATE_TYPE.fullmatch(name):
        return "date"
    timestamp = _TIMESTAMP_TYPE.fullmatch(name)
    if timestamp:
        return f"timestamp[tz={timestamp['tz'].strip()}]" if timestamp["tz"] else "timestamp"
    return name


def categorical_kind(type_name: str) -> str:
    """How a categorical's file type (an Arrow type name, or a pandas dtype for CSV) stores its
    levels: ``"text"``, ``"number"`` (integers; floats, since an integer column with nulls reads
    as float from CSV), ``"boolean"``, or else its :func:`logical_type`. A pandas ``category``
    (Arrow ``dictionary<values=...>``) is the kind of its values.

    Within one kind the level texts agree (:func:`is_core.data.features.level_text`: 17 and
    17.0 are ``"17"``); across kinds they need not (the text ``"017"`` is no integer), so a
    change of kind between days is a schema change.
    """
    kind = logical_type(type_name)
    return "number" if kind in ("integer", "float") else kind


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
    by_rule = {str(k): int(v) for k, v in problems.sum().items() if v}
    summary = quarantine_summary(config, role, len(frame), int(bad.sum()), by_rule)
    return frame.loc[~bad].reset_index(drop=True), summary


def quarantine_summary(config: IsbenchConfig, role: str, n: int, dropped: int,
                       by_rule: dict[str, int]) -> dict[str, Any]:
    """The quarantine summary of ``role`` from its counts (``n`` rows, ``dropped`` of them
    breaking a rule, ``by_rule`` the rows per ``<reason>:<column>``), as
    :func:`quarantine_rows` returns it; the Dask engine adds the counts up over partitions.

    Raises
    ------
    DataValidationError
        when ``dropped / n > validation.max_quarantine_share``.
    """
    share = dropped / n if n else 0.0
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
    return summary


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

    rows; CTR (mean label, labeled roles); per numeric feature the mean, standard deviation and
    the quantiles ``q01``, ``median``, ``q99`` of its finite values (``np.quantile``, linear
    interpolation); per categorical feature the number of distinct values; per feature its share
    of missing values (``null_share``); the file schema.
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
                q01, median, q99 = (float(q) for q in np.quantile(x, [0.01, 0.5, 0.99]))
                out["numeric"][col] = {"mean": float(x.mean()), "std": float(x.std(ddof=1)),
                                       "q01": q01, "median": median, "q99": q99}
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


# ---------------------------------------------------------------------------- magnitudes
def reference_range(stats: dict[str, Any], widening: float) -> tuple[float, float] | None:
    r"""The range of plausible values of a numeric feature, from its reference-day profile.

    With :math:`k` = ``validation.magnitude_widening`` (10) and the reference day's quantiles
    :math:`q_{0.01}, q_{0.99}` (:func:`day_profile`):

    .. math:: \left[q_{0.01} - k\,s,\ q_{0.99} + k\,s\right], \qquad s = q_{0.99} - q_{0.01},

    the central 98 % of the reference day's values, widened on either side by :math:`k` times
    their spread (:math:`s = \max(|\mathrm{median}|, 1)` for a feature constant on that day).
    The quantiles ignore the outer 1 % on either side, so a few odd rows of the reference day
    do not move them; the spread is :math:`s` rather than the interquartile range, which is 0
    for a feature of mostly one value (a 0/1 flag with 5 % ones) and narrow for a skewed one.
    At :math:`k = 10` a normal feature's range is :math:`\mu \pm 49\,\sigma` and a log-normal
    one's (:math:`\sigma = 0.8`, a price) reaches :math:`69\,e^{\mu}`, exceeded by a share of
    :math:`10^{-7}`; only a Pareto tail as heavy as :math:`\alpha \approx 1` exceeds it in
    about 0.1 % of rows. A sentinel (-999999) or a change of unit by a factor 100 leaves it.

    None for a profile without quantiles (:data:`PROFILE_SCHEMA_VERSION` below 3).
    """
    if not all(key in stats for key in ("q01", "median", "q99")):
        return None
    q01, q99 = float(stats["q01"]), float(stats["q99"])
    spread = q99 - q01 if q99 > q01 else max(abs(float(stats["median"])), 1.0)
    return q01 - widening * spread, q99 + widening * spread


def sanity_bound_records(frame: pd.DataFrame, config: IsbenchConfig, role: str
                         ) -> list[dict[str, Any]]:
    """Per numeric feature, whether every finite value is within ``±validation.max_abs_value``
    (1e12; None: no check).

    A larger magnitude is a sentinel (1e200) or an overflow, never a measurement. The rule needs
    no reference day, so it holds on a first run too, and a single row fails it (one 1e200
    overflows the squares of the proposal's quadratic basis). ±inf and NaN are other rules'.
    """
    bound = config.validation.max_abs_value
    if bound is None:
        return []
    records = []
    for col, x in _numeric_values(frame, config):
        outside = np.isfinite(x) & (np.abs(x) > bound)
        records.append(contract_record(
            role, "expect_column_abs_values_below_sanity_bound", col,
            _outside_text(frame, x, outside), f"no finite value beyond ±{bound:g}",
            f"values beyond ±{bound:g} are no measurement (a sentinel such as 1e200, or an "
            "overflow upstream): fix the upstream computation of this column, or drop such "
            "rows with `validation.numeric_ranges` and `validation.mode: quarantine`; if such "
            "magnitudes are real, raise `validation.max_abs_value` (null: no bound)",
            success=not outside.any()))
    return records


def reference_range_records(day: pd.DataFrame, config: IsbenchConfig, role: str,
                            reference: dict[str, Any]) -> list[dict[str, Any]]:
    """Per numeric feature whose reference-day profile has quantiles, whether at most
    ``validation.max_magnitude_outlier_share`` (0.1 %) of the run date's rows ``day`` lie
    outside its :func:`reference_range`.

    This catches what the sanity bound lets through: a sentinel such as -999999 or a unit
    change upstream, which would otherwise reach the weights as a gate failure ("clip harder").
    A share, not any row: a real tail may reach past the range now and then.
    """
    vc = config.validation
    limit, k = vc.max_magnitude_outlier_share, vc.magnitude_widening
    records = []
    for col, x in _numeric_values(day, config):
        stats = reference.get("numeric", {}).get(col)
        span = reference_range(stats, k) if stats else None
        if span is None:
            continue
        lo, hi = span
        outside = np.isfinite(x) & ((x < lo) | (x > hi))
        share = float(outside.mean()) if len(x) else 0.0
        records.append(contract_record(
            role, "expect_column_values_within_reference_range", col,
            _outside_text(day, x, outside),
            f"<= {limit:.2%} of rows outside [{lo:.6g}, {hi:.6g}] (reference day "
            f"{reference.get('day')}: q01 {stats['q01']:.6g}, q99 {stats['q99']:.6g}, widened "
            f"by {k:g} x (q99 - q01))",
            "values far outside the reference day's range (a sentinel such as -999999, or a "
            "unit change upstream): fix the upstream computation of this column; if such "
            "values are real, drop them with `validation.numeric_ranges` and `validation.mode: "
            "quarantine`, or widen `validation.magnitude_widening`; a real change of scale: "
            "re-run once with `validation.reference_day: none` to accept it",
            success=share <= limit))
    return records


def _numeric_values(frame: pd.DataFrame, config: IsbenchConfig
                    ) -> list[tuple[str, np.ndarray]]:
    """Each numeric feature of ``frame`` of a numeric dtype, as floats (NaN for missing)."""
    return [(col, frame[col].to_numpy(dtype=float, na_value=np.nan))
            for col in config.columns.numeric
            if col in frame and pd.api.types.is_numeric_dtype(frame[col])]


def _outside_text(frame: pd.DataFrame, x: np.ndarray, outside: np.ndarray) -> str:
    """The observed text of a magnitude record: ``<count> of <rows> rows (<share>) outside,
    observed range [min, max]``, with the days of the rows outside (the ``dt`` column of a
    partitioned window)."""
    finite = x[np.isfinite(x)]
    count, n = int(outside.sum()), len(x)
    days = sorted({str(d) for d in frame.loc[outside, "dt"]}) if count and "dt" in frame else []
    return outside_text(count, n, (float(finite.min()), float(finite.max())) if len(finite)
                        else None, days)


def outside_text(count: int, n: int, finite_range: tuple[float, float] | None,
                 days: list[str]) -> str:
    """:func:`_outside_text` from its numbers (a partitioned window merges them): the rows
    outside, the rows, the finite values' range (None: none) and the sorted days outside."""
    share = f" ({count / n:.2%})" if n else ""
    seen = (f"observed range [{finite_range[0]:.6g}, {finite_range[1]:.6g}]"
            if finite_range is not None else "no finite values")
    on = f" on {', '.join(days[:3])}{' ...' if len(days) > 3 else ''}" if days else ""
    return f"{count} of {n} rows{share} outside{on}, {seen}"


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


# ---------------------------------------------------------------------------- days of the window
DAY_COLUMN = "dt"
"""The column :func:`is_core.data.io.read_input_files` gives each row of a partitioned window:
its partition's day as an ISO date (whatever ``data.partition_key`` the folders are named by)."""


def window_day_stats(frame: pd.DataFrame, days: Sequence[str],
                     timestamp: str | None = None) -> pd.DataFrame:
    """Per day of a role's window, the rows of its partition and its first and last event.

    ``days`` are the window's ISO dates (oldest first), ``timestamp`` the event-time column
    (naive local times, :func:`local_naive_timestamps`). Returns a frame indexed by day with
    ``rows`` (0 for a day whose files hold no row), ``first_event`` and ``last_event`` (NaT
    without a timestamp column, or on a day without event times). One group-by over
    :data:`DAY_COLUMN`, no copy of the window's columns; no rows for an unpartitioned input
    (one file, no day column).
    """
    index = pd.Index([str(d) for d in days], name="day")
    stats = pd.DataFrame({"rows": np.zeros(len(index), dtype="int64"),
                          "first_event": pd.NaT, "last_event": pd.NaT}, index=index)
    if DAY_COLUMN not in frame:
        return stats.iloc[:0]
    if (timestamp and timestamp in frame
            and pd.api.types.is_datetime64_any_dtype(frame[timestamp])):
        span = frame.groupby(DAY_COLUMN, sort=False)[timestamp].agg(["size", "min", "max"])
        stats["first_event"] = span["min"].reindex(index)
        stats["last_event"] = span["max"].reindex(index)
    else:
        span = frame[DAY_COLUMN].value_counts().rename("size").to_frame()
    stats["rows"] = span["size"].reindex(index, fill_value=0).astype("int64")
    return stats


def day_row_count_records(stats: pd.DataFrame, vc: ValidationConfig, role: str,
                          partition_key: str = "dt") -> list[dict[str, Any]]:
    r"""Whether each day of the window (:func:`window_day_stats`) has at least
    ``validation.min_day_row_share`` of the window's median day's rows.

    With :math:`n_1, \dots, n_D` the days' row counts, :math:`\tilde n` their median and
    :math:`s` = ``min_day_row_share`` (0.1), day :math:`d` fails when

    .. math:: n_d < s\,\tilde n \quad\text{or}\quad (s > 0 \ \text{and}\ n_d = 0):

    an empty or partial day (a failed or half-finished export) that the window's total hides,
    the run training silently on the other days. The median, not the mean, so that one
    exploded or empty day does not move the bar of the others; a role whose days differ by
    less than a factor :math:`1/s` (weekdays and weekends) passes; :math:`s = 0`: no check.

    One failing record per such day, naming it (as ``<partition_key>=<day>``), else one
    passing record for the role; none for an unpartitioned input.
    """
    share = vc.min_day_row_share
    if stats.empty or share <= 0:
        return []
    rows = stats["rows"].to_numpy()
    median = float(np.median(rows))
    least = share * median
    rule = "expect_day_row_count_at_least_median_share"
    expected = (f">= {share:g} x the window's median day ({median:g} rows) = {least:g} rows, "
                "and at least 1")
    failing = [(str(day), int(n)) for day, n in stats["rows"].items() if n < least or n == 0]
    if not failing:
        return [contract_record(role, rule, None,
                                f"{len(rows)} days of {rows.min()} to {rows.max()} rows",
                                expected, _thin_day_fix(f"a day of {role}"), success=True)]
    return [contract_record(role, rule, None, f"{n} rows in {partition_key}={day}", expected,
                            _thin_day_fix(f"{partition_key}={day} of {role}"))
            for day, n in failing]


def _thin_day_fix(which: str) -> str:
    return (f"{which} is empty or partial (a failed or half-finished export): re-export that "
            "day's partition, or run a window without it (`data.window_days` / --date); if "
            "such days are normal, lower `validation.min_day_row_share` (0: no check)")


def partition_day_bounds(day: dt.date, late_event_hours: float
                         ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Bounds on the event times in partition ``day`` (naive local times, in the config's
    ``timezone``): ``[start - late_event_hours, end]``, ``start`` and ``end`` the local
    midnights that begin and end the day.

    A *late event* arrived after its day ended and was written to the partition of the day it
    arrived in: its time lies before that partition's start, by at most ``late_event_hours``.
    No event may lie after the end, which is also what :func:`freshness_window` asks of the run
    date's newest event: a later one means a wrong partition or time zone.
    """
    start = pd.Timestamp(day)
    return start - pd.Timedelta(hours=late_event_hours), start + pd.Timedelta(days=1)


def event_day_records(stats: pd.DataFrame, vc: ValidationConfig, role: str, timestamp: str,
                      partition_key: str = "dt", timezone: str = "UTC"
                      ) -> list[dict[str, Any]]:
    """Whether each partition's events (first and last, :func:`window_day_stats`) lie within
    its day's :func:`partition_day_bounds` (``validation.late_event_hours``; None: no check).

    Freshness looks only at the run date's newest event, so a partition of the window holding
    another day's events (an export that wrote to the wrong partition) passed. Days without
    event times are skipped (their row count is :func:`day_row_count_records`'). One failing
    record per such day, naming it, else one passing record for the role.
    """
    hours = vc.late_event_hours
    if stats.empty or hours is None:
        return []
    rule = "expect_event_times_within_partition_day"
    records = []
    for day, first, last in zip(stats.index, stats["first_event"], stats["last_event"],
                                strict=True):
        if pd.isna(first) or pd.isna(last):
            continue
        lo, hi = partition_day_bounds(dt.date.fromisoformat(str(day)), hours)
        if first < lo or last > hi:
            label = f"{partition_key}={day}"
            records.append(contract_record(
                role, rule, timestamp, f"events from {first} to {last} in {label}",
                f"[{lo}, {hi}] ({timezone}: the day, from {hours:g} h before it for late "
                "events)",
                f"{label} of {role} holds events of another day (an export that wrote to the "
                f"wrong partition) or of another time zone than `timezone` ({timezone}): "
                "re-export that partition; if late events arrive more than "
                f"{hours:g} h after their day, raise `validation.late_event_hours`"))
    if records:
        return records
    return [contract_record(
        role, rule, timestamp, f"events of {len(stats)} days within their partitions' days",
        f"each partition's day ({timezone}), from {hours:g} h before it for late events",
        "a partition holding another day's events: re-export it", success=True)]


# ---------------------------------------------------------------------------- roles
DISJOINT_ROLES: tuple[tuple[str, str], ...] = (("holdout", "source"), ("holdout", "target"))
"""Pairs of roles whose impression ids must not overlap over the window: holdout rows that are
source rows were trained on, holdout rows that are target rows fitted the proposal model, and
either inflates the holdout's metrics."""
ID_SAMPLE = 5
"""How many shared ids a failed :func:`id_overlap_records` shows."""

_LEAK_FIX = {
    "source": "rows of the source (trained on) are in the holdout, whose metrics then overstate "
              "the model: rebuild the holdout from target traffic without the source window's "
              "impression ids (or fix the export that copied source rows into it)",
    "target": "rows of the target (the proposal model is fitted on them) are in the holdout: "
              "split target and holdout upstream so that no impression is in both",
}


def shared_ids(ids: pd.Series, other: pd.Series) -> np.ndarray:
    """The distinct non-null values of ``ids`` that also occur in ``other``, in ``ids``' order.

    A membership test of the two id columns only (:meth:`pandas.Series.isin`: a hash table,
    or a sort for large integer columns); the frames are not copied.
    """
    hit = ids.notna().to_numpy() & ids.isin(other).to_numpy()
    return ids[hit].drop_duplicates().to_numpy()


def id_overlap_records(frames: dict[str, pd.DataFrame], config: IsbenchConfig
                       ) -> list[dict[str, Any]]:
    """For each pair of :data:`DISJOINT_ROLES` present (both roles with the impression id
    column), whether the first role's ids are disjoint from the second's over the window.

    A failing record names both roles, the number of shared ids and up to :data:`ID_SAMPLE` of
    them. None when ``columns.impression_id`` is unset or ``validation.disjoint_role_ids`` is
    false (roles that number their ids separately).
    """
    col = config.columns.impression_id
    if not col or not config.validation.disjoint_role_ids:
        return []
    records = []
    for role, other in DISJOINT_ROLES:
        if role not in frames or other not in frames or col not in frames[role] \
                or col not in frames[other]:
            continue
        shared = shared_ids(frames[role][col], frames[other][col])
        sample = [str(v) for v in shared[:ID_SAMPLE]]
        records.append(contract_record(
            role, "expect_ids_disjoint_across_roles", col,
            f"{len(shared)} {role} id(s) also {other} ids, e.g. {sample}" if len(shared)
            else f"no {role} id among the {other} ids",
            f"{role} ids disjoint from {other} ids over the window",
            _LEAK_FIX[other] + "; if each role numbers its ids separately, set "
            "`validation.disjoint_role_ids: false`", success=not len(shared)))
    return records
