r"""The logistic proposal model's design matrix: a numeric basis and one-hot categoricals.

:class:`DomainDesign` turns a frame of features into the matrix the domain classifier's logistic
regression is fitted on. It is fitted once, on the fitting sample of both domains, and shared by
the K fold models: the scalings and the kept category levels use no domain label, so sharing them
leaks nothing about the held-out fold's labels. Because every fold model is linear in the same
design, the fold models' mean logit on a new row is :math:`x^\top \bar\beta + \bar b`, with
:math:`\bar\beta, \bar b` the mean coefficients and intercepts: one matrix-vector product per row
instead of K.

**Numeric basis** (:math:`z = (x - \hat\mu) / \hat\sigma` with the fitting sample's mean and
standard deviation):

- ``"linear"``: :math:`z` (a log-linear density ratio: exact for a Gaussian mean shift);
- ``"quadratic"``: :math:`z` and :math:`z^2`, each standardized again (exact for a Gaussian
  variance shift);
- ``"spline"``: cubic B-splines of :math:`z` with ``n_knots`` quantile knots, extrapolated
  linearly so that weights do not explode off the data (an additive non-linear ratio).

**Categoricals** are one-hot encoded. A missing value is its own level. At most
``max_categories`` columns per feature: when a feature has more levels, the
``max_categories - 1`` most frequent ones are kept and the others share one *infrequent* column,
which also receives levels never seen at fit time; without infrequent levels an unseen level
gets no column (the row sits at the intercept for that feature). This matches scikit-learn's
``OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=...)``.

**Crosses** (``crosses=True``): every pair :math:`(a, b)` of categorical features also gets a
one-hot block of the combined level :math:`(a, b)`, with the same ``max_categories`` cap and
*infrequent* pooling, so that a linear model can represent user × item effects (the logging
ranker's preferences); the pair is factorized as integer codes, never as joined strings.

The output is a CSR matrix built directly from the codes (no intermediate object arrays) when
there are categoricals, a dense float64 array otherwise.
"""

from __future__ import annotations

from itertools import combinations
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.preprocessing import SplineTransformer

from is_core._validation import Basis, check_choice
from is_core.data.features import category_codes
from is_core.errors import ParameterError

MISSING_CATEGORY = "__missing__"


def category_text(column: pd.Series) -> pd.Series:
    """A categorical feature as text, with missing values as the level ``__missing__``."""
    return column.astype("str").where(column.notna(), MISSING_CATEGORY)


def level_codes(column: pd.Series, levels: list[str]) -> np.ndarray:
    """Position of each value of ``column`` (as :func:`category_text`) in ``levels``; -1 when
    it is not one of them."""
    return category_codes(column, levels, missing=int(pd.Index(levels).get_indexer(
        pd.Index([MISSING_CATEGORY]))[0]))


def _standardize(values: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    values -= mean
    values /= scale
    return values


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant)."""
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


class DomainDesign(BaseEstimator):
    """Design matrix of the logistic domain classifier (see the module docstring).

    Parameters
    ----------
    numeric, categorical : list of str
    basis : {"linear", "quadratic", "spline"}, default "linear"
    n_knots : int, default 5
    max_categories : int, default 200
    crosses : bool, default False
        Add a one-hot block per pair of categorical features (see the module docstring).

    Attributes
    ----------
    mean_, scale_ : ndarray
        Standardization of the raw numerics.
    square_mean_, square_scale_ : ndarray
        ``"quadratic"``: standardization of :math:`[z, z^2]`.
    spline_ : SplineTransformer
        ``"spline"``: the fitted spline basis of :math:`z`.
    levels_ : dict of str to list of str
        The one-hot levels kept per categorical column.
    has_infrequent_ : dict of str to bool
        Whether the column has an infrequent column (after its kept levels).
    all_levels_ : dict of str to list of str
        ``crosses=True``: every level seen per categorical column (the codes of the pairs).
    cross_keys_ : dict of (str, str) to ndarray
        ``crosses=True``: the kept pair codes per pair of columns, sorted; ``has_infrequent_``
        holds the pair's pooling flag under the key ``"a*b"``.
    n_numeric_out_, n_features_out_ : int
    """

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None,
                 basis: Basis = "linear", n_knots: int = 5,
                 max_categories: int = 200, crosses: bool = False) -> None:
        self.crosses = crosses
        self.numeric = numeric
        self.categorical = categorical
        self.basis = basis
        self.n_knots = n_knots
        self.max_categories = max_categories

    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn the scalings and the kept levels from ``frame`` (rows of both domains)."""
        check_choice(self.basis, Basis, parameter="basis")
        if self.max_categories < 2:
            raise ParameterError(f"max_categories={self.max_categories!r} must be at least 2",
                                 fix="keep at least 2 one-hot levels per categorical column",
                                 parameter="max_categories")
        numeric = list(self.numeric or [])
        if numeric:
            z = frame[numeric].to_numpy(dtype="float64", copy=True)
            self.mean_, self.scale_ = _moments(z)
            z = _standardize(z, self.mean_, self.scale_)
            if self.basis == "quadratic":
                self.square_mean_, self.square_scale_ = _moments(np.hstack([z, z * z]))
            elif self.basis == "spline":
                self.spline_ = SplineTransformer(
                    n_knots=self.n_knots, degree=3, knots="quantile", extrapolation="linear",
                    include_bias=False).fit(z)
        self.n_numeric_out_ = self._numeric_block(frame.iloc[:1]).shape[1] if numeric else 0
        self.levels_, self.has_infrequent_ = {}, {}
        self.all_levels_ = {}
        for col in self.categorical or []:
            counts = category_text(frame[col]).value_counts(sort=False)
            order = sorted(zip(-counts.to_numpy(), counts.index.astype(str), strict=True))
            levels = [level for _, level in order]
            self.all_levels_[col] = levels
            infrequent = len(levels) > self.max_categories
            self.levels_[col] = levels[:self.max_categories - 1] if infrequent else levels
            self.has_infrequent_[col] = infrequent
        self.cross_keys_ = {}
        for pair in self._pairs():
            keys, pair_counts = np.unique(self._cross_key(frame, pair), return_counts=True)
            infrequent = len(keys) > self.max_categories
            if infrequent:  # the most frequent pairs, ties broken by the smaller code
                top = np.lexsort((keys, -pair_counts))[:self.max_categories - 1]
                keys = np.sort(keys[top])
            self.cross_keys_[pair] = keys
            self.has_infrequent_["*".join(pair)] = infrequent
        self.n_features_out_ = self.n_numeric_out_ + sum(
            len(v) + self.has_infrequent_[c] for c, v in self.levels_.items()) + sum(
            len(v) + self.has_infrequent_["*".join(p)] for p, v in self.cross_keys_.items())
        return self

    def _pairs(self) -> list[tuple[str, str]]:
        return list(combinations(self.categorical or [], 2)) if self.crosses else []

    def _cross_key(self, frame: pd.DataFrame, pair: tuple[str, str]) -> np.ndarray:
        """One integer per row naming the pair of levels (a level unseen at fit time has the
        code ``len(levels)``)."""
        a, b = (level_codes(frame[c], self.all_levels_[c]).astype(np.int64) for c in pair)
        n_a, n_b = (len(self.all_levels_[c]) for c in pair)
        a[a < 0], b[b < 0] = n_a, n_b
        return a * (n_b + 1) + b

    def _coded_blocks(self, frame: pd.DataFrame) -> list[tuple[np.ndarray, int, bool]]:
        """Per one-hot block: each row's column in it (-1: no kept level), its kept levels and
        whether it has an infrequent column."""
        blocks = [(level_codes(frame[col], levels), len(levels), self.has_infrequent_[col])
                  for col, levels in self.levels_.items()]
        for pair, keys in self.cross_keys_.items():
            key = self._cross_key(frame, pair)
            at = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            codes = np.where(keys[at] == key, at, -1)
            blocks.append((codes, len(keys), self.has_infrequent_["*".join(pair)]))
        return blocks

    def _numeric_block(self, frame: pd.DataFrame) -> np.ndarray:
        z = _standardize(frame[list(self.numeric or [])].to_numpy(dtype="float64", copy=True),
                         self.mean_, self.scale_)
        if self.basis == "quadratic":
            return _standardize(np.hstack([z, z * z]), self.square_mean_, self.square_scale_)
        if self.basis == "spline":
            return self.spline_.transform(z)
        return z

    def transform(self, frame: pd.DataFrame) -> np.ndarray | sp.csr_matrix:
        """The design matrix of ``frame``'s rows."""
        n = len(frame)
        dense = self._numeric_block(frame) if self.numeric else np.empty((n, 0))
        if not self.levels_:
            return dense
        blocks = self._coded_blocks(frame)
        p, k = dense.shape[1], dense.shape[1] + len(blocks)
        data = np.ones((n, k))
        data[:, :p] = dense
        indices = np.empty((n, k), dtype=np.int32)
        indices[:, :p] = np.arange(p, dtype=np.int32)
        offset = p
        for j, (codes, n_levels, has_infrequent) in enumerate(blocks):
            unseen = codes < 0
            if has_infrequent:
                codes[unseen] = n_levels
            else:  # no column for it: an explicit zero entry in the feature's first column
                codes[unseen] = 0
                data[unseen, p + j] = 0.0
            indices[:, p + j] = offset + codes
            offset += n_levels + has_infrequent
        indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        return sp.csr_matrix((data.ravel(), indices.ravel(), indptr),
                             shape=(n, self.n_features_out_))
