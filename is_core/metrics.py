r"""CTR model metrics on labeled rows, optionally importance-weighted.

* AUC (ROC), logloss :math:`-\frac{1}{\sum w}\sum w_i [y_i \log p_i + (1-y_i)\log(1-p_i)]`,
* calibration ratio :math:`\sum w_i p_i / \sum w_i y_i` (mean prediction over observed CTR;
  1 is calibrated, > 1 over-predicts).

Predictions are clipped to :math:`[10^{-7}, 1 - 10^{-7}]` inside logloss only, so a prediction of
exactly 0 or 1 costs a large finite loss instead of infinity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from is_core.estimators import Estimate, snis_estimate

PROB_EPS = 1e-7


def ctr_metrics(
    y: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None = None
) -> dict[str, Any]:
    """AUC, logloss, calibration ratio, mean prediction and observed CTR of predictions ``p``."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    observed = float(w @ y / w.sum())
    mean_pred = float(w @ p / w.sum())
    both_classes = 0 < y.sum() < y.size
    return {
        "n": int(y.size),
        "auc": float(roc_auc_score(y, p, sample_weight=w)) if both_classes else float("nan"),
        "logloss": float(log_loss(y, np.clip(p, PROB_EPS, 1 - PROB_EPS), sample_weight=w,
                                  labels=[0, 1])),
        "calibration_ratio": mean_pred / observed if observed > 0 else float("nan"),
        "mean_prediction": mean_pred,
        "observed_ctr": observed,
    }


def row_logloss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row logloss :math:`-[y \\log p + (1-y) \\log(1-p)]` (``p`` clipped as above)."""
    p = np.clip(np.asarray(p, dtype=float), PROB_EPS, 1 - PROB_EPS)
    y = np.asarray(y, dtype=float)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def paired_logloss_difference(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, sample_weight: np.ndarray | None = None,
    level: float = 0.95,
) -> Estimate:
    """Mean logloss of ``p_a`` minus that of ``p_b`` on the same rows, with a CI.

    The rows are paired, so the interval comes from the per-row differences
    :math:`d_i = \\ell(y_i, p_{a,i}) - \\ell(y_i, p_{b,i})`: their (weighted) mean with the
    delta-method standard error of :func:`is_core.estimators.snis_estimate`. Negative means
    ``p_a`` is better.
    """
    d = row_logloss(y, p_a) - row_logloss(y, p_b)
    w = np.ones_like(d) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    est = snis_estimate(d, w, level=level)
    return Estimate("logloss_difference", est.value, est.std_error, est.ci_low, est.ci_high, level)
