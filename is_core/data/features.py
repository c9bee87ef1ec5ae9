"""Feature frames with stable categorical encodings.

XGBoost's native categorical support encodes a ``category`` column by its category *codes*, so the
training and scoring frames must share one category list per column. :class:`FeatureSpec` records
those lists at training time (they go into the model metadata) and applies them later; a category
unseen at training becomes missing (NaN), which XGBoost routes down its learned default branch.

**Level text.** A categorical may be stored as text, integers, booleans or a pandas ``category``;
each value is coded by its *level text* (:func:`level_text`), so that the integer 17, the float
17.0 (an integer column with nulls, as pandas reads it) and the text ``"17"`` are one level
wherever codes are computed (this spec, the proposal model's design, the validation's unseen-
category check). A missing value is never a level text: it is missing (here: XGBoost's missing
value; in the proposal model: its own level).

**Missing numerics** are NaN; XGBoost takes them natively. ±inf is a bad value, not a missing
one (:func:`finite_numeric_mask`).
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
        self.categories = {col: category_levels(frame[col]) for col in self.categorical}
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
            codes = category_codes(frame[col], self.categories[col], missing=-2)
            present = codes != -2
            shares[col] = float((codes[present] == -1).mean()) if present.any() else 0.0
        return shares

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical,
                "categories": self.categories}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSpec:
        return cls(list(raw["numeric"]), list(raw["categorical"]), dict(raw["categories"]))


def level_text(values: pd.Index | pd.Series | pd.api.extensions.ExtensionArray | np.ndarray
               ) -> pd.Index:
    """The level text of each value of a categorical feature (no value may be missing).

    Text stays as is; integers, and floats that are whole numbers, print as integers (17,
    ``np.int8(17)`` and 17.0 all become ``"17"``); booleans print as ``"True"``/``"False"``; a
    pandas ``category`` is the text of its categories; any other value is ``str(value)``. Called
    on the distinct values of a column (after :func:`pandas.factorize`), never on every row.
    """
    index = pd.Index(values)
    if isinstance(index.dtype, pd.CategoricalDtype):
        return level_text(pd.Index(index.categories).take(np.asarray(index.codes)))
    if (pd.api.types.infer_dtype(index, skipna=False) in ("string", "empty")
            or pd.api.types.is_bool_dtype(index.dtype)
            or pd.api.types.is_integer_dtype(index.dtype)):
        return index.astype("str")  # str() of each value already is its level text
    return pd.Index([_one_level_text(v) for v in index.to_numpy(dtype=object)], dtype="str")


_EXACT_INTEGER_FLOAT = 2.0**53
"""Floats below this size are exact integers when whole (doubles have 53 mantissa bits)."""


def _one_level_text(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if (isinstance(value, float | np.floating) and float(value).is_integer()
            and abs(float(value)) < _EXACT_INTEGER_FLOAT):
        return str(int(value))
    return str(value)


def category_levels(column: pd.Series) -> list[str]:
    """The sorted distinct level texts (:func:`level_text`) of ``column``'s present values."""
    _, uniques = pd.factorize(column, use_na_sentinel=True)
    return sorted(set(level_text(uniques)))


def category_codes(column: pd.Series, categories: list[str], missing: int = -1
                   ) -> NDArray[np.int32]:
    """Position of each value of ``column`` (as its :func:`level_text`) in ``categories``: -1
    when it is not one of them, ``missing`` when it is missing. Each distinct value is looked up
    once (factorize first, 8x faster than looking up every row's text)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    position = pd.Index(categories).get_indexer(level_text(uniques))
    return np.append(position, missing).astype(np.int32)[codes]  # factorize's -1 → missing


def finite_numeric_mask(frame: pd.DataFrame, numeric: list[str], allow_missing: bool = False
                        ) -> np.ndarray:
    """Rows whose numeric features are all finite, a column at a time.

    ±inf always fails (a bad value: an overflow or a division by zero upstream); a missing value
    (NaN, ``pd.NA``) fails unless ``allow_missing``, under which it is missing, not bad.
    """
    mask = np.ones(len(frame), dtype=bool)
    for col in numeric:
        values = frame[col].to_numpy(dtype="float64", na_value=np.nan)
        mask &= np.isfinite(values) | (allow_missing & np.isnan(values))
    return mask
