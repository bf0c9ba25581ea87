"""Survival metrics by hand-worked examples, and the discrete-time hazard model on simulated
customers with a known hazard."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from churn.survival import metrics
from churn.survival.hazard import MONTH, DiscreteTimeHazard, person_months

DURATIONS = np.array([1, 2, 2, 3, 4])
EVENTS = np.array([1, 1, 0, 1, 0])


def test_kaplan_meier_by_hand():
    survival = metrics.kaplan_meier(DURATIONS, EVENTS)
    # t=1: 1 of 5 ends; t=2: 1 of 4 (one censored there); t=3: 1 of 2; t=4: a censoring
    assert survival([0, 1, 2, 2.5, 3, 4, 9]).tolist() == pytest.approx([1, 0.8, 0.6, 0.6, 0.3, 0.3, 0.3])


def test_harrell_concordance_by_hand():
    durations, events = np.array([1, 2, 3]), np.array([1, 1, 0])
    assert metrics.concordance(durations, events, np.array([3, 2, 1])) == 1.0  # 3 pairs, all ranked right
    assert metrics.concordance(durations, events, np.array([1, 2, 3])) == 0.0
    assert metrics.concordance(durations, events, np.array([2, 2, 1])) == pytest.approx(2.5 / 3)  # a tie: one half
    # an event and a censoring at the same time are comparable; two censorings never are
    assert metrics.concordance(np.array([2, 2, 5]), np.array([1, 0, 0]), np.array([2, 1, 3])) == pytest.approx(0.5)


def test_uno_concordance_without_censoring_is_harrell_below_tau():
    rng = np.random.default_rng(0)
    durations, risks = rng.integers(1, 40, 300), rng.random(300)
    events = np.ones(300, dtype=int)
    below = durations < 20
    harrell = metrics.concordance(durations, events & below, risks)
    assert metrics.uno_concordance((durations, events), (durations, events), risks, 20) == pytest.approx(harrell)


def test_brier_without_censoring_is_the_squared_error_and_integrates_to_its_mean():
    durations, events = np.array([1, 3, 5, 7]), np.ones(4, dtype=int)
    times = np.array([2.0, 4.0, 6.0])
    survival = np.full((4, 3), 0.5)
    assert metrics.brier_scores((durations, events), (durations, events), survival, times).tolist() == [0.25] * 3
    perfect = (durations[:, None] > times[None, :]).astype(float)
    assert metrics.integrated_brier((durations, events), (durations, events), perfect, times) == 0.0


def test_censored_customers_before_t_weigh_nothing_and_the_rest_are_reweighted():
    durations, events = np.array([1, 2, 3, 4]), np.array([0, 1, 0, 1])
    # G: censoring Kaplan-Meier: at 1, 1 of 4 censored (0.75); at 3, 1 of 2 (0.375)
    scores = metrics.brier_scores((durations, events), (durations, events), np.full((4, 1), 0.5), np.array([2.5]))
    # at 2.5: customer 2 ended by then (0.5^2 / G(2) = 0.25 / 0.75), customers 3 and 4 still there (0.25 / G(2.5))
    assert scores[0] == pytest.approx((0.25 / 0.75 + 0.25 / 0.75 + 0.25 / 0.75) / 4)


def simulated(rows=3000, seed=1):
    """Customers whose monthly hazard is 0.04 (plan a) or 0.12 (plan b), censored at 30 months."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["a", "b"], rows)
    hazard = np.where(plan == "a", 0.04, 0.12)
    months = rng.geometric(hazard)
    durations, events = np.minimum(months, 30), (months <= 30).astype(int)
    return pd.DataFrame({"plan": plan}), durations, events, hazard


def hazard_model():
    return make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression(C=100.0, max_iter=2000))


def test_person_months_repeat_each_customer_once_per_month_with_the_end_marked():
    rows, ended = person_months(pd.DataFrame({"x": [7, 8, 9]}), np.array([2, 0, 3]), np.array([1, 0, 0]))
    assert rows["x"].tolist() == [7, 7, 9, 9, 9] and rows[MONTH].tolist() == [1, 2, 1, 2, 3]
    assert ended.tolist() == [0, 1, 0, 0, 0]


def test_the_hazard_model_recovers_a_known_hazard_and_its_horizons_are_conditional_survival():
    X, durations, events, hazard = simulated()
    model = DiscreteTimeHazard(hazard_model(), 30).fit(X, durations, events)
    survival = model.survival(X.head(2), 30)
    truth = (1 - hazard[:2, None]) ** np.arange(1, 31)
    np.testing.assert_allclose(survival[:, 11], truth[:, 11], atol=0.03)
    tenure = np.array([5, 10])
    churn, expected = model.within(X.head(2), tenure, 12)
    rows = np.arange(2)
    by_curve = 1 - survival[rows, tenure + 11] / survival[rows, tenure - 1]
    np.testing.assert_allclose(churn, by_curve, rtol=0, atol=1e-12)  # months past 30 reuse month 30's hazard
    assert ((0 < expected) & (expected <= 12)).all()


def test_the_metrics_equal_scikit_survivals_on_censored_data_with_ties():
    sksurv_metrics = pytest.importorskip("sksurv.metrics")  # in the dev lock: the reference implementation
    from sksurv.nonparametric import kaplan_meier_estimator
    from sksurv.util import Surv

    rng = np.random.default_rng(20_261_203)
    d_train, e_train = rng.integers(1, 60, 600).astype(float), rng.random(600) < 0.4
    d_test, e_test = np.minimum(rng.integers(1, 70, 300), 58).astype(float), rng.random(300) < 0.35
    risks = np.round(rng.random(300), 2)  # many tied risks
    train, test = Surv.from_arrays(e_train, d_train), Surv.from_arrays(e_test, d_test)
    times, survival = kaplan_meier_estimator(e_train, d_train)
    np.testing.assert_allclose(metrics.kaplan_meier(d_train, e_train)(times), survival, rtol=0, atol=1e-12)
    harrell = sksurv_metrics.concordance_index_censored(e_test, d_test, risks)[0]
    assert metrics.concordance(d_test, e_test, risks) == pytest.approx(harrell, abs=1e-12)
    uno = sksurv_metrics.concordance_index_ipcw(train, test, risks, tau=50)[0]
    assert metrics.uno_concordance((d_train, e_train), (d_test, e_test), risks, 50) == pytest.approx(uno, abs=1e-12)
    months = np.arange(2, 50, 1.0)
    curves = np.sort(rng.random((300, len(months))), axis=1)[:, ::-1]
    ibs = sksurv_metrics.integrated_brier_score(train, test, curves, months)
    ours = metrics.integrated_brier((d_train, e_train), (d_test, e_test), curves, months)
    assert ours == pytest.approx(ibs, abs=1e-12)
