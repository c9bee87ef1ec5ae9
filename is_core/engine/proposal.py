"""The proposal stage on Dask: the same fitted domain classifier, every row scored on a worker.

The fitting sample is the local engine's (:meth:`DomainClassifierRatio._fit_rows` of the
role sizes and ``random_state``), collected to the client (at most ``proposal.max_fit_rows``
rows) and fitted there (:meth:`DomainClassifierRatio.fit_sample`): the same model. Each source
and target partition is then scored on a worker, its fitting-sample rows taking their
out-of-fold logit and the others the fold models' mean (as :meth:`_logit_of_all` does), and
writes its log ratios to ``log_ratio.parquet/part-<i>.parquet``. What needs every row is merged
from the partitions: the constant-feature check, the categories of the tree learners, the
±inf check and the domain AUC (from logit histograms, :mod:`is_core.weights.partitioned`).
The comparison of estimated and logged weights (Spearman, NMSE) is computed on the source
rows of the fitting sample (every row when the window is at most ``max_fit_rows``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from is_core._validation import config_keys
from is_core.config import ColumnsConfig, ProposalConfig
from is_core.data.atomic import json_safe, write_json_atomic, write_parquet_atomic
from is_core.data.io import InputFile
from is_core.data.stage import Inputs
from is_core.engine.cluster import client_for
from is_core.engine.partitions import Partitions, gather_rows, map_partitions, read_partition
from is_core.errors import ProposalFitError
from is_core.weights._design import category_text
from is_core.weights.diagnostics import compare_weights
from is_core.weights.domain import DomainClassifierRatio, constant_summary, merge_constant
from is_core.weights.intervals import proposal_aware_unsupported
from is_core.weights.normalize import logged_propensity_log_ratio
from is_core.weights.partitioned import histogram_auc, score_histogram
from is_core.weights.stage import (
    LOG_RATIO_FILE,
    PROPOSAL_KEYS,
    PROPOSAL_MODEL_FILE,
    ProposalResult,
    _check_proposal_columns,
    _domain_classifier,
    _proposal_summary,
)


def _feature_summary(file: InputFile, index: int, first: int, n: int, numeric: list[str],
                     categorical: list[str], levels: bool, role: str) -> dict[str, Any]:
    """One partition's part of the checks and feature selection that need every row."""
    frame = read_partition(file, [*numeric, *categorical], role)
    values = {c: frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in numeric}
    text = {c: category_text(frame[c]) for c in categorical}
    return {"rows": len(frame),
            "infinite": {c: int(np.isinf(v).sum()) for c, v in values.items()},
            "constant": {**{c: constant_summary(frame[c]) for c in numeric},
                         **{c: constant_summary(t) for c, t in text.items()}},
            "levels": {c: set(pd.unique(t)) for c, t in text.items()} if levels else None}


def _select_features(client: Any, model: DomainClassifierRatio, source: Partitions,
                     target: Partitions, numeric: list[str], categorical: list[str]) -> None:
    """:meth:`DomainClassifierRatio._check_inputs` and ``_select_features`` on the
    partitions' summaries."""
    levels = model.learner in ("xgboost", "auto")
    parts = {p.role: map_partitions(client, p, _feature_summary, numeric, categorical, levels,
                                    p.role) for p in (source, target)}
    for role, summaries in parts.items():
        rows = sum(s["rows"] for s in summaries)
        if rows < model.n_folds:
            raise ProposalFitError(
                f"the {role} sample has {rows} rows, fewer than n_folds={model.n_folds}"
                " (a domain classifier needs rows of both domains)",
                fix=f"check the {role} data for the run's window (it may be empty)",
                details={"role": role, "rows": rows})
        bad = {c: sum(s["infinite"][c] for s in summaries) for c in numeric}
        if any(bad.values()):
            cols = [c for c, k in bad.items() if k]
            raise ProposalFitError(
                f"{sum(bad.values())} {role} row(s) have infinite values in {cols}",
                fix="±inf is a bad value, not a missing one: fix its upstream computation "
                "(or write a missing value, NaN, where the value is unknown); validation "
                "should have caught this", details={"role": role, "columns": cols})
    every = parts["source"] + parts["target"]
    constant = [c for c in [*numeric, *categorical]
                if merge_constant([s["constant"][c] for s in every])]
    constant = [c for c in numeric if c in constant] + [c for c in categorical if c in constant]
    categories = ({c: sorted(set().union(*(s["levels"][c] for s in every)))
                   for c in categorical} if levels else None)
    model.set_features(numeric, categorical, constant, categories)


def _fitted(client: Any, model: DomainClassifierRatio, source: Partitions, target: Partitions,
            numeric: list[str], categorical: list[str]
            ) -> tuple[DomainClassifierRatio, np.ndarray, np.ndarray, np.ndarray]:
    """``model`` fitted on the local engine's fitting sample; the sample's source and target
    rows and their out-of-fold logits."""
    with config_keys(PROPOSAL_KEYS):
        model._check_params()
    _select_features(client, model, source, target, numeric, categorical)
    columns = [*model.numeric_, *model.categorical_]
    fit_source, fit_target = model._fit_rows(source.n_rows, target.n_rows)
    sample = pd.concat([gather_rows(client, source, columns, fit_source)[columns],
                        gather_rows(client, target, columns, fit_target)[columns]],
                       ignore_index=True)
    with config_keys(PROPOSAL_KEYS):
        logit = model.fit_sample(sample, source.n_rows, target.n_rows, len(fit_source))
    return model, fit_source, fit_target, logit


def _score_partition(file: InputFile, index: int, first: int, n: int, models: list[Any],
                     columns: list[str], role: str, logged: dict[str, Any] | None,
                     out_dir: str | None) -> np.ndarray:
    """Score one partition with each fitted model (model, fitted rows, their out-of-fold
    logits); write its log ratios (source); return the first model's logit histogram."""
    frame = read_partition(file, columns, role)
    logits = []
    for model, rows, oof in models:
        inside = (rows >= first) & (rows < first + n)
        logits.append(model._logit_of_all(frame, rows[inside] - first, oof[inside]))
    if out_dir is not None:
        estimated = logits[0] + models[0][0].log_prior_correction_
        table = {"row_id": np.arange(first, first + n, dtype=np.int64), "log_w": estimated}
        if logged is not None:
            log_w = logged_propensity_log_ratio(frame[logged["column"]].to_numpy(),
                                                logged["target_propensity"], logged["column"])
            if len(models) > 1:  # times the context ratio p(u)/q(u)
                log_w = log_w + logits[1] + models[1][0].log_prior_correction_
            table = {"row_id": table["row_id"], "log_w": log_w if logged["uses"] else estimated,
                     "log_w_logged": log_w, "log_w_estimated": estimated}
        write_parquet_atomic(pd.DataFrame(table), Path(out_dir) / LOG_RATIO_FILE
                             / f"part-{index:05d}.parquet")
    return score_histogram(logits[0])


def fit_proposal(proposal: ProposalConfig, columns: ColumnsConfig, inputs: Inputs,
                 out_dir: Path, *, random_state: int, n_jobs: int | None, cluster: str
                 ) -> ProposalResult:
    """:func:`is_core.weights.stage.fit_proposal` on the cluster at ``cluster`` (module
    docstring): the same summary, ``log_ratio.parquet`` a folder of one file per source
    partition (``pandas.read_parquet`` reads it whole)."""
    from is_core.engine.partitions import role_partitions

    started = time.perf_counter()
    _check_proposal_columns(proposal, columns)
    client = client_for(cluster)
    source, target = (role_partitions(client, inputs, r) for r in ("source", "target"))
    has_logged = bool(columns.logging_propensity) and proposal.target_propensity is not None
    uses_logged = has_logged and proposal.learner in ("auto", "logged_propensity")

    def fit(numeric: list[str], categorical: list[str]) -> tuple[Any, ...]:
        model = _domain_classifier(proposal, numeric, categorical, random_state, n_jobs,
                                   uses_logged)
        return _fitted(client, model, source, target, numeric, categorical)

    model, fit_source, fit_target, logit = fit(columns.numeric, columns.categorical)
    fitted = [(model, fit_source, logit[:len(fit_source)])]
    weights_model = None if uses_logged else model
    if uses_logged and proposal.context_features:
        context = proposal.context_features
        weights_model, ctx_source, _, ctx_logit = fit(
            [c for c in columns.numeric if c in context],
            [c for c in columns.categorical if c in context])
        fitted.append((weights_model, ctx_source, ctx_logit[:len(ctx_source)]))
    logged = ({"column": columns.logging_propensity, "uses": uses_logged,
               "target_propensity": proposal.target_propensity} if has_logged else None)
    read = [*columns.features, *([columns.logging_propensity] if has_logged else [])]
    shared = client.scatter(fitted, broadcast=True)
    source_hist = map_partitions(client, source, _score_partition, shared, read, "source",
                                 logged, str(out_dir))
    target_models = client.scatter([(model, fit_target, logit[len(fit_source):])],
                                   broadcast=True)
    target_hist = map_partitions(client, target, _score_partition, target_models,
                                 list(columns.features), "target", None, None)
    model.domain_auc_ = histogram_auc(np.sum(target_hist, axis=0), np.sum(source_hist, axis=0))
    comparison = None
    if logged is not None:
        comparison = _sample_comparison(client, source, columns, proposal, fitted, fit_source,
                                        logit[:len(fit_source)] + model.log_prior_correction_)
    model_path = None if weights_model is None else write_json_atomic(
        json_safe({"linear_state": weights_model.linear_state(),
                   "unsupported": proposal_aware_unsupported(weights_model)}),
        out_dir / PROPOSAL_MODEL_FILE)
    return _proposal_summary(proposal, model, out_dir / LOG_RATIO_FILE, model_path, comparison,
                             time.perf_counter() - started, uses_logged)


def _sample_comparison(client: Any, source: Partitions, columns: ColumnsConfig,
                       proposal: ProposalConfig, fitted: list[Any], fit_source: np.ndarray,
                       estimated: np.ndarray) -> dict[str, float]:
    """Estimated against logged log weights on the fitting sample's source rows."""
    column = str(columns.logging_propensity)
    frame = gather_rows(client, source, [column], fit_source)
    logged = logged_propensity_log_ratio(frame[column].to_numpy(),
                                         proposal.target_propensity or 1.0, column)
    if len(fitted) > 1:
        ctx_model, ctx_rows, ctx_oof = fitted[1]
        logged = logged + ctx_oof + ctx_model.log_prior_correction_
    return compare_weights(estimated, logged)
