"""Survival metrics by hand-worked examples, and the discrete-time hazard model on simulated
customers with a known hazard."""

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from churn.cleaning import clean_features
from churn.preprocessing import FeatureCleaner, build_preprocessor
from churn.scoring.margins import LinearMargin
from churn.survival import metrics
from churn.survival.hazard import HazardModel, person_months
from churn.survival.horizons import LinearHazardScorer, ModelHazardScorer
from churn.training.stages import export_hazard_tables

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


def pair_by_pair_concordance(durations, events, risks, weights):
    """The definition, one event at a time over every other customer (O(n^2))."""
    numerator = denominator = 0.0
    for i in np.flatnonzero(events & (weights > 0)):
        later = (durations > durations[i]) | ((durations == durations[i]) & ~events)
        ties = np.abs(risks[later] - risks[i]) <= metrics.TIED_RISK
        numerator += weights[i] * (((risks[later] < risks[i]) & ~ties).sum() + 0.5 * ties.sum())
        denominator += weights[i] * later.sum()
    return numerator / denominator if denominator else float("nan")


@pytest.mark.parametrize("seed", range(4))
def test_concordance_counts_every_pair_exactly_as_the_definition(seed):
    rng = np.random.default_rng(seed)
    rows = 700
    durations = rng.integers(0, 40, rows).astype(float) if seed % 2 else rng.exponential(20, rows).round(1)
    events = rng.random(rows) < 0.4
    risks = np.round(rng.random(rows), 2)
    risks[::9] = risks[1::9][: len(risks[::9])] + rng.choice([-1, 1], len(risks[::9])) * metrics.TIED_RISK * 0.999
    weights = np.where(rng.random(rows) < 0.2, 0.0, rng.random(rows) * 3)
    for w in (np.ones(rows), weights):
        assert metrics.concordance(durations, events, risks, w) == pair_by_pair_concordance(durations, events, risks, w)


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


def hazard_model(classifier=None):
    """Churn's cleaning and preprocessing on the plan column, and a hazard classifier."""
    features = Pipeline([("clean", FeatureCleaner((), ("plan",))), ("preprocess", build_preprocessor((), ("plan",)))])
    classifier = classifier or LogisticRegression(C=100.0, max_iter=2000)
    return HazardModel(features, classifier, "tenure", (3, 12))


def test_person_months_repeat_each_customer_once_per_month_with_the_end_marked():
    owner, month, ended = person_months(np.array([2, 0, 3]), np.array([1, 0, 0]))
    assert owner.tolist() == [0, 0, 2, 2, 2] and month.tolist() == [1, 2, 1, 2, 3]
    assert ended.tolist() == [0, 1, 0, 0, 0]


@pytest.mark.parametrize("classifier", [None, HistGradientBoostingClassifier(max_iter=50, random_state=0)])
def test_the_hazard_model_recovers_a_known_hazard_and_its_horizons_are_conditional_survival(classifier):
    X, durations, events, hazard = simulated()
    model = hazard_model(classifier).fit(X, durations, events)
    survival = model.survival(X.head(2), 30)
    truth = (1 - hazard[:2, None]) ** np.arange(1, 31)
    np.testing.assert_allclose(survival[:, 11], truth[:, 11], atol=0.03)
    rows = X.head(2).assign(tenure=[5, 10])
    horizons = model.predict_horizons(rows)
    by_curve = 1 - survival[:, [16, 21]] / survival[:, [4, 9]]  # S(t + 12) / S(t)
    np.testing.assert_allclose(horizons["churn_within_12m"], by_curve.diagonal(), rtol=0, atol=1e-12)
    kept = survival[[0, 0, 0], [5, 6, 7]] / survival[0, 4]  # months 6, 7, 8 for the customer at 5
    assert horizons["churn_within_3m"].iloc[0] == pytest.approx(1 - kept[-1], abs=1e-12)
    assert ((0 < horizons["expected_months_12m"]) & (horizons["expected_months_12m"] <= 12)).all()


def test_a_shallow_tree_hazard_model_scores_its_months_as_its_classifier_does_bit_for_bit():
    X, durations, events, _ = simulated(1500)
    model = hazard_model(HistGradientBoostingClassifier(max_iter=30, max_depth=3, random_state=0))
    model.fit(X, durations, events)
    rows = X.head(40)
    months = np.tile(np.arange(1, 31), (len(rows), 1))
    found = model.hazards_at(rows, months)
    matrix = model._matrix(rows)
    for column in range(months.shape[1]):
        design = np.hstack([matrix, months[:, [column]].astype("float64")])
        assert np.array_equal(found[:, column], model.classifier_.predict_proba(design)[:, 1])


def test_a_saved_tree_hazard_model_is_unpickled_only_when_horizons_are_asked_for():
    X, durations, events, _ = simulated(600)
    model = hazard_model(HistGradientBoostingClassifier(max_iter=10, max_depth=3, random_state=0))
    model.fit(X, durations, events)
    saved = io.BytesIO()
    joblib.dump(model, saved)
    scorer = ModelHazardScorer(saved.getvalue(), "tenure", (3, 12))
    assert scorer._model is None  # predict --no-horizons never pays for scikit-learn's import
    rows = X.head(5).assign(tenure=[1.0, 4.0, 9.0, 20.0, 29.0])
    cleaned = clean_features(rows, model.features_[0].spec_).features
    cleaned.numbers["tenure"] = rows["tenure"].to_numpy()
    found = scorer.horizons_clean(cleaned)
    assert scorer._model is not None
    for name, values in model.predict_horizons(rows).items():
        assert np.array_equal(found[name], values.to_numpy("float64"))


def test_months_past_the_longest_stay_reuse_its_hazard_and_a_missing_tenure_has_no_horizon():
    X, durations, events, _ = simulated(800)
    model = hazard_model().fit(X, durations, events)
    assert model.max_month_ == 30
    rows = X.head(3).assign(tenure=[40.0, np.nan, -1.0])
    horizons = model.predict_horizons(rows)
    last = model.hazards_at(X.head(1), np.array([[30]]))[0, 0]
    assert horizons["churn_within_3m"].iloc[0] == pytest.approx(1 - (1 - last) ** 3, abs=1e-12)
    assert horizons.iloc[1:].isna().all().all()


def test_the_tables_equal_the_saved_hazard_model():
    X, durations, events, _ = simulated(800)
    model = hazard_model().fit(X, durations, events)
    tables = export_hazard_tables(model)
    rows = pd.concat([X.head(20), pd.DataFrame({"plan": ["c", None]})], ignore_index=True)
    rows["tenure"] = np.r_[np.arange(20) * 3.0, 2.5, 0.0]
    cleaned = clean_features(rows, LinearMargin(tables).spec).features
    cleaned.numbers["tenure"] = rows["tenure"].to_numpy()
    fast = LinearHazardScorer(tables).horizons_clean(cleaned)
    expected = model.predict_horizons(rows)
    for name in expected.columns:
        np.testing.assert_allclose(fast[name], expected[name], rtol=0, atol=1e-12)


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
