r"""Click-log scenarios with known truth: users × items × positions.

A *world* (users, items, a logging ranker, a target distribution and a click model) is drawn once
from ``seed``; impressions are then sampled from it day by day. Everything the estimators try to
recover is known exactly:

* **Logging (exposure) policy** :math:`\pi_0(i, k \mid u) = \pi_0(i \mid u)\,\pi_0(k \mid u, i)`,
  with :math:`\pi_0(i \mid u) = (1-\varepsilon)\,\mathrm{softmax}_i(s_0(u, i)) + \varepsilon / I`
  (an :math:`\varepsilon`-uniform ranker, so every item has positive propensity) and
  :math:`\pi_0(k \mid u, i) \propto \exp(-\lambda (k-1)\, g(u, i))`, where
  :math:`g = \sigma(s_0(u,i) - \bar s_0(u))` pushes items the ranker likes to the top positions.
* **Traffic mix**: source users follow :math:`q(u) \propto \exp(\tau\, a_{\mathrm{seg}(u)})`
  (yesterday's segment mix); target users are uniform, :math:`p(u) = 1/U`.
* **Target distribution**: ``"uniform"`` exploration traffic, :math:`\pi_1(i, k \mid u) = 1/(I K)`,
  or ``"new_policy"``, a different softmax ranker with uniform positions.
* **Click model** with position bias: :math:`P(c = 1 \mid u, i, k) = \theta_k\, \rho(u, i)`,
  :math:`\theta_k = k^{-\eta}`, :math:`\rho(u, i) = \sigma(b_0 + x_u^\top v_i + b_i)`.

The exact importance weight of a source impression is

.. math:: w(u, i, k) = \frac{p(u)\,\pi_1(i, k \mid u)}{q(u)\,\pi_0(i, k \mid u)},

which has mean exactly 1 under the source distribution, and the exact target CTR is
:math:`\sum_u p(u) \sum_{i,k} \pi_1(i, k \mid u)\, \theta_k\, \rho(u, i)`.

The observable features identify ``(u, i, k)`` (user features are continuous and distinct; the
item id and position are logged), so :math:`p(x)/q(x) = w(u, i, k)` exactly.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from is_core._validation import FileFormat, Role, check_choice
from is_core.data.atomic import write_json_atomic, write_parquet_atomic

if TYPE_CHECKING:
    from is_core.simulate.bandit import SimulatedScenario, SimulatedWorld

ROLE_CODES = {"source": 1, "target": 2, "holdout": 3}

NUMERIC_FEATURES_TEMPLATE = ["position", "item_price", "item_popularity"]
CATEGORICAL_FEATURES = ["user_segment", "device", "item_id", "item_category"]
#: The target distribution of a click-log world (see the module docstring).
TargetPolicy = Literal["uniform", "new_policy"]


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class ClickScenario:
    """Parameters of a click-log world. See the module docstring for the maths.

    The defaults give a source CTR and a target CTR between 0.5 % and 5 % and a moderate shift
    (source CTR about 3.4 %, target CTR about 1.5 %, Kish ESS/n of the true weights about 0.47).
    """

    n_users: int = 2000
    n_items: int = 300
    n_positions: int = 10
    n_user_features: int = 4
    n_item_categories: int = 20
    n_segments: int = 6
    base_logit: float = -4.0
    position_bias: float = 0.8
    logging_strength: float = 0.3
    logging_exploration: float = 0.1
    position_concentration: float = 0.3
    traffic_shift: float = 0.5
    target: TargetPolicy = "uniform"
    new_policy_strength: float = 0.5
    seed: int = 0

    def build(self) -> ClickWorld:
        """Draw the world (users, items, policies) from ``seed``."""
        return ClickWorld(self)

    @property
    def numeric_features(self) -> list[str]:
        return [f"user_f{j}" for j in range(self.n_user_features)] + NUMERIC_FEATURES_TEMPLATE

    @property
    def categorical_features(self) -> list[str]:
        return list(CATEGORICAL_FEATURES)


@dataclass
class ClickWorld:
    """A drawn world: all the probabilities needed to sample and to compute exact truth."""

    scenario: ClickScenario
    user_x: np.ndarray = field(init=False)
    # probability tables, shapes (U,), (U, I), (U, I, K)
    p_user: np.ndarray = field(init=False)
    q_user: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        s = self.scenario
        rng = np.random.default_rng(np.random.SeedSequence([s.seed, 7919]))
        U, I, K, d = s.n_users, s.n_items, s.n_positions, s.n_user_features  # noqa: E741
        self.user_x = rng.normal(size=(U, d))
        self.user_segment = rng.integers(0, s.n_segments, size=U)
        self.user_device = rng.choice(3, size=U, p=[0.6, 0.3, 0.1])
        self.item_category = rng.integers(0, s.n_item_categories, size=I)
        centroids = rng.normal(scale=0.6, size=(s.n_item_categories, d))
        self.item_v = centroids[self.item_category] + rng.normal(scale=0.3, size=(I, d))
        self.item_b = rng.normal(scale=0.5, size=I)
        self.item_popularity = rng.normal(scale=0.5, size=I)
        self.item_price = np.round(np.exp(rng.normal(3.0, 0.8, size=I)), 2)
        segment_affinity = rng.normal(size=s.n_segments)
        new_policy_noise = rng.normal(scale=0.5, size=(U, I))

        affinity = self.user_x @ self.item_v.T + self.item_b  # (U, I)
        self.relevance = _sigmoid(s.base_logit + affinity)  # rho(u, i)
        self.examination = np.arange(1, K + 1, dtype=float) ** (-s.position_bias)  # theta_k

        # source: traffic mix and logging ranker
        q = np.exp(s.traffic_shift * segment_affinity[self.user_segment])
        self.q_user = q / q.sum()
        self.p_user = np.full(U, 1.0 / U)
        score0 = s.logging_strength * affinity + self.item_popularity
        self.pi0_item = (1 - s.logging_exploration) * _softmax(score0) + s.logging_exploration / I
        self.pi0_pos = self._position_policy(score0)

        # target: uniform exploration or a new ranker
        check_choice(s.target, TargetPolicy, parameter="target")
        if s.target == "uniform":
            self.pi1_item = np.full((U, I), 1.0 / I)
        else:
            score1 = s.new_policy_strength * affinity + new_policy_noise
            self.pi1_item = 0.8 * _softmax(score1) + 0.2 / I
        self.pi1_pos = np.full((U, I, K), 1.0 / K)

    def _position_policy(self, score: np.ndarray) -> np.ndarray:
        s = self.scenario
        g = _sigmoid(score - score.mean(axis=1, keepdims=True))  # (U, I)
        k = np.arange(s.n_positions, dtype=float)
        return _softmax(-s.position_concentration * g[:, :, None] * k[None, None, :], axis=2)

    # ------------------------------------------------------------------ exact truth
    def expected_ctr(self, role: Literal["source", "target"]) -> float:
        """Exact CTR under the source (logging) or the target distribution."""
        users, items, pos = self._tables(role)
        click_given_ui = (pos * self.examination[None, None, :]).sum(axis=2) * self.relevance
        return float(users @ (items * click_given_ui).sum(axis=1))

    def true_weight(self, u: np.ndarray, i: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Exact importance weight p(x)/q(x) of impressions (user u, item i, 0-based position k)."""
        num = self.p_user[u] * self.pi1_item[u, i] * self.pi1_pos[u, i, k]
        den = self.q_user[u] * self.pi0_item[u, i] * self.pi0_pos[u, i, k]
        return num / den

    def _tables(self, role: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        check_choice(role, Role, parameter="role")
        if role == "source":
            return self.q_user, self.pi0_item, self.pi0_pos
        return self.p_user, self.pi1_item, self.pi1_pos  # target and holdout

    # ------------------------------------------------------------------ sampling
    def sample(
        self, n: int, role: str, rng: np.random.Generator, day: dt.date | None = None
    ) -> pd.DataFrame:
        """Sample ``n`` impressions of ``role`` with clicks and the true weight columns.

        The returned frame carries ``clicked`` (for every role), ``logging_propensity``
        (:math:`\\pi_0(i, k \\mid u)`), ``true_weight`` and the hidden indices ``_user``,
        ``_item`` and ``_position0``; :func:`write_scenario` decides which columns each role's
        files get.
        """
        s = self.scenario
        users, items, pos = self._tables(role)
        u = rng.choice(s.n_users, size=n, p=users)
        i = _sample_rows(np.cumsum(items, axis=1), u, rng)
        k = _sample_rows(np.cumsum(pos[u, i], axis=1), np.arange(n), rng)
        p_click = self.examination[k] * self.relevance[u, i]
        clicked = (rng.random(n) < p_click).astype("int8")
        day = day or dt.date(2026, 1, 1)
        seconds = np.sort(rng.integers(0, 86_400, size=n))
        ts = pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s")
        frame = {
            "impression_id": (
                ROLE_CODES[role] * 10**13 + day.toordinal() * 10**7 + np.arange(n, dtype=np.int64)
            ),
            "ts": ts,
            **{f"user_f{j}": self.user_x[u, j] for j in range(s.n_user_features)},
            "position": (k + 1).astype("int64"),
            "item_price": self.item_price[i],
            "item_popularity": self.item_popularity[i],
            "user_segment": pd.array([f"seg_{x}" for x in self.user_segment[u]], dtype="str"),
            "device": pd.array(np.array(["mobile", "desktop", "tablet"])[self.user_device[u]],
                               dtype="str"),
            "item_id": pd.array([f"item_{x:05d}" for x in i], dtype="str"),
            "item_category": pd.array([f"cat_{x:02d}" for x in self.item_category[i]],
                                      dtype="str"),
            "clicked": clicked,
            "logging_propensity": self.pi0_item[u, i] * self.pi0_pos[u, i, k],
            "true_weight": self.true_weight(u, i, k),
            "_user": u,
            "_item": i,
            "_position0": k,
        }
        return pd.DataFrame(frame)


def _sample_rows(cdf: np.ndarray, row: np.ndarray, rng: np.random.Generator,
                 chunk: int = 50_000) -> np.ndarray:
    """Inverse-CDF sampling of one column index per entry of ``row`` from ``cdf[row]``."""
    out = np.empty(len(row), dtype=np.int64)
    last = cdf.shape[1] - 1
    for start in range(0, len(row), chunk):
        rows = row[start:start + chunk]
        r = rng.random(len(rows)) * cdf[rows, -1]
        out[start:start + chunk] = np.minimum((cdf[rows] < r[:, None]).sum(axis=1), last)
    return out


@dataclass(frozen=True)
class ScenarioFiles:
    """Where :func:`write_scenario` put things."""

    root: Path
    days: list[dt.date]
    truth_path: Path


def write_scenario(
    root: str | Path,
    scenario: SimulatedScenario,
    end_date: dt.date,
    n_days: int = 7,
    rows_per_day: dict[str, int] | None = None,
    file_format: FileFormat = "parquet",
) -> ScenarioFiles:
    """Write the input contract for ``n_days`` days ending at ``end_date`` under ``root``.

    Layout (hive partitions)::

        root/source/dt=YYYY-MM-DD/part-0.parquet    labeled logs, with logging_propensity
        root/target/dt=YYYY-MM-DD/part-0.parquet    target sample, no labels
        root/holdout/dt=YYYY-MM-DD/part-0.parquet   labeled target holdout
        root/truth/source_weights/dt=.../part-0.parquet  impression_id, true_weight
        root/truth/truth.json                       exact source and target CTR, parameters

    A day of more than :data:`ROWS_PER_FILE` rows of a role is written as several files
    (``part-00000.parquet``, ``part-00001.parquet``, ...), one drawn at a time
    (:func:`_day_files`); smaller days are one ``part-0`` file, as they always were.
    """
    root = Path(root)
    rows_per_day = rows_per_day or {"source": 20_000, "target": 5_000, "holdout": 5_000}
    world = scenario.build()
    days = [end_date - dt.timedelta(days=n_days - 1 - j) for j in range(n_days)]
    ext = "parquet" if file_format == "parquet" else "csv"
    hidden = ["true_weight", "_user", "_item", "_position0"]
    for day in days:
        for role, n in rows_per_day.items():
            for name, frame in _day_files(world, scenario.seed, role, day, n):
                part = f"dt={day.isoformat()}"
                if role == "source":
                    write_parquet_atomic(
                        frame[["impression_id", "true_weight"]],
                        root / "truth" / "source_weights" / part / f"{name}.parquet",
                    )
                drop = hidden + (["logging_propensity"] if role != "source" else [])
                drop += ["clicked"] if role == "target" else []
                out = frame.drop(columns=drop)
                del frame
                path = root / role / part / f"{name}.{ext}"
                if file_format == "parquet":
                    write_parquet_atomic(out, path)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    out.to_csv(path, index=False)
    truth: dict[str, Any] = {
        "scenario": asdict(scenario),
        "exact_source_ctr": world.expected_ctr("source"),
        "exact_target_ctr": world.expected_ctr("target"),
        "days": [d.isoformat() for d in days],
        "rows_per_day": rows_per_day,
        "numeric_features": scenario.numeric_features,
        "categorical_features": scenario.categorical_features,
    }
    truth_path = root / "truth" / "truth.json"
    write_json_atomic(truth, truth_path)
    return ScenarioFiles(root=root, days=days, truth_path=truth_path)


#: A day of more rows than this is written as several files of at most this many rows each,
#: one drawn at a time, so a 20M-row day is generated within a few GiB.
ROWS_PER_FILE = 1_000_000
#: The first impression id of the days written in several files (their ids are
#: ``LARGE_DAY_IDS + role code * 10^15 + day ordinal * 10^9 + row``: unique up to 10^9 rows a
#: day, and disjoint from the ids of days of at most :data:`ROWS_PER_FILE` rows).
LARGE_DAY_IDS = 10**17


def _day_files(world: SimulatedWorld, seed: int, role: str, day: dt.date, n: int
               ) -> Iterator[tuple[str, pd.DataFrame]]:
    """One day's rows of ``role`` as (file name, frame) pairs, drawn file by file.

    A day of at most :data:`ROWS_PER_FILE` rows is one file ``part-0`` drawn from the seed
    sequence ``[seed, role code, day ordinal]``; a larger day is files ``part-00000``,
    ``part-00001``, ... of at most :data:`ROWS_PER_FILE` rows each, file j drawn from
    ``[seed, role code, day ordinal, j]`` (so no more than one file's rows are in memory).
    """
    code = ROLE_CODES[role]
    if n <= ROWS_PER_FILE:
        seq = np.random.SeedSequence([seed, code, day.toordinal()])
        yield "part-0", world.sample(n, role, np.random.default_rng(seq), day=day)
        return
    first = LARGE_DAY_IDS + code * 10**15 + day.toordinal() * 10**9
    for j, start in enumerate(range(0, n, ROWS_PER_FILE)):
        rows = min(ROWS_PER_FILE, n - start)
        seq = np.random.SeedSequence([seed, code, day.toordinal(), j])
        frame = world.sample(rows, role, np.random.default_rng(seq), day=day)
        frame["impression_id"] = first + start + np.arange(rows, dtype=np.int64)
        yield f"part-{j:05d}", frame


def load_truth(root: str | Path) -> dict[str, Any]:
    """Read ``truth/truth.json`` written by :func:`write_scenario`."""
    return json.loads((Path(root) / "truth" / "truth.json").read_text())
