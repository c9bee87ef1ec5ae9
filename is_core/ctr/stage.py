"""The train and evaluate stages: the weighted CTR model, its unweighted baseline, and both
scored on the evaluation rows.

:func:`train_models` fits :class:`~is_core.ctr.model.WeightedCTRModel` twice with identical
parameters (final importance weights, then none) and saves both as UBJSON; with
``train.sampling`` every candidate is fitted on one importance subsample of the training rows
(:mod:`is_core.ctr.sampling`), the weighted booster with importance × sampling weights and the
baseline with the sampling weights alone, and both are corrected on a uniform slice of the
training rows held out of the sample (``train.sampling_correction``, :class:`SamplingSummary`);
:func:`evaluate_models` scores them on :func:`evaluation_rows` with bootstrap intervals and
paired differences. Each takes its own config section plus the column roles and returns a typed
summary (:class:`TrainedModels`, :class:`Evaluation`) that Prefect can store as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

import numpy as np
import pandas as pd
from sklearn.base import clone

from is_core._validation import config_keys
from is_core.config import ColumnsConfig, EvaluationConfig, TrainConfig
from is_core.ctr.metrics import (
    bootstrap_metrics,
    ctr_metrics,
    paired_logloss_difference,
    reliability_curve,
)
from is_core.ctr.model import WeightedCTRModel, out_of_fold_predictions
from is_core.ctr.recalibration import WeightedCalibrator
from is_core.ctr.sampling import (
    ImportanceSubsampler,
    combined_weights,
    correction_rows,
    correction_share,
    fit_sampling_correction,
    intercept_standard_error,
)
from is_core.data.atomic import write_parquet_atomic
from is_core.data.features import FeatureSpec
from is_core.data.io import read_input_files, release_memory
from is_core.data.stage import Inputs, has_role, input_files, read_role
from is_core.errors import DataContractError, TrainingError
from is_core.weights.diagnostics import effective_sample_size
from is_core.weights.stage import WeightsResult

MODEL_FILE = "model.ubj"
BASELINE_FILE = "baseline_model.ubj"
RECALIBRATED_FILE = "recalibrated_model.ubj"
EVAL_ROWS_FILE = "evaluation_rows.parquet"
PREDICTIONS_FILE = "evaluation_predictions.parquet"  # scratch: the promotion gate reuses it

ModelName = Literal["weighted", "unweighted", "recalibrated"]
#: Today's candidate models: the importance-weighted booster, the unweighted baseline, and the
#: baseline recalibrated with the importance weights (``train.recalibrate``).
MODEL_NAMES: tuple[ModelName, ...] = ("weighted", "unweighted", "recalibrated")
EvaluatedOn = Literal["target_holdout", "source_split_importance_weighted"]

#: The config key behind each checked argument of the CTR model and of the metrics (a
#: ParameterError names the argument; the stage re-raises it as a ConfigError naming the key).
TRAIN_KEYS = {"validation_fraction": "train.validation_fraction",
              "keep_fraction": "train.keep_fraction", "max_rows": "train.max_rows"}
EVALUATION_KEYS = {"level": "evaluation.ci_level", "n_boot": "evaluation.n_boot",
                   "n_bins": "evaluation.calibration_bins"}


class TrainedModel(TypedDict):
    """One saved CTR model: its UBJSON path and how its training went."""

    path: str
    best_iteration: int
    validation_logloss: float
    seconds: float
    n_train: int
    n_valid: int


class SamplingSummary(TypedDict):
    r"""How the training rows were subsampled (``train.sampling``, :mod:`is_core.ctr.sampling`).

    ``strategy`` is the configured one, ``applied`` the one drawn (``negative`` when ``loss``
    had no usable champion, ``fallback`` says why); ``champion`` the model whose scores set the
    keep probabilities. ``n_rows`` training rows before sampling, ``kept_rows`` after,
    ``target_rows`` the expected size asked for (``train.keep_fraction`` is a share of the rows
    not held out for the correction); ``rate`` is :math:`r` or :math:`c`
    (``rate_name``). ``ess``/``ess_fraction``: Kish ESS of the combined weights (importance ×
    sampling, what the weighted booster is fitted with) over the kept rows;
    ``sampling_ess_fraction`` the same of the sampling weights alone (the baseline's);
    ``min_child_weight`` each booster's (``train.weighted_min_child_weight``).
    ``correction_rows``: the uniform slice of the training rows held out of the sample
    (:func:`~is_core.ctr.sampling.correction_rows`), on which ``calibration_ratio`` (the sampled
    baseline's mean prediction over the observed CTR) and ``weighted_calibration_ratio`` (the
    weighted booster's, both importance-weighted) are measured *before* the correction;
    ``correction`` is ``train.sampling_correction``, ``correction_coef`` each booster's fitted
    (a, b) of :math:`\sigma(a + b\,\mathrm{logit}\,p)` and ``correction_se`` the standard error
    of each intercept (``"intercept"`` only); ``recalibration`` says what corrects the
    calibration.
    """

    strategy: str
    applied: str
    fallback: str | None
    champion: str | None
    n_rows: int
    kept_rows: int
    target_rows: float
    rate_name: str
    rate: float
    ess: float
    ess_fraction: float
    sampling_ess_fraction: float
    max_sampling_weight: float
    min_child_weight: dict[str, float]
    calibration_ratio: float | None
    weighted_calibration_ratio: float | None
    correction_rows: int
    correction: str
    correction_coef: dict[str, list[float]] | None
    correction_se: dict[str, float] | None
    recalibration: str
    seconds: float


class TrainedModels(TypedDict):
    """The train stage's result: the weighted booster, the unweighted baseline, (with
    ``train.recalibrate``) the recalibrated baseline and (with ``train.sampling``) how the
    training rows were subsampled."""

    weighted: TrainedModel
    unweighted: TrainedModel
    recalibrated: TrainedModel | None
    sampling: SamplingSummary | None


def candidate_names(models: TrainedModels) -> list[ModelName]:
    """The candidates trained today, in :data:`MODEL_NAMES` order."""
    return [n for n in MODEL_NAMES if models.get(n) is not None]


class Evaluation(TypedDict):
    """The evaluate stage's result. ``weighted`` / ``unweighted`` are
    :func:`~is_core.ctr.metrics.ctr_metrics` dicts; ``intervals`` and ``differences`` the
    bootstrap intervals of each candidate's metrics and of its paired difference to the
    unweighted baseline; ``candidates`` every candidate side by side (:func:`_candidate_table`);
    ``delta`` the headline differences (weighted minus unweighted)."""

    evaluated_on: EvaluatedOn
    n: int
    evaluation_note: str
    weighted: dict[str, Any]
    unseen_category_share: dict[str, float]
    unweighted: dict[str, Any]
    intervals: dict[str, Any]
    differences: dict[str, Any]
    candidates: dict[str, dict[str, Any]]
    bootstrap: dict[str, Any]
    reliability: dict[str, Any]
    delta: dict[str, Any]


# ---------------------------------------------------------------------------- training
def train_models(train: TrainConfig, columns: ColumnsConfig, inputs: Inputs,
                 weights: WeightsResult, out_dir: Path, *, random_state: int,
                 metadata: Mapping[str, Any], champion: str | None = None) -> TrainedModels:
    """Train the candidates (module docstring) on the CTR features; save each as UBJSON.

    The CTR features are ``columns.numeric`` and ``columns.categorical`` without
    ``columns.exposure``. Without a target holdout, a random 10 % of the source rows is kept out
    of training for IS-weighted evaluation (``evaluation_rows.parquet``). ``metadata`` (the
    weights and proposal settings that made the weights) goes into each model's ``.meta.json``
    beside the weighting, the input fingerprints and the run date. With ``train.sampling`` the
    training rows are subsampled partition by partition before any design matrix is built
    (:func:`_draw_sample`); ``champion`` is the champion model's path, whose scores set the
    ``loss`` strategy's keep probabilities (None: no champion, ``loss`` falls back to
    ``negative``).
    """
    features = [*columns.ctr_numeric, *columns.ctr_categorical]
    final = pd.read_parquet(weights["path"], columns=["final_weight"])["final_weight"].to_numpy()
    sample: _Sample | None = None
    if train.sampling == "none":
        source = read_role(inputs, "source", [*features, columns.label])
        _require_rows(len(source), len(final))
        train_rows = _training_rows(inputs, len(source), out_dir, random_state)
        frame = source if len(train_rows) == len(source) else source.iloc[train_rows]
        del source
    else:
        train_rows = _training_rows(inputs, len(final), out_dir, random_state)
        sample = _draw_sample(train, columns, inputs, train_rows, final, random_state,
                              champion)
        frame, train_rows = sample.frame, sample.rows
    y = frame[columns.label].to_numpy()
    _require_both_labels(y, columns.label, "training",
                         "a CTR model needs clicks and non-clicks: check the label export for "
                         "the window")
    # Encode the features once for every model (each model's fit then finds them encoded),
    # and let the raw frame go before XGBoost builds its matrices.
    X = FeatureSpec(columns.ctr_numeric, columns.ctr_categorical).fit(frame).transform(frame)
    del frame
    if sample is not None:
        sample.frame = X  # the raw kept rows are no longer needed
    release_memory()
    common = {**metadata, "input_fingerprints": {r: v["fingerprint"]
                                                 for r, v in inputs["roles"].items()},
              "run_date": inputs["run_date"], "exposure_features": list(columns.exposure)}
    if sample is not None:
        common["sampling"] = sample.drawn.metadata()
    models, seconds, calibrator = fit_candidates(
        train, _ctr_model(train, columns, random_state), X, y, final[train_rows], random_state,
        sampling_weight=None if sample is None else sample.weight)
    if sample is not None:
        models, correction_seconds = sample.drawn.correct(train, models, columns.label,
                                                          random_state)
        for name in ("weighted", "unweighted"):
            seconds[name] += correction_seconds
    return save_candidates(models, seconds, calibrator, common, out_dir,
                           None if sample is None else sample.drawn.summary(train, models))


def save_candidates(models: Mapping[str, WeightedCTRModel], seconds: Mapping[str, float],
                    calibrator: WeightedCalibrator | None, common: Mapping[str, Any],
                    out_dir: Path, sampling: SamplingSummary | None = None) -> TrainedModels:
    """Save each candidate as UBJSON in ``out_dir`` (both engines): its ``.meta.json`` holds
    ``common``, its weighting and its calibrator (the recalibrated candidate's, or a sampled
    booster's correction); the stage's :class:`TrainedModels`."""
    files = {"weighted": MODEL_FILE, "unweighted": BASELINE_FILE,
             "recalibrated": RECALIBRATED_FILE}
    weighting = {"weighted": "importance", "unweighted": "none",
                 "recalibrated": "recalibration"}
    trained: dict[str, Any] = {"recalibrated": None, "sampling": sampling}
    for name, model in models.items():
        meta = {"weighting": weighting[name], **common}
        if calibrator is not None and name == "recalibrated":
            meta["calibration"] = calibrator.to_dict()
        elif sampling is not None and getattr(model, "calibrator_", None) is not None:
            meta["sampling_correction"] = model.calibrator_.to_dict()
        trained[name] = _saved(model, out_dir / files[name], seconds[name], meta)
    return cast(TrainedModels, trained)


def _require_rows(n_source: int, n_weights: int) -> None:
    """The weights must be those of the source rows read now."""
    if n_weights != n_source:
        raise DataContractError(
            f"weights.parquet has {n_weights} rows but the source has {n_source}",
            fix="the inputs changed during the run; re-run the date",
        )


def fit_candidates(train: TrainConfig, template: WeightedCTRModel, X: pd.DataFrame,
                   y: np.ndarray, w: np.ndarray, random_state: int,
                   sampling_weight: np.ndarray | None = None
                   ) -> tuple[dict[str, WeightedCTRModel], dict[str, float],
                              WeightedCalibrator | None]:
    """Fit today's candidates on the encoded features ``X``: the weighted booster (final
    weights ``w``, :func:`weighted_template`), the unweighted baseline and, with
    ``train.recalibrate``, the baseline recalibrated on its out-of-fold scores with ``w``.
    Returns the models, each one's seconds, and the calibrator (None without recalibration).

    ``sampling_weight`` (the :math:`1/\\pi` of an importance subsample, the rows of ``X``) makes
    every candidate a fit of the same sample: the weighted booster with importance × sampling
    weights, the baseline (and its out-of-fold copies) with the sampling weights alone, so
    "did the shift weighting pay" still compares two boosters on the same rows, and the
    calibrator with the combined weights (each scaled to mean 1,
    :func:`~is_core.ctr.sampling.combined_weights`).
    """
    weighted_w: np.ndarray = w
    baseline_w: np.ndarray | None = None
    if sampling_weight is not None:
        weighted_w = combined_weights(w, sampling_weight)
        baseline_w = combined_weights(None, sampling_weight)
    policy = train.weighted_min_child_weight
    models: dict[str, WeightedCTRModel] = {}
    seconds: dict[str, float] = {}
    for name, weights in (("weighted", weighted_w), ("unweighted", baseline_w)):
        started = time.perf_counter()
        booster = (clone(template) if weights is None
                   else weighted_template(template, weights, policy))
        with config_keys(TRAIN_KEYS):
            models[name] = booster.fit(X, y, sample_weight=weights)
        seconds[name] = time.perf_counter() - started
    calibrator = None
    if train.recalibrate:
        started = time.perf_counter()
        oof_template = (template if baseline_w is None
                        else weighted_template(template, baseline_w, policy))
        oof = out_of_fold_predictions(oof_template, X, y, train.recalibration_folds,
                                      random_state, sample_weight=baseline_w)
        calibrator = WeightedCalibrator(train.recalibration, random_state=random_state).fit(
            oof, y, weighted_w)
        models["recalibrated"] = models["unweighted"].with_calibrator(calibrator)
        seconds["recalibrated"] = time.perf_counter() - started
    return models, seconds, calibrator


def weighted_template(template: WeightedCTRModel, w: np.ndarray, policy: str
                      ) -> WeightedCTRModel:
    r"""The weighted booster's (unfitted) model: ``template`` with, for ``policy="ess"``,
    ``min_child_weight`` divided by the weights' Kish ESS/n.

    With final weights of mean 1 a leaf's hessian sum has the same expectation as without them,
    but it rests on fewer effective rows: about :math:`n_\text{leaf} \cdot \mathrm{ESS}/n` when
    the weights do not depend on the leaf. Dividing the minimum by ESS/n asks a weighted leaf for
    as many effective rows as an unweighted one (issue 17: the weighted booster learns from the
    effective sample, so it gets the regularization of that sample size).

    On an importance subsample ``w`` is what the booster is fitted with: importance × sampling
    weights for the weighted booster, the sampling weights alone for the baseline, each of mean
    1 over the kept rows, so each booster's leaves need as many effective *kept* rows as an
    unweighted fit of the sample would. The sampling weights are not uniform (``negative``: 1
    for a click, :math:`1/r` for a non-click), so the baseline is scaled too: its leaves would
    otherwise fit the sampling noise, which pushes its predictions up (:mod:`is_core.ctr.sampling`).
    """
    return scaled_template(template, effective_sample_size(w) / len(w), policy)


def scaled_template(template: WeightedCTRModel, ess_fraction: float, policy: str
                    ) -> WeightedCTRModel:
    """:func:`weighted_template` from the weights' Kish ESS/n (``ess_fraction``), for weights
    that are never in one place (the Dask engine sums them over partitions)."""
    model = clone(template)
    if policy == "ess":
        model.set_params(min_child_weight=template.min_child_weight / ess_fraction)
    return model


def _saved(model: WeightedCTRModel, path: Path, seconds: float, metadata: dict[str, Any]
           ) -> TrainedModel:
    """Save ``model`` at ``path`` with ``metadata``; its summary."""
    path = model.save(path, metadata=metadata)
    return TrainedModel(path=str(path), best_iteration=model.best_iteration_,
                        validation_logloss=model.validation_logloss_, seconds=seconds,
                        n_train=model.n_train_, n_valid=model.n_valid_)


def _training_rows(inputs: Inputs, n_source: int, out_dir: Path, random_state: int
                   ) -> np.ndarray:
    """All source rows, or (without a target holdout) the 90 % not kept for evaluation."""
    rows = np.arange(n_source)
    if has_role(inputs, "holdout"):
        return rows
    is_eval = np.random.default_rng(random_state).random(n_source) < 0.1
    write_parquet_atomic(pd.DataFrame({"row_id": rows[is_eval]}), out_dir / EVAL_ROWS_FILE)
    return rows[~is_eval]


# ---------------------------------------------------------------------------- subsampling
@dataclass(frozen=True)
class SampleWeightSums:
    """Sums over an importance subsample's kept rows of their sampling weights :math:`1/\\pi`
    and of their combined weights (importance × sampling, before the scaling to mean 1), which
    add up over partitions: the Kish ESS and the means of both, on either engine."""

    n: int
    sampling: float
    sampling_squares: float
    combined: float
    combined_squares: float
    max_sampling: float

    @classmethod
    def of(cls, importance: np.ndarray, sampling_weight: np.ndarray) -> SampleWeightSums:
        """The sums of one partition's (or a whole sample's) kept rows."""
        s = np.asarray(sampling_weight, dtype=float)
        c = s * np.asarray(importance, dtype=float)
        return cls(int(s.size), float(s.sum()), float(s @ s), float(c.sum()), float(c @ c),
                   float(s.max()) if s.size else 0.0)

    def __add__(self, other: SampleWeightSums) -> SampleWeightSums:
        return SampleWeightSums(
            self.n + other.n, self.sampling + other.sampling,
            self.sampling_squares + other.sampling_squares, self.combined + other.combined,
            self.combined_squares + other.combined_squares,
            max(self.max_sampling, other.max_sampling))

    @property
    def ess(self) -> float:
        """Kish ESS :math:`(\\sum w)^2 / \\sum w^2` of the combined weights."""
        return min(self.combined**2 / self.combined_squares, self.n) if self.n else 0.0

    @property
    def sampling_ess(self) -> float:
        """Kish ESS of the sampling weights alone (the baseline's)."""
        return min(self.sampling**2 / self.sampling_squares, self.n) if self.n else 0.0


@dataclass
class DrawnSample:
    """What either engine keeps of an importance subsample once drawn: how it was drawn (the
    fitted sampler, a fallback, the champion), the kept rows' :class:`SampleWeightSums`, the
    correction slice held out of it (its rows' CTR features and label, their source row ids
    and importance weights, gathered in one place: at most
    :data:`~is_core.ctr.sampling.CORRECTION_ROWS` rows) and, after :meth:`correct`, how the
    sampled boosters came out on the slice. The kept rows themselves stay with the engine (in
    memory for the local one, on the workers for Dask)."""

    sampler: ImportanceSubsampler
    fallback: str | None
    champion: str | None
    sums: SampleWeightSums
    held_out: pd.DataFrame
    held_out_rows: np.ndarray
    held_out_weight: np.ndarray
    seconds: float
    ratios: dict[str, float | None] | None = None
    coef: dict[str, list[float]] | None = None
    se: dict[str, float] | None = None

    def metadata(self) -> dict[str, Any]:
        """What a model's ``.meta.json`` records of the sample."""
        s = self.sampler
        return {"strategy": s.strategy, "applied": s.strategy_, "rate_name": s.rate_name_,
                "rate": s.rate_, "n_rows": s.n_rows_, "kept_rows": self.sums.n,
                "correction_rows": len(self.held_out_rows), "random_state": s.random_state}

    def correct(self, train: TrainConfig, models: dict[str, WeightedCTRModel], label: str,
                random_state: int) -> tuple[dict[str, WeightedCTRModel], float]:
        """Each sampled booster's calibration ratio on the held-out slice (the weighted
        booster's with the slice's importance weights) and, with ``train.sampling_correction``,
        the booster with its correction (:func:`~is_core.ctr.sampling.fit_sampling_correction`:
        importance-weighted for the weighted booster, unweighted for the baseline); the models
        and the seconds it took. The recalibrated candidate keeps its own calibrator."""
        started = time.perf_counter()
        y = self.held_out[label].to_numpy().astype(float)
        weights = {"weighted": self.held_out_weight, "unweighted": np.ones(y.size)}
        self.ratios, out = {}, dict(models)
        coef: dict[str, list[float]] = {}
        se: dict[str, float] = {}
        for name, w in weights.items():
            clicks = float(w @ y)
            if not (y.size and clicks > 0 and clicks < w.sum()):
                self.ratios[name] = None
                continue
            p = models[name].predict_proba(self.held_out)
            self.ratios[name] = float((w @ p) / clicks)
            if train.sampling_correction == "none":
                continue
            with config_keys(TRAIN_KEYS):
                calibrator = fit_sampling_correction(train.sampling_correction, p, y, w,
                                                     random_state)
            out[name] = models[name].with_calibrator(calibrator)
            coef[name] = [float(c) for c in calibrator.coef_]
            if train.sampling_correction == "intercept":
                se[name] = intercept_standard_error(calibrator.transform(p), y, w)
        self.coef, self.se = coef or None, se or None
        return out, time.perf_counter() - started

    def summary(self, train: TrainConfig, models: Mapping[str, WeightedCTRModel]
                ) -> SamplingSummary:
        """The report's view of the sample, with the fitted boosters' settings and their
        calibration on the held-out slice (:meth:`correct`)."""
        s, sums = self.sampler, self.sums
        ess = sums.ess
        ratios = self.ratios or {}
        n_slice = len(self.held_out_rows)
        if self.coef:
            shift = {n: f"a = {c[0]:+.3f}" + (f" ± {self.se[n]:.3f}" if self.se else "")
                     + ("" if train.sampling_correction == "intercept" else f", b = {c[1]:.3f}")
                     for n, c in self.coef.items()}
            recalibration = (
                f"applied ({train.sampling_correction}): each sampled booster's logit is "
                f"corrected on the {n_slice:,} training rows held out of the sample, the "
                "weighted booster's with their importance weights (" + "; ".join(
                    f"{n} {v}" for n, v in shift.items()) + ")")
        else:
            recalibration = (
                "none applied (train.sampling_correction: none): the sampling weights keep the "
                "loss unbiased, but a sampled booster's out-of-sample predictions run high "
                "(issue 12's benchmark: target calibration ratio 1.07-1.45 uncorrected)")
        if train.recalibrate:
            recalibration += ("; the recalibrated candidate's calibrator is fitted on the "
                              "sampled baseline's out-of-fold scores with the combined weights")
        return SamplingSummary(
            strategy=s.strategy, applied=s.strategy_, fallback=self.fallback,
            champion=self.champion if s.strategy_ == "loss" else None,
            n_rows=s.n_rows_ + n_slice, kept_rows=sums.n, target_rows=s.target_rows_,
            rate_name=s.rate_name_,
            rate=s.rate_, ess=ess, ess_fraction=ess / sums.n,
            sampling_ess_fraction=sums.sampling_ess / sums.n,
            max_sampling_weight=sums.max_sampling,
            min_child_weight={n: float(m.min_child_weight) for n, m in models.items()
                              if n != "recalibrated"},
            calibration_ratio=ratios.get("unweighted"),
            weighted_calibration_ratio=ratios.get("weighted"), correction_rows=n_slice,
            correction=train.sampling_correction, correction_coef=self.coef,
            correction_se=self.se, recalibration=recalibration, seconds=self.seconds)


@dataclass
class _Sample:
    """The local engine's importance subsample (:func:`_draw_sample`): the kept rows' frame
    (CTR features and label; then their encoded features), their source row ids and sampling
    weights, and what both engines keep of it (:class:`DrawnSample`)."""

    frame: pd.DataFrame
    rows: np.ndarray
    weight: np.ndarray
    drawn: DrawnSample


def _draw_sample(train: TrainConfig, columns: ColumnsConfig, inputs: Inputs,
                 train_rows: np.ndarray, final: np.ndarray, random_state: int,
                 champion: str | None) -> _Sample:
    """Subsample the training rows partition by partition (one input file at a time), before
    any design matrix is built (:mod:`is_core.ctr.sampling`).

    A first pass reads each partition's labels (and, for ``loss``, scores it with the champion),
    holds out each partition's correction slice (:func:`~is_core.ctr.sampling.correction_rows`,
    a uniform share of the training rows with its own seeds) and solves the rate from the
    remaining rows of the whole source; a second pass reads each partition's CTR features again
    and keeps its drawn rows and its slice, so only the sample and the slice are ever held.
    """
    started = time.perf_counter()
    scorer, fallback = _champion_scorer(train, columns, champion)
    files = input_files(inputs, "source")
    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for file in files:
        part = read_input_files([file], [columns.label, *(scorer.features if scorer else [])],
                                role="source")
        labels.append(part[columns.label].to_numpy())
        if scorer is not None:
            scores.append(scorer.model.predict_proba(part))
    offsets = np.cumsum([0, *(len(y) for y in labels)])
    _require_rows(int(offsets[-1]), len(final))
    in_train = np.zeros(len(final), dtype=bool)
    in_train[train_rows] = True
    share = correction_share(len(train_rows), train.sampling_correction)
    eligible, held = [], []  # per partition: positions of the rows to sample, of the slice
    for k in range(len(files)):
        local = np.flatnonzero(in_train[offsets[k]:offsets[k + 1]])
        mask = correction_rows(local.size, share, random_state=random_state, partition=k)
        eligible.append(local[~mask])
        held.append(local[mask])
    sampler = ImportanceSubsampler(train.sampling, train.keep_fraction, train.max_rows,
                                   random_state=random_state)
    with config_keys(TRAIN_KEYS):
        sampler.fit(np.concatenate([labels[k][e] for k, e in enumerate(eligible)]),
                    np.concatenate([scores[k][e] for k, e in enumerate(eligible)])
                    if scores else None)
    kept_parts, rows, weights, slices, slice_rows = [], [], [], [], []
    features = [*columns.ctr_numeric, *columns.ctr_categorical, columns.label]
    for k, file in enumerate(files):
        local = eligible[k]
        kept, w = sampler.sample_partition(labels[k][local], scores[k][local] if scores else None,
                                           partition=k)
        part = read_input_files([file], features, role="source")
        kept_parts.append(part.iloc[local[kept]])
        slices.append(part.iloc[held[k]])
        rows.append(offsets[k] + local[kept])
        slice_rows.append(offsets[k] + held[k])
        weights.append(w)
        del part
    frame = pd.concat(kept_parts, ignore_index=True) if len(kept_parts) > 1 else kept_parts[0]
    kept_rows, weight = np.concatenate(rows), np.concatenate(weights)
    held_out_rows = np.concatenate(slice_rows)
    return _Sample(frame=frame, rows=kept_rows, weight=weight, drawn=DrawnSample(
        sampler=sampler, fallback=fallback or sampler.fallback_, champion=champion,
        sums=SampleWeightSums.of(final[kept_rows], weight),
        held_out=pd.concat(slices, ignore_index=True), held_out_rows=held_out_rows,
        held_out_weight=final[held_out_rows], seconds=time.perf_counter() - started))


@dataclass(frozen=True)
class _ChampionScorer:
    """The champion model and the source columns it scores."""

    model: WeightedCTRModel
    features: list[str]


def _champion_scorer(train: TrainConfig, columns: ColumnsConfig, champion: str | None
                     ) -> tuple[_ChampionScorer | None, str | None]:
    """The champion whose scores set the ``loss`` keep probabilities, or (None, why not).

    The champion is optional here: a missing, unreadable or incompatible one makes ``loss``
    fall back to ``negative`` with the reason in the summary, never fails the run.
    """
    if train.sampling != "loss":
        return None, None
    if champion is None:
        return None, "no champion model yet: sampled with 'negative' instead"
    try:
        model = WeightedCTRModel.load(champion)
    except (OSError, ValueError, KeyError, TrainingError) as exc:
        return None, (f"the champion {champion} could not be loaded ({type(exc).__name__}: "
                      f"{exc}): sampled with 'negative' instead")
    needed = [*model.feature_spec_.numeric, *model.feature_spec_.categorical]
    missing = [c for c in needed if c not in columns.features]
    if missing:
        return None, (f"the champion uses features {missing} that are not in columns.numeric/"
                      "categorical: sampled with 'negative' instead")
    return _ChampionScorer(model, needed), None


def _ctr_model(train: TrainConfig, columns: ColumnsConfig, random_state: int
               ) -> WeightedCTRModel:
    """The (unfitted) CTR model the train config describes; both models share it."""
    return WeightedCTRModel(
        numeric=columns.ctr_numeric, categorical=columns.ctr_categorical,
        n_estimators=train.n_estimators, learning_rate=train.learning_rate,
        max_depth=train.max_depth, min_child_weight=train.min_child_weight,
        max_cat_to_onehot=train.max_cat_to_onehot,
        early_stopping_rounds=train.early_stopping_rounds,
        validation_fraction=train.validation_fraction, n_jobs=train.n_jobs,
        random_state=random_state,
    )


def _require_both_labels(y: np.ndarray, label: str, rows: str, fix: str) -> None:
    if y.min() == y.max():
        raise DataContractError(f"every {rows} label in {label!r} is {y[0]}", fix=fix)


# ---------------------------------------------------------------------------- evaluation
def evaluation_rows(columns: ColumnsConfig, inputs: Inputs, weights: WeightsResult,
                    out_dir: Path) -> tuple[pd.DataFrame, np.ndarray | None, EvaluatedOn]:
    """The rows every model of a run is scored on: (frame, sample weights or None, name).

    The labeled target holdout when there is one (unweighted); otherwise the source rows kept
    out of training (``evaluation_rows.parquet``), importance-weighted with the final weights.
    The evaluation stage and the champion/challenger comparison both use this, so they score
    on the same rows.
    """
    if has_role(inputs, "holdout"):
        frame = read_role(inputs, "holdout", [*columns.features, columns.label])
        return frame, None, "target_holdout"
    rows = pd.read_parquet(out_dir / EVAL_ROWS_FILE)["row_id"].to_numpy()
    frame = read_role(inputs, "source", [*columns.features, columns.label]).iloc[rows]
    sample_weight = pd.read_parquet(weights["path"], columns=["final_weight"])[
        "final_weight"].to_numpy()[rows]
    return frame, sample_weight, "source_split_importance_weighted"


EVALUATION_NOTES: dict[EvaluatedOn, str] = {
    "target_holdout": "labeled target holdout rows, unweighted: the metrics are the target "
    "metrics themselves",
    "source_split_importance_weighted": "no target holdout: source rows kept out of training, "
    "importance-weighted with the final weights, so each metric is a self-normalized IS "
    "estimate of its target value (trustworthy only as far as the weights are)",
}


@config_keys(EVALUATION_KEYS)
def evaluate_models(evaluation: EvaluationConfig, columns: ColumnsConfig, inputs: Inputs,
                    models: TrainedModels, weights: WeightsResult, out_dir: Path, *,
                    random_state: int) -> Evaluation:
    """Metrics of both models on the target holdout (or IS-weighted on a source split)."""
    frame, sample_weight, on = evaluation_rows(columns, inputs, weights, out_dir)
    y = frame[columns.label].to_numpy()
    _require_both_labels(y, columns.label, "evaluation",
                         "AUC needs clicks and non-clicks in the holdout: enlarge "
                         "data.window_days or check the holdout export")
    bins, level = evaluation.calibration_bins, evaluation.ci_level
    predictions: dict[str, np.ndarray] = {}
    scored: dict[str, dict[str, Any]] = {}
    for name in candidate_names(models):
        entry = models[name]
        assert entry is not None  # candidate_names lists the trained ones
        model = WeightedCTRModel.load(entry["path"])
        predictions[name] = model.predict_proba(frame)
        scored[name] = ctr_metrics(y, predictions[name], sample_weight, bins)
    # the models were fitted on one FeatureSpec of the same rows: one share serves them all
    unseen = model.feature_spec_.unseen_share(frame)
    write_parquet_atomic(pd.DataFrame(predictions), out_dir / PREDICTIONS_FILE)
    boot = bootstrap_metrics(y, predictions, sample_weight, baseline="unweighted",
                             n_boot=evaluation.n_boot, level=level, n_bins=bins,
                             random_state=random_state)
    w, u = scored["weighted"], scored["unweighted"]
    return Evaluation(
        evaluated_on=on, n=int(len(frame)), evaluation_note=EVALUATION_NOTES[on],
        weighted=w, unseen_category_share=unseen, unweighted=u,
        intervals=boot["models"], differences=boot["difference"],
        candidates=_candidate_table(scored, boot),
        bootstrap={"n_boot": evaluation.n_boot, "level": level},
        reliability={name: reliability_curve(y, p, sample_weight, bins, level)
                     for name, p in predictions.items()},
        delta={
            "logloss": paired_logloss_difference(
                y, predictions["weighted"], predictions["unweighted"], sample_weight).to_dict(),
            "auc": w["auc"] - u["auc"],
            "calibration_error": abs(w["calibration_ratio"] - 1)
            - abs(u["calibration_ratio"] - 1),
        },
    )


def _candidate_table(scored: dict[str, dict[str, Any]], boot: dict[str, Any]
                     ) -> dict[str, dict[str, Any]]:
    """Per candidate: logloss, AUC, calibration ratio and ECE with their 95 % intervals, and the
    paired interval of its logloss difference to the unweighted baseline."""
    table = {}
    for name, m in scored.items():
        intervals = boot["models"][name]
        difference = boot.get("difference", {}).get(name, {}).get("logloss")
        row: dict[str, Any] = {}
        for metric in ("logloss", "auc", "calibration_ratio", "ece"):
            row[metric] = m[metric]
            row[f"{metric}_ci"] = [intervals[metric]["ci_low"], intervals[metric]["ci_high"]]
        row["logloss_diff"] = None if difference is None else difference["value"]
        row["logloss_diff_ci"] = (None if difference is None
                                  else [difference["ci_low"], difference["ci_high"]])
        table[name] = row
    return table
