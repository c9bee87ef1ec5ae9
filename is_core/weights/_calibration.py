"""Calibration maps of the domain classifier's scores, kept in log-odds.

``"sigmoid"`` (Platt 1999) fits a logistic regression of the domain label on the score;
``"isotonic"`` (Zadrozny & Elkan 2002) fits a monotone step function, whose probabilities are
turned back into logits with the one documented clip of :func:`_isotonic_logit`. The domain
classifier cross-fits these maps (:class:`is_core.weights.domain.DomainClassifierRatio`).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

Calibrator: TypeAlias = LogisticRegression | IsotonicRegression


def fit_calibrator(method: str, score: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit the ``"sigmoid"`` (Platt) or ``"isotonic"`` map from classifier scores to ``y``."""
    if method == "sigmoid":
        return LogisticRegression(C=1e6, max_iter=1000).fit(score[:, None], y)
    isotonic = IsotonicRegression(out_of_bounds="clip").fit(score, y)
    isotonic.n_fit_ = len(score)
    return isotonic


def apply_calibrator(calibrator: Calibrator, score: np.ndarray) -> np.ndarray:
    """The calibrated logit of each score."""
    if isinstance(calibrator, LogisticRegression):
        return calibrator.decision_function(score[:, None])
    return _isotonic_logit(calibrator, score)


def _isotonic_logit(calibrator: IsotonicRegression, score: np.ndarray) -> np.ndarray:
    """Logit of an isotonic probability, clipped to :math:`[1/(m+1), m/(m+1)]`.

    An isotonic fit reaches exactly 0 or 1 on its extreme blocks, whose logit (hence weight) is
    infinite; ``m`` is the number of rows the map was fitted on, so the clip is the smallest
    probability those rows can resolve. This is the one place a probability is clipped.
    """
    eps = 1.0 / (calibrator.n_fit_ + 1)
    p = np.clip(calibrator.predict(score), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)
