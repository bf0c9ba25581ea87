"""The retention team's cost model and whom to contact: the one rule behind training's
threshold, `predict`, `predict --budget`, the service's `"budget"` and monitoring's expected
cost. A leaf module (numpy only), so the scoring side reaches it without the training side.

A contacted customer who would churn stays with probability `offer_success_rate`, saving
`churn_cost`; every contact costs `offer_cost`. So the expected saving of contacting a customer
scored p is p × churn_cost × offer_success_rate − offer_cost, positive above the break-even
probability, which is the threshold of a run trained with costs (`model.threshold: auto`).

The rule: contact the customers whose churn_prediction is 1; with a budget of N, only the N of
them with the highest expected saving (ties to the row that comes first). So `contact` never
disagrees with `churn_prediction`: it is the same decision, limited by the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churn.config import DecisionConfig
from churn.errors import ConfigError


@dataclass(frozen=True)
class Costs:
    """A run's decision costs, all three given (`Costs.of` is None for a run without them)."""

    offer_cost: float
    churn_cost: float
    offer_success_rate: float

    @classmethod
    def of(cls, decision: DecisionConfig) -> Costs | None:
        if decision.offer_cost is None or decision.churn_cost is None or decision.offer_success_rate is None:
            return None
        return cls(decision.offer_cost, decision.churn_cost, decision.offer_success_rate)

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
    def break_even(self) -> float:
        """The churn probability above which an offer's expected saving is positive:
        offer_cost / (churn_cost × offer_success_rate), at most 1 (an offer never worth it)."""
        worth = self.churn_cost * self.offer_success_rate
        return min(self.offer_cost / worth, 1.0) if worth > 0 else 1.0

    def savings(self, probabilities: np.ndarray) -> np.ndarray:
        """Per customer: the expected saving of contacting them."""
        return probabilities * self.churn_cost * self.offer_success_rate - self.offer_cost

    def cost(
        self, contacted: np.ndarray | float, churners_contacted: np.ndarray | float, churners: float
    ) -> np.ndarray | float:
        """Expected cost of a decision rule, the model retention teams use: every contacted
        customer costs an offer, every churner not contacted is lost, and of the churners
        contacted the offer keeps `offer_success_rate`, the rest are lost anyway."""
        lost = (churners - churners_contacted) + (1.0 - self.offer_success_rate) * churners_contacted
        return self.offer_cost * contacted + self.churn_cost * lost


def contacts(
    probabilities: np.ndarray, predictions: np.ndarray, decision: DecisionConfig, budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every customer's expected saving and contact (0/1) on a budget, by the one rule: the
    `budget` customers predicted to churn with the highest expected saving.

    Raises:
        ConfigError: the run has no decision costs.
    """
    savings = Costs.required(decision).savings(probabilities)
    return savings, budget_contacts(savings, predictions, budget)


def budget_contacts(savings: np.ndarray, predictions: np.ndarray, budget: int) -> np.ndarray:
    """0/1 per customer: 1 for the `budget` customers predicted to churn with the highest
    expected savings (ties: input order)."""
    eligible = np.flatnonzero(predictions == 1)
    order = eligible[np.argsort(-savings[eligible], kind="stable")]
    contact = np.zeros(len(savings), dtype="int8")
    contact[order[:budget]] = 1
    return contact
