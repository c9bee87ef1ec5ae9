"""The lists of choices and the argument checks that several parts of ``is_core`` share, each
written once.

**Choices.** Each list of choices is one ``Literal`` alias. The config model
(:mod:`is_core.config`) types its fields with these aliases and the estimators type and check
their arguments with the same ones (:func:`check_choice`), so a new clip method or learner is
added in one place. Where a tuple of the values is needed it is derived with
:func:`typing.get_args` (:data:`CLIP_METHODS`).

**Checks.** :func:`check_log_weights`, :func:`check_sample_weight`, :func:`check_length` and
:func:`check_choice` raise the family's errors (:mod:`is_core.errors`) naming the function's own
parameter. The stage functions map a :class:`~is_core.errors.ParameterError` to a
:class:`~is_core.errors.ConfigError` naming the config key with :func:`config_keys`.

This module imports no part of ``is_core`` (every part imports it).
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np

from is_core.errors import ConfigError, InvalidWeightsError, ParameterError

# ---------------------------------------------------------------------------- choices
#: Clipping of the raw weights (:mod:`is_core.weights.clipping`).
ClipMethod = Literal["none", "hard", "quantile", "ionides", "psis", "auto"]
CLIP_METHODS: tuple[ClipMethod, ...] = get_args(ClipMethod)
#: Learners of the domain classifier (:class:`is_core.weights.domain.DomainClassifierRatio`);
#: ``"auto"`` picks logistic, logistic with crosses or XGBoost by out-of-fold log-loss.
Learner = Literal["auto", "logistic", "xgboost"]
#: The proposal model of the pipeline: a domain classifier, or the logged policy weights.
ProposalLearner = Literal[Learner, "logged_propensity"]
#: How numerics enter the logistic domain classifier's design (:mod:`is_core.weights._design`).
Basis = Literal["linear", "quadratic", "spline"]
#: ``Basis``, or ``"auto"``: pick linear or quadratic by out-of-fold log-loss.
NumericBasis = Literal["auto", Basis]
#: Cross-fitted calibration of the domain classifier (:mod:`is_core.weights._calibration`).
Calibration = Literal["sigmoid", "isotonic"]
#: Importance subsampling of the CTR training rows (:mod:`is_core.ctr.sampling`).
SamplingStrategy = Literal["none", "negative", "loss"]
#: Over which rows the final weights are normalized to mean 1 (:mod:`is_core.weights.normalize`).
NormalizePer = Literal["window", "day"]
#: Estimators of the target CTR (:mod:`is_core.weights.estimators`).
EstimatorName = Literal["naive", "is", "snis", "dr"]
#: The roles of the input data.
Role = Literal["source", "target", "holdout"]
#: Formats of the input files.
FileFormat = Literal["parquet", "csv"]


def literal_values(choices: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` alias in order, nested literals flattened; in a union with
    ``None`` (``Calibration | None``), ``None`` is one of the values."""
    if get_origin(choices) not in (Literal, Union, types.UnionType):
        raise ParameterError(f"choices={choices!r} is not a Literal alias",
                             fix="pass an alias such as ClipMethod", parameter="choices")
    values: list[Any] = []
    for arg in get_args(choices):
        if arg is type(None):
            values.append(None)
        elif get_origin(arg) in (Literal, Union, types.UnionType):
            values.extend(literal_values(arg))
        else:
            values.append(arg)
    return tuple(values)


# ---------------------------------------------------------------------------- checks
def check_choice(value: Any, choices: Any, *, parameter: str, label: str | None = None,
                 error: type[ParameterError] = ParameterError) -> None:
    """Raise ``error`` (a :class:`ParameterError`) unless ``value`` is one of the values of the
    ``Literal`` alias ``choices``. The message names ``parameter`` (and ``label``, what the
    value is, e.g. ``"clip method"``) and the allowed values."""
    allowed = list(literal_values(choices))
    if any(value is v or (isinstance(value, str) and value == v) for v in allowed):
        return
    head = (f"unknown {label} {value!r}: {parameter} must be one of {allowed}" if label
            else f"{parameter}={value!r} is not one of {allowed}")
    raise error(head, fix=f"set {parameter} to one of {allowed}", parameter=parameter,
                details={"value": repr(value), "allowed": allowed})


def check_length(values: np.ndarray, n: int, *, parameter: str, noun: str, per: str) -> None:
    """Raise a :class:`ParameterError` unless ``values`` is 1-d with ``n`` entries, one per
    ``per`` (``"rows"``, ``"log weights"``): "3 labels for 4 log weights (y has shape ...)"."""
    if values.shape != (n,):
        raise ParameterError(
            f"{values.size} {noun} for {n} {per} ({parameter} has shape {values.shape}, "
            f"expected ({n},))",
            fix=f"pass {parameter} as a 1-d array with one entry per {per.rstrip('s')}",
            parameter=parameter, details={"shape": list(values.shape), "expected": n})


def check_log_weights(log_w: Any) -> np.ndarray:
    """``log_w`` as a float array, or an :class:`InvalidWeightsError`: log importance weights
    must be a non-empty 1-d array without NaN or +inf (-inf, a weight of 0, is allowed)."""
    log_w = np.asarray(log_w, dtype=float)
    if log_w.ndim != 1 or log_w.size == 0:
        raise InvalidWeightsError(
            f"log weights must be a non-empty 1-d array, got shape {log_w.shape}",
            fix="pass one log weight per source row (an empty window has no rows to weight)",
            details={"shape": list(log_w.shape)})
    n_nan, n_inf = int(np.isnan(log_w).sum()), int(np.isposinf(log_w).sum())
    if n_nan or n_inf:
        raise InvalidWeightsError(
            f"log weights contain NaN or +inf ({n_nan} NaN, {n_inf} +inf of {log_w.size})",
            fix="the proposal model is broken upstream: check the domain classifier's inputs "
            "and calibration (or the logged propensities), then re-run the date",
            details={"nan": n_nan, "posinf": n_inf, "n": int(log_w.size)})
    return log_w


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    """Row weights as a float array (all 1 when ``sample_weight`` is None), or a
    :class:`ParameterError`: one finite, non-negative weight per row."""
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=float)
    check_length(w, n, parameter="sample_weight", noun="sample weights", per="rows")
    bad = int((~np.isfinite(w) | (w < 0)).sum())
    if bad:
        raise ParameterError(
            f"{bad} sample weight(s) are negative, NaN or infinite: sample_weight must be "
            "finite and non-negative",
            fix="pass the final importance weights (clipped and normalized: finite and "
            "non-negative)", parameter="sample_weight", details={"bad_rows": bad})
    return w


# ---------------------------------------------------------------------------- stages
@contextmanager
def config_keys(keys: Mapping[str, str]) -> Iterator[None]:
    """Inside, a :class:`ParameterError` whose parameter ``keys`` maps to a config key becomes
    a :class:`ConfigError` naming that key (``{"max_weight": "weights.clip_max_weight"}``);
    any other error passes unchanged."""
    try:
        yield
    except ParameterError as exc:
        key = keys.get(exc.parameter)
        if key is None:
            raise
        raise ConfigError(f"{key}: {exc.what}", fix=f"correct {key} in the config ({exc.fix})",
                          details={**exc.details, "config_key": key}) from exc
