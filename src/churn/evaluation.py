"""Metrics of a scored, labelled sample, and cross-validated ROC AUC on training rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
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
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from churn.errors import DataError
from churn.model import predict_labels

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "brier": "Brier score",
}


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


def cross_validate_roc_auc(
    pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, folds: int, random_state: int
) -> dict[str, float]:
    """Stratified k-fold ROC AUC of an unfitted pipeline on the given (training) rows.

    Raises:
        DataError: the smaller class has fewer training rows than there are folds.
    """
    smallest = int(pd.Series(y).value_counts().min())
    if smallest < folds:
        raise DataError(
            f"training.cv_folds is {folds} but the smaller class has only {smallest} training row(s); "
            "lower training.cv_folds or add rows"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    scores = cross_val_score(clone(pipeline), X, y, cv=splitter, scoring="roc_auc")
    return {"cv_roc_auc_mean": float(scores.mean()), "cv_roc_auc_std": float(scores.std()), "cv_folds": folds}
