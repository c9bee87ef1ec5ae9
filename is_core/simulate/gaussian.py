r"""Gaussian known-truth scenarios for the weights engine: exact density ratio and target CTR.

Source rows :math:`x \sim q = N(0, I_d)`; target rows :math:`x \sim p = N(\mu, \mathrm{diag}(s^2))`.
The exact log importance weight is

.. math::

    \log w(x) = \sum_j \Big[-\log s_j - \frac{(x_j - \mu_j)^2}{2 s_j^2} + \frac{x_j^2}{2}\Big],

linear in :math:`x` when :math:`s = 1` (a mean shift: logistic regression is well specified) and
quadratic otherwise (a variance shift: a linear domain classifier is misspecified).

Clicks follow a probit model :math:`P(y = 1 \mid x) = \Phi(a + \beta^\top x)`, so both CTRs are in
closed form: :math:`E_p[y] = \Phi\big((a + \beta^\top\mu) / \sqrt{1 + \sum_j \beta_j^2 s_j^2}\big)`.

**Tail of the weights.** Along a coordinate with :math:`s_j > 1`, :math:`\log w` grows like
:math:`\tfrac12(1 - s_j^{-2}) x_j^2`, so :math:`P_q(w > t) \sim t^{-1/k}` with Pareto shape
:math:`k = 1 - 1/\max_j s_j^2` (the weights have infinite variance once :math:`k \ge 1/2`).
Along :math:`s_j < 1` the weights are bounded. Kish's :math:`ESS/n \to 1 / E_q[w^2]` with
:math:`E_q[w_j^2] = \exp\big(\mu_j^2 / (s_j^4 A_j) - \mu_j^2 / s_j^2\big) / (s_j^2 \sqrt{2 A_j})`,
:math:`A_j = 1/s_j^2 - 1/2` (infinite when :math:`s_j^2 \ge 2`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy.special import ndtr

from is_core.errors import ParameterError

_PHI = NormalDist()
DEFAULT_BETA = (0.6, 0.4, -0.2, 0.3)


@dataclass(frozen=True)
class SyntheticSample:
    """One draw: source rows (features + ``clicked``), target rows (features), exact truth."""

    source: pd.DataFrame
    target: pd.DataFrame
    true_log_w_source: np.ndarray
    features: list[str]


@dataclass(frozen=True)
class GaussianShift:
    """A Gaussian source/target pair with a probit click model. See the module docstring."""

    name: str
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    intercept: float = -1.5
    beta: tuple[float, ...] = field(default=DEFAULT_BETA)

    @property
    def d(self) -> int:
        return len(self.mean)

    @property
    def features(self) -> list[str]:
        return [f"x{j}" for j in range(self.d)]

    def _beta(self) -> np.ndarray:
        b = np.zeros(self.d)
        b[: len(self.beta)] = self.beta[: self.d]
        return b

    def log_ratio(self, x: np.ndarray) -> np.ndarray:
        """Exact :math:`\\log p(x)/q(x)` of rows ``x`` (shape (n, d))."""
        mu, s = np.asarray(self.mean), np.asarray(self.scale)
        return np.sum(-np.log(s) - np.square(x - mu) / (2 * s**2) + np.square(x) / 2, axis=1)

    def ctr(self, role: str) -> float:
        """Exact CTR under the source (``q``) or the target (``p``)."""
        b = self._beta()
        if role == "source":
            return _PHI.cdf(self.intercept / np.sqrt(1 + b @ b))
        mu, s = np.asarray(self.mean), np.asarray(self.scale)
        return _PHI.cdf((self.intercept + b @ mu) / np.sqrt(1 + np.sum(b**2 * s**2)))

    @property
    def target_ctr(self) -> float:
        return self.ctr("target")

    @property
    def true_khat(self) -> float:
        """Pareto shape of the right tail of the exact weights (``-inf``: bounded weights)."""
        s_max = float(np.max(self.scale))
        return 1 - 1 / s_max**2 if s_max > 1 else float("-inf")

    @property
    def exact_ess_fraction(self) -> float:
        """Population limit of Kish ESS/n of the exact weights, :math:`1 / E_q[w^2]`."""
        mu, s = np.asarray(self.mean), np.asarray(self.scale)
        a = 1 / s**2 - 0.5
        if np.any(a <= 0):
            return 0.0
        log_second = np.sum(mu**2 / (s**4 * a) - mu**2 / s**2 - np.log(s**2 * np.sqrt(2 * a)))
        return float(np.exp(-log_second))

    def sample(self, n_source: int, n_target: int, rng: np.random.Generator) -> SyntheticSample:
        """Draw ``n_source`` labeled source rows and ``n_target`` unlabeled target rows."""
        xs = rng.standard_normal((n_source, self.d))
        xt = np.asarray(self.mean) + np.asarray(self.scale) * rng.standard_normal(
            (n_target, self.d))
        index = self.intercept + xs @ self._beta()
        p_click = ndtr(index)
        source = pd.DataFrame(xs, columns=self.features)
        source["clicked"] = (rng.random(n_source) < p_click).astype("int8")
        target = pd.DataFrame(xt, columns=self.features)
        return SyntheticSample(source, target, self.log_ratio(xs), self.features)


def gaussian_scenarios(d: int = 10) -> dict[str, GaussianShift]:
    """The five known-truth scenarios of issue 3, in dimension ``d`` (≥ 4).

    * ``mean_shift``: :math:`\\mu = 0.25 \\cdot 1`, :math:`s = 1` (log-linear ratio,
      :math:`ESS/n = e^{-0.0625 d}`, 0.54 at d = 10).
    * ``variance_shift``: :math:`\\mu = 0`, :math:`s = 0.8` (quadratic ratio, ESS/n 0.50 at d = 10).
    * ``heavy_tail``: :math:`s_0 = s_1 = 2.5` (true :math:`k = 0.84 > 0.7`).
    * ``no_shift``: :math:`p = q` (every weight is 1).
    * ``disjoint``: :math:`\\mu_0 = 8` (domain AUC ≈ 1; the source barely covers the target).
    """
    if d < 4:
        raise ParameterError(f"d must be at least 4, got {d}",
                             fix="pass d=4 or more", parameter="d")
    zeros, ones = (0.0,) * d, (1.0,) * d
    return {
        "mean_shift": GaussianShift("mean_shift", (0.25,) * d, ones),
        "variance_shift": GaussianShift("variance_shift", zeros, (0.8,) * d),
        "heavy_tail": GaussianShift("heavy_tail", zeros, (2.5, 2.5) + (1.0,) * (d - 2)),
        "no_shift": GaussianShift("no_shift", zeros, ones),
        "disjoint": GaussianShift("disjoint", (8.0,) + (0.0,) * (d - 1), ones),
    }
