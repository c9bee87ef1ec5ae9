"""Release: run folders, the model registry and champion/challenger promotion.

``runs`` stages a run and publishes it atomically (and locks its run date); ``registry`` keeps
content-addressed model versions and the ``champion`` alias; ``promotion`` holds the gate's
rules; ``stage`` registers today's challenger and decides.
"""

from is_core.release.promotion import GateCheck, PromotionDecision, decide_promotion
from is_core.release.registry import CHAMPION, AliasRecord, ModelRegistry, ModelVersion
from is_core.release.runs import RunDateLock, RunFolders, check_run_date, run_date_for
from is_core.release.stage import evaluate_promotion, registry_for

__all__ = [
    "AliasRecord",
    "CHAMPION",
    "GateCheck",
    "ModelRegistry",
    "ModelVersion",
    "PromotionDecision",
    "RunDateLock",
    "RunFolders",
    "check_run_date",
    "decide_promotion",
    "evaluate_promotion",
    "registry_for",
    "run_date_for",
]
