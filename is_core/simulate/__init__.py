"""Worlds with known truth: the click-log simulator behind the demo and closed-form Gaussian
scenarios.

``clicklog`` simulates users × items × positions with a logging ranker of known propensities, so
the exact importance weight of every source row and the exact target CTR are known; ``bandit``
does the same for a Thompson-sampling-like logger over few items and positions with sparse
affinity features and logging propensities spanning four orders of magnitude; ``gaussian``
draws covariate shifts whose density ratio is available in closed form.
"""

from is_core.simulate.bandit import BanditScenario, BanditWorld
from is_core.simulate.clicklog import ClickScenario, ClickWorld, load_truth, write_scenario
from is_core.simulate.gaussian import GaussianShift, gaussian_scenarios

__all__ = [
    "BanditScenario",
    "BanditWorld",
    "ClickScenario",
    "ClickWorld",
    "GaussianShift",
    "gaussian_scenarios",
    "load_truth",
    "write_scenario",
]
