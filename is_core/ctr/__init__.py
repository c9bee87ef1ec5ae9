"""The CTR models: the weighted XGBoost model, its metrics, and the train and evaluate stages.

``model`` is :class:`WeightedCTRModel` (saved as UBJSON with metadata); ``metrics`` AUC,
logloss, NE, ECE and the calibration ratio, weighted or not, with bootstrap intervals and paired
differences; ``sampling`` importance subsampling of the training rows (negative downsampling,
loss-proportional sampling) with unbiasing weights; ``stage`` trains the weighted model and its
unweighted baseline and scores both.
"""

from is_core.ctr.metrics import (
    bootstrap_metrics,
    ctr_metrics,
    paired_logloss_difference,
    reliability_curve,
)
from is_core.ctr.model import WeightedCTRModel
from is_core.ctr.sampling import ImportanceSubsampler
from is_core.ctr.stage import (
    MODEL_NAMES,
    Evaluation,
    SamplingSummary,
    TrainedModel,
    TrainedModels,
    evaluate_models,
    evaluation_rows,
    train_models,
)

__all__ = [
    "Evaluation",
    "ImportanceSubsampler",
    "MODEL_NAMES",
    "SamplingSummary",
    "TrainedModel",
    "TrainedModels",
    "WeightedCTRModel",
    "bootstrap_metrics",
    "ctr_metrics",
    "evaluate_models",
    "evaluation_rows",
    "paired_logloss_difference",
    "reliability_curve",
    "train_models",
]
