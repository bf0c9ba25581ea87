"""PSI, the bins, and CBPE's estimates, against hand-computed cases and simulated scores."""

import math

import numpy as np
import pytest

from churn.codes import Coded
from churn.config import MonitorConfig
from churn.monitoring import profiles
from churn.monitoring.profiles import ColumnBins
from churn.monitoring.verdicts import verdict


def test_psi_of_two_bins_by_hand():
    expected = 0.5 * math.log(0.5 / 0.5) + (0.7 - 0.3) * math.log(0.7 / 0.3) + (0.3 - 0.7) * math.log(0.3 / 0.7)
    assert profiles.psi(np.array([0.3, 0.7]), np.array([0.7, 0.3])) == pytest.approx(expected)


def test_psi_takes_counts_and_is_zero_for_the_same_shares():
    assert profiles.psi(np.array([1, 3]), np.array([10, 30])) == 0.0


def test_an_empty_bin_is_floored_so_psi_stays_finite():
    floor = profiles.SHARE_FLOOR
    found = profiles.psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2]))
    by_hand = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - floor) * math.log(0.2 / floor)
    assert found == pytest.approx(by_hand)
    assert math.isfinite(profiles.psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_numeric_bins_put_each_value_in_its_decile_and_missing_last():
    values = np.arange(100, dtype="float64")
    column = profiles.column_bins("x", values)
    assert column.edges == tuple(float(v) for v in range(9, 90, 10))  # lower deciles: training values
    bins = column.bins_of(np.array([-5.0, 9.0, 9.5, 89.0, 1e9, np.nan]))
    assert bins.tolist() == [0, 1, 1, 9, 9, column.size - 1]
    assert np.bincount(column.bins_of(values), minlength=column.size).tolist() == [9] + [10] * 8 + [11, 0, 0]


def test_a_column_of_few_values_gets_a_bin_per_value():
    column = profiles.column_bins("senior", np.array([0.0] * 84 + [1.0] * 16))
    assert column.edges == (0.0, 1.0)
    assert column.labels[1:3] == ["[0, 1)", "[1, inf)"]


def test_categorical_bins_unseen_and_missing():
    column = ColumnBins("Contract", "categorical", categories=("Month-to-month", "One year", "Two year"))
    coded = Coded(np.array([2, 0, -1, 1, 3]), ("One year", "Month-to-month", "Three years", "Two year"))
    # Three years (unseen), One year, missing, Month-to-month, Two year
    assert column.bins_of(coded).tolist() == [3, 1, 4, 0, 2]
    assert column.labels[-2:] == ["(unseen)", "(missing)"]


def test_unseen_categories_raise_psi():
    column = ColumnBins("c", "categorical", categories=("a", "b"))
    then = np.array([0.5, 0.5, 0.0, 0.0])
    now = np.bincount(column.bins_of(Coded(np.array([0, 1, 2, 2]), ("a", "b", "new"))), minlength=column.size)
    assert now.tolist() == [1, 1, 2, 0]
    assert profiles.psi(then, now) > 0.25


def test_expected_roc_auc_by_hand():
    # scores 0.9, 0.5, 0.2: expected (churner above stayer) pairs over expected pairs, ties of a row
    # with itself counting half, as the trapezoid does
    p = np.array([0.9, 0.5, 0.2])
    q = 1 - p
    above = p[0] * (q[1] + q[2]) + p[1] * q[2] + 0.5 * sum(p * q)
    assert profiles.expected_roc_auc(p) == pytest.approx(above / (p.sum() * q.sum()))


def test_expected_roc_auc_is_none_without_churners_or_stayers():
    assert profiles.expected_roc_auc(np.zeros(5)) is None
    assert profiles.expected_roc_auc(np.ones(5)) is None


def test_expected_confusion_by_hand():
    confusion = profiles.expected_confusion(np.array([0.9, 0.6, 0.3, 0.1]), threshold=0.5)
    assert confusion == pytest.approx({"tp": 1.5, "fp": 0.5, "fn": 0.4, "tn": 1.6})
    assert profiles.rates(confusion) == pytest.approx({"precision": 0.75, "recall": 1.5 / 1.9})


def test_on_calibrated_scores_the_estimate_is_within_002_of_the_realised_roc_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    errors = []
    for _ in range(200):
        p = 1 / (1 + np.exp(-rng.normal(-1.2, 1.3, size=2000)))  # calibrated by construction
        y = rng.random(2000) < p
        errors.append(abs(profiles.expected_roc_auc(p) - roc_auc_score(y, p)))
    assert np.mean(errors) < 0.02 and np.quantile(errors, 0.95) < 0.03


def test_calibration_table_and_error_by_hand():
    labels = np.array([0, 0, 1, 1, 1])
    probabilities = np.array([0.05, 0.15, 0.15, 0.95, 0.85])
    table, error = profiles.calibration_table(labels, probabilities)
    assert [row["rows"] for row in table] == [1, 2, 1, 1]
    # bins: 0.05 -> rate 0; 0.15 (x2) -> 0.5; 0.85 -> 1; 0.95 -> 1
    assert error == pytest.approx((0.05 + 2 * 0.35 + 0.15 + 0.05) / 5)


def figures(column_psi, prediction_psi=0.0, estimated=0.84, trusted=True):
    return {
        "columns": [{"column": "tenure", "psi": column_psi, "band": "x"}],
        "prediction": {"psi": prediction_psi, "band": "x"},
        "estimated": {"roc_auc": estimated},
        "test": {"roc_auc": 0.85},
        "calibration": {"estimate_trusted": trusted, "expected_calibration_error": 0.2},
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (figures(0.05), "stable"),
        (figures(0.1), "warning"),
        (figures(0.05, trusted=False), "warning"),
        (figures(0.25), "alarm"),
        (figures(0.05, prediction_psi=0.3), "alarm"),
        (figures(0.05, estimated=0.79), "alarm"),
        (figures(0.05, estimated=0.81), "stable"),
    ],
)
def test_verdict_bands(case, expected):
    found, reasons = verdict(case, MonitorConfig())
    assert found == expected
    assert bool(reasons) == (expected != "stable")


def test_psi_bands_must_be_in_order():
    with pytest.raises(ValueError, match="psi_warn"):
        MonitorConfig(psi_warn=0.3, psi_alarm=0.2)
