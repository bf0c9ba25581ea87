"""The budget rule: the N highest positive expected savings, ties to the row first in order."""

import numpy as np
import pytest

from churn import decisions
from churn.config import DecisionConfig
from churn.errors import ConfigError

COSTS = DecisionConfig(offer_cost=50, churn_cost=300, offer_success_rate=0.3)


def test_expected_saving_by_hand():
    savings = decisions.expected_savings(np.array([0.0, 0.5, 1.0]), COSTS)
    assert savings.tolist() == pytest.approx([-50.0, 0.5 * 300 * 0.3 - 50, 300 * 0.3 - 50])


def test_the_budget_goes_to_the_highest_savings_ties_in_input_order():
    savings = np.array([5.0, 9.0, 5.0, 1.0, 5.0])
    assert decisions.budget_contacts(savings, 3).tolist() == [1, 1, 1, 0, 0]  # 9, then the first two 5s


def test_no_contact_that_loses_money_whatever_the_budget():
    savings = np.array([3.0, -1.0, 0.0, 2.0])
    assert decisions.budget_contacts(savings, 10).tolist() == [1, 0, 0, 1]


def test_a_budget_needs_the_decision_costs():
    with pytest.raises(ConfigError, match="needs the run's decision costs"):
        decisions.expected_savings(np.array([0.5]), DecisionConfig())
