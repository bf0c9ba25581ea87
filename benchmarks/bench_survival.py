"""Time to churn on the shipped data: the discrete-time hazard model against Kaplan-Meier (and
scikit-survival's Cox model when it is installed), on a held-out 20 %.

    python benchmarks/bench_survival.py
    python benchmarks/bench_survival.py --models logistic_regression hist_gradient_boosting

logistic_regression: the month as a cubic spline (8 knots); logistic_regression_month_onehot: one
weight per month; hist_gradient_boosting: the month as a number, default settings.

Duration = tenure (months), event = Churn; the features are the shipped config's without tenure
(the time axis) and TotalCharges (about tenure x MonthlyCharges: it leaks the duration). The
split is stratified by the event, seed 42. For each model it prints Harrell's C and Uno's C at
tau = 60 of the cumulative hazard over months 1-72, the integrated Brier score over months 1-60
(IPCW, censoring from the training rows), Kaplan-Meier's IBS, the fit time, and churn within
12 months by decile of prediction against the Kaplan-Meier estimate in that decile.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from common import REPO
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

from churn.config import load_config
from churn.survival import metrics
from churn.survival.hazard import MONTH, DiscreteTimeHazard

LEFT_OUT = ("tenure", "TotalCharges")
MONTHS, TAU, DECILES = 72, 60, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["logistic_regression", "logistic_regression_month_onehot", "hist_gradient_boosting"],
    )
    args = parser.parse_args()
    config = load_config(REPO / "config.yaml")
    frame = pd.read_csv(REPO / "data" / "raw" / "telco_customer_churn.csv")
    numeric = [c for c in config.data.numeric_features if c not in LEFT_OUT]
    categorical = [c for c in config.data.categorical_features if c not in LEFT_OUT]
    X = frame[numeric + categorical]
    durations, events = frame["tenure"].to_numpy(), (frame["Churn"] == "Yes").to_numpy().astype(int)
    parts = train_test_split(X, durations, events, test_size=0.2, random_state=42, stratify=events)
    X_train, X_test, d_train, d_test, e_train, e_test = parts
    train, test = (d_train, e_train), (d_test, e_test)
    months = np.arange(1, TAU + 1)
    km = metrics.kaplan_meier(d_train, e_train)
    km_ibs = metrics.integrated_brier(train, test, np.tile(km(months), (len(d_test), 1)), months)
    print(f"{len(d_train):,} training / {len(d_test):,} test customers; Kaplan-Meier IBS (months 1-{TAU}) {km_ibs:.4f}")
    print(f"{'model':>24} {'Harrell C':>10} {'Uno C':>8} {'IBS':>8} {'fit s':>7}  worst decile gap (12 months)")
    for name in args.models:
        started = time.perf_counter()
        model = DiscreteTimeHazard(hazard_pipeline(name, numeric, categorical), MONTHS).fit(X_train, d_train, e_train)
        fitted = time.perf_counter() - started
        survival = model.survival(X_test, MONTHS)
        risk = -np.log(np.clip(survival[:, -1], 1e-300, None))
        harrell = metrics.concordance(d_test, e_test, risk)
        uno = metrics.uno_concordance(train, test, risk, TAU)
        ibs = metrics.integrated_brier(train, test, survival[:, :TAU], months)
        gap = worst_decile_gap(1.0 - survival[:, 11], d_test, e_test)
        print(f"{name:>24} {harrell:10.4f} {uno:8.4f} {ibs:8.4f} {fitted:7.1f}  {100 * gap:.1f} points")
    cox(X_train, X_test, train, test, numeric, categorical, months)


def hazard_pipeline(name: str, numeric: list[str], categorical: list[str]) -> object:
    if name in ("logistic_regression", "logistic_regression_month_onehot"):
        # the baseline hazard over the months: a cubic spline (8 knots), smooth; or one weight a month
        month = (
            ("month", SplineTransformer(n_knots=8, degree=3), [MONTH])
            if name == "logistic_regression"
            else ("month", OneHotEncoder(handle_unknown="ignore"), [MONTH])
        )
        columns = ColumnTransformer(
            [
                ("numbers", StandardScaler(), numeric),
                ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
                month,
            ]
        )
        return make_pipeline(columns, LogisticRegression(max_iter=3000, C=1.0))
    columns = ColumnTransformer(
        [
            ("numbers", "passthrough", [*numeric, MONTH]),
            ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
        ],
        sparse_threshold=0,
    )
    return make_pipeline(columns, HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0))


def worst_decile_gap(predicted: np.ndarray, durations: np.ndarray, events: np.ndarray) -> float:
    """The largest |predicted - Kaplan-Meier observed| churn within 12 months over deciles of prediction."""
    order = np.argsort(predicted, kind="stable")
    gaps = []
    for rows in np.array_split(order, DECILES):
        observed = 1.0 - float(metrics.kaplan_meier(durations[rows], events[rows])(12.0))
        gaps.append(abs(float(predicted[rows].mean()) - observed))
    return max(gaps)


def cox(X_train, X_test, train, test, numeric, categorical, months) -> None:
    """scikit-survival's Cox model on the same rows, when it is installed (the dev lock's reference)."""
    try:
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv
    except ImportError:
        print("scikit-survival is not installed: no Cox reference")
        return
    columns = ColumnTransformer(
        [("numbers", StandardScaler(), numeric), ("categories", OneHotEncoder(drop="first"), categorical)],
        sparse_threshold=0,
    )
    model = make_pipeline(columns, CoxPHSurvivalAnalysis(alpha=1e-4))
    model.fit(X_train, Surv.from_arrays(train[1].astype(bool), train[0]))
    risk = model.predict(X_test)
    curves = model.predict_survival_function(X_test)
    survival = np.vstack([curve(np.clip(months, curve.x[0], curve.x[-1])) for curve in curves])
    harrell, uno = metrics.concordance(test[0], test[1], risk), metrics.uno_concordance(train, test, risk, TAU)
    ibs = metrics.integrated_brier(train, test, survival, months)
    print(f"{'cox (scikit-survival)':>24} {harrell:10.4f} {uno:8.4f} {ibs:8.4f}")


if __name__ == "__main__":
    main()
