"""The train stage on Dask: the same candidates, trained by ``xgboost.dask`` on the partitions.

Each source partition is encoded on its worker with the one :class:`FeatureSpec` the local
engine would fit (its categories merged from the partitions), and carries its label, final
weight and two seeded draws of its own (stream ``[random_state, partition]``): whether the row
is in the early-stopping split (``train.validation_fraction``, a Bernoulli draw instead of the
local stratified split) and its fold for the recalibration's out-of-fold scores. Without a
target holdout the rows kept for evaluation are the local engine's exactly (the same generator
stream, advanced to the partition's first row).

With ``train.sampling`` (:mod:`is_core.engine.sampling`) the workers draw the local engine's
importance subsample before anything is encoded: the same kept rows, sampling weights and
correction slice, the rate solved from partition sums; only the kept rows are encoded (the
:class:`FeatureSpec` of their categories, as the local engine fits it on its sample), with
:data:`WEIGHT` the combined importance × sampling weights and :data:`BASELINE` the sampling
weights, each of mean 1 over the sample. Every candidate, the recalibration's fold boosters
included, is fitted on the sample as :func:`is_core.ctr.stage.fit_candidates` fits it; the
correction slice (at most 500,000 rows) is gathered to the client, where the sampled boosters
are corrected and summarized by the local engine's own code
(:class:`~is_core.ctr.stage.DrawnSample`).

The weighted booster trains on the final weights and early-stops on the weighted validation
logloss (``sample_weight_eval_set``'s role is the validation matrix's weight), the unweighted
baseline with the same parameters; the recalibrated baseline is the unweighted booster with a
calibrator fitted on out-of-fold scores of fold boosters, on a seeded sample of at most
:data:`CALIBRATION_ROWS` rows. Models are saved as the local engine saves them (UBJSON with
metadata), loadable by :class:`WeightedCTRModel` without Dask.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import clone

from is_core.config import ColumnsConfig, TrainConfig
from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.recalibration import WeightedCalibrator
from is_core.ctr.stage import (
    EVAL_ROWS_FILE,
    TrainedModels,
    _ctr_model,
    save_candidates,
    scaled_template,
)
from is_core.data.atomic import write_parquet_atomic
from is_core.data.features import FeatureSpec, category_levels
from is_core.data.io import InputFile
from is_core.data.stage import Inputs, has_role
from is_core.engine.cluster import client_for
from is_core.engine.partitions import (
    Partitions,
    empty_frame,
    map_partitions,
    read_partition,
    role_partitions,
)
from is_core.errors import DataContractError

#: Rows (a seeded sample) the recalibration's calibrator is fitted on.
CALIBRATION_ROWS = 1_000_000
LABEL, WEIGHT, VALID, FOLD = "__label", "__weight", "__valid", "__fold"
#: An importance subsample's baseline training weight: its sampling weights scaled to mean 1.
BASELINE = "__baseline_weight"


def _levels(file: InputFile, index: int, first: int, n: int, columns: list[str]
            ) -> dict[str, set[str]]:
    frame = read_partition(file, columns, "source")
    return {c: set(category_levels(frame[c])) for c in columns}


def feature_spec(client: Any, source: Partitions, columns: ColumnsConfig, ctr: bool = True
                 ) -> FeatureSpec:
    """The CTR models' :class:`FeatureSpec` (``ctr``; else of every feature, the outcome
    model's), its categories merged from the partitions (what ``FeatureSpec.fit`` finds on the
    whole window)."""
    spec = (FeatureSpec(list(columns.ctr_numeric), list(columns.ctr_categorical)) if ctr
            else FeatureSpec(list(columns.numeric), list(columns.categorical)))
    parts = map_partitions(client, source, _levels, spec.categorical) if spec.categorical \
        else []
    spec.categories = {c: sorted(set().union(*(p[c] for p in parts)))
                       for c in spec.categorical}
    return spec


def evaluation_split(random_state: int, first: int, n: int) -> np.ndarray:
    """Which of the partition's rows the local engine keeps out of training for the
    IS-weighted evaluation (no holdout): its draws of ``default_rng(random_state)``, the
    stream advanced to the partition's first row (one 64-bit draw per double)."""
    rng = np.random.default_rng(random_state)
    cast(Any, rng.bit_generator).advance(first)  # PCG64: one step a double
    return rng.random(n) < 0.1


def training_partition(file: InputFile, index: int, first: int, n: int, spec: FeatureSpec,
                       label_column: str, weights_dir: str, validation_fraction: float,
                       n_folds: int, random_state: int, holdout: bool) -> pd.DataFrame:
    """One partition's encoded training rows with label, final weight, split and fold."""
    label = label_column
    frame = read_partition(file, [*spec.columns, label], "source")
    final = read_weights(weights_dir, index, len(frame))
    out = spec.transform(frame)
    rng = np.random.default_rng([random_state, index])
    out[LABEL] = frame[label].to_numpy().astype("int8")
    out[WEIGHT] = final
    out[VALID] = rng.random(len(frame)) < validation_fraction
    out[FOLD] = rng.integers(0, n_folds, len(frame)).astype("int8")
    if not holdout:
        out = out.loc[~evaluation_split(random_state, first, n)]
    return out.reset_index(drop=True)


def read_weights(weights_dir: str, index: int, n_rows: int) -> np.ndarray:
    """Partition ``index``'s final weights (``weights.parquet/part-<index>.parquet``), which
    must be those of its ``n_rows`` source rows."""
    final = pd.read_parquet(Path(weights_dir) / f"part-{index:05d}.parquet",
                            columns=["final_weight"])["final_weight"].to_numpy()
    if len(final) != n_rows:
        raise DataContractError(
            f"weights.parquet has {len(final)} rows but the source has {n_rows}",
            fix="the inputs changed during the run; re-run the date")
    return final


def _eval_rows(file: InputFile, index: int, first: int, n: int, random_state: int
               ) -> np.ndarray:
    return np.arange(first, first + n)[evaluation_split(random_state, first, n)]


def training_frame(client: Any, source: Partitions, spec: FeatureSpec, train: TrainConfig,
                   label: str, weights_dir: str, random_state: int, holdout: bool) -> Any:
    """The training rows as a ``dask.dataframe`` (one partition per source file), persisted."""
    import dask
    import dask.dataframe as dd

    empty = spec.transform(empty_frame(source, [*spec.columns, label]))
    empty[LABEL] = pd.Series([], dtype="int8")
    empty[WEIGHT] = pd.Series([], dtype="float64")
    empty[VALID] = pd.Series([], dtype="bool")
    empty[FOLD] = pd.Series([], dtype="int8")
    index = list(range(len(source)))
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_map(training_partition, list(source.files), index,
                            list(source.offsets[:-1]),
                            [source.offsets[i + 1] - source.offsets[i] for i in index],
                            spec=spec, label_column=label, weights_dir=weights_dir,
                            validation_fraction=train.validation_fraction,
                            n_folds=train.recalibration_folds, random_state=random_state,
                            holdout=holdout, meta=empty, enforce_metadata=False)
        return client.persist(frame)


def _params(model: WeightedCTRModel) -> dict[str, Any]:
    """The booster parameters of :meth:`WeightedCTRModel.fit`'s ``XGBClassifier``."""
    params: dict[str, Any] = {
        "objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
        "learning_rate": model.learning_rate, "max_depth": model.max_depth,
        "min_child_weight": model.min_child_weight, "max_cat_to_onehot": model.max_cat_to_onehot,
        "seed": model.random_state}
    if model.n_jobs is not None:
        params["nthread"] = model.n_jobs
    return params


def fit_booster(client: Any, model: WeightedCTRModel, frame: Any, spec: FeatureSpec,
                weighted: bool, rows: Any = None, weight_column: str = WEIGHT
                ) -> WeightedCTRModel:
    """``model`` fitted by ``xgboost.dask`` on ``frame``'s rows (``rows``: a boolean column of
    it, or all), early-stopped on their validation split, with the weights of
    ``weight_column`` when ``weighted``; the same attributes as :meth:`WeightedCTRModel.fit`."""
    import xgboost.dask as xgb_dask

    part = frame if rows is None else frame[rows]
    train, valid = part[~part[VALID]], part[part[VALID]]

    def matrix(data: Any, ref: Any = None) -> Any:
        return xgb_dask.DaskQuantileDMatrix(client, data[spec.columns], data[LABEL],
                                            weight=data[weight_column] if weighted else None,
                                            enable_categorical=True, ref=ref)

    with client.as_current():  # xgboost.dask looks for the current client
        dtrain = matrix(train)
        dvalid = matrix(valid, dtrain)
        out = xgb_dask.train(client, _params(model), dtrain,
                             num_boost_round=model.n_estimators,
                             evals=[(dvalid, "validation_0")],
                             early_stopping_rounds=model.early_stopping_rounds,
                             verbose_eval=False)
    booster = out["booster"]
    model.booster_ = booster
    model.feature_spec_ = spec
    model.best_iteration_ = int(booster.best_iteration)
    model.validation_logloss_ = float(booster.best_score)
    model.n_train_, model.n_valid_ = (int(x) for x in client.compute(
        [train.shape[0], valid.shape[0]], sync=True))
    return model


def _calibration_rows(part: pd.DataFrame, folds: list[WeightedCTRModel], share: float,
                      spec: FeatureSpec, seed: int) -> pd.DataFrame:
    """A seeded sample of the partition's rows with their out-of-fold scores (the fold model
    that did not see the row), labels and final weights."""
    keep = np.random.default_rng([seed, len(part)]).random(len(part)) < share
    rows = part.loc[keep]
    oof = np.empty(len(rows))
    for k, model in enumerate(folds):
        mine = rows[FOLD].to_numpy() == k
        if mine.any():
            oof[mine] = model.predict_proba(rows.loc[mine, spec.columns])
    return pd.DataFrame({"p": oof, "y": rows[LABEL].to_numpy(), "w": rows[WEIGHT].to_numpy()})


def fit_calibrator(client: Any, template: WeightedCTRModel, frame: Any, spec: FeatureSpec,
                   train: TrainConfig, n_rows: int, random_state: int,
                   fold_weight: str | None = None) -> WeightedCalibrator:
    """The recalibration's calibrator: fold boosters (the template's parameters; unweighted,
    or with the weights of ``fold_weight``: an importance subsample's sampling weights) on all
    but one fold each, their out-of-fold scores on a seeded sample of at most
    :data:`CALIBRATION_ROWS` rows, and :class:`WeightedCalibrator` fitted there with the
    training weights (:data:`WEIGHT`: the final weights, or a sample's combined weights)."""
    from sklearn.base import clone

    folds = [fit_booster(client, clone(template), frame, spec, weighted=fold_weight is not None,
                         rows=frame[FOLD] != k, weight_column=fold_weight or WEIGHT)
             for k in range(train.recalibration_folds)]
    share = min(1.0, CALIBRATION_ROWS / max(n_rows, 1))
    meta = pd.DataFrame({"p": pd.Series([], dtype="float64"), "y": pd.Series([], dtype="int8"),
                         "w": pd.Series([], dtype="float64")})
    sample = client.compute(frame.map_partitions(_calibration_rows, folds, share, spec,
                                                 random_state, meta=meta), sync=True)
    return WeightedCalibrator(train.recalibration, random_state=random_state).fit(
        sample["p"].to_numpy(), sample["y"].to_numpy(), sample["w"].to_numpy())


def _weight_sums(part: pd.DataFrame) -> pd.DataFrame:
    w = part[WEIGHT].to_numpy()
    y = part[LABEL].to_numpy()
    return pd.DataFrame({"w": [w.sum()], "w2": [w @ w], "n": [len(w)],
                         "pos": [float(w[y == 1].sum())], "neg": [float(w[y == 0].sum())]})


def train_models(train: TrainConfig, columns: ColumnsConfig, inputs: Inputs,
                 weights: Mapping[str, Any], out_dir: Path, *, random_state: int,
                 metadata: Mapping[str, Any], cluster: str, champion: str | None = None
                 ) -> TrainedModels:
    """:func:`is_core.ctr.stage.train_models` on the cluster (module docstring); ``champion``
    (a model path the workers can read) sets the ``loss`` sample's keep probabilities."""
    client = client_for(cluster)
    source = role_partitions(client, inputs, "source")
    holdout = has_role(inputs, "holdout")
    if not holdout:
        rows = np.concatenate(map_partitions(client, source, _eval_rows, random_state))
        write_parquet_atomic(pd.DataFrame({"row_id": rows}), out_dir / EVAL_ROWS_FILE)
    sample = None
    if train.sampling == "none":
        spec = feature_spec(client, source, columns)
        frame = training_frame(client, source, spec, train, columns.label, weights["path"],
                               random_state, holdout)
    else:
        # imported here: the sample's module builds on this one's partition layout
        from is_core.engine.sampling import draw_sample

        sample = draw_sample(client, source, train, columns, weights["path"], random_state,
                             holdout, champion)
        spec, frame = sample.spec, sample.frame
    sums = client.compute(frame.map_partitions(_weight_sums), sync=True).sum()
    if not (sums["pos"] > 0 and sums["neg"] > 0):
        label = columns.label
        raise DataContractError(f"every training label in {label!r} is the same",
                                fix="a CTR model needs clicks and non-clicks: check the label "
                                "export for the window")
    common = {**metadata, "input_fingerprints": {r: v["fingerprint"]
                                                 for r, v in inputs["roles"].items()},
              "run_date": inputs["run_date"], "exposure_features": list(columns.exposure)}
    models, seconds, calibrator = _fit_candidates(
        client, train, _ctr_model(train, columns, random_state), frame, spec, sums,
        None if sample is None else sample.drawn.sums.sampling_ess / sample.drawn.sums.n,
        random_state)
    del frame
    summary = None
    if sample is not None:
        common["sampling"] = sample.drawn.metadata()
        models, correction_seconds = sample.drawn.correct(train, models, columns.label,
                                                          random_state)
        for name in ("weighted", "unweighted"):
            seconds[name] += correction_seconds
        summary = sample.drawn.summary(train, models)
    return save_candidates(models, seconds, calibrator, common, out_dir, summary)


def _fit_candidates(client: Any, train: TrainConfig, template: WeightedCTRModel, frame: Any,
                    spec: FeatureSpec, sums: pd.Series, sampling_ess_fraction: float | None,
                    random_state: int
                    ) -> tuple[dict[str, WeightedCTRModel], dict[str, float],
                               WeightedCalibrator | None]:
    """:func:`is_core.ctr.stage.fit_candidates` on the cluster: the weighted booster on
    :data:`WEIGHT` (``min_child_weight`` by its ESS/n, :func:`~is_core.ctr.stage.scaled_template`),
    the baseline unweighted or, on an importance subsample (``sampling_ess_fraction``: the
    Kish ESS/n of its sampling weights), with the sampling weights (:data:`BASELINE`)
    and its own ``min_child_weight``, as are its fold boosters."""
    policy = train.weighted_min_child_weight
    sampled = sampling_ess_fraction is not None
    baseline = (template if sampling_ess_fraction is None
                else scaled_template(template, sampling_ess_fraction, policy))
    models: dict[str, WeightedCTRModel] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    ess_fraction = sums["w"] ** 2 / sums["w2"] / sums["n"]
    models["weighted"] = fit_booster(client, scaled_template(template, ess_fraction, policy),
                                     frame, spec, weighted=True)
    seconds["weighted"] = time.perf_counter() - started
    started = time.perf_counter()
    models["unweighted"] = fit_booster(client, clone(baseline), frame, spec, weighted=sampled,
                                       weight_column=BASELINE)
    seconds["unweighted"] = time.perf_counter() - started
    calibrator = None
    if train.recalibrate:
        started = time.perf_counter()
        calibrator = fit_calibrator(client, baseline, frame, spec, train, int(sums["n"]),
                                    random_state, fold_weight=BASELINE if sampled else None)
        models["recalibrated"] = models["unweighted"].with_calibrator(calibrator)
        seconds["recalibrated"] = time.perf_counter() - started
    return models, seconds, calibrator
