"""A discrete-time hazard model on scikit-learn: churn month by month.

Each training customer who stayed d months and then churned (event 1) or is still there
(event 0) becomes d person-month rows: month k = 1 ... d, labelled 1 only in the month the stay
ended. Any probabilistic classifier fitted on those rows, with the month as one more input,
estimates the hazard h(k | x) = P(churn in month k | stayed k - 1 months, x). Then

    S(t | x) = product over k = 1 ... t of (1 - h(k | x))

and, for an active customer who has stayed t months, churn within the next h months is
1 - S(t + h | x) / S(t | x) = 1 - product over k = t + 1 ... t + h of (1 - h(k | x)), and the months
expected within those h are the sum over m = 1 ... h of that product up to t + m.

The month enters as a category of its own (one-hot, each month its own baseline hazard, up to
`max_month`; later months share the last) for a linear classifier, or as a number for trees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

MONTH = "__month__"


def person_months(X: pd.DataFrame, durations: np.ndarray, events: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The person-month rows of a table: each customer repeated once per month stayed, with the
    month (1 ... d) in column `MONTH`, and 1 in the month the stay ended with churn."""
    months = np.asarray(durations).astype("int64")
    if (months < 0).any():
        raise ValueError("durations must be whole months of at least 0")
    owner = np.repeat(np.arange(len(months)), months)
    month = np.concatenate([np.arange(1, d + 1) for d in months]) if len(months) else np.zeros(0, "int64")
    ended = (month == months[owner]) & (np.asarray(events)[owner] == 1)
    rows = X.iloc[owner].reset_index(drop=True).assign(**{MONTH: month})
    return rows, ended.astype("int64")


class DiscreteTimeHazard(BaseEstimator):
    """Hazards per month from any classifier pipeline whose preprocessing takes column `MONTH`.

    `model` is fitted on the person-month rows; `max_month` caps the month it sees (later
    months are scored as `max_month`; default: the longest training duration).
    """

    def __init__(self, model: Any, max_month: int | None = None) -> None:
        self.model = model
        self.max_month = max_month

    def fit(self, X: pd.DataFrame, durations: np.ndarray, events: np.ndarray) -> DiscreteTimeHazard:
        self.max_month_ = int(self.max_month or max(int(np.max(durations)), 1))
        rows, ended = person_months(X, np.minimum(durations, self.max_month_), events)
        self.model_ = clone(self.model).fit(rows, ended)
        return self

    def hazards(self, X: pd.DataFrame, first: int, last: int) -> np.ndarray:
        """h(k | x) for months k = first ... last, shape (rows, months)."""
        months = np.arange(first, last + 1)
        capped = np.minimum(months, self.max_month_)
        out = np.empty((len(X), len(months)))
        for column, month in enumerate(capped):
            out[:, column] = self.model_.predict_proba(X.assign(**{MONTH: month}))[:, 1]
        return out

    def survival(self, X: pd.DataFrame, months: int) -> np.ndarray:
        """S(t | x) from joining, t = 1 ... months, shape (rows, months)."""
        return np.cumprod(1.0 - self.hazards(X, 1, months), axis=1)

    def within(self, X: pd.DataFrame, tenure: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """For customers active after `tenure` months: churn within `horizon` months, and the
        months expected within it (both conditional on having stayed `tenure` months)."""
        tenure = np.asarray(tenure).astype("int64")
        stays = np.empty((len(X), horizon))
        for k in range(1, horizon + 1):  # one call per month ahead, every customer at their own month
            month = np.minimum(tenure + k, self.max_month_)
            stays[:, k - 1] = 1.0 - self.model_.predict_proba(X.assign(**{MONTH: month}))[:, 1]
        kept = np.cumprod(stays, axis=1)
        return 1.0 - kept[:, -1], kept.sum(axis=1)
