"""The pipeline's stages as plain functions over paths and small summaries.

Each function reads what it needs from disk, writes its output into the run's staging folder and
returns a small JSON-able summary. ``tasks/`` wraps each one in a Prefect task (retries, logging,
artifacts) and ``flows/`` chains them; nothing here knows about Prefect, so the same functions can
later run per partition or on a Dask cluster. Large frames never cross a stage boundary.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from is_core.config import IsbenchConfig
from is_core.ctr import WeightedCTRModel
from is_core.diagnostics import WeightGates, compare_weights, enforce_gates, evaluate_gates
from is_core.domain import DomainClassifierRatio
from is_core.errors import ConfigError, DataContractError
from is_core.estimators import bootstrap_estimate, is_estimate, naive_estimate, snis_estimate
from is_core.features import FeatureSpec
from is_core.io import (
    InputFile,
    day_window,
    fingerprint_files,
    json_safe,
    read_input_files,
    release_memory,
    require_columns,
    resolve_input_files,
    write_parquet_atomic,
)
from is_core.metrics import (
    bootstrap_metrics,
    ctr_metrics,
    paired_logloss_difference,
    reliability_curve,
)
from is_core.weights import (
    clip_log_weights,
    diagnose_weights,
    logged_propensity_log_ratio,
    normalize_log_weights,
)

ROLES = ("source", "target", "holdout")
LOG_RATIO_FILE = "log_ratio.parquet"
WEIGHTS_FILE = "weights.parquet"
MODEL_FILE = "model.ubj"
BASELINE_FILE = "baseline_model.ubj"
EVAL_ROWS_FILE = "evaluation_rows.parquet"
PREDICTIONS_FILE = "evaluation_predictions.parquet"  # scratch: the promotion gate reuses it


def role_columns(config: IsbenchConfig, role: str) -> list[str]:
    """The configured columns a ``role``'s files must have."""
    cols = config.columns
    out = list(cols.features)
    if role in ("source", "holdout"):
        out.append(cols.label)
    if cols.impression_id:
        out.append(cols.impression_id)
    if role == "source" and cols.logging_propensity:
        out.append(cols.logging_propensity)
    return out


# ---------------------------------------------------------------------------- load
def locate_inputs(config: IsbenchConfig, run_date: dt.date) -> dict[str, Any]:
    """Resolve each role's files for the window ending at ``run_date``; check their columns.

    Returns per role: files (path, day), row count, the columns present and a SHA-256
    fingerprint of the files' bytes. Raises :class:`DataContractError` naming a missing file,
    partition or column.
    """
    days = day_window(run_date, config.data.window_days)
    summary: dict[str, Any] = {"run_date": run_date.isoformat(),
                               "days": [d.isoformat() for d in days], "roles": {}}
    for role in ROLES:
        if role == "holdout" and config.data.holdout is None:
            continue
        files = resolve_input_files(config.data.path_of(role), days, role, config.data.format)
        required = role_columns(config, role)
        for file in files:
            require_columns(file, required, role)
        summary["roles"][role] = {
            "files": [[str(f.path), f.day.isoformat() if f.day else None] for f in files],
            "fingerprint": fingerprint_files(files),
            "columns": required,
        }
    return summary


def input_files(inputs: dict[str, Any], role: str) -> list[InputFile]:
    """The :class:`InputFile` list of ``role`` from a :func:`locate_inputs` summary."""
    return [InputFile(Path(p), dt.date.fromisoformat(d) if d else None)
            for p, d in inputs["roles"][role]["files"]]


def read_role(inputs: dict[str, Any], role: str, columns: list[str] | None = None
              ) -> pd.DataFrame:
    """Read ``role``'s rows (all configured columns, or ``columns``) in a fixed order."""
    cols = columns if columns is not None else inputs["roles"][role]["columns"]
    return read_input_files(input_files(inputs, role), cols, role=role)


def has_role(inputs: dict[str, Any], role: str) -> bool:
    return role in inputs["roles"]


# ---------------------------------------------------------------------------- proposal
def fit_proposal(config: IsbenchConfig, inputs: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fit the cross-fitted domain classifier; write ``log_ratio.parquet`` (row_id, log_w).

    With ``proposal.target_propensity`` set and logged propensities on the source, the exact
    policy log weights go into the column ``log_w_logged`` and are compared with the estimated
    ones (Spearman, NMSE); with ``learner='logged_propensity'`` they *are* ``log_w``.
    """
    cols, pc = config.columns, config.proposal
    started = time.perf_counter()
    logged = None
    if pc.learner == "logged_propensity" and (cols.logging_propensity is None
                                               or pc.target_propensity is None):
        raise ConfigError(
            "proposal.learner='logged_propensity' needs columns.logging_propensity and "
            "proposal.target_propensity",
            fix="set both, or use learner='logistic'",
        )
    if cols.logging_propensity and pc.target_propensity is not None:
        frame = read_role(inputs, "source", [cols.logging_propensity])
        logged = logged_propensity_log_ratio(frame[cols.logging_propensity].to_numpy(),
                                             pc.target_propensity, cols.logging_propensity)
    source = read_role(inputs, "source", cols.features)
    target = read_role(inputs, "target", cols.features)

    def domain_model(numeric: list[str], categorical: list[str]) -> DomainClassifierRatio:
        return DomainClassifierRatio(
            numeric=numeric, categorical=categorical,
            learner="logistic" if pc.learner == "logged_propensity" else pc.learner,
            n_folds=pc.n_folds, calibration=pc.calibration, numeric_basis=pc.numeric_basis,
            C=pc.C, max_categories=pc.max_categories, n_estimators=pc.n_estimators,
            max_depth=pc.max_depth, n_jobs=config.train.n_jobs,
            random_state=config.random_state, max_fit_rows=pc.max_fit_rows,
        ).fit(source, target)

    model = domain_model(cols.numeric, cols.categorical)
    estimated = model.log_ratio_source_
    if pc.learner == "logged_propensity" and pc.context_features:
        unknown = [c for c in pc.context_features if c not in cols.features]
        if unknown:
            raise ConfigError(f"proposal.context_features {unknown} are not feature columns",
                              fix="list columns of columns.numeric/categorical")
        context = domain_model([c for c in cols.numeric if c in pc.context_features],
                               [c for c in cols.categorical if c in pc.context_features])
        logged = logged + context.log_ratio_source_  # p(u)/q(u) * pi_1/pi_0
    table = {"row_id": np.arange(len(source), dtype=np.int64),
             "log_w": logged if pc.learner == "logged_propensity" else estimated}
    comparison = None
    if logged is not None:
        table["log_w_logged"] = logged
        table["log_w_estimated"] = estimated
        comparison = compare_weights(estimated, logged)
    path = write_parquet_atomic(pd.DataFrame(table), out_dir / LOG_RATIO_FILE)
    return {
        "path": str(path),
        "learner": pc.learner,
        "numeric_basis": getattr(model, "numeric_basis_", pc.numeric_basis),
        "calibration": pc.calibration,
        "n_folds": pc.n_folds,
        "n_source": model.n_source_,
        "n_target": model.n_target_,
        "n_fit_rows": model.n_fit_source_ + model.n_fit_target_,
        "log_prior_correction": model.log_prior_correction_,
        "domain_auc": model.domain_auc_,
        "calibration_slope": model.calibration_slope_,
        "calibration_error": model.calibration_error_,
        "dropped_features": model.dropped_features_,
        "logged_comparison": comparison,
        "seconds": time.perf_counter() - started,
    }


# ---------------------------------------------------------------------------- weights
def compute_weights(
    config: IsbenchConfig, inputs: dict[str, Any], proposal: dict[str, Any], out_dir: Path
) -> dict[str, Any]:
    """Clip and normalize the log weights, diagnose them, estimate the target CTR.

    Writes ``weights.parquet`` (row_id, impression id, dt, raw_weight, clipped_weight,
    final_weight), evaluates the weight gates and raises :class:`WeightDiagnosticsError` when
    one fails; the gates (and warnings) are returned in ``diagnostics`` for the report.
    """
    cols, wc = config.columns, config.weights
    log_w = pd.read_parquet(proposal["path"])["log_w"].to_numpy()
    keep = [cols.label] + ([cols.impression_id] if cols.impression_id else [])
    source = read_role(inputs, "source", keep)
    y = source[cols.label].to_numpy(dtype=float)
    clip = clip_log_weights(log_w, wc.clip, quantile=wc.clip_quantile,
                            max_weight=wc.clip_max_weight, y=y)
    partition = None
    if wc.normalize_per == "day":
        if "dt" not in source.columns:
            raise ConfigError("weights.normalize_per='day' needs day partitions (dt=YYYY-MM-DD)",
                              fix="use hive-partitioned inputs or normalize_per='window'")
        partition = source["dt"].to_numpy()
    final = normalize_log_weights(clip.log_w, partition)
    # clipped SNIS intervals are bias-guarded by the unclipped ones (is_core.estimators)
    unclipped = None if wc.clip == "none" else normalize_log_weights(log_w, partition)
    diagnostics = diagnose_weights(log_w, clip.log_w, final, wc.clip, clip.log_cap,
                                   proposal.get("domain_auc"), proposal.get("logged_comparison"))
    gates = evaluate_gates(diagnostics, WeightGates(min_ess_fraction_fail=wc.min_ess_fraction,
                                                    **wc.gates.model_dump()))
    frame = pd.DataFrame({"row_id": np.arange(len(final), dtype=np.int64)})
    if cols.impression_id:
        frame["impression_id"] = source[cols.impression_id].to_numpy()
    if "dt" in source.columns:
        frame["dt"] = source["dt"].to_numpy()
    frame["raw_weight"] = np.exp(log_w)
    frame["clipped_weight"] = np.exp(clip.log_w)
    frame["final_weight"] = final
    path = write_parquet_atomic(frame, out_dir / WEIGHTS_FILE)
    estimates = {
        "naive": naive_estimate(y).to_dict(),
        "is_raw": is_estimate(y, np.exp(log_w)).to_dict(),
        "snis": snis_estimate(y, final, w_unclipped=unclipped).to_dict(),
        "snis_bootstrap": bootstrap_estimate("snis", y, final, n_boot=200,
                                             random_state=config.random_state,
                                             w_unclipped=unclipped).to_dict(),
    }
    summary = {**diagnostics.to_dict(), "clip": clip.summary(),
               "gates": [g.to_dict() for g in gates],
               "warnings": [g.message for g in gates if g.status == "warn"]}
    enforce_gates(gates, diagnostics)
    return json_safe({"path": str(path), "diagnostics": summary, "target_ctr": estimates})


# ---------------------------------------------------------------------------- training
def train_models(
    config: IsbenchConfig, inputs: dict[str, Any], weights: dict[str, Any], out_dir: Path
) -> dict[str, Any]:
    """Train the weighted CTR model and its unweighted baseline; save both as UBJSON.

    Without a target holdout, a random 10 % of the source rows is kept out of training for
    IS-weighted evaluation (``evaluation_rows.parquet``).
    """
    cols, tc = config.columns, config.train
    source = read_role(inputs, "source", [*cols.features, cols.label])
    final = pd.read_parquet(weights["path"], columns=["final_weight"])["final_weight"].to_numpy()
    if len(final) != len(source):
        raise DataContractError(
            f"weights.parquet has {len(final)} rows but the source has {len(source)}",
            fix="the inputs changed during the run; re-run the date",
        )
    train_rows = np.arange(len(source))
    if not has_role(inputs, "holdout"):
        rng = np.random.default_rng(config.random_state)
        is_eval = rng.random(len(source)) < 0.1
        write_parquet_atomic(pd.DataFrame({"row_id": train_rows[is_eval]}),
                             out_dir / EVAL_ROWS_FILE)
        train_rows = train_rows[~is_eval]
    frame = source if len(train_rows) == len(source) else source.iloc[train_rows]
    del source
    y = frame[cols.label].to_numpy()
    if y.min() == y.max():
        raise DataContractError(
            f"every training label in {cols.label!r} is {y[0]}",
            fix="a CTR model needs clicks and non-clicks: check the label export for the window",
        )
    # Encode the features once for both models (each model's fit then finds them encoded),
    # and let the raw frame go before XGBoost builds its matrices.
    X = FeatureSpec(cols.numeric, cols.categorical).fit(frame).transform(frame)
    del frame
    release_memory()
    params = dict(
        numeric=cols.numeric, categorical=cols.categorical, n_estimators=tc.n_estimators,
        learning_rate=tc.learning_rate, max_depth=tc.max_depth,
        min_child_weight=tc.min_child_weight, max_cat_to_onehot=tc.max_cat_to_onehot,
        early_stopping_rounds=tc.early_stopping_rounds,
        validation_fraction=tc.validation_fraction, n_jobs=tc.n_jobs,
        random_state=config.random_state,
    )
    out: dict[str, Any] = {}
    fingerprints = {r: v["fingerprint"] for r, v in inputs["roles"].items()}
    for name, file, w in (("weighted", MODEL_FILE, final[train_rows]),
                          ("unweighted", BASELINE_FILE, None)):
        started = time.perf_counter()
        model = WeightedCTRModel(**params).fit(X, y, sample_weight=w)
        seconds = time.perf_counter() - started
        path = model.save(out_dir / file, metadata={
            "weighting": "importance" if w is not None else "none",
            "weights_config": config.weights.model_dump(),
            "proposal_config": config.proposal.model_dump(),
            "input_fingerprints": fingerprints,
            "run_date": inputs["run_date"],
        })
        out[name] = {"path": str(path), "best_iteration": model.best_iteration_,
                     "validation_logloss": model.validation_logloss_, "seconds": seconds,
                     "n_train": model.n_train_, "n_valid": model.n_valid_}
    return out


# ---------------------------------------------------------------------------- evaluation
def evaluation_rows(
    config: IsbenchConfig, inputs: dict[str, Any], weights: dict[str, Any], out_dir: Path
) -> tuple[pd.DataFrame, np.ndarray | None, str]:
    """The rows every model of a run is scored on: (frame, sample weights or None, name).

    The labeled target holdout when there is one (unweighted); otherwise the source rows kept
    out of training (``evaluation_rows.parquet``), importance-weighted with the final weights.
    The evaluation stage and the champion/challenger comparison both use this, so they score
    on the same rows.
    """
    cols = config.columns
    if has_role(inputs, "holdout"):
        frame = read_role(inputs, "holdout", [*cols.features, cols.label])
        return frame, None, "target_holdout"
    rows = pd.read_parquet(out_dir / EVAL_ROWS_FILE)["row_id"].to_numpy()
    frame = read_role(inputs, "source", [*cols.features, cols.label]).iloc[rows]
    sample_weight = pd.read_parquet(weights["path"], columns=["final_weight"])[
        "final_weight"].to_numpy()[rows]
    return frame, sample_weight, "source_split_importance_weighted"


EVALUATION_NOTES = {
    "target_holdout": "labeled target holdout rows, unweighted: the metrics are the target "
    "metrics themselves",
    "source_split_importance_weighted": "no target holdout: source rows kept out of training, "
    "importance-weighted with the final weights, so each metric is a self-normalized IS "
    "estimate of its target value (trustworthy only as far as the weights are)",
}


def evaluate_models(
    config: IsbenchConfig, inputs: dict[str, Any], models: dict[str, Any],
    weights: dict[str, Any], out_dir: Path,
) -> dict[str, Any]:
    """Metrics of both models on the target holdout (or IS-weighted on a source split)."""
    cols = config.columns
    frame, sample_weight, on = evaluation_rows(config, inputs, weights, out_dir)
    y = frame[cols.label].to_numpy()
    if y.min() == y.max():
        raise DataContractError(
            f"every evaluation label in {cols.label!r} is {y[0]}",
            fix="AUC needs clicks and non-clicks in the holdout: enlarge data.window_days or "
            "check the holdout export",
        )
    ec = config.evaluation
    metrics: dict[str, Any] = {"evaluated_on": on, "n": int(len(frame)),
                               "evaluation_note": EVALUATION_NOTES[on]}
    predictions = {}
    for name, info in models.items():
        model = WeightedCTRModel.load(info["path"])
        predictions[name] = model.predict_proba(frame)
        metrics[name] = ctr_metrics(y, predictions[name], sample_weight, ec.calibration_bins)
        metrics.setdefault("unseen_category_share", model.feature_spec_.unseen_share(frame))
    write_parquet_atomic(pd.DataFrame(predictions), out_dir / PREDICTIONS_FILE)
    boot = bootstrap_metrics(y, predictions, sample_weight, baseline="unweighted",
                             n_boot=ec.n_boot, level=ec.ci_level, n_bins=ec.calibration_bins,
                             random_state=config.random_state)
    metrics["intervals"] = boot["models"]
    metrics["differences"] = boot["difference"]
    metrics["bootstrap"] = {"n_boot": ec.n_boot, "level": ec.ci_level}
    metrics["reliability"] = {name: reliability_curve(y, p, sample_weight, ec.calibration_bins,
                                                      ec.ci_level)
                              for name, p in predictions.items()}
    w, u = metrics["weighted"], metrics["unweighted"]
    metrics["delta"] = {
        "logloss": paired_logloss_difference(
            y, predictions["weighted"], predictions["unweighted"], sample_weight).to_dict(),
        "auc": w["auc"] - u["auc"],
        "calibration_error": abs(w["calibration_ratio"] - 1) - abs(u["calibration_ratio"] - 1),
    }
    return metrics


def check_run_date(value: str | dt.date) -> dt.date:
    """Parse a run date given as ``YYYY-MM-DD``."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"run date {value!r} is not a date",
                          fix="give it as YYYY-MM-DD, e.g. 2026-11-28") from exc
