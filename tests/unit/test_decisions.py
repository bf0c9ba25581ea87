"""The contact rule: a positive expected saving, the N highest of them on a budget, ties to the
row first in order; constant costs give today's break-even, per-customer costs each customer's
own; a bad value is an error naming its row, never a silent zero."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churn.config import DecisionConfig
from churn.errors import ConfigError, DataError
from churn.scoring import decisions

COSTS = decisions.Costs(offer_success_rate=0.3, offer_cost=50, churn_cost=300)
VALUE = decisions.Costs(offer_success_rate=0.3, offer_cost=50, value_column="MonthlyCharges", value_months=12)


def constant(rows: int) -> decisions.Money:
    return COSTS.money(None, rows)


def test_expected_saving_by_hand():
    savings = COSTS.savings(np.array([0.0, 0.5, 1.0]), constant(3))
    assert savings.tolist() == pytest.approx([-50.0, 0.5 * 300 * 0.3 - 50, 300 * 0.3 - 50])


def test_the_budget_goes_to_the_highest_savings_ties_in_input_order():
    savings = np.array([5.0, 9.0, 5.0, 1.0, 5.0])
    assert decisions.contact_rule(savings, 3).tolist() == [1, 1, 1, 0, 0]  # 9, then the first two 5s


def test_only_positive_savings_are_contacted_whatever_the_budget():
    savings = np.array([3.0, -1.0, 0.0, 2.0, 4.0])
    assert decisions.contact_rule(savings, 10).tolist() == [1, 0, 0, 1, 1]
    assert decisions.contact_rule(savings).tolist() == [1, 0, 0, 1, 1]


def test_with_constant_costs_contact_is_the_break_even_threshold():
    threshold = COSTS.break_even
    assert threshold == pytest.approx(50 / (300 * 0.3))
    rng = np.random.default_rng(0)
    probabilities = rng.random(10_000)
    contact = decisions.contact_rule(COSTS.savings(probabilities, constant(len(probabilities))))
    assert (contact == (probabilities >= threshold)).all()
    never = decisions.Costs(offer_success_rate=0.5, offer_cost=100, churn_cost=100)
    assert never.break_even == 1.0  # an offer that costs more than it can save: nobody below certainty
    assert decisions.Costs(offer_success_rate=0.0, offer_cost=1, churn_cost=100).break_even == 1.0


def test_per_customer_value_gives_each_customer_their_own_break_even():
    rows = pa.table({"MonthlyCharges": pa.array([20.0, 110.0, 20.0, 110.0])})
    money = VALUE.money(rows, 4)
    assert money.churn_cost.tolist() == [240.0, 1320.0, 240.0, 1320.0]
    p = np.array([0.6, 0.2, 0.7, 0.1])
    savings = VALUE.savings(p, money)
    assert savings.tolist() == pytest.approx([0.6 * 240 * 0.3 - 50, 0.2 * 1320 * 0.3 - 50, 0.7 * 240 * 0.3 - 50, -10.4])
    # by value, the second customer (p 0.2, worth 110 a month) beats the first (p 0.6, worth 20)
    assert decisions.contact_rule(savings, 2).tolist() == [0, 1, 1, 0]
    assert np.argsort(-p)[:2].tolist() == [2, 0]  # what ranking by probability alone would pick


def test_an_offer_cost_column_replaces_the_constant_and_text_numbers_are_read():
    costs = decisions.Costs(offer_success_rate=0.5, churn_cost=100, offer_cost_column="offer")
    money = costs.money(pd.DataFrame({"offer": [" 10", "20.5 "]}), 2)
    assert money.offer_cost.tolist() == [10.0, 20.5]
    assert money.value is None


@pytest.mark.parametrize(
    ("values", "problem"),
    [([10.0, None, 3.0], "is missing"), ([10.0, -4.0, 3.0], "'-4.0'"), (["10", "lots", "3"], "'lots'")],
)
def test_a_missing_negative_or_text_value_names_its_row_and_id(values, problem):
    rows = pa.table({"MonthlyCharges": pa.array(values), "id": pa.array(["a", "b", "c"])})
    where = decisions.Rows("month.csv", 100, rows.column("id"))
    with pytest.raises(DataError) as raised:
        VALUE.money(rows, 3, where)
    message = str(raised.value)
    assert message.startswith("month.csv: decision.value_column MonthlyCharges")
    assert problem in message and "data row 102 (id b)" in message


def test_an_absent_value_column_is_named():
    with pytest.raises(DataError, match="decision.value_column MonthlyCharges is not a column"):
        VALUE.money(pa.table({"x": [1.0]}), 1)


def test_the_cost_of_a_rule_by_hand():
    # 10 contacted of whom 4 churners (the offer keeps 30 % of them), 6 churners not contacted
    assert COSTS.cost(10, 4, 10) == pytest.approx(50 * 10 + 300 * (6 + 0.7 * 4))
    assert decisions.Costs.of(DecisionConfig()) is None
    assert decisions.Costs.of(DecisionConfig(offer_cost=50, churn_cost=300, offer_success_rate=0.3)) == COSTS


def test_the_per_customer_cost_equals_the_counted_cost_when_values_are_equal():
    rng = np.random.default_rng(1)
    contact, churned = rng.random(500) < 0.3, (rng.random(500) < 0.25).astype(int)
    flat = decisions.Costs(offer_success_rate=0.3, offer_cost=50, value_column="v", value_months=1)
    money = flat.money(pa.table({"v": np.full(500, 300.0)}), 500)
    assert flat.cost_of(contact, churned, money) == pytest.approx(COSTS.cost_of(contact, churned, constant(500)))


def test_a_budget_needs_the_decision_costs():
    with pytest.raises(ConfigError, match="needs the run's decision costs"):
        decisions.Costs.required(DecisionConfig())


def test_the_config_takes_a_value_column_or_a_churn_cost_not_both():
    DecisionConfig(offer_cost=50, offer_success_rate=0.3, value_column="MonthlyCharges", value_months=12)
    with pytest.raises(ValueError, match="value_column replaces decision.churn_cost"):
        DecisionConfig(offer_cost=50, churn_cost=1, offer_success_rate=0.3, value_column="M", value_months=12)
    with pytest.raises(ValueError, match="value_months go together"):
        DecisionConfig(offer_cost=50, offer_success_rate=0.3, value_column="MonthlyCharges")
