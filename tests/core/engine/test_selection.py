"""Exact order statistics over pieces held by Dask workers (:mod:`is_core.engine.selection`),
against ``np.sort`` and ``np.quantile`` of the concatenation, with ties and several pivot
rounds (the final bracket shrunk to a few values)."""

from __future__ import annotations

import numpy as np
import pytest

from is_core.engine import selection


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=None) as c:
        yield c


@pytest.fixture(params=["continuous", "ties"])
def pieces(request, client):
    rng = np.random.default_rng(11)
    x = rng.standard_t(2, size=30_000)
    if request.param == "ties":
        x = np.round(x, 1)  # many equal values
    parts = np.split(x, [5_000, 5_001, 17_000, 29_000])
    return x, selection.sorted_pieces(client, client.scatter(parts))


@pytest.mark.parametrize("final_rows", [20_000, 50, 1])
def test_order_statistics_are_those_of_the_sorted_concatenation(client, pieces, final_rows,
                                                                monkeypatch):
    monkeypatch.setattr(selection, "FINAL_ROWS", final_rows)
    x, futures = pieces
    ranks = np.r_[0, 1, 17, 4_999, 15_000, 29_998, 29_999, np.arange(100, 30_000, 997)]
    got = selection.order_statistics(client, futures, ranks, x.size)
    np.testing.assert_array_equal(got, np.sort(x)[ranks])


def test_linear_quantiles_are_numpys(client, pieces, monkeypatch):
    monkeypatch.setattr(selection, "FINAL_ROWS", 10)
    x, futures = pieces
    q = (0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0)
    np.testing.assert_allclose(selection.linear_quantiles(client, futures, q, x.size),
                               np.quantile(x, q), rtol=1e-14, atol=0)
