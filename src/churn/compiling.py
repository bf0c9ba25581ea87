"""Compile a fitted churn pipeline for fast batch scoring: the same probabilities as
`model.predict_proba`, sooner.

The saved artefact stays a plain scikit-learn `Pipeline` (it loads wherever scikit-learn is
installed, without this package). `FastScorer` reads what its fitted preprocessing learned and
replays it with numpy and category codes, writing every block straight into one preallocated
matrix, then calls the fitted classifier on cache-sized slices. `export_linear_tables` goes
further for logistic regression: it turns the whole pipeline into lookup tables that
`churn.scoring.LinearScorer` evaluates without scikit-learn at all. Anything unrecognised falls
back to the pipeline itself, so the result is always the pipeline's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn.preprocessing import CategoryCodeEncoder

# Tree ensembles walk the whole input once per tree; slices that fit in the CPU cache make
# those walks several times faster than one pass over a large matrix.
CLASSIFIER_SLICE_ROWS = 8192


@dataclass(frozen=True)
class _NumericBlock:
    columns: list[str]
    fill: np.ndarray  # imputation value per column
    mean: np.ndarray | None  # StandardScaler's mean_ and scale_, when it scales
    scale: np.ndarray | None

    @property
    def width(self) -> int:
        return len(self.columns)

    def write_into(self, frame: pd.DataFrame, out: np.ndarray, offset: int) -> int:
        for position, column in enumerate(self.columns):
            values = frame[column].to_numpy(dtype="float64", na_value=np.nan, copy=True)
            values[np.isnan(values)] = self.fill[position]
            if self.mean is not None and self.scale is not None:
                values -= self.mean[position]  # the same two in-place steps as StandardScaler.transform
                values /= self.scale[position]
            out[:, offset + position] = values
        return offset + self.width


@dataclass(frozen=True)
class _CategoricalBlock:
    encoder: CategoryCodeEncoder

    @property
    def width(self) -> int:
        return sum(len(categories) for categories in self.encoder.categories_)

    def write_into(self, frame: pd.DataFrame, out: np.ndarray, offset: int) -> int:
        return self.encoder.write_into(frame, out, offset)


class FastScorer:
    """`predict_proba(X)[:, 1]` of a fitted churn pipeline, via its compiled preprocessing."""

    def __init__(self, model: Pipeline) -> None:
        self.model = model
        self.classifier = model.named_steps["classifier"]
        self.blocks = _compile_blocks(model.named_steps["preprocess"])
        self.compiled = self.blocks is not None

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of churn per row; equal to the pipeline's own to floating-point rounding."""
        if self.blocks is None:
            return np.asarray(self.model.predict_proba(X)[:, 1], dtype="float64")
        features = self.transform(X)
        out = np.empty(len(X), dtype="float64")
        for start in range(0, len(X), CLASSIFIER_SLICE_ROWS):
            stop = start + CLASSIFIER_SLICE_ROWS
            out[start:stop] = self.classifier.predict_proba(features[start:stop])[:, 1]
        return out

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The preprocessed feature matrix, as the pipeline's ColumnTransformer would give it."""
        assert self.blocks is not None
        out = np.zeros((len(X), sum(block.width for block in self.blocks)), dtype="float64")
        offset = 0
        for block in self.blocks:
            offset = block.write_into(X, out, offset)
        return out


def export_linear_tables(model: Pipeline) -> dict[str, Any] | None:
    """The fitted pipeline as lookup tables for `churn.scoring.LinearScorer`, or None when it
    is not a binary logistic regression over preprocessing that FastScorer compiles."""
    classifier = model.named_steps["classifier"]
    blocks = _compile_blocks(model.named_steps["preprocess"])
    if blocks is None or not isinstance(classifier, LogisticRegression) or classifier.coef_.shape[0] != 1:
        return None
    coef = classifier.coef_[0]
    numeric: list[dict[str, Any]] = []
    categorical: list[dict[str, Any]] = []
    offset = 0
    for block in blocks:
        if isinstance(block, _NumericBlock):
            for i, column in enumerate(block.columns):
                numeric.append(
                    {
                        "column": column,
                        "fill": float(block.fill[i]),
                        "mean": None if block.mean is None else float(block.mean[i]),
                        "scale": None if block.scale is None else float(block.scale[i]),
                        "coef": float(coef[offset + i]),
                    }
                )
            offset += block.width
            continue
        encoder = block.encoder
        for name, categories, fill in zip(
            encoder.feature_names_in_, encoder.categories_, encoder.most_frequent_, strict=True
        ):
            width = len(categories)
            categorical.append(
                {
                    "column": str(name),
                    "categories": [str(c) for c in categories],
                    "fill": str(fill),
                    "coef": [float(w) for w in coef[offset : offset + width]],
                }
            )
            offset += width
    intercept = float(classifier.intercept_[0])
    return {"kind": "logistic_regression", "intercept": intercept, "numeric": numeric, "categorical": categorical}


def _compile_blocks(preprocessor: Any) -> list[_NumericBlock | _CategoricalBlock] | None:
    """The ColumnTransformer's fitted steps as fast blocks, or None if any step is unfamiliar."""
    if not isinstance(preprocessor, ColumnTransformer):
        return None
    blocks: list[_NumericBlock | _CategoricalBlock] = []
    for name, transformer, columns in preprocessor.transformers_:
        if name == "remainder" and transformer == "drop":
            continue
        block = _compile_step(transformer, list(columns))
        if block is None:
            return None
        blocks.append(block)
    return blocks


def _compile_step(transformer: Any, columns: list[str]) -> _NumericBlock | _CategoricalBlock | None:
    steps = dict(transformer.steps) if isinstance(transformer, Pipeline) else {}
    imputer, scaler, encoder = steps.get("impute"), steps.get("scale"), steps.get("encode")
    if not isinstance(imputer, SimpleImputer) or len(imputer.statistics_) != len(columns):
        return None
    if isinstance(encoder, OneHotEncoder) and set(steps) == {"impute", "encode"}:
        try:
            return _CategoricalBlock(CategoryCodeEncoder.from_fitted(imputer, encoder))
        except ValueError:
            return None
    if set(steps) - {"impute", "scale"}:
        return None
    try:  # the "constant" strategy keeps its statistics as objects
        fill = np.asarray(imputer.statistics_, dtype="float64")
    except (TypeError, ValueError):
        return None
    if np.isnan(fill).any():
        return None  # an all-missing training column, which the imputer drops
    if scaler is not None and not (isinstance(scaler, StandardScaler) and scaler.with_mean and scaler.with_std):
        return None
    mean = scaler.mean_ if scaler is not None else None
    scale = scaler.scale_ if scaler is not None else None
    return _NumericBlock(columns, fill, mean, scale)
