"""``train.sampling`` on the Dask engine: the workers draw the local engine's importance subsample.

The small scenario's source window is three files (three partitions) on a LocalCluster of two
worker processes. The Dask engine must keep exactly the local engine's rows (the same source
row ids) with the same sampling weights, hold out the same correction slice and solve the same
rate, for ``negative`` and for ``loss`` with a champion model file; its summary must report
the local sample, and its corrected boosters (other trees: the early-stopping split is a
Bernoulli draw there) must load without Dask and carry corrections that agree with the local
engine's within their standard errors. The partition-sum solver of ``loss``'s rate is checked
against the closed form on its own.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.sampling import ScoreSums, combined_weights, loss_rate, loss_rate_from_sums
from is_core.ctr.stage import _draw_sample, _training_rows, train_models
from is_core.data.features import category_levels
from is_core.data.stage import input_files, locate_inputs
from is_core.engine import training as dask_training
from is_core.engine.partitions import role_partitions
from is_core.engine.sampling import ROW, SAMPLING, draw_sample
from is_core.engine.training import BASELINE, WEIGHT
from tests.conftest import RUN_DATE, small_config

TRAIN = {"n_estimators": 15, "early_stopping_rounds": 3, "n_jobs": 1,
         "sampling": "negative", "keep_fraction": 0.3, "recalibration_folds": 2}


class TestLossRateFromSums:
    @pytest.mark.parametrize("target", [1.5, 40.0, 500.0, 1999.0, 2000.0])
    def test_the_partition_sums_solve_the_closed_forms_rate(self, target):
        """Heavy-tailed scores in four partitions: the fixed point caps the same rows as the
        closed form, so the two rates agree to rounding."""
        s = np.random.default_rng(1).pareto(1.2, 2000) + 1e-3
        parts = np.array_split(s, 4)
        calls = []

        def sums(c: float) -> ScoreSums:
            calls.append(c)
            out = [ScoreSums.of(p, c) for p in parts]
            return sum(out[1:], out[0])

        c = loss_rate_from_sums(sums, target, s.size)
        assert c == pytest.approx(loss_rate(s, target), rel=1e-12)
        assert np.minimum(1, c * s).sum() == pytest.approx(min(target, s.size), rel=1e-9)
        assert len(calls) < 30


# ---------------------------------------------------------------------------- on the cluster
@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as local, \
            Client(local) as client:
        yield local, client


@pytest.fixture(scope="module")
def setup(small_data_root, tmp_path_factory):
    """Inputs of the small scenario and mildly varying final weights of mean 1, written as
    the Dask engine writes them (one file per source partition; read whole by the local one)."""
    root = tmp_path_factory.mktemp("dask-sampling")
    config = small_config(small_data_root, root / "runs", train=TRAIN)
    inputs = locate_inputs(config.data, config.columns, RUN_DATE)
    sizes = [len(pd.read_parquet(f.path)) for f in input_files(inputs, "source")]
    final = np.exp(np.random.default_rng(0).normal(scale=0.4, size=sum(sizes)))
    final /= final.mean()
    folder = root / "weights.parquet"
    folder.mkdir()
    for k, part in enumerate(np.split(final, np.cumsum(sizes)[:-1])):
        pd.DataFrame({"final_weight": part}).to_parquet(folder / f"part-{k:05d}.parquet")
    assert len(sizes) >= 3
    return config, inputs, {"path": str(folder), "diagnostics": {}, "target_ctr": {}}, root, final


def _without_holdout(inputs):
    return {**inputs, "roles": {r: v for r, v in inputs["roles"].items() if r != "holdout"}}


def _both_draws(setup, cluster, out: Path, inputs=None, champion=None, **train):
    """The local engine's sample and the Dask engine's (collected for the comparison)."""
    config, default_inputs, weights, _, final = setup
    inputs = inputs or default_inputs
    train_config = config.train.model_copy(update=train)
    out.mkdir()
    rows = _training_rows(inputs, len(final), out, 0)
    local = _draw_sample(train_config, config.columns, inputs, rows, final, 0, champion)
    client = cluster[1]
    source = role_partitions(client, inputs, "source")
    dask = draw_sample(client, source, train_config, config.columns, weights["path"], 0,
                       "holdout" in inputs["roles"], champion)
    return local, dask, dask.frame.compute()


def _assert_same_sample(local, dask, kept, final):
    np.testing.assert_array_equal(kept[ROW].to_numpy(), local.rows)
    np.testing.assert_allclose(kept[SAMPLING], local.weight, rtol=1e-12, atol=0)
    np.testing.assert_allclose(kept[WEIGHT], combined_weights(final[local.rows], local.weight),
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(kept[BASELINE], combined_weights(None, local.weight),
                               rtol=1e-12, atol=0)
    ld, dd = local.drawn, dask.drawn
    np.testing.assert_array_equal(dd.held_out_rows, ld.held_out_rows)
    np.testing.assert_array_equal(dd.held_out_weight, ld.held_out_weight)
    pd.testing.assert_frame_equal(dd.held_out, ld.held_out)
    assert dd.sampler.strategy_ == ld.sampler.strategy_
    assert dd.sampler.n_rows_ == ld.sampler.n_rows_ and dd.sampler.n_clicks_ == \
        ld.sampler.n_clicks_
    assert dd.sampler.rate_ == pytest.approx(ld.sampler.rate_, rel=1e-12)
    assert dd.sums.ess == pytest.approx(ld.sums.ess, rel=1e-12)
    # the encoding is the local engine's: the categories of the kept rows
    assert dask.spec.categories == {c: category_levels(local.frame[c])
                                    for c in dask.spec.categorical}


@pytest.fixture(scope="module")
def runs(setup, cluster):
    """Both engines' train stage on ``negative`` (with the recalibrated candidate)."""
    config, inputs, weights, root, _ = setup
    out = {}
    for engine in ("local", "dask"):
        folder = root / f"train-{engine}"
        folder.mkdir()
        kwargs = {"champion": None}
        run = (train_models if engine == "local" else dask_training.train_models)
        if engine == "dask":
            kwargs["cluster"] = cluster[0].scheduler_address
        out[engine] = run(config.train, config.columns, inputs, weights, folder,
                          random_state=0, metadata={}, **kwargs)
    return out


@pytest.mark.slow
class TestSameSample:
    def test_negative_keeps_the_local_rows_weights_slice_and_rate(self, setup, cluster):
        local, dask, kept = _both_draws(setup, cluster, setup[3] / "draw-negative")
        assert local.drawn.sampler.rate_name_ == "r"
        _assert_same_sample(local, dask, kept, setup[4])

    def test_without_a_holdout_the_evaluation_rows_stay_out_of_both(self, setup, cluster):
        inputs = _without_holdout(setup[1])
        local, dask, kept = _both_draws(setup, cluster, setup[3] / "draw-no-holdout", inputs,
                                        max_rows=1500, keep_fraction=None)
        _assert_same_sample(local, dask, kept, setup[4])
        evaluation = pd.read_parquet(setup[3] / "draw-no-holdout" / "evaluation_rows.parquet")
        assert not np.isin(kept[ROW], evaluation["row_id"]).any()
        assert not np.isin(dask.drawn.held_out_rows, evaluation["row_id"]).any()

    def test_loss_with_a_champion_file_keeps_the_local_rows(self, setup, cluster, runs):
        champion = runs["local"]["unweighted"]["path"]
        local, dask, kept = _both_draws(setup, cluster, setup[3] / "draw-loss",
                                        champion=champion, sampling="loss")
        assert dask.drawn.sampler.strategy_ == "loss" and dask.drawn.fallback is None
        _assert_same_sample(local, dask, kept, setup[4])
        assert dask.drawn.sampler.mean_gradient_ == pytest.approx(
            local.drawn.sampler.mean_gradient_, rel=1e-12)

    def test_loss_without_a_loadable_champion_falls_back_as_locally(self, setup, cluster):
        missing = str(setup[3] / "missing.ubj")
        local, dask, kept = _both_draws(setup, cluster, setup[3] / "draw-fallback",
                                        champion=missing, sampling="loss")
        assert dask.drawn.sampler.strategy_ == "negative"
        assert dask.drawn.fallback == local.drawn.fallback and "could not be loaded" in \
            dask.drawn.fallback
        _assert_same_sample(local, dask, kept, setup[4])


@pytest.mark.slow
class TestTrainStage:
    def test_the_summary_reports_the_local_sample(self, runs):
        local, dask = runs["local"]["sampling"], runs["dask"]["sampling"]
        assert local is not None and dask is not None
        for key in ("strategy", "applied", "fallback", "n_rows", "kept_rows", "rate_name",
                    "correction_rows", "correction"):
            assert dask[key] == local[key], key
        for key in ("rate", "target_rows", "ess", "ess_fraction", "sampling_ess_fraction",
                    "max_sampling_weight"):
            assert dask[key] == pytest.approx(local[key], rel=1e-12), key
        assert dask["min_child_weight"] == pytest.approx(local["min_child_weight"], rel=1e-12)
        for name in ("weighted", "unweighted"):
            trained = runs["dask"][name]
            assert trained["n_train"] + trained["n_valid"] == dask["kept_rows"]

    def test_the_models_load_without_dask_and_carry_their_correction(self, runs,
                                                                     small_data_root):
        holdout = pd.read_parquet(small_data_root / "holdout")
        s = runs["dask"]["sampling"]
        for name in ("weighted", "unweighted"):
            model = WeightedCTRModel.load(runs["dask"][name]["path"])
            assert model.calibrator_.method_ == "intercept"
            assert model.calibrator_.coef_.tolist() == s["correction_coef"][name]
            p = model.predict_proba(holdout)
            assert p.shape == (len(holdout),) and np.all((p > 0) & (p < 1))
        recalibrated = WeightedCTRModel.load(runs["dask"]["recalibrated"]["path"])
        assert recalibrated.calibrator_.method_ in ("platt", "isotonic")

    def test_the_corrections_agree_within_their_standard_errors(self, runs):
        local, dask = runs["local"]["sampling"], runs["dask"]["sampling"]
        for name in ("weighted", "unweighted"):
            a_local, a_dask = local["correction_coef"][name][0], dask["correction_coef"][name][0]
            se = max(local["correction_se"][name], dask["correction_se"][name])
            assert abs(a_dask - a_local) < 2 * se, (name, a_local, a_dask, se)
