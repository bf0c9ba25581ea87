"""A linear margin (log-odds) of cleaned features from exported lookup tables, numpy only: the
logistic regression's (`churn.scoring.scorers.LinearScorer`) and a logistic hazard model's
feature part (`churn.survival.horizons.LinearHazardScorer`) are the same evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np

from churn.cleaning import FeatureSpec, FeatureTable
from churn.codes import category_codes


class LinearMargin:
    """A linear margin (log-odds) of cleaned features, evaluated from exported lookup tables:
    a logistic regression's (`LinearScorer`), or a hazard model's feature part."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self.tables = tables
        self.spec = FeatureSpec.from_dict(tables["features"])
        # per categorical column: its training categories, the fill, and a weight per category
        # with a trailing 0.0 that unseen categories (code -1) pick: no effect
        self.categorical = [
            (
                item["column"],
                tuple(item["categories"]),
                item["fill"],
                np.append(np.asarray(item["coef"], "float64"), 0.0),
            )
            for item in tables["categorical"]
        ]

    def margin_clean(self, features: FeatureTable) -> np.ndarray:
        z = np.full(len(features), self.tables["intercept"], dtype="float64")
        for item in self.tables["numeric"]:
            values = features.numbers[item["column"]]
            values = np.where(np.isnan(values), item["fill"], values)
            if item["mean"] is not None:
                values = (values - item["mean"]) / item["scale"]
            z += item["coef"] * values
        for column, categories, fill, weights in self.categorical:
            z += weights[category_codes(features.coded[column], categories, fill)]
        return z


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-z)); with `out` (which may be z itself), computed in place there, the same bits."""
    if out is None:
        out = np.empty_like(z, dtype="float64")
    np.negative(z, out=out)
    with np.errstate(over="ignore"):  # exp(-z) of a huge negative z is inf: probability 0, as intended
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)
