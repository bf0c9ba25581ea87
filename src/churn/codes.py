"""Category codes: cleaned categorical columns as integer codes, and their positions among a
column's training categories.

A leaf module (numpy and pandas only) shared by the cleaning step, the compiled scorers and
the lookup-table scorer, so none of them imports another to reach it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Coded:
    """A cleaned categorical column: a code per row into `categories` (text), -1 for missing.

    Scoring works on these directly; a pandas Categorical is built only when a DataFrame is
    asked for, since building one costs more than scoring a few rows.
    """

    codes: np.ndarray
    categories: tuple[str, ...]

    def to_series(self, index: pd.Index) -> pd.Series:
        categories = pd.Index(self.categories, dtype="str")
        return pd.Series(pd.Categorical.from_codes(self.codes, categories=categories, validate=False), index=index)

    @classmethod
    def of(cls, values: pd.Series) -> Coded:
        """The codes of a pandas column, as it is (no cleaning)."""
        if isinstance(values.dtype, pd.CategoricalDtype):
            return cls(values.cat.codes.to_numpy(), tuple(str(c) for c in values.cat.categories))
        codes, distinct = pd.factorize(values)
        return cls(codes, tuple(str(value) for value in distinct))


def category_codes(values: Coded | pd.Series, categories: Sequence[str], fill: str) -> np.ndarray:
    """Position of each value among the training categories: missing -> `fill`'s, unseen -> -1.

    Only the column's distinct values are looked up, so the cost barely depends on how many
    categories there are.
    """
    coded = values if isinstance(values, Coded) else Coded.of(values)
    return _lookup(tuple(categories), str(fill), coded.categories)[coded.codes]


@functools.lru_cache(maxsize=1024)
def _lookup(categories: tuple[str, ...], fill: str, distinct: tuple[str, ...]) -> np.ndarray:
    """For each distinct value its training code (-1 if unseen), then the fill's code for missing.

    Remembered: the chunks of one file, and the requests to a service, almost always hold the
    same distinct values."""
    known = pd.Index(categories)
    return np.append(known.get_indexer(pd.Index(distinct, dtype=object)), known.get_loc(fill))


def unseen_values(values: Coded, categories: Sequence[str]) -> list[str]:
    """The distinct values present in a cleaned column that training never saw."""
    unseen = _unseen(tuple(categories), values.categories)
    if not unseen.any():
        return []
    present = np.zeros(len(values.categories) + 1, dtype=bool)
    present[values.codes] = True  # code -1 marks the trailing slot
    return [values.categories[i] for i in np.flatnonzero(unseen & present[:-1])]


@functools.lru_cache(maxsize=1024)
def _unseen(known: tuple[str, ...], categories: tuple[str, ...]) -> np.ndarray:
    return ~pd.Index(categories, dtype=object).isin(known)


def count_unseen(values: Coded, categories: Sequence[str]) -> int:
    """How many non-missing values of a cleaned column training never saw."""
    unseen = _unseen(tuple(categories), values.categories)
    if not unseen.any():
        return 0
    return int(np.append(unseen, False)[values.codes].sum())
