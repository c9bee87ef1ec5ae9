"""The proposal-aware SNIS interval from partition sums (issue 13) against the local engine's.

The array-level test splits the local function's rows into partitions and merges their
:class:`SourceSums`; the cluster tests run the Dask proposal and weights stages on the demo
window split into several files per day (a LocalCluster of two worker processes) and compare
the report's ``snis`` with :func:`proposal_aware_snis_from_model` of the same fitted model,
the same weights and the same clipped flags; the flow test checks a Dask run's report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from is_core.data.stage import locate_inputs, read_role
from is_core.simulate.gaussian import gaussian_scenarios
from is_core.weights.domain import DomainClassifierRatio
from is_core.weights.intervals import (
    FittingSample,
    SourceSums,
    proposal_aware_from_sums,
    proposal_aware_snis_estimate,
    proposal_aware_snis_from_model,
    source_sums,
)
from is_core.weights.stage import PROPOSAL_AWARE_NOTE
from tests.conftest import RUN_DATE, small_config

MEAN_SHIFT = gaussian_scenarios(d=4)["mean_shift"]
KEYS = ("value", "std_error", "ci_low", "ci_high")


def _same(got: dict, want: dict, rel: float = 1e-9) -> None:
    assert got["estimator"] == want["estimator"] == "snis_proposal_aware"
    for key in KEYS:
        assert got[key] == pytest.approx(want[key], rel=rel, abs=0), key


class TestSumsOverPartitions:
    """Cheap: the local function's own arrays, split at uneven row boundaries."""

    @pytest.mark.parametrize("n_folds", [None, 3])
    @pytest.mark.parametrize("labels", ["clicks", "continuous"])
    def test_merged_partitions_give_the_local_interval(self, n_folds, labels):
        rng = np.random.default_rng(11)
        sample = MEAN_SHIFT.sample(1200, 400, rng)
        x = np.vstack([sample.source[sample.features].to_numpy(),
                       sample.target[sample.features].to_numpy()])
        domain = np.r_[np.zeros(1200, dtype=int), np.ones(400, dtype=int)]
        prob = 1 / (1 + np.exp(-(x @ np.array([0.3, -0.2, 0.1, 0.2]) - 1.0)))
        w = np.exp(x[:1200] @ np.array([0.3, -0.2, 0.1, 0.2]))
        y = sample.source["clicked"].to_numpy(dtype=float)
        if labels == "continuous":  # not 0/1: symmetric bounds, the w^2 y^2 terms matter
            y = 5.0 + y + x[:1200, 0]
        # a fitting sample of 700 source and 300 target rows (the rest: fold -1)
        fold = np.full(1600, -1)
        fit = np.r_[np.sort(rng.choice(1200, 700, replace=False)),
                    1200 + np.sort(rng.choice(400, 300, replace=False))]
        fold[fit] = 0 if n_folds is None else rng.integers(0, n_folds, fit.size)
        clipped = w > np.quantile(w, 0.95)
        total, mu = w.sum(), float(w @ y / w.sum())
        bounds = [0, 1, 350, 351, 900, 1200]  # one empty partition, one of a single row
        parts = [source_sums(x[a:b], y[a:b], w[a:b], fold[a:b], mu, total,
                             int(fold.max()) + 1, clipped[a:b])
                 for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        got = proposal_aware_from_sums(
            SourceSums.merge(parts), FittingSample(x[fit], domain[fit], prob[fit], fold[fit]),
            n_source=1200, n_target=400, mu=mu, n_effective=float(total**2 / (w @ w)),
            binary=labels == "clicks")
        want = proposal_aware_snis_estimate(y, w, x, domain, prob, fold=fold, clipped=clipped)
        assert got.ci_low < got.value < got.ci_high
        for key in KEYS:
            assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-12), key

    def test_sums_missing_a_partition_are_refused(self):
        x = np.random.default_rng(0).normal(size=(30, 2))
        fold, y, w = np.r_[np.zeros(20, dtype=int), -np.ones(10, dtype=int)], np.ones(30), \
            np.ones(30)
        half = source_sums(x[:25], y[:25], w[:25], fold[:25], 1.0, 30.0, 1)
        sample = FittingSample(x[:20], np.zeros(20, dtype=int), np.full(20, 0.5),
                               np.zeros(20, dtype=int))
        with pytest.raises(ValueError, match="merge the SourceSums of every source partition"):
            proposal_aware_from_sums(half, sample, n_source=30, n_target=0, mu=1.0,
                                     n_effective=30.0, binary=True)


# ------------------------------------------------------------------------------ on a cluster
@pytest.fixture(scope="module")
def split_root(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo window with each day's source and target file split in two (uneven) files:
    6 source and 6 target partitions."""
    root = tmp_path_factory.mktemp("split") / "data"
    shutil.copytree(small_data_root, root)
    for role in ("source", "target"):
        for path in sorted((root / role).glob("dt=*/part-0.parquet")):
            frame = pd.read_parquet(path)
            cut = len(frame) // 3
            frame.iloc[:cut].to_parquet(path, index=False)
            frame.iloc[cut:].to_parquet(path.with_name("part-1.parquet"), index=False)
    return root


def _dask_weights(root: Path, out: Path, cluster, proposal: dict, weights: dict):
    """The Dask engine's proposal and weights stages on ``root``; the config, the inputs and
    the weights stage's summary."""
    from is_core.engine import stage

    config = small_config(root, out, proposal={"learner": "logistic", **proposal},
                          weights={"doubly_robust": False, **weights})
    inputs = locate_inputs(config.data, config.columns, RUN_DATE)
    common = {"random_state": config.random_state, "n_jobs": 1,
              "cluster": cluster.scheduler_address}
    (out / "proposal").mkdir(parents=True)
    (out / "weights").mkdir()
    fitted = stage.fit_proposal(config.proposal, config.columns, inputs, out / "proposal",
                                **common)
    result = stage.compute_weights(config.weights, config.columns, inputs, fitted,
                                   out / "weights", **common)
    return config, inputs, fitted, result


@pytest.mark.slow
class TestOnTheCluster:
    @pytest.mark.parametrize(("proposal", "weights"), [
        ({}, {"clip": "none"}),                                # the whole window is fitted
        ({"max_fit_rows": 6000}, {"clip": "quantile", "clip_quantile": 0.98}),  # + the guard
    ], ids=["whole-window-unclipped", "fitting-sample-clipped"])
    def test_the_report_carries_the_local_interval(self, split_root, tmp_path, cluster,
                                                   proposal, weights):
        config, inputs, fitted, result = _dask_weights(split_root, tmp_path, cluster, proposal,
                                                       weights)
        assert len(inputs["roles"]["source"]["files"]) == 6
        assert result["diagnostics"]["snis_interval"] == PROPOSAL_AWARE_NOTE
        source = read_role(inputs, "source", config.columns.features)
        target = read_role(inputs, "target", config.columns.features)
        y = read_role(inputs, "source", [config.columns.label])[config.columns.label]
        stored = json.loads(Path(fitted["model_path"]).read_text())
        model = DomainClassifierRatio.from_linear_state(stored["linear_state"], source, target)
        if "max_fit_rows" in proposal:  # rows outside the fitting sample on both sides
            fit_source, fit_target = model._fit_rows(len(source), len(target))
            assert len(fit_source) < len(source) and len(fit_target) < len(target)
        frame = pd.read_parquet(tmp_path / "weights" / "weights.parquet")
        raw, clipped = frame["raw_weight"].to_numpy(), frame["clipped_weight"].to_numpy()
        flags = clipped < raw
        assert flags.any() == (weights["clip"] != "none")
        want = proposal_aware_snis_from_model(
            model, source, target, y.to_numpy(dtype=float), clipped,
            clipped=flags if flags.any() else None,
            w_unclipped=raw if flags.any() else None)
        estimates = result["target_ctr"]
        _same(estimates["snis"], want.to_dict())
        assert estimates["snis_known_weights"]["estimator"] == "snis"
        assert estimates["snis_known_weights"]["value"] == pytest.approx(want.value, rel=1e-12)
