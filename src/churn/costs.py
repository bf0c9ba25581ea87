"""The retention team's cost model: a leaf module (numpy only), shared by the training metrics
and monitoring's expected cost, so that the service reaches it without the training side."""

from __future__ import annotations

import numpy as np

from churn.config import DecisionConfig


def decision_cost(
    contacted: np.ndarray | int,
    churners_contacted: np.ndarray | int,
    churners: int,
    decision: DecisionConfig,
) -> np.ndarray | float:
    """Expected cost of a decision rule, the model retention teams use: every contacted
    customer costs an offer, every churner not contacted is lost, and of the churners
    contacted the offer keeps `offer_success_rate`, the rest are lost anyway."""
    assert decision.offer_cost is not None and decision.churn_cost is not None
    assert decision.offer_success_rate is not None
    lost = (churners - churners_contacted) + (1.0 - decision.offer_success_rate) * churners_contacted
    return decision.offer_cost * contacted + decision.churn_cost * lost
