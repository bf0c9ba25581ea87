import numpy as np
import pytest

from churn.evaluation import compute_metrics


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


def test_cost_summary_counts_offers_and_lost_churners():
    from churn.config import DecisionConfig
    from churn.evaluation import cost_summary

    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    summary = cost_summary(y, p, 0.5, DecisionConfig(10.0, 100.0))
    assert summary == {"expected_cost": 110.0, "cost_contacting_nobody": 200.0, "saving_vs_contacting_nobody": 90.0}


def test_check_gate_names_each_missed_criterion_and_its_value():
    from churn.config import ValidationConfig
    from churn.evaluation import check_gate

    metrics = {"roc_auc": 0.75, "recall": 0.6, "brier": 0.2}
    assert check_gate(metrics, ValidationConfig({"min_roc_auc": 0.7, "min_recall": 0.5})) == []
    missed = check_gate(metrics, ValidationConfig({"min_roc_auc": 0.8, "min_recall": 0.7, "max_brier": 0.1}))
    assert missed == [
        "validation.min_roc_auc: roc_auc 0.7500 < 0.8",
        "validation.min_recall: recall 0.6000 < 0.7",
        "validation.max_brier: brier 0.2000 > 0.1",
    ]


def test_threshold_curve_spans_thresholds_with_costs_when_set():
    from churn.config import DecisionConfig
    from churn.evaluation import threshold_curve

    y = np.array([0, 1, 1, 0])
    curve = threshold_curve(y, np.array([0.2, 0.8, 0.6, 0.4]), DecisionConfig(1.0, 5.0))
    assert len(curve) == 99 and curve["threshold"].iloc[0] == 0.01
    assert curve.loc[curve["threshold"] == 0.5, "f1"].item() == 1.0
    assert "expected_cost" in curve and "expected_cost" not in threshold_curve(y, np.array([0.1] * 4), DecisionConfig())


def test_threshold_curve_agrees_with_scikit_learn_metrics():
    from sklearn.metrics import f1_score, precision_score, recall_score

    from churn.config import DecisionConfig
    from churn.evaluation import expected_cost, threshold_curve
    from churn.scoring import predict_labels

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500), 2)  # ties exactly at the thresholds
    decision = DecisionConfig(2.0, 7.0)
    curve = threshold_curve(y, p, decision)
    for row in curve.itertuples():
        predicted = predict_labels(p, row.threshold)
        assert row.precision == pytest.approx(precision_score(y, predicted, zero_division=0))
        assert row.recall == pytest.approx(recall_score(y, predicted, zero_division=0))
        assert row.f1 == pytest.approx(f1_score(y, predicted, zero_division=0))
        assert row.expected_cost == expected_cost(y, predicted, decision)
