"""The promotion-gate stage: pick today's challenger (the weighted model when the weighting
paid, else the unweighted baseline), register it, re-score the champion on the same rows, and
decide (:func:`is_core.release.promotion.decide_promotion`) whether it replaces it.

Nothing here moves the ``champion`` alias: the flow does that inside a transaction, together
with the publication of the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from is_core.config import ColumnsConfig, EvaluationConfig, PromotionConfig
from is_core.ctr.metrics import bootstrap_metrics, ctr_metrics
from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.stage import (
    PREDICTIONS_FILE,
    Evaluation,
    TrainedModels,
    evaluation_rows,
)
from is_core.data.stage import Inputs
from is_core.release.promotion import choose_challenger, decide_promotion
from is_core.release.registry import CHAMPION, ModelRegistry, ModelVersion
from is_core.weights.stage import WeightsResult


def registry_for(promotion: PromotionConfig, output_root: str | Path) -> ModelRegistry:
    """The model registry the promotion config writes to (under ``output_root`` by default)."""
    return ModelRegistry(promotion.registry_root(str(output_root)))


def _version_summary(version: ModelVersion, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"version": version.version, "digest": version.digest, "run_date": version.run_date,
            "metrics": metrics}


def _evaluation_predictions(out_dir: Path, n_rows: int) -> pd.DataFrame | None:
    """The evaluate stage's predictions of today's candidates on the same evaluation rows
    (``evaluation_predictions.parquet``), or None when absent or not of ``n_rows`` rows."""
    path = Path(out_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    scored = pd.read_parquet(path)
    if len(scored) != n_rows or not {"weighted", "unweighted"} <= set(scored.columns):
        return None
    return scored


def _compared_champion(registry: ModelRegistry, challenger: ModelVersion
                       ) -> ModelVersion | None:
    """The champion to compare with: the current one, or, when the challenger already *is*
    the champion (a re-run of the date that promoted it), the one it replaced."""
    current = registry.alias(CHAMPION)
    if current is None:
        return None
    already = current.version == challenger.version
    compared = current.previous if already else current.version
    return registry.get(compared) if compared else None


def _today_prediction(out_dir: Path, frame: pd.DataFrame, models: TrainedModels, name: str
                      ) -> np.ndarray:
    """Today's candidate ``name``'s predictions: the evaluate stage's, or scored anew."""
    scored = _evaluation_predictions(out_dir, len(frame))
    if scored is not None and name in scored.columns:
        return scored[name].to_numpy()
    return WeightedCTRModel.load(_model_path(models, name)).predict_proba(frame)


def _model_path(models: TrainedModels, name: str) -> str:
    entry = {"weighted": models["weighted"], "unweighted": models["unweighted"],
             "recalibrated": models["recalibrated"]}[name]
    if entry is None:
        raise KeyError(f"no {name} model was trained")
    return entry["path"]


#: The registry card's ``weighting`` for each candidate.
CARD_WEIGHTING = {"weighted": "importance", "recalibrated": "recalibration",
                  "unweighted": "not applied"}


def _register(registry: ModelRegistry, models: TrainedModels, inputs: Inputs, model: str,
              weighting_detail: str) -> ModelVersion:
    """Register today's chosen model; its card says how the weighting was applied, and why."""
    card: dict[str, Any] = {
        "input_fingerprints": {r: v["fingerprint"] for r, v in inputs["roles"].items()},
        "candidate": model, "weighting": CARD_WEIGHTING[model],
        "weighting_reason": weighting_detail}
    version, _ = registry.register(_model_path(models, model), run_date=inputs["run_date"],
                                   card=card)
    return version


def evaluate_promotion(
    promotion: PromotionConfig, columns: ColumnsConfig, inputs: Inputs,
    validation: dict[str, Any], weights: WeightsResult, models: TrainedModels,
    evaluation: Evaluation, out_dir: Path, *, registry: ModelRegistry, min_ess_fraction: float,
    evaluation_config: EvaluationConfig, random_state: int,
) -> dict[str, Any]:
    """Pick, register and judge today's challenger; decide whether it replaces the champion.

    The challenger is the best weighting candidate (weighted, recalibrated) that is
    non-inferior to the unweighted baseline on the evaluate stage's paired bootstrap intervals
    (``evaluation['differences']``, the numbers of the report), else the baseline.
    Registration is idempotent (same model bytes → same version). The champion is re-scored
    with the challenger on :func:`is_core.ctr.stage.evaluation_rows`, and the paired bootstrap
    of their difference uses the evaluate stage's settings. Returns the decision as a
    JSON-able dict (``registry`` added). Moving the alias when the challenger already is the
    champion is a no-op.
    """
    differences = {name: d[promotion.metric] for name, d in evaluation["differences"].items()}
    model, weighting = choose_challenger(promotion, differences)
    challenger = _register(registry, models, inputs, model, weighting.detail)
    champion = _compared_champion(registry, challenger)
    frame, sample_weight, on = evaluation_rows(columns, inputs, weights, out_dir)
    y = frame[columns.label].to_numpy()
    p_chal = _today_prediction(out_dir, frame, models, model)
    chal = {**_version_summary(challenger, ctr_metrics(y, p_chal, sample_weight)),
            "model": model}
    champ, difference = None, None
    if champion is not None:
        p_champ = WeightedCTRModel.load(champion.model_path).predict_proba(frame)
        champ = _version_summary(champion, ctr_metrics(y, p_champ, sample_weight))
        boot = bootstrap_metrics(y, {"challenger": p_chal, "champion": p_champ}, sample_weight,
                                 baseline="champion", n_boot=evaluation_config.n_boot,
                                 level=evaluation_config.ci_level,
                                 n_bins=evaluation_config.calibration_bins,
                                 random_state=random_state)
        difference = boot["difference"]["challenger"][promotion.metric]
    decision = decide_promotion(
        promotion, min_ess_fraction=min_ess_fraction, validation=validation,
        diagnostics=weights["diagnostics"], challenger=chal, champion=champ, evaluated_on=on,
        n=int(len(y)), weighting=weighting, weighting_differences=differences,
        champion_difference=difference,
    ).to_dict()
    decision["registry"] = str(registry.root.resolve())
    return decision
