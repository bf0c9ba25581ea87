"""The contact rule: the customers predicted to churn, the N highest expected savings of them on a
budget, ties to the row first in order; with costs, the threshold is the break-even probability."""

import numpy as np
import pytest

from churn.config import DecisionConfig
from churn.errors import ConfigError
from churn.scoring import decisions

COSTS = decisions.Costs(offer_cost=50, churn_cost=300, offer_success_rate=0.3)


def test_expected_saving_by_hand():
    savings = COSTS.savings(np.array([0.0, 0.5, 1.0]))
    assert savings.tolist() == pytest.approx([-50.0, 0.5 * 300 * 0.3 - 50, 300 * 0.3 - 50])


def test_the_budget_goes_to_the_highest_savings_ties_in_input_order():
    savings = np.array([5.0, 9.0, 5.0, 1.0, 5.0])
    predicted = np.ones(5, dtype="int8")
    assert decisions.budget_contacts(savings, predicted, 3).tolist() == [1, 1, 1, 0, 0]  # 9, then the first two 5s


def test_only_customers_predicted_to_churn_are_contacted_whatever_the_budget():
    savings = np.array([3.0, -1.0, 0.0, 2.0, 4.0])
    predicted = np.array([1, 0, 0, 1, 0], dtype="int8")  # a fixed threshold may leave a saving out
    assert decisions.budget_contacts(savings, predicted, 10).tolist() == [1, 0, 0, 1, 0]


def test_the_break_even_probability_is_where_the_expected_saving_turns_positive():
    threshold = COSTS.break_even
    assert threshold == pytest.approx(50 / (300 * 0.3))
    probabilities = np.array([threshold - 1e-9, threshold + 1e-9])
    assert (COSTS.savings(probabilities) > 0).tolist() == [False, True]
    never = decisions.Costs(offer_cost=100, churn_cost=100, offer_success_rate=0.5)
    assert never.break_even == 1.0  # an offer that costs more than it can save: nobody below certainty
    assert decisions.Costs(offer_cost=1, churn_cost=100, offer_success_rate=0.0).break_even == 1.0


def test_the_cost_of_a_rule_by_hand():
    # 10 contacted of whom 4 churners (the offer keeps 30 % of them), 6 churners not contacted
    assert COSTS.cost(10, 4, 10) == pytest.approx(50 * 10 + 300 * (6 + 0.7 * 4))
    assert decisions.Costs.of(DecisionConfig()) is None
    assert decisions.Costs.of(DecisionConfig(offer_cost=50, churn_cost=300, offer_success_rate=0.3)) == COSTS


def test_a_budget_needs_the_decision_costs():
    with pytest.raises(ConfigError, match="needs the run's decision costs"):
        decisions.Costs.required(DecisionConfig())
