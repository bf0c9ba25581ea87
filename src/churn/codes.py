"""Category codes: cleaned categorical columns as integer codes, and their positions among a
column's training categories.

A leaf module (numpy only; pandas only for pandas input and output) shared by the cleaning
step, the compiled scorers and the lookup-table scorer, so none of them imports another to
reach it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Coded:
    """A cleaned categorical column: a code per row into `categories` (text), -1 for missing.

    Scoring works on these directly; a pandas Categorical is built only when a DataFrame is
    asked for, since building one costs more than scoring a few rows.
    """

    codes: np.ndarray
    categories: tuple[str, ...]

    def to_series(self, index: Any) -> pd.Series:
        import pandas as pd  # deferred: only a DataFrame needs it, and scoring never asks for one

        categories = pd.Index(self.categories, dtype="str")
        return pd.Series(pd.Categorical.from_codes(self.codes, categories=categories, validate=False), index=index)

    @classmethod
    def of(cls, values: pd.Series) -> Coded:
        """The codes of a pandas column, as it is (no cleaning)."""
        if getattr(values.dtype, "name", "") == "category":
            return cls(values.cat.codes.to_numpy(), tuple(str(c) for c in values.cat.categories))
        codes, distinct = values.factorize()
        return cls(np.asarray(codes), tuple(str(value) for value in distinct))


def category_codes(values: Coded | pd.Series, categories: Sequence[str], fill: str) -> np.ndarray:
    """Position of each value among the training categories: missing -> `fill`'s, unseen -> -1.

    Only the column's distinct values are looked up, so the cost barely depends on how many
    rows or categories there are.
    """
    coded = values if isinstance(values, Coded) else Coded.of(values)
    positions = _positions(tuple(categories))
    lookup = [positions.get(value, -1) for value in coded.categories]
    lookup.append(positions[str(fill)])
    return np.asarray(lookup, dtype="int64")[coded.codes]


@functools.lru_cache(maxsize=256)
def _positions(categories: tuple[str, ...]) -> dict[str, int]:
    """Each training category's position. Remembered per run's column: keyed on the training
    categories only, never on the values a request or a file brings."""
    return {category: position for position, category in enumerate(categories)}


def unseen_values(values: Coded, categories: Sequence[str]) -> list[str]:
    """The distinct values present in a cleaned column that training never saw."""
    unseen = _unseen(values, categories)
    if not unseen.any():
        return []
    present = np.zeros(len(values.categories) + 1, dtype=bool)
    present[values.codes] = True  # code -1 marks the trailing slot
    return [values.categories[i] for i in np.flatnonzero(unseen & present[:-1])]


def _unseen(values: Coded, categories: Sequence[str]) -> np.ndarray:
    known = _positions(tuple(categories))
    return np.fromiter((value not in known for value in values.categories), bool, len(values.categories))


def count_unseen(values: Coded, categories: Sequence[str]) -> int:
    """How many non-missing values of a cleaned column training never saw."""
    unseen = _unseen(values, categories)
    if not unseen.any():
        return 0
    return int(np.append(unseen, False)[values.codes].sum())
