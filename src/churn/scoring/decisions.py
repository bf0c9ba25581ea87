"""The retention team's cost model and whom to contact: the one rule behind training's
threshold, `predict`, `predict --budget`, the service, the cluster, the notebook's
`churn.decisions` and monitoring's expected cost. A leaf module (numpy and pyarrow only), so the
scoring side reaches it without the training side.

A contacted customer who would churn stays with probability `offer_success_rate`, saving their
cost of churn; every contact costs an offer. The cost of churn is `churn_cost` for everyone, or
each customer's value per month (`decision.value_column`) times `decision.value_months`; the
offer costs `offer_cost`, or each customer's own (`decision.offer_cost_column`). So the expected
saving of contacting a customer scored p is

    p x cost_of_churn x offer_success_rate - offer_cost

and the rule of every door is: contact the customers whose expected saving is positive; with a
budget of N, only the N of them with the highest saving (ties: the row that comes first).

With constant costs, a positive saving is a probability above the break-even
offer_cost / (churn_cost x offer_success_rate), which is the threshold of a run trained with
`model.threshold: auto`: `contact` and `churn_prediction` are then the same decision. With
per-customer costs each customer has their own break-even, and `contact` may differ from
`churn_prediction` (the classification at the run's threshold) both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churn.config import DecisionConfig
from churn.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Money:
    """One batch's money per customer: the value per month (None with constant costs), each
    customer's cost of churn and the cost of their offer."""

    value: np.ndarray | None
    churn_cost: np.ndarray
    offer_cost: np.ndarray

    def __len__(self) -> int:
        return len(self.churn_cost)

    def take(self, rows: np.ndarray | slice) -> Money:
        value = self.value[rows] if self.value is not None else None
        return Money(value, self.churn_cost[rows], self.offer_cost[rows])

    @classmethod
    def concat(cls, parts: Sequence[Money]) -> Money:
        if not parts:
            return cls(None, np.zeros(0), np.zeros(0))
        values = [part.value for part in parts if part.value is not None]
        value = np.concatenate(values) if len(values) == len(parts) else None
        return cls(
            value,
            np.concatenate([part.churn_cost for part in parts]),
            np.concatenate([part.offer_cost for part in parts]),
        )


@dataclass(frozen=True)
class Costs:
    """A run's decision costs (`Costs.of` is None for a run without them)."""

    offer_success_rate: float
    offer_cost: float | None = None
    churn_cost: float | None = None
    value_column: str | None = None
    value_months: float | None = None
    offer_cost_column: str | None = None

    @classmethod
    def of(cls, decision: DecisionConfig) -> Costs | None:
        if not decision.has_costs:
            return None
        assert decision.offer_success_rate is not None
        return cls(
            decision.offer_success_rate,
            decision.offer_cost,
            decision.churn_cost,
            decision.value_column,
            decision.value_months,
            decision.offer_cost_column,
        )

    @classmethod
    def required(cls, decision: DecisionConfig) -> Costs:
        """The costs a budget needs, refused before anything is read when the run has none.

        Raises:
            ConfigError: the run has no decision costs.
        """
        costs = cls.of(decision)
        if costs is None:
            raise ConfigError(
                "a contact budget needs the run's decision costs (decision.offer_cost, churn_cost and "
                "offer_success_rate); set them and retrain"
            )
        return costs

    @property
    def per_customer(self) -> bool:
        return self.value_column is not None or self.offer_cost_column is not None

    @property
    def columns(self) -> tuple[str, ...]:
        """The input columns the money is read from (none for constant costs)."""
        return tuple(c for c in (self.value_column, self.offer_cost_column) if c is not None)

    @property
    def break_even(self) -> float:
        """Constant costs: the churn probability above which an offer's expected saving is
        positive, offer_cost / (churn_cost x offer_success_rate), at most 1 (never worth it)."""
        assert self.offer_cost is not None and self.churn_cost is not None, "per-customer costs: average_break_even"
        return _break_even(self.offer_cost, self.churn_cost, self.offer_success_rate)

    def average_break_even(self, money: Money) -> float:
        """The break-even of the average customer: mean offer cost / (mean cost of churn x
        offer_success_rate); the break-even itself with constant costs."""
        if not self.per_customer:
            return self.break_even
        if not len(money):
            return 1.0
        return _break_even(float(money.offer_cost.mean()), float(money.churn_cost.mean()), self.offer_success_rate)

    def money(self, rows: pa.Table | pd.DataFrame | None, count: int, where: Rows | None = None) -> Money:
        """Each customer's money for `count` rows; with per-customer costs, read from `rows`.

        Raises:
            DataError: a value or offer cost is missing, not a number, negative or infinite
                (the message names the column, the row and its id).
        """
        where = where or Rows()
        if self.value_column is not None:
            assert self.value_months is not None
            value = column_values(rows, self.value_column, where, "decision.value_column")
            churn_cost = value * self.value_months
        else:
            assert self.churn_cost is not None
            value, churn_cost = None, np.full(count, float(self.churn_cost))
        if self.offer_cost_column is not None:
            offer_cost = column_values(rows, self.offer_cost_column, where, "decision.offer_cost_column")
        else:
            assert self.offer_cost is not None
            offer_cost = np.full(count, float(self.offer_cost))
        return Money(value, churn_cost, offer_cost)

    def savings(self, probabilities: np.ndarray, money: Money) -> np.ndarray:
        """Per customer: the expected saving of contacting them."""
        return probabilities * money.churn_cost * self.offer_success_rate - money.offer_cost

    def cost(
        self, contacted: np.ndarray | float, churners_contacted: np.ndarray | float, churners: float
    ) -> np.ndarray | float:
        """Constant costs: the expected cost of a decision rule from its counts, the model
        retention teams use: every contacted customer costs an offer, every churner not
        contacted is lost, and of the churners contacted the offer keeps `offer_success_rate`."""
        assert self.offer_cost is not None and self.churn_cost is not None
        lost = (churners - churners_contacted) + (1.0 - self.offer_success_rate) * churners_contacted
        return self.offer_cost * contacted + self.churn_cost * lost

    def cost_of(self, contact: np.ndarray, churned: np.ndarray, money: Money) -> float:
        """The expected cost of contacting the customers where `contact` is true, given who
        churned: `cost` from the counts with constant costs, else summed customer by customer."""
        contact, churned = np.asarray(contact, bool), np.asarray(churned) == 1
        if not self.per_customer:
            return float(self.cost(int(contact.sum()), int((contact & churned).sum()), int(churned.sum())))
        kept = np.where(contact, self.offer_success_rate, 0.0)
        return float(money.offer_cost[contact].sum() + (money.churn_cost * churned * (1.0 - kept)).sum())


@dataclass(frozen=True)
class Rows:
    """Where a batch's rows come from, to name a bad one: the input, the first row's number
    (0-based) and the ids (None: no id column)."""

    source: str = "input"
    first_row: int = 0
    ids: Any = None


def _break_even(offer_cost: float, churn_cost: float, rate: float) -> float:
    worth = churn_cost * rate
    return min(offer_cost / worth, 1.0) if worth > 0 else 1.0


def column_values(rows: pa.Table | pd.DataFrame | None, column: str, where: Rows, key: str) -> np.ndarray:
    """A money column as float64: numbers, or numeric text (trimmed).

    Raises:
        DataError: the column is absent, or a value is missing, not a number, negative or
            infinite: the first such row, by number and id.
    """
    if rows is None or column not in _names(rows):
        raise DataError(f"{where.source}: {key} {column} is not a column; add it (the money is read from it)")
    array = rows.column(column) if isinstance(rows, pa.Table) else pa.array(rows[column], from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        text = pc.utf8_trim_whitespace(array)
        array = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
        try:
            numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # some text is not a number: find it
            numbers = np.array([_number(v) for v in array.to_pylist()], dtype="float64")
    else:
        numbers = np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
    bad = ~np.isfinite(numbers) | (numbers < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = array[row].as_py()
        problem = "is missing" if shown is None else f"is {str(shown)[:40]!r}, not a number of at least 0"
        raise DataError(
            f"{where.source}: {key} {column} {problem} at data row {where.first_row + row + 1:,}{_id(where, row)}"
            f" ({int(bad.sum()):,} such row(s) in this batch); fill or fix them, or leave those customers out"
        )
    return numbers


def _names(rows: pa.Table | pd.DataFrame) -> list[str]:
    return list(rows.column_names) if isinstance(rows, pa.Table) else [str(c) for c in rows.columns]


def _number(value: str | None) -> float:
    if value is None:
        return float("nan")
    try:
        return float(value)
    except ValueError:
        return float("nan")


def _id(where: Rows, row: int) -> str:
    if where.ids is None:
        return ""
    ids = where.ids
    value = ids[row].as_py() if isinstance(ids, pa.ChunkedArray | pa.Array) else ids[row]
    return f" (id {str(value)[:40]})"


def contact_rule(savings: np.ndarray, budget: int | None = None) -> np.ndarray:
    """0/1 per customer, the one rule: 1 where the expected saving is positive; with a budget,
    only the `budget` of them with the highest savings (ties: input order)."""
    eligible = np.flatnonzero(savings > 0)
    if budget is not None:
        eligible = eligible[np.argsort(-savings[eligible], kind="stable")][:budget]
    contact = np.zeros(len(savings), dtype="int8")
    contact[eligible] = 1
    return contact
