"""The evaluate stage (and the promotion gate's scoring) on Dask: predictions on the workers,
metrics from mergeable per-partition statistics (:mod:`is_core.ctr.partitioned`: AUC from a
fine histogram of the logits, exact logloss / NE / calibration ratio, ECE over fine-grid
equal-weight bins), and a paired Poisson bootstrap whose replicate sums add up over the
partitions. The evaluation rows are the local engine's: the target holdout (unweighted), or
the source rows kept out of training, importance-weighted with the final weights."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from is_core._validation import Role
from is_core.config import ColumnsConfig, EvaluationConfig
from is_core.ctr import partitioned as cp
from is_core.ctr.metrics import METRICS, _percentile_estimate, row_logloss
from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.stage import EVALUATION_NOTES, Evaluation, TrainedModels, _candidate_table
from is_core.data.features import category_codes
from is_core.data.io import InputFile
from is_core.data.stage import Inputs, has_role
from is_core.engine.cluster import client_for
from is_core.engine.partitions import map_partitions, read_partition, role_partitions
from is_core.engine.training import evaluation_split
from is_core.errors import DataContractError
from is_core.weights.partitioned import snis_from_sums, snis_sums


@functools.lru_cache(maxsize=16)
def _model(path: str, mtime: float) -> WeightedCTRModel:
    """A worker's copy of a saved model (loaded once per file version)."""
    return WeightedCTRModel.load(path)


def _rows(file: InputFile, index: int, first: int, n: int, role: str, columns: list[str],
          weights_dir: str | None, random_state: int) -> tuple[pd.DataFrame, np.ndarray]:
    """One partition's evaluation rows and their weights."""
    frame = read_partition(file, columns, role)
    if weights_dir is None:
        return frame, np.ones(len(frame))
    keep = evaluation_split(random_state, first, n)
    final = pd.read_parquet(Path(weights_dir) / f"part-{index:05d}.parquet",
                            columns=["final_weight"])["final_weight"].to_numpy()
    return frame.loc[keep].reset_index(drop=True), final[keep]


def _partition_stats(file: InputFile, index: int, first: int, n: int, role: str,
                     columns: list[str], label: str, models: dict[str, str],
                     weights_dir: str | None, random_state: int, baseline: str,
                     edges: dict[str, np.ndarray] | None, n_boot: int) -> dict[str, Any]:
    """One partition's statistics of every model: binned sums and paired logloss differences
    (``edges`` None), or its bootstrap replicate sums (given the calibration bins' edges)."""
    frame, w = _rows(file, index, first, n, role, columns, weights_dir, random_state)
    y = frame[label].to_numpy(dtype=float)
    loaded = {name: _model(path, Path(path).stat().st_mtime) for name, path in models.items()}
    p = {name: model.predict_proba(frame) for name, model in loaded.items()}
    if edges is not None:
        groups = {name: (cp.calibration_of_fine_bins(edges[name])[
            cp.logit_bins(q, cp.FINE_BINS)], len(edges[name]) + 1) for name, q in p.items()}
        rng = np.random.default_rng([random_state, 7, index])
        return cp.replicate_sums(y, p, w, groups, n_boot, rng)
    spec = next(iter(loaded.values())).feature_spec_
    unseen = {}
    for col in spec.categorical:
        codes = category_codes(frame[col], spec.categories[col], missing=-2)
        unseen[col] = np.array([np.count_nonzero(codes != -2), np.count_nonzero(codes == -1)])
    base = row_logloss(y, p[baseline]) if baseline in p else None
    return {"models": {name: cp.binned_sums(y, q, w) for name, q in p.items()},
            "pairs": {name: snis_sums(row_logloss(y, q) - base, w) for name, q in p.items()
                      if base is not None and name != baseline},
            "unseen": unseen, "labels": np.array([y.sum(), y.size])}


def score_models(client: Any, inputs: Inputs, columns: ColumnsConfig,
                 evaluation: EvaluationConfig, weights_path: str, models: dict[str, str], *,
                 random_state: int, baseline: str) -> dict[str, Any]:
    """Every model of ``models`` (name: UBJSON path) on the evaluation rows: point metrics,
    reliability curves, paired bootstrap intervals (``bootstrap_metrics``' structure, against
    ``baseline``), the delta-method paired logloss differences, unseen-category shares."""
    holdout = has_role(inputs, "holdout")
    role = "holdout" if holdout else "source"
    parts = role_partitions(client, inputs, cast(Role, role))
    args = (role, [*columns.features, columns.label], columns.label, models,
            None if holdout else weights_path, random_state, baseline)
    stats = map_partitions(client, parts, _partition_stats, *args, None, evaluation.n_boot)
    clicks, rows = np.sum([s["labels"] for s in stats], axis=0)
    if clicks in (0, rows):
        raise DataContractError(f"every evaluation label in {columns.label!r} is "
                                f"{int(clicks > 0)}", fix="AUC needs clicks and non-clicks in "
                                "the holdout: enlarge data.window_days or check the holdout "
                                "export")
    bins, level = evaluation.calibration_bins, evaluation.ci_level
    merged = {n: cp.merge_sums([s["models"][n] for s in stats]) for n in models}
    point = {n: cp.point_metrics(merged[n], bins) for n in models}
    edges = {n: cp.calibration_edges(merged[n], bins) for n in models}
    boot_parts = map_partitions(client, parts, _partition_stats, *args, edges,
                                evaluation.n_boot)
    draws = {}
    for n in models:
        boot = cp.merge_sums([b[n] for b in boot_parts])
        draws[n] = cp.replicate_metrics(boot, point[n]["auc"] - cp.coarse_auc(merged[n]))
        draws[n]["calibration_error"] = np.abs(draws[n]["calibration_ratio"] - 1.0)
    metrics = (*METRICS, "calibration_error")
    value = {n: {**point[n], "calibration_error": abs(point[n]["calibration_ratio"] - 1.0)}
             for n in models}
    boot_out: dict[str, Any] = {
        "models": {n: {m: _percentile_estimate(m, value[n][m], draws[n][m], level)
                       for m in metrics} for n in models},
        "n_boot": evaluation.n_boot, "level": level,
        "difference": {n: {m: _percentile_estimate(m, value[n][m] - value[baseline][m],
                                                   draws[n][m] - draws[baseline][m], level)
                           for m in metrics} for n in models if n != baseline}}
    pairs = {}
    for n in models:
        if n != baseline:
            est = snis_from_sums(np.sum([s["pairs"][n] for s in stats], axis=0), level)
            pairs[n] = {"estimator": "logloss_difference", "value": est.value,
                        "std_error": est.std_error, "ci_low": est.ci_low,
                        "ci_high": est.ci_high, "level": level}
    unseen = {c: np.sum([s["unseen"][c] for s in stats], axis=0)
              for c in (stats[0]["unseen"] if stats else {})}
    return {"point": point, "bootstrap": boot_out, "pairs": pairs, "n": int(rows),
            "evaluated_on": "target_holdout" if holdout else "source_split_importance_weighted",
            "reliability": {n: cp.reliability(merged[n], bins, level) for n in models},
            "unseen": {c: float(k[1] / k[0]) if k[0] else 0.0 for c, k in unseen.items()}}


def evaluate_models(evaluation: EvaluationConfig, columns: ColumnsConfig, inputs: Inputs,
                    models: TrainedModels, weights: Any, out_dir: Path, *, random_state: int,
                    cluster: str) -> Evaluation:
    """:func:`is_core.ctr.stage.evaluate_models` on the cluster (module docstring)."""
    from is_core.ctr.stage import candidate_names

    paths: dict[str, str] = {}
    for name in candidate_names(models):
        entry = models[name]
        assert entry is not None  # candidate_names lists the trained ones
        paths[name] = entry["path"]
    out = score_models(client_for(cluster), inputs, columns, evaluation, weights["path"], paths,
                       random_state=random_state, baseline="unweighted")
    scored, boot = out["point"], out["bootstrap"]
    w, u = scored["weighted"], scored["unweighted"]
    on = out["evaluated_on"]
    return Evaluation(
        evaluated_on=on, n=out["n"], evaluation_note=EVALUATION_NOTES[on],
        weighted=w, unseen_category_share=out["unseen"], unweighted=u,
        intervals=boot["models"], differences=boot["difference"],
        candidates=_candidate_table(scored, boot),
        bootstrap={"n_boot": evaluation.n_boot, "level": evaluation.ci_level},
        reliability=out["reliability"],
        delta={"logloss": out["pairs"]["weighted"], "auc": w["auc"] - u["auc"],
               "calibration_error": abs(w["calibration_ratio"] - 1)
               - abs(u["calibration_ratio"] - 1)})
