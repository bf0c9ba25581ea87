"""Whom to contact: the one rule behind `predict`, `predict --budget` and the service's
`"budget"`. A leaf module (numpy only).

A contacted customer who would churn stays with probability `offer_success_rate`, saving
`churn_cost`; every contact costs `offer_cost`. So the expected saving of contacting a customer
scored p is p × churn_cost × offer_success_rate − offer_cost, positive above the break-even
probability, which is the threshold of a run trained with costs (`model.threshold: auto`).

The rule: contact the customers whose churn_prediction is 1; with a budget of N, only the N of
them with the highest expected saving (ties to the row that comes first). So `contact` never
disagrees with `churn_prediction`: it is the same decision, limited by the budget.
"""

from __future__ import annotations

import numpy as np

from churn.config import DecisionConfig
from churn.errors import ConfigError


def require_costs(decision: DecisionConfig) -> None:
    """Refuse a budget for a run without decision costs, before anything is read.

    Raises:
        ConfigError: the run has no decision costs.
    """
    if not decision.has_costs:
        raise ConfigError(
            "a contact budget needs the run's decision costs (decision.offer_cost, churn_cost and "
            "offer_success_rate); set them and retrain"
        )


def expected_savings(probabilities: np.ndarray, decision: DecisionConfig) -> np.ndarray:
    """Per customer: the expected saving of contacting them."""
    require_costs(decision)
    assert decision.churn_cost is not None and decision.offer_success_rate is not None
    assert decision.offer_cost is not None
    return probabilities * decision.churn_cost * decision.offer_success_rate - decision.offer_cost


def budget_contacts(savings: np.ndarray, predictions: np.ndarray, budget: int) -> np.ndarray:
    """0/1 per customer: 1 for the `budget` customers predicted to churn with the highest
    expected savings (ties: input order)."""
    eligible = np.flatnonzero(predictions == 1)
    order = eligible[np.argsort(-savings[eligible], kind="stable")]
    contact = np.zeros(len(savings), dtype="int8")
    contact[order[:budget]] = 1
    return contact
