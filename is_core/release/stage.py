"""The promotion-gate stage: register today's challenger, re-score the champion on the same
rows, and decide (:func:`is_core.release.promotion.decide_promotion`) whether it replaces it.

Nothing here moves the ``champion`` alias: the flow does that inside a transaction, together
with the publication of the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from is_core.config import ColumnsConfig, PromotionConfig
from is_core.ctr.metrics import ctr_metrics, paired_logloss_difference
from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.stage import PREDICTIONS_FILE, TrainedModels, evaluation_rows
from is_core.data.stage import Inputs
from is_core.release.promotion import decide_promotion
from is_core.release.registry import CHAMPION, ModelRegistry, ModelVersion
from is_core.weights.stage import WeightsResult


def registry_for(promotion: PromotionConfig, output_root: str | Path) -> ModelRegistry:
    """The model registry the promotion config writes to (under ``output_root`` by default)."""
    return ModelRegistry(promotion.registry_root(str(output_root)))


def _version_summary(version: ModelVersion, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"version": version.version, "digest": version.digest, "run_date": version.run_date,
            "metrics": metrics}


def _evaluation_predictions(out_dir: Path, n_rows: int) -> pd.DataFrame | None:
    """The evaluate stage's predictions of today's two models on the same evaluation rows
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


def _today_predictions(out_dir: Path, frame: pd.DataFrame, challenger: ModelVersion,
                       models: TrainedModels) -> tuple[np.ndarray, np.ndarray]:
    """The challenger's and the baseline's predictions: the evaluate stage's, or scored anew."""
    scored = _evaluation_predictions(out_dir, len(frame))
    if scored is not None:
        return scored["weighted"].to_numpy(), scored["unweighted"].to_numpy()
    return (WeightedCTRModel.load(challenger.model_path).predict_proba(frame),
            WeightedCTRModel.load(models["unweighted"]["path"]).predict_proba(frame))


def evaluate_promotion(
    promotion: PromotionConfig, columns: ColumnsConfig, inputs: Inputs,
    validation: dict[str, Any], weights: WeightsResult, models: TrainedModels, out_dir: Path,
    *, registry: ModelRegistry, min_ess_fraction: float,
) -> dict[str, Any]:
    """Register today's weighted model and decide whether it replaces the champion.

    Registration is idempotent (same model bytes → same version). The champion is re-scored
    with the challenger on :func:`is_core.ctr.stage.evaluation_rows`. Returns the decision as a
    JSON-able dict (``baseline`` and ``registry`` added). Moving the alias when the challenger
    already is the champion is a no-op, so the caller need not check.
    """
    challenger, _ = registry.register(
        models["weighted"]["path"], run_date=inputs["run_date"],
        card={"input_fingerprints": {r: v["fingerprint"] for r, v in inputs["roles"].items()},
              "weighting": "importance"},
    )
    champion = _compared_champion(registry, challenger)
    frame, sample_weight, on = evaluation_rows(columns, inputs, weights, out_dir)
    y = frame[columns.label].to_numpy()
    p_chal, p_base = _today_predictions(out_dir, frame, challenger, models)
    chal = _version_summary(challenger, ctr_metrics(y, p_chal, sample_weight))
    champ, difference = None, None
    if champion is not None:
        p_champ = WeightedCTRModel.load(champion.model_path).predict_proba(frame)
        champ = _version_summary(champion, ctr_metrics(y, p_champ, sample_weight))
        difference = paired_logloss_difference(y, p_chal, p_champ, sample_weight).to_dict()
    baseline = ({"metrics": ctr_metrics(y, p_base, sample_weight)}
                if promotion.require_weighting_not_worse else None)
    decision = decide_promotion(
        promotion, min_ess_fraction=min_ess_fraction,
        validation=validation, diagnostics=weights["diagnostics"], challenger=chal,
        champion=champ, evaluated_on=on, n=int(len(y)), logloss_difference=difference,
        baseline=baseline,
    ).to_dict()
    decision["baseline"] = baseline
    decision["registry"] = str(registry.root.resolve())
    return decision
