"""A discrete-time hazard model on scikit-learn: churn month by month, from raw rows.

Each training customer who stayed d months and then churned (event 1) or is still there
(event 0) becomes d person-month rows: month k = 1 ... d, labelled 1 only in the month the stay
ended. A probabilistic classifier fitted on those rows, with the month as one more input,
estimates the hazard h(k | x) = P(churn in month k | stayed k - 1 months, x). Then

    S(t | x) = product over k = 1 ... t of (1 - h(k | x))

and, for an active customer who has stayed t months, churn within the next h months is
1 - S(t + h | x) / S(t | x) = 1 - product over k = t + 1 ... t + h of (1 - h(k | x)), and the months
expected within those h are the sum over m = 1 ... h of that product up to t + m.

The features are cleaned and preprocessed once per customer (the steps every churn model uses)
and repeated per month. A logistic regression takes the month as a cubic spline (8 knots): its
margin is the features' part plus a baseline per month, so scoring any month costs one addition.
Trees take the month as a number. Months past `max_month_` (the longest training stay) reuse
its hazard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer

from churn.cleaning import parse_numbers
from churn.parallel import usable_cores
from churn.scoring.trees import ShallowTrees
from churn.survival.horizons import horizon_columns, months_ahead

MONTH_KNOTS = 8


def person_months(durations: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Person-month rows as indices: each customer's row number repeated once per month stayed,
    the month (1 ... d), and 1 in the month the stay ended with churn."""
    months = np.asarray(durations).astype("int64")
    if (months < 0).any():
        raise ValueError("durations must be whole months of at least 0")
    owner = np.repeat(np.arange(len(months)), months)
    starts = np.cumsum(months) - months
    month = np.arange(len(owner)) - np.repeat(starts, months) + 1
    ended = (month == months[owner]) & (np.asarray(events)[owner] == 1)
    return owner, month, ended.astype("int64")


class HazardModel(BaseEstimator):
    """The run's survival model, self-contained: raw rows in, hazards and horizons out.

    Parameters:
        features: an unfitted pipeline of churn's cleaning and preprocessing for the hazard
            model's features (never the duration).
        classifier: a LogisticRegression or HistGradientBoostingClassifier.
        duration_column: the column of months stayed, read from the rows at scoring time.
        horizons: months ahead, shortest first.

    Fitted attributes: features_, classifier_, max_month_, width_ (preprocessed feature
    columns), month_basis_ (the spline, linear models only) and baseline_ (a linear model's
    intercept plus month term for months 1 ... max_month_).
    """

    def __init__(
        self, features: Pipeline, classifier: Any, duration_column: str, horizons: Sequence[int] = (3, 6, 12)
    ) -> None:
        self.features = features
        self.classifier = classifier
        self.duration_column = duration_column
        self.horizons = horizons

    @property
    def linear(self) -> bool:
        return isinstance(self.classifier, LogisticRegression)

    def fit(self, X: pd.DataFrame, durations: np.ndarray, events: np.ndarray) -> HazardModel:
        durations = np.asarray(durations).astype("int64")
        self.max_month_ = max(int(durations.max(initial=1)), 1)
        self.features_ = clone(self.features).fit(X)
        matrix = self._matrix(X)
        self.width_ = matrix.shape[1]
        if self.linear:
            self.month_basis_ = SplineTransformer(n_knots=MONTH_KNOTS, degree=3)
            self.month_basis_.fit(np.arange(1, self.max_month_ + 1, dtype="float64")[:, None])
        owner, month, ended = person_months(durations, events)
        design = np.hstack([matrix[owner], self._month_columns(month)])
        self.classifier_ = clone(self.classifier).fit(design, ended)
        if self.linear:
            weights = self.classifier_.coef_[0][self.width_ :]
            every_month = np.arange(1, self.max_month_ + 1)
            self.baseline_ = self._month_columns(every_month) @ weights + self.classifier_.intercept_[0]
        return self

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        out = self.features_.transform(X)
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype="float64")

    def _month_columns(self, month: np.ndarray) -> np.ndarray:
        values = np.asarray(month, dtype="float64")[:, None]
        return self.month_basis_.transform(values) if self.linear else values

    def margins(self, X: pd.DataFrame) -> np.ndarray:
        """A linear model's feature part of the hazard's log-odds (the same in every month)."""
        return self._matrix(X) @ self.classifier_.coef_[0][: self.width_]

    def hazards_at(self, X: pd.DataFrame, months: np.ndarray) -> np.ndarray:
        """h(months[i, j] | row i), rows x columns of months (each at most max_month_)."""
        if self.linear:
            z = self.margins(X)[:, None] + self.baseline_[months - 1]
            with np.errstate(over="ignore"):
                return 1.0 / (1.0 + np.exp(-z))
        matrix = self._matrix(X)
        out = np.empty(months.shape)
        trees = ShallowTrees.of_matrix(self.classifier_, self.width_ + 1)
        if trees is not None:  # shallow boosting, evaluated exactly without a design matrix per month
            columns, threads = {c: matrix[:, c] for c in trees.used if c < self.width_}, usable_cores()
            for column in range(months.shape[1]):
                columns[self.width_] = self._month_columns(months[:, column])[:, 0]
                out[:, column] = expit(trees.margin_of_columns(columns, len(matrix), threads))
            return out
        for column in range(months.shape[1]):
            design = np.hstack([matrix, self._month_columns(months[:, column])])
            out[:, column] = self.classifier_.predict_proba(design)[:, 1]
        return out

    def survival(self, X: pd.DataFrame, months: int) -> np.ndarray:
        """S(t | x) from joining, t = 1 ... months, rows x months."""
        every = np.minimum(np.arange(1, months + 1), self.max_month_)
        return np.cumprod(1.0 - self.hazards_at(X, np.tile(every, (len(X), 1))), axis=1)

    def predict_horizons(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per row, conditional on its present tenure (column `duration_column`): churn within
        each horizon and the months expected within the last; NaN where the tenure is missing
        or negative. What `predict` writes for the same rows."""
        tenure = parse_numbers(X[self.duration_column], self.features_[0].spec_.missing_values)[0]
        months, known = months_ahead(tenure, self.horizons[-1], self.max_month_)
        hazards = self.hazards_at(X, months)
        hazards[~known] = np.nan
        return pd.DataFrame(horizon_columns(hazards, self.horizons), index=X.index)
