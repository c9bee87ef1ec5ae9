"""Why the click-log weight NMSE stays near 0.5-0.6: what the features could represent, measured.

    .venv/bin/python benchmarks/proposal_ceiling.py            # ~3 min, 100k + 100k rows

On the ``pipeline_overhead`` / ``proposal_sample`` click-log world (33 continuous user features,
300 items, 10 positions; exact weights known) this prints

1. the variance of the exact log weight split into its three factors: the traffic mix
   :math:`\\log p(u)/q(u)`, the item choice :math:`\\log \\pi_1(i \\mid u)/\\pi_0(i \\mid u)` and
   the position :math:`\\log \\pi_1(k \\mid u, i)/\\pi_0(k \\mid u, i)`;
2. for four nested designs of the logged features (additive; + squares; + user feature ×
   item category; + user feature × item id), the share of the exact log weight's variance the
   design can represent at all (R² of a ridge projection of the exact log weight, fitted on half
   the source rows and scored on the other half) and the weight NMSE of that projection;
3. the weight NMSE of an L2 logistic domain classifier on each design (C = 0.1 and 1, fitted on
   half of 100k + 100k rows, scored on held-out source rows).

The features identify (user, item, position), so the exact ratio is a function of them; the
question is which function class a domain classifier can fit from a day's rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402

from is_core.simulate.clicklog import ClickScenario  # noqa: E402
from is_core.weights.diagnostics import weight_nmse  # noqa: E402

DESIGNS = ("additive", "+ squares", "+ user feature x item category",
           "+ user feature x item id")
RESULTS = Path(__file__).resolve().parent / "results"


def _onehot(column: pd.Series, levels: list[str]) -> sp.csr_matrix:
    codes = pd.Categorical(column, categories=levels).codes
    return sp.csr_matrix((np.ones(len(column)), (np.arange(len(column)), codes)),
                         shape=(len(column), len(levels)))


class Designs:
    """The nested designs, standardized with the pooled sample's moments."""

    def __init__(self, scenario: ClickScenario, pooled: pd.DataFrame) -> None:
        self.numeric, self.categorical = scenario.numeric_features, scenario.categorical_features
        self.mean, self.sd = pooled[self.numeric].mean(), pooled[self.numeric].std()
        self.levels = {c: sorted(pooled[c].unique()) for c in self.categorical}
        self.user = [j for j, c in enumerate(self.numeric) if c.startswith("user_f")]

    def matrix(self, frame: pd.DataFrame, level: int) -> sp.csr_matrix:
        z = ((frame[self.numeric] - self.mean) / self.sd).to_numpy()
        blocks = [sp.csr_matrix(z)] + [_onehot(frame[c], self.levels[c])
                                       for c in self.categorical]
        if level >= 1:
            blocks.append(sp.csr_matrix(z ** 2))
        for depth, column in ((2, "item_category"), (3, "item_id")):
            if level >= depth:
                onehot = _onehot(frame[column], self.levels[column])
                blocks += [onehot.multiply(z[:, [j]]).tocsr() for j in self.user]
        return sp.hstack(blocks).tocsr()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="per domain")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    scenario = ClickScenario(n_user_features=33, seed=0)
    world = scenario.build()
    rng = np.random.default_rng(1)
    source = world.sample(args.rows, "source", rng)
    target = world.sample(args.rows, "target", rng)
    designs = Designs(scenario, pd.concat([source, target], ignore_index=True))
    w_true = source["true_weight"].to_numpy()
    log_w = np.log(w_true)
    u, i, k = (source[c].to_numpy() for c in ("_user", "_item", "_position0"))
    factors = {
        "traffic mix log p(u)/q(u)": np.log(world.p_user[u] / world.q_user[u]),
        "item log pi1/pi0(i|u)": np.log(world.pi1_item[u, i] / world.pi0_item[u, i]),
        "position log pi1/pi0(k|u,i)": np.log(world.pi1_pos[u, i, k] / world.pi0_pos[u, i, k]),
    }
    lines = [f"# .venv/bin/python benchmarks/proposal_ceiling.py --rows {args.rows}",
             f"{args.rows} source + {args.rows} target rows; exact log weight variance "
             f"{log_w.var():.3f}; exact weights' Kish ESS/n "
             f"{w_true.mean() ** 2 / np.mean(w_true ** 2):.3f}", ""]
    lines += [f"variance of {name}: {v.var():.3f}" for name, v in factors.items()]
    lines += ["", f"{'design':34s} {'columns':>7s} {'proj R2':>8s} {'proj NMSE':>9s} "
              f"{'logit C=0.1':>11s} {'logit C=1':>9s}"]
    pooled = pd.concat([source, target], ignore_index=True)
    domain = np.r_[np.zeros(len(source)), np.ones(len(target))]
    held = source.iloc[1::2]
    for level, name in enumerate(DESIGNS):
        X_source = designs.matrix(source, level)
        projection = Ridge(alpha=1.0).fit(X_source[::2], log_w[::2]).predict(X_source[1::2])
        resid = log_w[1::2] - projection
        X = designs.matrix(pooled, level)
        nmse = []
        for C in (0.1, 1.0):
            fit = LogisticRegression(C=C, max_iter=2000).fit(X[::2], domain[::2])
            nmse.append(weight_nmse(np.exp(fit.decision_function(designs.matrix(held, level))),
                                    w_true[1::2]))
        lines.append(f"{name:34s} {X.shape[1]:7d} {1 - resid.var() / log_w[1::2].var():8.3f} "
                     f"{weight_nmse(np.exp(projection), w_true[1::2]):9.3f} {nmse[0]:11.3f} "
                     f"{nmse[1]:9.3f}")
        print(lines[-1], flush=True)
    lines.append(f"# {time.perf_counter() - started:.0f} s")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proposal_ceiling.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
