r"""A bandit impression log with known truth, shaped like a real Thompson-sampling log.

Issue 16 measured the weights engine on a real bandit log: impressions of 80 items in 3 positions
logged by a Thompson-sampling ranker, about 80 sparse numeric user-item affinity features and 4
hashed user features per impression, a CTR of about 0.4 %, and a uniform-random target policy.
Its exact weights are heavy-tailed (Kish ESS/n 0.034, largest weight 278 at 10,000 rows), and
the default proposal model failed on it. This module draws worlds that look like that log and
whose weights and CTRs are known exactly, so the engine can be tested and benchmarked on them.
A :class:`BanditScenario` has the interface of :class:`~is_core.simulate.clicklog.ClickScenario`
(``seed``, ``numeric_features``, ``categorical_features``, ``build()``), and a
:class:`BanditWorld` that of :class:`~is_core.simulate.clicklog.ClickWorld` (``sample``,
``expected_ctr``, ``true_weight``), so :func:`~is_core.simulate.clicklog.write_scenario` writes
it unchanged.

The world, drawn once from ``seed``
-----------------------------------

* **Users**: a finite population :math:`u = 1, \dots, U` with continuous latent factors
  :math:`x_u = \tfrac12 m_{h_0(u)} + z_u \in \mathbb{R}^d`, :math:`z_u \sim N(0, I_d)`, where
  :math:`m_h \sim N(0, I_d)` is a centroid per level of the first hashed user feature (so that
  feature says something about preferences). Items have factors :math:`v_i \sim N(0, I_d)` and
  biases :math:`b_i \sim N(0, 0.5^2)`.
* **Latent affinity** :math:`a(u, i) = \beta\,(x_u^\top v_i / \sqrt{d} + b_i)`, a
  :math:`U \times I` table.
* **Click model** with position bias: :math:`P(c = 1 \mid u, i, k) = \theta_k\, \rho(u, i)`,
  :math:`\theta_k = k^{-\eta}`, :math:`\rho(u, i) = \sigma(b_0 + a(u, i))`.
* **Logging policy** (Thompson-sampling-like). The ranker holds one posterior draw of the
  relevance, :math:`\hat s(u, i) = a(u, i) + \sigma_{\mathrm{post}}\, \xi_{ui}`,
  :math:`\xi_{ui} \sim N(0, 1)`, fixed for the world (the ranker's state while the log was
  collected; re-drawing it per request would make the propensity an expectation over draws
  with no closed form). Every request fills all :math:`K` slots, so each position receives
  :math:`1/K` of the impressions; position :math:`k` shows item :math:`i` with a softmax whose
  temperature grows down the page (the best draws go to the top slot, deeper slots are flatter),
  mixed with an :math:`\varepsilon`-uniform floor so every cell has positive propensity:

  .. math::

      \pi_0(i, k \mid u) = \frac{1 - \varepsilon}{K}\,
      \frac{\exp(\hat s(u, i) / \tau_k)}{\sum_{j} \exp(\hat s(u, j) / \tau_k)}
      + \frac{\varepsilon}{I K}, \qquad \tau_k = \tau\,(1 + \gamma\,(k - 1)).

  The propensities are exact, so the ``logging_propensity`` column is the true :math:`\pi_0`.
* **Target policy**: uniform random, :math:`\pi_1(i, k \mid u) = 1 / (I K)`.
* **Traffic mix**: target users are uniform, :math:`p(u) = 1/U`; source users follow
  :math:`q(u) \propto \exp(\lambda\, \alpha_{h_0(u)})` with :math:`\alpha_h \sim N(0, 1)` per
  level of the first hashed user feature and :math:`\lambda` = ``traffic_shift`` (default 0:
  the same users, only the policy differs, as in a randomized exploration bucket).

Exact truth
-----------

The importance weight of a source impression is

.. math::

    w(u, i, k) = \frac{p(u)\,\pi_1(i, k \mid u)}{q(u)\,\pi_0(i, k \mid u)}
               = \frac{p(u)}{q(u)}\,\frac{1}{I K\, \pi_0(i, k \mid u)},

computed in log space. It is bounded by :math:`\max_u p(u)/q(u) \cdot 1/\varepsilon` (the floor),
has mean exactly 1 under the source, and the population Kish ESS fraction is
:math:`(\mathrm{E}_q w)^2 / \mathrm{E}_q w^2 = 1 / \mathrm{E}_p w`
(:meth:`BanditWorld.exact_ess_fraction`). The exact CTRs are finite sums over the population,

.. math::

    \mathrm{CTR}_q = \sum_u q(u) \sum_{i,k} \pi_0(i, k \mid u)\, \theta_k\, \rho(u, i), \qquad
    \mathrm{CTR}_p = \sum_u p(u)\, \frac{1}{I K} \sum_{i,k} \theta_k\, \rho(u, i).

Observed features
-----------------

* ``user_item_affinity_{j}``, :math:`j = 0, \dots, I-1` (80 at the defaults): the user's observed
  affinity to *each* item, a censored noisy view of the latent affinity,
  :math:`A(u, j) = \max(0,\, a(u, j) + \sigma_A\, \zeta_{uj} - t)`, with :math:`t` the
  :math:`(1 - \delta)` quantile of :math:`a + \sigma_A \zeta` over the population, so a fraction
  :math:`1 - \delta` of the entries (95 % at the defaults) is exactly 0. As in the real log the
  same 80 values are logged with every impression of the user, whatever item is shown; the
  affinity to the shown item is the column named by ``item_id``. The table is
  :math:`U \times I` (3.2 MB at the defaults); no :math:`U \times I \times 80` table exists.
* ``user_feature_{f}``, :math:`f = 0, \dots, 3`: hashed user categoricals with a few dozen levels
  each (``"h2_9c1e"``), derived from the user. The world gives every user a *distinct*
  combination of the four levels, so they form a key of the user.
* ``item_id`` (categorical) and ``position`` (numeric, 1-based).

Because the hashed features identify :math:`u` and ``item_id`` and ``position`` are logged, the
map :math:`(u, i, k) \mapsto x` is injective, hence :math:`p(x)/q(x) = w(u, i, k)` exactly:
rows with identical features have identical ``true_weight``.

Measured at the defaults (seed 0)
---------------------------------

* Exact source CTR 0.406 %, exact target CTR 0.227 % (the ranker's lift is about 1.8).
* Population Kish ESS/n of the exact weights 0.031. On 10,000-row source samples
  (``default_rng(13)`` to ``default_rng(17)``): ESS/n 0.027 to 0.038, largest normalized weight
  206 to 247 (the floor caps it at :math:`1/\varepsilon = 250`), and ``logging_propensity``
  from :math:`1.7 \cdot 10^{-5}` (the floor :math:`\varepsilon / (IK)`) to 0.33 (a user whose
  posterior draw is confident about the top slot), max/min 1.6e4 to 2.0e4: about four orders of
  magnitude. Issue 16's real log: ESS/n 0.034, largest weight 278.
* 95 % of the observed affinity entries are exactly 0 (4.0 of 80 nonzero per user).
* ``build()`` takes about 0.2 s and holds two :math:`U \times I \times K` tables of 9.6 MB
  (:math:`\log \pi_0` and its per-user cumulative sums for sampling).

Intended use: about 20 source rows per target row (:data:`BANDIT_ROWS_PER_DAY`; pass it as
``rows_per_day`` to :func:`~is_core.simulate.clicklog.write_scenario`, whose own default is
4:1). The pipeline's default feature lists (``columns.numeric`` and ``columns.categorical`` in
:mod:`is_core.config`) name the click-log world's columns; a run on bandit data must set them
to the ``numeric_features`` and ``categorical_features`` that ``truth.json`` records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import Field, dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import pandas as pd

from is_core._validation import Role, check_choice
from is_core.errors import ParameterError
from is_core.simulate.clicklog import ROLE_CODES, _sample_rows, _sigmoid

#: Rows per day that :func:`~is_core.simulate.clicklog.write_scenario` should be given for a
#: bandit scenario: 20 source rows per target row, as a bandit log is used (a large logged
#: history, a small unlabeled sample of the target traffic). The holdout is evaluation only and
#: kept larger: at a target CTR of 0.23 % even 5,000 rows a day give only about 11 clicks.
BANDIT_ROWS_PER_DAY: dict[str, int] = {"source": 20_000, "target": 1_000, "holdout": 5_000}


class SimulatedWorld(Protocol):
    """What :func:`~is_core.simulate.clicklog.write_scenario` needs of a drawn world
    (:class:`~is_core.simulate.clicklog.ClickWorld`, :class:`BanditWorld`)."""

    def sample(self, n: int, role: str, rng: np.random.Generator, day: dt.date | None = None
               ) -> pd.DataFrame:
        """``n`` impressions of ``role`` with ``clicked``, ``logging_propensity``,
        ``true_weight`` and the hidden ``_user``, ``_item``, ``_position0`` columns."""
        ...

    def expected_ctr(self, role: Literal["source", "target"]) -> float:
        """The exact CTR of ``role``."""
        ...


class SimulatedScenario(Protocol):
    """What :func:`~is_core.simulate.clicklog.write_scenario` needs of a scenario: a dataclass
    (its fields go to ``truth.json``) with a ``seed``, the feature lists and ``build()``
    (:class:`~is_core.simulate.clicklog.ClickScenario`, :class:`BanditScenario`)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def seed(self) -> int:
        """Seed of the world and of the daily samples."""
        ...

    @property
    def numeric_features(self) -> list[str]:
        """Numeric feature columns of the samples."""
        ...

    @property
    def categorical_features(self) -> list[str]:
        """Categorical feature columns of the samples."""
        ...

    def build(self) -> SimulatedWorld:
        """Draw the world from ``seed``."""
        ...


def _log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


@dataclass(frozen=True)
class BanditScenario:
    """Parameters of a bandit-log world. See the module docstring for the maths.

    The defaults mimic issue 16's Thompson-sampling log: 80 items, 3 positions, 80 sparse
    affinity features, 4 hashed user features; source CTR 0.41 %, target CTR 0.23 %, exact
    weights with population ESS/n 0.031 and, at 10,000 source rows, ESS/n about 0.03, a largest
    normalized weight of about 240 and propensities spanning about four orders of magnitude.

    Parameters
    ----------
    n_users : int
        Size :math:`U` of the finite user population.
    n_items : int
        Number of items :math:`I`; also the number of ``user_item_affinity_{j}`` features.
    n_positions : int
        Number of slots :math:`K` per request.
    n_latent : int
        Dimension :math:`d` of the latent user and item factors.
    user_feature_levels : tuple of int
        Number of levels of each hashed user feature; their product must be at least
        ``n_users`` (every user gets a distinct combination).
    affinity_density : float
        Fraction :math:`\\delta` of nonzero observed affinity entries.
    affinity_noise : float
        Noise :math:`\\sigma_A` of the observed affinity around the latent one.
    affinity_scale : float
        Scale :math:`\\beta` of the latent affinity (spread of the relevance across items).
    base_logit : float
        Intercept :math:`b_0` of the relevance; sets the CTR.
    position_bias : float
        Exponent :math:`\\eta` of the examination probability :math:`\\theta_k = k^{-\\eta}`.
    posterior_noise : float
        Noise :math:`\\sigma_{\\mathrm{post}}` of the ranker's posterior draw.
    temperature : float
        Softmax temperature :math:`\\tau` of the top slot.
    temperature_growth : float
        Growth :math:`\\gamma` of the temperature per slot down the page.
    exploration : float
        Uniform floor :math:`\\varepsilon` of the logging policy; caps the weights at
        :math:`1/\\varepsilon` (times :math:`\\max p/q`).
    traffic_shift : float
        Strength :math:`\\lambda` of the source traffic mix over the first hashed feature's
        levels; 0 gives :math:`q(u) = p(u)`.
    seed : int
        Seed of the world and, through
        :func:`~is_core.simulate.clicklog.write_scenario`, of the daily samples.
    """

    n_users: int = 5_000
    n_items: int = 80
    n_positions: int = 3
    n_latent: int = 8
    user_feature_levels: tuple[int, ...] = (24, 32, 40, 48)
    affinity_density: float = 0.05
    affinity_noise: float = 0.3
    affinity_scale: float = 0.4
    base_logit: float = -5.8
    position_bias: float = 0.8
    posterior_noise: float = 0.6
    temperature: float = 0.27
    temperature_growth: float = 0.5
    exploration: float = 0.004
    traffic_shift: float = 0.0
    seed: int = 0

    def build(self) -> BanditWorld:
        """Draw the world (users, items, policies) from ``seed``."""
        return BanditWorld(self)

    @property
    def affinity_features(self) -> list[str]:
        """The ``user_item_affinity_{j}`` columns, one per item."""
        return [f"user_item_affinity_{j}" for j in range(self.n_items)]

    @property
    def user_features(self) -> list[str]:
        """The hashed user categorical columns."""
        return [f"user_feature_{f}" for f in range(len(self.user_feature_levels))]

    @property
    def numeric_features(self) -> list[str]:
        """Numeric feature columns, as :attr:`ClickScenario.numeric_features`."""
        return self.affinity_features + ["position"]

    @property
    def categorical_features(self) -> list[str]:
        """Categorical feature columns, as :attr:`ClickScenario.categorical_features`."""
        return self.user_features + ["item_id"]


def _check_scenario(s: BanditScenario) -> None:
    """Raise :class:`ParameterError` naming the first invalid parameter of ``s``."""
    rules: list[tuple[str, float, bool, str]] = [
        ("n_users", s.n_users, s.n_users >= 1, "a positive integer"),
        ("n_items", s.n_items, s.n_items >= 1, "a positive integer"),
        ("n_positions", s.n_positions, s.n_positions >= 1, "a positive integer"),
        ("n_latent", s.n_latent, s.n_latent >= 1, "a positive integer"),
        ("affinity_density", s.affinity_density, 0.0 < s.affinity_density <= 1.0,
         "a fraction in (0, 1]"),
        ("exploration", s.exploration, 0.0 < s.exploration <= 1.0, "a fraction in (0, 1]"),
        ("temperature", s.temperature, s.temperature > 0.0, "a positive number"),
        ("affinity_scale", s.affinity_scale, s.affinity_scale > 0.0, "a positive number"),
        ("affinity_noise", s.affinity_noise, s.affinity_noise >= 0.0, "a non-negative number"),
        ("posterior_noise", s.posterior_noise, s.posterior_noise >= 0.0,
         "a non-negative number"),
        ("temperature_growth", s.temperature_growth, s.temperature_growth >= 0.0,
         "a non-negative number"),
    ]
    for name, value, ok, rule in rules:
        if not ok:
            raise ParameterError(f"{name}={value!r} is invalid: it must be {rule}",
                                 f"set {name} to {rule}", parameter=name)
    levels = s.user_feature_levels
    if not levels or min(levels) < 2:
        raise ParameterError(
            f"user_feature_levels={levels!r} is invalid: it must be a non-empty tuple of ints "
            "of at least 2", "give each hashed user feature at least 2 levels",
            parameter="user_feature_levels")
    if np.prod(levels, dtype=float) < s.n_users:
        raise ParameterError(
            f"user_feature_levels={levels!r} have fewer combinations than n_users={s.n_users}, "
            "so the hashed user features cannot identify the user",
            "add levels to user_feature_levels or lower n_users",
            parameter="user_feature_levels")


@dataclass
class BanditWorld:
    """A drawn bandit world: the tables needed to sample and to compute exact truth.

    Attributes
    ----------
    scenario : BanditScenario
        The parameters it was drawn from.
    user_codes : ndarray of int, shape (U, F)
        Level of each hashed user feature per user; rows are distinct.
    user_tokens : list of ndarray of str
        The string of each level of each hashed feature (``"h0_3fa2"``).
    item_names : ndarray of str, shape (I,)
        The ``item_id`` of each item (``"item_00042"``, as in the click-log world).
    affinity : ndarray, shape (U, I)
        Latent affinity :math:`a(u, i)`.
    observed_affinity : ndarray, shape (U, I)
        Observed sparse affinity :math:`A(u, i)`.
    relevance : ndarray, shape (U, I)
        :math:`\\rho(u, i)`.
    examination : ndarray, shape (K,)
        :math:`\\theta_k`.
    log_pi0 : ndarray, shape (U, I, K)
        :math:`\\log \\pi_0(i, k \\mid u)`.
    p_user, q_user : ndarray, shape (U,)
        Target and source traffic mix.
    """

    scenario: BanditScenario
    user_codes: np.ndarray = field(init=False)
    user_tokens: list[np.ndarray] = field(init=False)
    item_names: np.ndarray = field(init=False)
    affinity: np.ndarray = field(init=False)
    observed_affinity: np.ndarray = field(init=False)
    relevance: np.ndarray = field(init=False)
    examination: np.ndarray = field(init=False)
    log_pi0: np.ndarray = field(init=False)
    p_user: np.ndarray = field(init=False)
    q_user: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        s = self.scenario
        _check_scenario(s)
        rng = np.random.default_rng(np.random.SeedSequence([s.seed, 104_729]))
        U, I, K, d = s.n_users, s.n_items, s.n_positions, s.n_latent  # noqa: E741
        self.user_codes = _distinct_codes(U, s.user_feature_levels, rng)
        self.user_tokens = [
            np.array([f"h{f}_{c:04x}" for c in rng.choice(16**4, size=n, replace=False)])
            for f, n in enumerate(s.user_feature_levels)
        ]
        self.item_names = np.array([f"item_{x:05d}" for x in range(I)])
        level0 = self.user_codes[:, 0]
        centroids = rng.normal(size=(s.user_feature_levels[0], d))
        user_x = 0.5 * centroids[level0] + rng.normal(size=(U, d))
        item_v = rng.normal(size=(I, d))
        item_b = rng.normal(scale=0.5, size=I)
        self.affinity = s.affinity_scale * (user_x @ item_v.T / np.sqrt(d) + item_b)
        self.relevance = _sigmoid(s.base_logit + self.affinity)
        self.examination = np.arange(1, K + 1, dtype=float) ** (-s.position_bias)

        noisy = self.affinity + s.affinity_noise * rng.normal(size=(U, I))
        threshold = np.quantile(noisy, 1.0 - s.affinity_density)
        self.observed_affinity = np.maximum(noisy - threshold, 0.0)

        posterior_draw = self.affinity + s.posterior_noise * rng.normal(size=(U, I))
        self.log_pi0 = _log_thompson_policy(posterior_draw, s)

        shift = s.traffic_shift * rng.normal(size=s.user_feature_levels[0])[level0]
        self.q_user = np.exp(shift - shift.max())
        self.q_user /= self.q_user.sum()
        self.p_user = np.full(U, 1.0 / U)
        n_cells = I * K
        self._cell_cdf = np.cumsum(np.exp(self.log_pi0.reshape(U, n_cells)), axis=1)
        self._log_user_ratio = np.log(self.p_user) - np.log(self.q_user) - np.log(n_cells)

    # ------------------------------------------------------------------ exact truth
    def logging_propensity(self, u: np.ndarray, i: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Exact :math:`\\pi_0(i, k \\mid u)` of impressions (user u, item i, 0-based slot k)."""
        return np.exp(self.log_pi0[u, i, k])

    def true_weight(self, u: np.ndarray, i: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Exact importance weight :math:`p(x)/q(x) = w(u, i, k)` (0-based slot ``k``),
        computed in log space."""
        return np.exp(self._log_user_ratio[u] - self.log_pi0[u, i, k])

    def expected_ctr(self, role: Role) -> float:
        """Exact CTR under the source (logging) or the target (uniform) distribution."""
        users, cells = self._tables(role)
        click = self.relevance[:, :, None] * self.examination[None, None, :]
        return float(users @ (cells * click).sum(axis=(1, 2)))

    def exact_ess_fraction(self) -> float:
        """Population Kish ESS fraction :math:`1 / \\mathrm{E}_p[w]` of the exact weights.

        A finite sample's ESS/n scatters around it (0.027 to 0.038 at 10,000 rows for the
        defaults' 0.031): it hinges on how many of the rare floor-propensity rows were drawn.
        """
        w = np.exp(self._log_user_ratio[:, None, None] - self.log_pi0)
        n_cells = self.scenario.n_items * self.scenario.n_positions
        return float(1.0 / (self.p_user @ w.sum(axis=(1, 2)) / n_cells))

    def _tables(self, role: str) -> tuple[np.ndarray, np.ndarray]:
        """Users' mix (U,) and cell probabilities (U, I, K) of ``role``."""
        check_choice(role, Role, parameter="role")
        if role == "source":
            return self.q_user, np.exp(self.log_pi0)
        n_cells = self.scenario.n_items * self.scenario.n_positions  # target and holdout
        return self.p_user, np.full(self.log_pi0.shape, 1.0 / n_cells)

    # ------------------------------------------------------------------ sampling
    def sample(
        self, n: int, role: str, rng: np.random.Generator, day: dt.date | None = None
    ) -> pd.DataFrame:
        """Sample ``n`` impressions of ``role`` with clicks and the true weight columns.

        Parameters
        ----------
        n : int
            Number of impressions.
        role : {"source", "target", "holdout"}
            Source rows follow :math:`q(u)\\,\\pi_0`; target and holdout rows
            :math:`p(u)\\,\\pi_1`.
        rng : numpy.random.Generator
            The only source of randomness of the sample.
        day : datetime.date, optional
            Day of the ``ts`` column and of the ``impression_id`` (default 2026-01-01).

        Returns
        -------
        pandas.DataFrame
            ``impression_id``, ``ts``, the feature columns, ``clicked`` (every role),
            ``logging_propensity`` (:math:`\\pi_0(i, k \\mid u)`), ``true_weight`` and the hidden
            indices ``_user``, ``_item`` and ``_position0``, named as
            :meth:`ClickWorld.sample <is_core.simulate.clicklog.ClickWorld.sample>` names them;
            :func:`~is_core.simulate.clicklog.write_scenario` decides which columns each role's
            files get.
        """
        s = self.scenario
        I, K = s.n_items, s.n_positions  # noqa: E741
        check_choice(role, Role, parameter="role")
        if role == "source":
            u = rng.choice(s.n_users, size=n, p=self.q_user)
            cell = _sample_rows(self._cell_cdf, u, rng)
            i, k = cell // K, cell % K
        else:  # target and holdout: uniform policy
            u = rng.choice(s.n_users, size=n, p=self.p_user)
            i, k = rng.integers(0, I, size=n), rng.integers(0, K, size=n)
        p_click = self.examination[k] * self.relevance[u, i]
        clicked = (rng.random(n) < p_click).astype("int8")
        day = day or dt.date(2026, 1, 1)
        seconds = np.sort(rng.integers(0, 86_400, size=n))
        head = pd.DataFrame({
            "impression_id": (
                ROLE_CODES[role] * 10**13 + day.toordinal() * 10**7 + np.arange(n, dtype=np.int64)
            ),
            "ts": pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s"),
        })
        # the (n, I) affinity block of the sampled rows, one 2-d block (no per-column copies)
        affinity = pd.DataFrame(self.observed_affinity[u], columns=s.affinity_features, copy=False)
        tail = pd.DataFrame({
            "position": (k + 1).astype("int64"),
            **{name: pd.array(self.user_tokens[f][self.user_codes[u, f]], dtype="str")
               for f, name in enumerate(s.user_features)},
            "item_id": pd.array(self.item_names[i], dtype="str"),
            "clicked": clicked,
            "logging_propensity": self.logging_propensity(u, i, k),
            "true_weight": self.true_weight(u, i, k),
            "_user": u,
            "_item": i,
            "_position0": k,
        })
        return pd.concat([head, affinity, tail], axis=1)


def _distinct_codes(n_users: int, levels: tuple[int, ...], rng: np.random.Generator
                    ) -> np.ndarray:
    """Distinct rows of hashed-feature levels, one per user, with skewed level frequencies.

    Each feature's level frequencies are Dirichlet(1) (a few big levels, a long tail, as hashed
    features are in real logs); duplicate rows are re-drawn until every row is distinct.
    """
    probs = [rng.dirichlet(np.ones(n)) for n in levels]
    codes = np.column_stack([rng.choice(n, size=n_users, p=p) for n, p in zip(levels, probs,
                                                                                strict=True)])
    for _ in range(1_000):
        _, first = np.unique(codes, axis=0, return_index=True)
        dup = np.setdiff1d(np.arange(n_users), first)
        if dup.size == 0:
            return codes
        for f, (n, p) in enumerate(zip(levels, probs, strict=True)):
            codes[dup, f] = rng.choice(n, size=dup.size, p=p)
    raise ParameterError(
        f"could not give {n_users} users distinct hashed features with levels {levels!r}",
        "add levels to user_feature_levels or lower n_users", parameter="user_feature_levels")


def _log_thompson_policy(posterior_draw: np.ndarray, s: BanditScenario) -> np.ndarray:
    """:math:`\\log \\pi_0(i, k \\mid u)`, shape (U, I, K), of the module docstring's logger.

    Per slot a softmax over items of ``posterior_draw / tau_k`` with mass :math:`1/K`, mixed with
    the :math:`\\varepsilon`-uniform floor; the mixture is taken with ``logaddexp`` so tiny
    softmax terms are not lost.
    """
    I, K = s.n_items, s.n_positions  # noqa: E741
    tau = s.temperature * (1.0 + s.temperature_growth * np.arange(K))
    log_softmax = _log_softmax(posterior_draw[:, :, None] / tau[None, None, :], axis=1)
    if s.exploration >= 1.0:
        return np.full(log_softmax.shape, -np.log(I * K))
    return np.logaddexp(np.log1p(-s.exploration) - np.log(K) + log_softmax,
                        np.log(s.exploration) - np.log(I * K))
