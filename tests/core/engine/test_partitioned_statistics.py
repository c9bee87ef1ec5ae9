"""The partition-level statistics of the Dask engine against the single-array functions they
mirror: merged over partitions, each gives the local engine's number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from is_core.ctr import partitioned as cp
from is_core.ctr.metrics import ctr_metrics
from is_core.weights.clipping import _jackknife_snis, _jackknife_variance, auto_clip
from is_core.weights.domain import _is_constant, constant_summary, merge_constant
from is_core.weights.estimators import snis_estimate
from is_core.weights.partitioned import (
    balancing_choice,
    cap_sums,
    histogram_auc,
    jackknife_sums,
    merge_jackknife,
    pair_jackknife_variance,
    score_histogram,
    snis_from_sums,
    snis_sums,
)
from is_core.weights.psis import psis_log_weights, smooth_tail

SPLITS = [0, 700, 701, 2500, 4000]


def _parts(x: np.ndarray) -> list[np.ndarray]:
    return [x[a:b] for a, b in zip(SPLITS[:-1], SPLITS[1:], strict=True)]


@pytest.fixture
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    log_w = rng.normal(scale=1.3, size=4000)
    y = (rng.random(4000) < 0.05 * np.exp(0.3 * log_w)).astype(float)
    return log_w, y


class TestSnisFromSums:
    def test_equals_snis_estimate_with_and_without_the_guard(self, sample):
        log_w, y = sample
        w, unclipped = np.exp(np.minimum(log_w, 1.0)), np.exp(log_w)
        parts = sum(snis_sums(a, b) for a, b in zip(_parts(y), _parts(w), strict=True))
        whole = sum(snis_sums(a, b) for a, b in zip(_parts(y), _parts(unclipped), strict=True))
        for guard, local_guard in ((None, None), (whole, unclipped)):
            got = snis_from_sums(parts, unclipped=guard).to_dict()
            want = snis_estimate(y, w, w_unclipped=local_guard).to_dict()
            assert got.keys() == want.keys()
            for key, value in want.items():
                assert got[key] == pytest.approx(value, rel=1e-10) if isinstance(value, float) \
                    else got[key] == value


class TestAutoClipFromSums:
    def test_pair_variances_equal_the_jackknife_of_the_differences(self, sample):
        log_w, y = sample
        caps = np.r_[np.inf, np.sort(log_w)[::-1][[1, 5, 40]]]
        shift = log_w.max()
        sums = sum(cap_sums(a, b, caps, shift) for a, b in zip(_parts(log_w), _parts(y),
                                                               strict=True))
        stats = merge_jackknife([jackknife_sums(a, b, caps, shift, sums)
                                 for a, b in zip(_parts(log_w), _parts(y), strict=True)])
        loo = [_jackknife_snis(np.exp(np.minimum(log_w, c) - shift), y) for c in caps]
        for i in range(len(caps)):
            for j in range(i + 1, len(caps)):
                assert pair_jackknife_variance(stats, i, j, y.size) == pytest.approx(
                    _jackknife_variance(loo[j] - loo[i]), rel=1e-7)

    @pytest.mark.parametrize("seed", [0, 1, 2, 3])
    def test_the_balancing_rule_chooses_auto_clips_cap(self, seed):
        rng = np.random.default_rng(seed)
        log_w = rng.standard_t(3, size=4000)
        y = (rng.random(4000) < 0.1).astype(float)
        local = auto_clip(log_w, y)
        n, shift = y.size, log_w.max()
        top = max(int(np.floor(0.1 * n)), 1)
        grid = np.unique(np.round(np.geomspace(1, top, 40)).astype(int))
        caps = np.r_[np.inf, np.sort(log_w)[::-1][grid[grid < n]]]
        sums = sum(cap_sums(a, b, caps, shift) for a, b in zip(_parts(log_w), _parts(y),
                                                               strict=True))
        stats = merge_jackknife([jackknife_sums(a, b, caps, shift, sums)
                                 for a, b in zip(_parts(log_w), _parts(y), strict=True)])
        chosen = balancing_choice(sums[:, 1] / sums[:, 0], stats, n, np.sqrt(2.0))
        assert caps[chosen] == local.log_cap


class TestTailsAndAuc:
    def test_smooth_tail_of_the_top_is_psis(self, sample):
        log_w, _ = sample
        smoothed, k = psis_log_weights(log_w)
        m = int(np.floor(3 * np.sqrt(log_w.size)))
        order = np.argsort(log_w, kind="stable")
        tail, cutoff = log_w[order[-m:]] - log_w.max(), log_w[order[-m - 1]] - log_w.max()
        values, k_tail = smooth_tail(tail, cutoff)
        assert k_tail == k
        np.testing.assert_array_equal(values + log_w.max(), smoothed[order[-m:]])

    def test_histogram_auc_is_the_auc_of_rounded_logits(self, sample):
        log_w, y = sample
        pos = sum(score_histogram(a[b == 1]) for a, b in zip(_parts(log_w), _parts(y),
                                                             strict=True))
        neg = sum(score_histogram(a[b == 0]) for a, b in zip(_parts(log_w), _parts(y),
                                                             strict=True))
        assert histogram_auc(pos, neg) == pytest.approx(roc_auc_score(y, log_w), abs=1e-4)


class TestBinnedCtrMetrics:
    def test_point_metrics_match_ctr_metrics(self, sample):
        log_w, y = sample
        p = 1 / (1 + np.exp(-(log_w - 3)))
        w = np.exp(0.2 * log_w)
        merged = cp.merge_sums([cp.binned_sums(a, b, c) for a, b, c in
                                zip(_parts(y), _parts(p), _parts(w), strict=True)])
        got, want = cp.point_metrics(merged, 10), ctr_metrics(y, p, w, 10)
        for key in ("logloss", "ne", "calibration_ratio", "mean_prediction", "observed_ctr"):
            assert got[key] == pytest.approx(want[key], rel=1e-10), key
        assert got["auc"] == pytest.approx(want["auc"], abs=1e-3)
        assert got["ece"] == pytest.approx(want["ece"], abs=2e-3)


class TestConstantFeatures:
    @pytest.mark.parametrize("values", [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 2.0, 1.0],
                                        [np.nan] * 4, [np.nan, np.nan, 1.0, 1.0],
                                        ["a", "a", "a", "a"], ["a", "a", "a", "b"]])
    def test_merged_partitions_agree_with_the_whole_column(self, values):
        column = pd.Series(values)
        parts = [constant_summary(column.iloc[a:b]) for a, b in ((0, 2), (2, 2), (2, 4))]
        assert merge_constant(parts) == _is_constant(column)
