"""The weighting benchmark: scenarios × seeds × weighting strategies, and its leaderboard.

``scenarios`` draws each cell's data with its exact weights; ``grid`` runs a cell and ranks the
strategies; ``outputs`` writes the CSV, Markdown, JSON and offline HTML.
"""

from is_core.benchmark.grid import BenchmarkConfig, leaderboard, run_cell, scenario_verdicts
from is_core.benchmark.outputs import write_outputs
from is_core.benchmark.scenarios import SCENARIOS, BenchmarkScenario, CellData, draw_cell

__all__ = [
    "BenchmarkConfig",
    "BenchmarkScenario",
    "CellData",
    "SCENARIOS",
    "draw_cell",
    "leaderboard",
    "run_cell",
    "scenario_verdicts",
    "write_outputs",
]
