import numpy as np
import pytest

from churn.config import DecisionConfig, ValidationConfig
from churn.training.evaluation import check_gate, compute_metrics, cost_summary, threshold_curve


def test_compute_metrics_on_a_hand_checked_example():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    metrics = compute_metrics(y, p, threshold=0.5)
    assert metrics["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)
    assert metrics["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert metrics["rows"] == 4 and metrics["positive_rate"] == 0.5


def test_compute_metrics_depends_on_the_threshold():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    assert compute_metrics(y, p, threshold=0.3)["recall"] == 1.0


COSTS = DecisionConfig(offer_cost=10.0, churn_cost=100.0, offer_success_rate=0.5)


def test_cost_summary_on_hand_computed_cases():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    # At 0.5 the rows scored 0.6 (stays) and 0.9 (churns) are contacted: 2 offers cost 20; the
    # churner scored 0.4 is lost (100); of the one contacted churner the offer keeps half (50).
    # Nobody contacted: both churners lost, 200. Everyone: 4 offers (40), half of 2 churners lost (100).
    assert cost_summary(y, p, 0.5, COSTS) == {
        "expected_cost": 170.0,
        "cost_contact_nobody": 200.0,
        "cost_contact_everyone": 140.0,
        "saving_vs_contact_nobody": 30.0,
    }
    # At 0.3 both churners and one stayer are contacted: 30 in offers, half of 2 churners lost: 130.
    assert cost_summary(y, p, 0.3, COSTS)["expected_cost"] == 130.0
    # An offer that always works: at 0.3 only the offers are paid.
    sure = DecisionConfig(offer_cost=10.0, churn_cost=100.0, offer_success_rate=1.0)
    assert cost_summary(y, p, 0.3, sure)["expected_cost"] == 30.0


def test_check_gate_names_each_missed_criterion_and_its_value():
    metrics = {"roc_auc": 0.75, "recall": 0.6, "brier": 0.2}
    assert check_gate(metrics, ValidationConfig(min_roc_auc=0.7, min_recall=0.5)) == []
    missed = check_gate(metrics, ValidationConfig(min_roc_auc=0.8, min_recall=0.7, max_brier=0.1))
    assert missed == [
        "validation.min_roc_auc: roc_auc 0.7500 < 0.8",
        "validation.min_recall: recall 0.6000 < 0.7",
        "validation.max_brier: brier 0.2000 > 0.1",
    ]


def test_threshold_curve_spans_thresholds_with_costs_when_set():
    y = np.array([0, 1, 1, 0])
    curve = threshold_curve(y, np.array([0.2, 0.8, 0.6, 0.4]), COSTS)
    assert len(curve) == 99 and curve["threshold"].iloc[0] == 0.01
    at_half = curve.loc[curve["threshold"] == 0.5].iloc[0]
    assert at_half["f1"] == 1.0
    # at 0.5 exactly the two churners are contacted: 20 in offers, half of them lost: 100
    assert at_half["expected_cost"] == 120.0
    assert (curve["cost_contact_nobody"] == 200.0).all() and (curve["cost_contact_everyone"] == 140.0).all()
    assert "expected_cost" not in threshold_curve(y, np.array([0.1] * 4), DecisionConfig())


def test_threshold_curve_agrees_with_scikit_learn_metrics():
    from sklearn.metrics import f1_score, precision_score, recall_score

    from churn.scoring.scorers import predict_labels

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500), 2)  # ties exactly at the thresholds
    curve = threshold_curve(y, p, COSTS)
    for row in curve.itertuples():
        predicted = predict_labels(p, row.threshold)
        assert row.precision == pytest.approx(precision_score(y, predicted, zero_division=0))
        assert row.recall == pytest.approx(recall_score(y, predicted, zero_division=0))
        assert row.f1 == pytest.approx(f1_score(y, predicted, zero_division=0))
        assert row.expected_cost == cost_summary(y, p, row.threshold, COSTS)["expected_cost"]
