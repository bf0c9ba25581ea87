"""Scoring at predict time, kept free of scikit-learn imports so that `predict` starts fast.

A logistic-regression run carries `scorer.json`: its whole fitted pipeline as lookup tables
(imputation values, scaling, one coefficient per numeric column and per training category).
`LinearScorer` evaluates them with numpy; importing and unpickling scikit-learn is skipped,
which saves over a second per run, and nothing is unpickled, so no code runs on load. Other
models load the saved pipeline and score through `churn.compiling.FastScorer`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from churn import runs
from churn.errors import ModelError
from churn.files import sha256_file


class Scorer(Protocol):
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


def predict_labels(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 decisions: 1 where the churn probability reaches the threshold."""
    return (probabilities >= threshold).astype("int8")


def category_codes(values: pd.Series, categories: Any, fill: str) -> np.ndarray:
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


class LinearScorer:
    """A logistic regression pipeline evaluated from its exported lookup tables."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self.tables = tables

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = np.full(len(X), self.tables["intercept"], dtype="float64")
        for item in self.tables["numeric"]:
            values = X[item["column"]].to_numpy(dtype="float64", na_value=np.nan)
            values = np.where(np.isnan(values), item["fill"], values)
            if item["mean"] is not None:
                values = (values - item["mean"]) / item["scale"]
            z += item["coef"] * values
        for item in self.tables["categorical"]:
            codes = category_codes(X[item["column"]], item["categories"], item["fill"])
            weights = np.append(np.asarray(item["coef"], dtype="float64"), 0.0)  # unseen (-1): no effect
            z += weights[codes]
        return 1.0 / (1.0 + np.exp(-z))


def load_scorer(run_dir: Path, metadata: dict[str, Any]) -> Scorer:
    """The fastest faithful scorer of a run: its exported tables, else its hash-checked model."""
    digest = metadata.get("scorer_sha256")
    path = run_dir / runs.SCORER
    if digest and path.is_file():
        if sha256_file(path) != digest:
            raise ModelError(
                f"{path}: sha256 differs from the one recorded at training; the file changed after training"
            )
        return LinearScorer(json.loads(path.read_text(encoding="utf-8")))
    from churn.compiling import FastScorer  # scikit-learn, only for models that need it
    from churn.model import load_model

    return FastScorer(load_model(run_dir / runs.MODEL, metadata.get("model_sha256")))
