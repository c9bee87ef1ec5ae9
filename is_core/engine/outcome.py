"""The doubly robust target-CTR estimate on Dask: the local engine's cross-fitted outcome model
and its targeted estimate, with every row scored on the workers.

:class:`~is_core.weights.outcome.CrossFittedOutcome` draws its folds from the source labels
(a stratified split of every row) and trains each fold booster on at most ``max_train_rows``
seeded rows of the other folds. Here the label column (one byte a row) is collected to draw the
same folds and the same training rows, those rows (at most 200,000 a fold) are collected and
the same boosters fitted on the client; each source row is then predicted on its worker by the
booster that left its fold out and each target row by the boosters' mean. The logit
fluctuation of :func:`~is_core.weights.estimators.dr_estimate` solves its score equation with
sums over the partitions (each evaluation of the score is one pass over the workers), so the
estimate and its interval are the local engine's up to the rounding of sums.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.model_selection import StratifiedKFold

from is_core.config import ColumnsConfig
from is_core.data.features import FeatureSpec
from is_core.data.io import InputFile
from is_core.engine.partitions import Partitions, gather_rows, read_partition, safe_map
from is_core.engine.training import feature_spec
from is_core.weights.estimators import Estimate, _guarded, _normal_interval, rate_interval
from is_core.weights.outcome import CrossFittedOutcome


def _labels(file: InputFile, label: str) -> np.ndarray:
    return read_partition(file, [label], "source")[label].to_numpy(dtype=float)


def _predict(file: InputFile, fold: np.ndarray | None, role: str, spec: FeatureSpec,
             boosters: list[Any]) -> np.ndarray:
    """A partition's predictions: by the booster of each row's fold (source), or the
    boosters' mean (target)."""
    dmat = xgb.DMatrix(spec.transform(read_partition(file, spec.columns, role)),
                       enable_categorical=True)
    if fold is None:  # as floats, as dr_estimate takes them (the boosters predict float32)
        return np.mean([b.predict(dmat) for b in boosters], axis=0).astype(float)
    out = np.empty(dmat.num_row())
    for k, booster in enumerate(boosters):
        rows = fold == k
        if rows.any():
            out[rows] = booster.predict(dmat)[rows]
    return out


def fitted_outcome(client: Any, source: Partitions, target: Partitions, columns: ColumnsConfig,
                   random_state: int, n_jobs: int | None) -> tuple[list[Any], list[Any]]:
    """The local engine's cross-fitted outcome model, fitted on the client from the collected
    fold training rows; futures of each source partition's out-of-fold predictions and of
    each target partition's predictions."""
    model = CrossFittedOutcome(columns.numeric, columns.categorical, n_jobs=n_jobs,
                               random_state=random_state)
    y = np.concatenate(client.gather(safe_map(client, _labels, list(source.files),
                                              label=columns.label)))
    spec = feature_spec(client, source, columns, ctr=False)
    rng = np.random.default_rng(model.random_state)
    fold = np.empty(len(y), dtype=np.int8)
    boosters = []
    splits = StratifiedKFold(model.n_folds, shuffle=True, random_state=model.random_state)
    for k, (train, test) in enumerate(splits.split(np.zeros(len(y)), y)):
        if model.max_train_rows is not None and train.size > model.max_train_rows:
            train = np.sort(rng.choice(train, model.max_train_rows, replace=False))
        X = spec.transform(gather_rows(client, source, spec.columns, train))
        boosters.append(model._classifier().fit(X, y[train]).get_booster())
        fold[test] = k
    shared = client.submit(lambda b: b, boosters, pure=False)
    offsets = source.offsets
    m_source = safe_map(client, _predict, list(source.files),
                        [fold[offsets[i]:offsets[i + 1]] for i in range(len(source))],
                        role="source", spec=spec, boosters=shared)
    m_target = safe_map(client, _predict, list(target.files), [None] * len(target),
                        role="target", spec=spec, boosters=shared)
    return m_source, m_target


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _score(piece: dict[str, Any], m: np.ndarray, eps: float, weight: str) -> float:
    return float(piece[weight] @ expit(_logit(m) + eps))


def _shifted(m: np.ndarray, eps: float | None, edge: float | None) -> np.ndarray:
    """``m*`` of :func:`is_core.weights.estimators._logit_fluctuation`."""
    if edge is not None:
        return np.full_like(m, edge)
    return m if eps is None else expit(_logit(m) + eps)


def _source_sums(piece: dict[str, Any], m: np.ndarray, weight: str) -> np.ndarray:
    w, y = piece[weight], piece["y"]
    r = y - m
    w2 = w * w
    return np.array([w.sum(), w @ y, w @ r, w2 @ (r * r), w2 @ r, w2.sum(),
                     np.count_nonzero((y != 0.0) & (y != 1.0)),
                     np.count_nonzero((m <= 0.0) | (m >= 1.0))], dtype=float)


def _target_sums(m: np.ndarray) -> np.ndarray:
    return np.array([m.size, m.sum(), m @ m, np.count_nonzero((m <= 0.0) | (m >= 1.0))],
                    dtype=float)


def _dr(client: Any, pieces: list[Any], m_source: list[Any], m_target: list[Any],
        weight: str, level: float) -> tuple[Estimate, list[Any], list[Any]]:
    """:func:`is_core.weights.estimators.dr_estimate` with the weights ``weight`` of the
    pieces; also the fluctuated predictions (the futures the guard's estimate starts from)."""
    sums = np.sum(client.gather(safe_map(client, _source_sums, pieces, m_source,
                                         weight=weight)), axis=0)
    outside_t = np.sum(client.gather(safe_map(client, _target_sums, m_target)), axis=0)[3]
    total, clicks = sums[0], sums[1]
    bounded = sums[6] == 0 and sums[7] == 0 and outside_t == 0
    eps, edge = None, None
    if bounded and (clicks <= 0.0 or clicks >= total):
        edge = 0.0 if clicks <= 0.0 else 1.0
    elif bounded:
        def score(e: float) -> float:
            return float(clicks - sum(client.gather(safe_map(client, _score, pieces, m_source,
                                                             eps=e, weight=weight))))

        low, high = -1.0, 1.0
        while score(low) < 0.0:
            low *= 2.0
        while score(high) > 0.0:
            high *= 2.0
        eps = brentq(score, low, high, xtol=1e-12)
    ms = safe_map(client, _shifted, m_source, eps=eps, edge=edge)
    mt = safe_map(client, _shifted, m_target, eps=eps, edge=edge)
    total, _, wr, w2r2, w2r, w2 = np.sum(client.gather(safe_map(
        client, _source_sums, pieces, ms, weight=weight)), axis=0)[:6]
    n_t, m_sum, m_squares, _ = np.sum(client.gather(safe_map(client, _target_sums, mt)),
                                      axis=0)
    correction = float(wr / total)
    value = float(m_sum / n_t) + correction
    var_res = float(max(w2r2 - 2 * correction * w2r + correction**2 * w2, 0.0) / total**2)
    var_direct = (float(max(m_squares - m_sum**2 / n_t, 0.0) / (n_t - 1) / n_t)
                  if n_t > 1 else 0.0)
    se = math.sqrt(var_res + var_direct)
    estimate = (rate_interval("dr", min(max(value, 0.0), 1.0), se, level, float(total**2 / w2))
                if bounded else _normal_interval("dr", value, se, level))
    return estimate, ms, mt


def dr_estimate(client: Any, pieces: list[Any], m_source: list[Any], m_target: list[Any],
                clipped: bool, level: float = 0.95) -> Estimate:
    """The doubly robust estimate of the weights stage (bias-guarded by the unclipped final
    weights when the weights are clipped, as the local stage passes ``w_unclipped``)."""
    estimate, ms, mt = _dr(client, pieces, m_source, m_target, "final", level)
    if clipped:
        estimate = _guarded(estimate, _dr(client, pieces, ms, mt, "unclipped", level)[0])
    return estimate
