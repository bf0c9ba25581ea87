"""Category codes: the position of each value among a column's training categories.

A leaf module (numpy and pandas only) shared by the cleaning step, the compiled scorers and
the lookup-table scorer, so none of them imports another to reach it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd


def category_codes(values: pd.Series, categories: Sequence[str], fill: str) -> np.ndarray:
    """Position of each value among the training categories: missing -> `fill`'s, unseen -> -1.

    Each column is hashed once (or already is, as a Categorical) and only its distinct values
    are looked up, so the cost barely depends on how many categories there are.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        value_codes, distinct = values.cat.codes.to_numpy(), values.cat.categories
    else:
        value_codes, distinct = pd.factorize(values)
    return _lookup(tuple(categories), str(fill), tuple(str(value) for value in distinct))[value_codes]


@functools.lru_cache(maxsize=1024)
def _lookup(categories: tuple[str, ...], fill: str, distinct: tuple[str, ...]) -> np.ndarray:
    """For each distinct value its training code (-1 if unseen), then the fill's code for missing.

    Remembered: the chunks of one file almost always hold the same distinct values."""
    known = pd.Index(categories)
    return np.append(known.get_indexer(pd.Index(distinct, dtype=object)), known.get_loc(fill))


def unseen_values(values: pd.Series, categories: Sequence[str]) -> list[str]:
    """The distinct non-missing values of a cleaned categorical column that training never saw."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = values.cat.categories[np.unique(values.cat.codes.to_numpy()[values.cat.codes.to_numpy() >= 0])]
    else:
        present = pd.Index(values.dropna().unique())
    return [str(value) for value in present[~present.isin(list(categories))]]
