"""Whom to contact on a budget: the one rule behind `predict --budget` and the service's
`"budget"`. A leaf module (numpy only).

A contacted customer who would churn stays with probability `offer_success_rate`, saving
`churn_cost`; every contact costs `offer_cost`. So the expected saving of contacting a customer
scored p is p × churn_cost × offer_success_rate − offer_cost, and a budget of N contacts goes
to the N customers with the highest expected saving, among those whose saving is positive
(contacting the others loses money on average), ties to the row that comes first.
"""

from __future__ import annotations

import numpy as np

from churn.config import DecisionConfig
from churn.errors import ConfigError


def expected_savings(probabilities: np.ndarray, decision: DecisionConfig) -> np.ndarray:
    """Per customer: the expected saving of contacting them."""
    if not decision.has_costs:
        raise ConfigError(
            "a contact budget needs the run's decision costs (decision.offer_cost, churn_cost and "
            "offer_success_rate); set them and retrain"
        )
    assert decision.churn_cost is not None and decision.offer_success_rate is not None
    assert decision.offer_cost is not None
    return probabilities * decision.churn_cost * decision.offer_success_rate - decision.offer_cost


def budget_contacts(savings: np.ndarray, budget: int) -> np.ndarray:
    """0/1 per customer: 1 for the `budget` highest positive expected savings (ties: input order)."""
    order = np.argsort(-savings, kind="stable")
    chosen = order[: min(budget, int((savings > 0).sum()))]
    contact = np.zeros(len(savings), dtype="int8")
    contact[chosen] = 1
    return contact
