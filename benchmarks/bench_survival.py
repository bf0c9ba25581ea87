"""Time to churn on the shipped data: the run's hazard models (churn.survival) against
Kaplan-Meier and scikit-survival's Cox model (when installed), on the run's own split.

    python benchmarks/bench_survival.py
    python benchmarks/bench_survival.py --models logistic_regression

Duration = tenure (months), event = Churn; the features are the shipped config's without tenure
(the time axis) and without what survival.leave_out names (TotalCharges, about tenure x
MonthlyCharges: it leaks the duration). The split is the config's (20 % test rows, stratified,
seed 42). For each hazard model it prints Harrell's C and Uno's C at tau (the 80th percentile of
training stays) of the cumulative hazard, the integrated Brier score over months 1 ... tau (IPCW,
censoring from the training rows), Kaplan-Meier's IBS, the fit time, and the largest gap between
predicted churn within the last horizon and the Kaplan-Meier estimate over deciles of prediction.

A test decile holds 141 customers, whose Kaplan-Meier estimate has a standard error of 3-4
points; to tell miscalibration from that noise, the last lines repeat the decile check on
out-of-fold predictions of every customer (5 folds, deciles of 704), with each decile's standard
error (Greenwood's formula).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from common import REPO
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn.config import load_config
from churn.data_loader import load_training_data
from churn.survival import metrics
from churn.survival.training import Durations, calibration_by_decile, hazard_features, judge, make_hazard_model
from churn.training.stages import make_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["logistic_regression", "hist_gradient_boosting"])
    args = parser.parse_args()
    config = load_config(REPO / "config.yaml")
    split = make_split(config.split, load_training_data(config.data.path, config.data))
    column = config.survival.duration_column
    train = Durations.of(split.X_train, split.y_train, column)
    test = Durations.of(split.X_test, split.y_test, column)
    tau = max(int(np.quantile(train.months, 0.8)), 1)
    print(f"{len(train.months):,} training / {len(test.months):,} test customers; tau {tau} months")
    print(f"{'model':>24} {'Harrell C':>10} {'Uno C':>8} {'IBS':>8} {'KM IBS':>8} {'fit s':>7}  worst decile gap")
    for name in args.models:
        started = time.perf_counter()
        model = make_hazard_model(config, name).fit(train.X, train.months, train.events)
        fitted = time.perf_counter() - started
        scores, _, _ = judge(model, train, test, tau, config.survival.longest)
        print(
            f"{name:>24} {scores.harrell_c:10.4f} {scores.uno_c:8.4f} {scores.ibs:8.4f} {scores.kaplan_meier_ibs:8.4f}"
            f" {fitted:7.1f}  {100 * scores.worst_decile_gap:.1f} points"
        )
    cox(config, train, test, tau)
    out_of_fold(config, split, args.models)


def out_of_fold(config, split, kinds: list[str]) -> None:
    """Churn within the last horizon by decile on every customer's out-of-fold prediction."""
    X = pd.concat([split.X_train, split.X_test])
    y = pd.concat([split.y_train, split.y_test])
    rows = Durations.of(X, y, config.survival.duration_column)
    horizon = config.survival.longest
    folds = StratifiedKFold(5, shuffle=True, random_state=config.split.random_state)
    for kind in kinds:
        within = np.empty(len(rows.months))
        for fit, held in folds.split(rows.X, rows.events):
            model = make_hazard_model(config, kind).fit(rows.X.iloc[fit], rows.months[fit], rows.events[fit])
            within[held] = 1.0 - model.survival(rows.X.iloc[held], horizon)[:, -1]
        deciles = calibration_by_decile(within, rows.months, rows.events, horizon)
        errors = [greenwood(rows.months[m], rows.events[m], horizon) for m in decile_members(within)]
        gap = (deciles["predicted"] - deciles["observed"]).abs()
        worst = int(gap.idxmax())
        print(f"out of fold, {kind}: worst decile gap {100 * gap.max():.1f} points (decile {worst + 1}, its "
              f"Kaplan-Meier standard error {100 * errors[worst]:.1f} points)")  # fmt: skip


def decile_members(predicted: np.ndarray) -> list[np.ndarray]:
    return np.array_split(np.argsort(predicted, kind="stable"), 10)


def greenwood(months: np.ndarray, events: np.ndarray, at: int) -> float:
    """The standard error of the Kaplan-Meier estimate at `at` (Greenwood's formula)."""
    survival, total = 1.0, 0.0
    for t in np.unique(months[(events == 1) & (months <= at)]):
        at_risk, died = int((months >= t).sum()), int(((months == t) & (events == 1)).sum())
        survival *= 1 - died / at_risk
        total += died / (at_risk * (at_risk - died)) if at_risk > died else 0.0
    return survival * float(np.sqrt(total))


def cox(config, train: Durations, test: Durations, tau: int) -> None:
    """scikit-survival's Cox model on the same rows and features, when it is installed (the dev lock's reference)."""
    try:
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv
    except ImportError:
        print("scikit-survival is not installed: no Cox reference")
        return
    numeric, categorical = hazard_features(config)
    columns = ColumnTransformer(
        [("numbers", StandardScaler(), numeric), ("categories", OneHotEncoder(drop="first"), categorical)],
        sparse_threshold=0,
    )
    model = make_pipeline(columns, CoxPHSurvivalAnalysis(alpha=1e-4))
    X_train, X_test = (rows.X.astype({c: "str" for c in categorical}) for rows in (train, test))
    model.fit(X_train, Surv.from_arrays(train.events.astype(bool), train.months))
    risk = model.predict(X_test)
    months = np.arange(1, tau + 1)
    curves = model.predict_survival_function(X_test)
    survival = np.vstack([curve(np.clip(months, curve.x[0], curve.x[-1])) for curve in curves])
    harrell, uno = metrics.concordance(*test.pair, risk), metrics.uno_concordance(train.pair, test.pair, risk, tau)
    ibs = metrics.integrated_brier(train.pair, test.pair, survival, months)
    print(f"{'cox (scikit-survival)':>24} {harrell:10.4f} {uno:8.4f} {ibs:8.4f}")


if __name__ == "__main__":
    main()
