import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from churn.errors import DataError
from churn.evaluation import compute_metrics, cross_validate_roc_auc


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


def test_cross_validate_roc_auc_is_repeatable():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    y = pd.Series((X["a"] + rng.normal(size=200) > 0).astype(int))
    pipeline = make_pipeline(LogisticRegression())
    first = cross_validate_roc_auc(pipeline, X, y, folds=4, random_state=1)
    assert first == cross_validate_roc_auc(pipeline, X, y, folds=4, random_state=1)
    assert 0.7 < first["cv_roc_auc_mean"] <= 1.0
    assert first["cv_folds"] == 4


def test_cross_validate_needs_enough_rows_of_each_class():
    X = pd.DataFrame({"a": range(10)})
    y = pd.Series([1, 1] + [0] * 8)
    with pytest.raises(DataError, match="cv_folds is 5 but the smaller class has only 2"):
        cross_validate_roc_auc(make_pipeline(LogisticRegression()), X, y, folds=5, random_state=0)
