"""Exact order statistics of a vector held in pieces on the workers.

A quantile cap, the automatic clip's candidate caps and the diagnostics' quantiles are order
statistics of the window's weights. Each partition keeps its piece sorted in worker memory;
:func:`order_statistics` brackets every wanted rank between pivot values drawn from the pieces
(each round a partition sends :data:`PIVOTS` values of its part of the bracket and then its
counts at every pivot), so the bracket shrinks by about that factor a round; once at most
:data:`FINAL_ROWS` values remain inside, they are collected and the rank is read off. A few
round trips, and no partition sends more than the pivots and the final bracket's values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from is_core.engine.partitions import safe_map

PIVOTS = 256
FINAL_ROWS = 20_000
MAX_ROUNDS = 12


def _pivots(sorted_piece: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    """Per bracket (lo, hi], up to :data:`PIVOTS` evenly spaced values of the piece inside."""
    out = []
    for a, b in zip(
        np.searchsorted(sorted_piece, lo, "right"),
        np.searchsorted(sorted_piece, hi, "right"),
        strict=True,
    ):
        inside = sorted_piece[a:b]
        take = np.unique(np.linspace(0, len(inside) - 1, min(PIVOTS, len(inside))).astype(int))
        out.append(inside[take] if len(inside) else inside)
    return out


def _counts(sorted_piece: np.ndarray, pivots: list[np.ndarray]) -> list[np.ndarray]:
    """Per bracket, the piece's count of values < and <= each pivot."""
    return [
        np.stack(
            [np.searchsorted(sorted_piece, p, "left"), np.searchsorted(sorted_piece, p, "right")]
        )
        for p in pivots
    ]


def _inside(sorted_piece: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
    return [
        sorted_piece[
            np.searchsorted(sorted_piece, a, "right") : np.searchsorted(sorted_piece, b, "right")
        ]
        for a, b in zip(lo, hi, strict=True)
    ]


def sorted_pieces(client: Any, pieces: list[Any]) -> list[Any]:
    """Futures of the sorted pieces (sort once, select many times)."""
    return safe_map(client, np.sort, pieces)


def order_statistics(client: Any, pieces: list[Any], ranks: np.ndarray, n: int) -> np.ndarray:
    """The values of ascending (0-based) ``ranks`` of the concatenation of ``pieces``
    (futures of sorted 1-d arrays of ``n`` values in all): exactly ``np.sort(x)[ranks]``."""
    ranks = np.asarray(ranks, dtype=np.int64)
    lo = np.full(len(ranks), -np.inf)
    hi = np.full(len(ranks), np.inf)
    below = np.zeros(len(ranks), dtype=np.int64)  # values <= lo
    upto = np.full(len(ranks), n, dtype=np.int64)  # values <= hi
    found = np.full(len(ranks), np.nan)
    for _ in range(MAX_ROUNDS):
        open_ = np.isnan(found) & (upto - below > FINAL_ROWS)
        if not open_.any():
            break
        pivots = [
            np.unique(np.concatenate(p))
            for p in zip(
                *client.gather(safe_map(client, _pivots, pieces, lo=lo[open_], hi=hi[open_])),
                strict=True,
            )
        ]
        counts = [
            sum(c)
            for c in zip(
                *client.gather(safe_map(client, _counts, pieces, pivots=pivots)), strict=True
            )
        ]
        for j, p, (less, leq) in zip(np.flatnonzero(open_), pivots, counts, strict=True):
            r = ranks[j]
            exact = (less <= r) & (r < leq)
            if exact.any():
                found[j] = p[np.argmax(exact)]
                continue
            left = leq <= r  # pivots at or below the rank's value
            if left.any():
                k = np.flatnonzero(left)[-1]
                lo[j], below[j] = p[k], leq[k]
            if (~left).any():
                k = np.flatnonzero(~left)[0]
                hi[j], upto[j] = p[k], leq[k]
    rest = np.flatnonzero(np.isnan(found))
    if len(rest):
        values = [
            np.sort(np.concatenate(v))
            for v in zip(
                *client.gather(safe_map(client, _inside, pieces, lo=lo[rest], hi=hi[rest])),
                strict=True,
            )
        ]
        for j, v in zip(rest, values, strict=True):
            found[j] = v[ranks[j] - below[j]]
    return found


def linear_quantiles(
    client: Any, pieces: list[Any], q: tuple[float, ...] | list[float], n: int
) -> np.ndarray:
    """``np.quantile(x, q)`` (linear interpolation, numpy's own rounding) from the order
    statistics at the floor and ceiling of each virtual index :math:`q (n - 1)`."""
    virtual = np.asarray(q, dtype=float) * (n - 1)
    low, high = np.floor(virtual).astype(np.int64), np.ceil(virtual).astype(np.int64)
    values = order_statistics(client, pieces, np.r_[low, high], n)
    a, b = values[: len(q)], values[len(q) :]
    return np.array(
        [np.quantile(np.array([x, y]), g) for x, y, g in zip(a, b, virtual - low, strict=True)]
    )
