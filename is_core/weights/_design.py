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

**Missing numerics** (NaN) get a *missing indicator* plus *mean imputation*, as scikit-learn's
``SimpleImputer(strategy="mean", add_indicator=True)``: :math:`\hat\mu, \hat\sigma` are the
mean and standard deviation of the fitting sample's present values, a missing :math:`x` is
replaced by :math:`\hat\mu` (so :math:`z = 0`) before the basis, and every numeric column
with a missing value in the fitting sample gets a 0/1 column :math:`m_j = [x_j \text{ missing}]`
after the basis block. A row with :math:`x_j` missing thus gets the basis terms of
:math:`z_j = 0` plus the free offset :math:`\beta_{m_j}`: the model learns the log ratio of the
rows where :math:`x_j` is missing (with :math:`x_j` integrated out), while the rows where it is
present are fitted as without missing values. With values missing completely at random at the
same rate in both domains, an additive log ratio and :math:`x_j` independent of the other
features, the fitted log ratio is therefore unchanged in expectation: that of the complete data
where :math:`x_j` is present, and that of the other features alone where it is missing (the
exact ratio of what is observed, since :math:`E_q[w_j(x_j)] = 1`).
A column with no missing value at fit time gets no indicator; a NaN in it at transform time is
imputed alone (it sits at the mean). Transform applies the fitted means and indicators, never
statistics of the rows it transforms.

**Categoricals** are one-hot encoded by their level text
(:func:`is_core.data.features.level_text`: the integer 17 and the text ``"17"`` are one level).
A missing value is its own level, ``__missing__``. At most
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
from is_core.data.features import category_codes, level_text
from is_core.errors import ParameterError

MISSING_CATEGORY = "__missing__"


def category_text(column: pd.Series) -> pd.Series:
    """A categorical feature as its level text (:func:`is_core.data.features.level_text`),
    with missing values as the level ``__missing__``."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    text = np.append(level_text(uniques).to_numpy(dtype=object), MISSING_CATEGORY)
    return pd.Series(text[codes], index=column.index, dtype="str")


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
    """Column means and standard deviations of the present (non-NaN) values: mean 0 where a
    column has none, standard deviation 1 where it is constant or has none."""
    present = ~np.isnan(values)
    count = present.sum(axis=0)
    filled = np.where(present, values, 0.0)
    mean = np.divide(filled.sum(axis=0), count, out=np.zeros(values.shape[1]), where=count > 0)
    square = np.where(present, values - mean, 0.0) ** 2
    var = np.divide(square.sum(axis=0), count, out=np.zeros(values.shape[1]), where=count > 0)
    scale = np.sqrt(var)
    return mean, np.where(scale > 0, scale, 1.0)


def _numeric_values(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The numeric columns as a fresh float64 array, every missing value (NaN, ``pd.NA``) NaN."""
    return frame[columns].to_numpy(dtype="float64", na_value=np.nan, copy=True)


def _impute_standardized(values: np.ndarray, mean: np.ndarray, scale: np.ndarray
                         ) -> np.ndarray:
    r""":math:`z = (x - \hat\mu) / \hat\sigma`, with a missing :math:`x` imputed by
    :math:`\hat\mu` (:math:`z = 0`), in place."""
    values = _standardize(values, mean, scale)
    values[np.isnan(values)] = 0.0
    return values


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
        Standardization of the raw numerics (mean and standard deviation of the present
        values); a missing value is imputed by ``mean_``.
    missing_indicator_ : list of str
        The numeric columns with a missing value in the fitting sample: each has a 0/1
        missing-indicator column after the numeric basis (see the module docstring).
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
        self._fit_numeric(frame)
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

    def _fit_numeric(self, frame: pd.DataFrame) -> None:
        """Learn the numeric basis and the missing indicators (sets ``n_numeric_out_``)."""
        numeric = list(self.numeric or [])
        self.missing_indicator_ = []
        if not numeric:
            self.n_numeric_out_ = 0
            return
        x = _numeric_values(frame, numeric)
        self.missing_indicator_ = [c for c, m in zip(numeric, np.isnan(x).any(axis=0),
                                                     strict=True) if m]
        self.mean_, self.scale_ = _moments(x)
        z = _impute_standardized(x, self.mean_, self.scale_)
        if self.basis == "quadratic":
            self.square_mean_, self.square_scale_ = _moments(np.hstack([z, z * z]))
        elif self.basis == "spline":
            self.spline_ = SplineTransformer(
                n_knots=self.n_knots, degree=3, knots="quantile", extrapolation="linear",
                include_bias=False).fit(z)
        self.n_numeric_out_ = self._numeric_block(frame.iloc[:1]).shape[1]

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
        """The numeric basis of the imputed values, then the missing indicators."""
        numeric = list(self.numeric or [])
        x = _numeric_values(frame, numeric)
        missing = np.isnan(x[:, [numeric.index(c) for c in self.missing_indicator_]])
        z = _impute_standardized(x, self.mean_, self.scale_)
        if self.basis == "quadratic":
            basis = _standardize(np.hstack([z, z * z]), self.square_mean_, self.square_scale_)
        elif self.basis == "spline":
            basis = self.spline_.transform(z)
        else:
            basis = z
        return np.hstack([basis, missing.astype("float64")]) if missing.shape[1] else basis

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
