"""Metrics of a scored, labelled sample; decision costs; the validation gate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from churn.config import GATE_KEYS, DecisionConfig, ValidationConfig
from churn.scoring.decisions import Costs, Money
from churn.scoring.scorers import predict_labels


def compute_metrics(y_true: pd.Series | np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """Ranking metrics on the probabilities and decision metrics at the threshold."""
    y = np.asarray(y_true, dtype="int64")
    predicted = predict_labels(probabilities, threshold)
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    return {
        "rows": int(len(y)),
        "positive_rate": float(y.mean()),
        "threshold": float(threshold),
        "roc_auc": float(roc_auc_score(y, probabilities)),
        "pr_auc": float(average_precision_score(y, probabilities)),
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, probabilities)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def cost_summary(
    y_true: pd.Series | np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    decision: DecisionConfig,
    money: Money | None = None,
) -> dict[str, float]:
    """Expected cost of the run's contacts against contacting nobody and everyone, and the
    saving against contacting nobody. With constant costs the contacts are the customers at or
    above the threshold (with `model.threshold: auto`, the break-even: the positive savings);
    with per-customer costs (`money`, row for row), the one rule: a positive expected saving."""
    costs = Costs.required(decision)
    y = np.asarray(y_true, dtype="int64")
    if costs.per_customer:
        assert money is not None, "per-customer costs need each customer's money"
        contact = costs.savings(probabilities, money) > 0
    else:
        money = costs.money(None, len(y))
        contact = predict_labels(probabilities, threshold) == 1
    cost = costs.cost_of(contact, y, money)
    nobody = costs.cost_of(np.zeros(len(y), bool), y, money)
    everyone = costs.cost_of(np.ones(len(y), bool), y, money)
    return {
        "expected_cost": cost,
        "cost_contact_nobody": nobody,
        "cost_contact_everyone": everyone,
        "saving_vs_contact_nobody": nobody - cost,
    }


def saving_curve(
    y_true: pd.Series | np.ndarray, probabilities: np.ndarray, decision: DecisionConfig, money: Money
) -> pd.DataFrame:
    """The saving of contacting the first k customers, k = 0 ... n, ranked two ways: by expected
    saving (the rule every door applies) and by churn probability alone. Per ranking, the
    expected saving the model promises (sum of p x cost of churn x success - offer) and the
    saving on these labelled rows (a churner contacted saves cost of churn x success, every
    contact costs its offer)."""
    costs = Costs.required(decision)
    y = np.asarray(y_true, dtype="int64")
    expected = costs.savings(probabilities, money)
    realised = y * money.churn_cost * costs.offer_success_rate - money.offer_cost
    by_saving = np.argsort(-expected, kind="stable")
    by_probability = np.argsort(-probabilities, kind="stable")
    start = np.zeros(1)
    return pd.DataFrame(
        {
            "contacted": np.arange(len(y) + 1),
            "expected_saving": np.concatenate([start, np.cumsum(expected[by_saving])]),
            "saving": np.concatenate([start, np.cumsum(realised[by_saving])]),
            "expected_saving_by_probability": np.concatenate([start, np.cumsum(expected[by_probability])]),
            "saving_by_probability": np.concatenate([start, np.cumsum(realised[by_probability])]),
        }
    )


def threshold_curve(
    y_true: pd.Series | np.ndarray, probabilities: np.ndarray, decision: DecisionConfig, money: Money | None = None
) -> pd.DataFrame:
    """Precision, recall, F1 (and cost, when costs are set) at thresholds 0.01 ... 0.99.

    Counted with sorted arrays rather than 99 calls to scikit-learn's metrics, which cost a
    second on a few thousand rows and grow with the training set.
    """
    y = np.asarray(y_true, dtype="int64")
    thresholds = np.round(np.arange(0.01, 1.0, 0.01), 2)
    positives, negatives = np.sort(probabilities[y == 1]), np.sort(probabilities[y == 0])
    tp = len(positives) - np.searchsorted(positives, thresholds, side="left")  # predicted 1 when p >= t
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="left")
    fn = len(positives) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = pd.DataFrame(
            {
                "threshold": thresholds,
                "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
                "recall": np.where(len(positives) > 0, tp / max(len(positives), 1), 0.0),
                "f1": np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
                "contacted": tp + fp,
            }
        )
    if (costs := Costs.of(decision)) is not None and not costs.per_customer:
        churners = len(positives)
        curve["expected_cost"] = costs.cost(tp + fp, tp, churners)
        curve["cost_contact_nobody"] = costs.cost(0, 0, churners)
        curve["cost_contact_everyone"] = costs.cost(len(y), churners, churners)
    elif costs is not None and money is not None:  # summed customer by customer at each threshold
        curve["expected_cost"] = [costs.cost_of(probabilities >= t, y, money) for t in thresholds]
        curve["cost_contact_nobody"] = costs.cost_of(np.zeros(len(y), bool), y, money)
        curve["cost_contact_everyone"] = costs.cost_of(np.ones(len(y), bool), y, money)
    return curve


def check_gate(metrics: dict[str, Any], validation: ValidationConfig) -> list[str]:
    """One line per validation criterion the metrics miss; empty when the model passes."""
    missed = []
    for key, bound in validation.criteria.items():
        value = float(metrics[GATE_KEYS[key]])
        passed = value <= bound if key.startswith("max_") else value >= bound
        if not passed:
            relation = ">" if key.startswith("max_") else "<"
            missed.append(f"validation.{key}: {GATE_KEYS[key]} {value:.4f} {relation} {bound:g}")
    return missed
