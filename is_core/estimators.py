r"""Estimators of the target CTR from labeled source rows and importance weights.

* naive: :math:`\hat\mu_{naive} = \frac1n \sum_i y_i` (ignores the shift),
* IS: :math:`\hat\mu_{IS} = \frac1n \sum_i w_i y_i` (unbiased with exact, unclipped weights),
* SNIS: :math:`\hat\mu_{SN} = \sum_i w_i y_i / \sum_i w_i` (invariant to the scale of ``w``).

Confidence intervals are normal-approximation intervals: for the naive and IS means the sample
standard error; for SNIS the delta method (ratio estimator),
:math:`\widehat{\mathrm{Var}}(\hat\mu_{SN}) = \sum_i w_i^2 (y_i - \hat\mu_{SN})^2 / (\sum_i w_i)^2`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided confidence interval."""

    estimator: str
    value: float
    std_error: float
    ci_low: float
    ci_high: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _normal_interval(name: str, value: float, se: float, level: float) -> Estimate:
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return Estimate(name, float(value), float(se), float(value - z * se), float(value + z * se),
                    level)


def naive_estimate(y: np.ndarray, level: float = 0.95) -> Estimate:
    """Source mean of ``y`` with its standard error."""
    y = np.asarray(y, dtype=float)
    return _normal_interval("naive", y.mean(), y.std(ddof=1) / np.sqrt(y.size), level)


def is_estimate(y: np.ndarray, w: np.ndarray, level: float = 0.95) -> Estimate:
    """Importance-sampling mean :math:`\\frac1n\\sum w_i y_i` with its standard error."""
    terms = np.asarray(w, dtype=float) * np.asarray(y, dtype=float)
    return _normal_interval("is", terms.mean(), terms.std(ddof=1) / np.sqrt(terms.size), level)


def snis_estimate(y: np.ndarray, w: np.ndarray, level: float = 0.95) -> Estimate:
    """Self-normalized IS :math:`\\sum w_i y_i / \\sum w_i` with a delta-method interval."""
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    total = w.sum()
    mu = float(w @ y / total)
    se = float(np.sqrt(np.sum(np.square(w) * np.square(y - mu))) / total)
    return _normal_interval("snis", mu, se, level)
