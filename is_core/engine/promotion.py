"""The promotion gate on Dask: the local gate's decision (:mod:`is_core.release.promotion`),
with the challenger and the champion scored on the workers and their paired interval from the
Poisson bootstrap of :mod:`is_core.engine.evaluation`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from is_core.config import ColumnsConfig, EvaluationConfig, PromotionConfig
from is_core.ctr.stage import Evaluation, TrainedModels
from is_core.data.stage import Inputs
from is_core.engine.cluster import client_for
from is_core.engine.evaluation import score_models
from is_core.release.promotion import choose_challenger, decide_promotion
from is_core.release.registry import ModelRegistry
from is_core.release.stage import _compared_champion, _model_path, _register, _version_summary
from is_core.weights.stage import WeightsResult


def evaluate_promotion(
    promotion: PromotionConfig, columns: ColumnsConfig, inputs: Inputs,
    validation: dict[str, Any], weights: WeightsResult, models: TrainedModels,
    evaluation: Evaluation, out_dir: Path, *, registry: ModelRegistry, min_ess_fraction: float,
    evaluation_config: EvaluationConfig, random_state: int, cluster: str,
) -> dict[str, Any]:
    """:func:`is_core.release.stage.evaluate_promotion` on the cluster: the same challenger
    choice, registration and decision."""
    differences = {name: d[promotion.metric] for name, d in evaluation["differences"].items()}
    model, weighting = choose_challenger(promotion, differences)
    challenger = _register(registry, models, inputs, model, weighting.detail)
    champion = _compared_champion(registry, challenger)
    paths = {"challenger": _model_path(models, model)}
    if champion is not None:
        paths["champion"] = str(champion.model_path)
    scored = score_models(client_for(cluster), inputs, columns, evaluation_config,
                          weights["path"], paths, random_state=random_state,
                          baseline="champion" if champion is not None else "challenger")
    chal = {**_version_summary(challenger, scored["point"]["challenger"]), "model": model}
    champ, difference = None, None
    if champion is not None:
        champ = _version_summary(champion, scored["point"]["champion"])
        difference = scored["bootstrap"]["difference"]["challenger"][promotion.metric]
    decision = decide_promotion(
        promotion, min_ess_fraction=min_ess_fraction, validation=validation,
        diagnostics=weights["diagnostics"], challenger=chal, champion=champ,
        evaluated_on=scored["evaluated_on"], n=scored["n"], weighting=weighting,
        weighting_differences=differences, champion_difference=difference,
    ).to_dict()
    decision["registry"] = str(registry.root.resolve())
    return decision
