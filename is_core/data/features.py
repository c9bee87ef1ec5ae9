"""Feature frames with stable categorical encodings.

XGBoost's native categorical support encodes a ``category`` column by its category *codes*, so the
training and scoring frames must share one category list per column. :class:`FeatureSpec` records
those lists at training time (they go into the model metadata) and applies them later; a category
unseen at training becomes missing (NaN), which XGBoost routes down its learned default branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray


@dataclass
class FeatureSpec:
    """Numeric and categorical feature columns with the training categories of each."""

    numeric: list[str]
    categorical: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def fit(self, frame: pd.DataFrame) -> FeatureSpec:
        """Record the sorted categories of each categorical column seen in ``frame``."""
        self.categories = {
            col: sorted(map(str, pd.unique(frame[col].dropna()))) for col in self.categorical
        }
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Numeric columns as float32 and categoricals as ``category`` with the fitted levels.

        A frame this spec already encoded is returned as is (column subset, no copy).
        """
        if self._encoded(frame):
            return frame[self.columns]
        out: dict[str, pd.Series | pd.Categorical[str]] = {}
        for col in self.numeric:
            out[col] = pd.to_numeric(frame[col], errors="raise").astype("float32")
        for col in self.categorical:
            # Unseen categories become missing (code -1); XGBoost sends missing values down
            # each split's default branch.
            out[col] = pd.Categorical.from_codes(category_codes(frame[col], self.categories[col]),
                                                 categories=pd.Index(self.categories[col]))
        return pd.DataFrame(out, index=frame.index)

    def _encoded(self, frame: pd.DataFrame) -> bool:
        dtypes = frame.dtypes
        return all(dtypes[c] == np.float32 for c in self.numeric) and all(
            isinstance(dtypes[c], pd.CategoricalDtype)
            and list(dtypes[c].categories) == self.categories[c] for c in self.categorical)

    def unseen_share(self, frame: pd.DataFrame) -> dict[str, float]:
        """Share of non-null values of each categorical column that were unseen at fit time."""
        shares = {}
        for col in self.categorical:
            values = frame[col].dropna().astype("str")
            known = values.isin(self.categories[col])
            shares[col] = float(1.0 - known.mean()) if len(values) else 0.0
        return shares

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical,
                "categories": self.categories}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSpec:
        return cls(list(raw["numeric"]), list(raw["categorical"]), dict(raw["categories"]))


def category_codes(column: pd.Series, categories: list[str], missing: int = -1
                   ) -> NDArray[np.int32]:
    """Position of each value of ``column`` (as text) in ``categories``: -1 when it is not one
    of them, ``missing`` when it is missing. Each distinct value is looked up once (factorize
    first, 8x faster than looking up every row's text)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    position = pd.Index(categories).get_indexer(pd.Index(uniques).astype("str"))
    return np.append(position, missing).astype(np.int32)[codes]  # factorize's -1 → missing


def finite_numeric_mask(frame: pd.DataFrame, numeric: list[str]) -> np.ndarray:
    """Rows whose numeric features are all finite (no NaN, no ±inf), a column at a time."""
    mask = np.ones(len(frame), dtype=bool)
    for col in numeric:
        mask &= np.isfinite(frame[col].to_numpy(dtype="float64", na_value=np.nan))
    return mask
