"""`init` -> `train` on tables it has never seen, against the straightforward way.

    python benchmarks/bench_init.py
    python benchmarks/bench_init.py --tables bank telecom --bank-rows 10000 --telecom-rows 30000

For each table (the shipped Telco file; bank- and telecom-shaped exports from tests/crm_tables.py,
with their traps: integer ids, a row counter, names, dates, a snapshot month, sentinels, a code
with hundreds of values, leaks):

1. `init` writes a config (timed), which `train` runs as written (the full comparison).
2. The straightforward way a data scientist would take: pandas, drop the id and the columns
   known not to be features (the table's own truth, not init's), numbers with sentinels coerced,
   scikit-learn's HistGradientBoostingClassifier with native categories (columns of at most 255
   values; wider ones as integer codes), on the same 80/20 stratified split (the same
   train_test_split call, seed 42).
3. Prints both test ROC AUCs, the difference, whether an id, date or leak is among init's
   features, and whether the run passed its own gate.

--min-counts measures preprocessing.min_category_count on the telecom table (the config's single
model and hist gradient boosting, each count), the figure behind init's choice.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, SHIPPED
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(REPO / "tests"))
from crm_tables import Table, bank_table, telecom_table  # noqa: E402

from churn import pipeline  # noqa: E402
from churn.config import load_config  # noqa: E402

PARAMS = {"logistic_regression": {"max_iter": 1000}, "hist_gradient_boosting": {"early_stopping": False}}
MAX_NATIVE = 255  # HistGradientBoosting's limit on a native categorical column's values


def telco() -> Table:
    frame = pd.read_csv(SHIPPED, keep_default_na=False)
    return Table(frame, "Churn", "Yes", "customerID", ("customerID",))


def baseline_auc(table: Table) -> float:
    """HistGradientBoosting with native categories on the same stratified split as churn's."""
    frame = table.frame
    y = (frame[table.target].astype("str") == str(table.positive)).astype(int)
    X = frame.drop(columns=[table.target, *table.not_features])
    for column in X.columns:
        numbers = pd.to_numeric(X[column].replace("", np.nan), errors="coerce")
        if numbers.notna().sum() >= 0.5 * X[column].astype("str").str.strip().ne("").sum():
            X[column] = numbers  # numbers, their sentinels and blanks missing
        elif X[column].nunique() <= MAX_NATIVE:
            X[column] = X[column].astype("category")
        else:
            X[column] = X[column].astype("category").cat.codes  # too wide for native categories
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=42)
    model.fit(X_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))


def init_and_train(table: Table, folder: Path, name: str) -> dict[str, object]:
    data = folder / f"{name}.csv"
    table.frame.to_csv(data, index=False)
    started = time.perf_counter()
    pipeline.init(data, table.target, folder / f"{name}.yaml", force=True)
    init_seconds = time.perf_counter() - started
    config = load_config(folder / f"{name}.yaml")
    started = time.perf_counter()
    run = pipeline.train(config)
    features = set(run.record.features.columns)
    return {
        "config": config,
        "init_s": init_seconds,
        "train_s": time.perf_counter() - started,
        "auc": run.record.metrics.roc_auc,
        "model": run.record.model.name,
        "accepted": run.record.status == "accepted",
        "floor": config.validation.min_roc_auc,
        "wrong": sorted(features & set(table.not_features)),
        "features": len(features),
    }


def min_count_sweep(table: Table, folder: Path, counts: list[int | None]) -> None:
    config = load_config(folder / "telecom.yaml")
    print("\nmin_category_count on the telecom table (single models, test ROC AUC, train seconds):")
    for model in ("logistic_regression", "hist_gradient_boosting"):
        for count in counts:
            changed = config.model_copy(
                update={
                    "preprocessing": config.preprocessing.model_copy(update={"min_category_count": count}),
                    "training": config.training.model_copy(update={"candidates": None}),
                    "model": config.model.model_copy(update={"name": model, "params": PARAMS[model]}),
                    "paths": config.paths.model_copy(update={"models_dir": folder / f"sweep-{model}-{count}"}),
                }
            )
            started = time.perf_counter()
            run = pipeline.train(changed)
            seconds = time.perf_counter() - started
            print(f"  {model:24s} {count!s:>5}: {run.record.metrics.roc_auc:.4f}  {seconds:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["telco", "bank", "telecom"])
    parser.add_argument("--bank-rows", type=int, default=10_000)
    parser.add_argument("--telecom-rows", type=int, default=30_000)
    parser.add_argument("--min-counts", nargs="*", default=["none", "10", "30", "100"])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out" / "init")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    makers = {
        "telco": telco,
        "bank": lambda: bank_table(args.bank_rows),
        "telecom": lambda: telecom_table(args.telecom_rows),
    }
    failed = False
    print(f"{'table':8s} {'rows':>7s} {'cols':>4s} {'feats':>5s} {'init s':>6s} {'train s':>7s} {'model':24s} "
          f"{'churn AUC':>9s} {'baseline':>8s} {'diff':>7s} {'floor':>5s} gate     wrong features")  # fmt: skip
    tables = {}
    for name in args.tables:
        tables[name] = table = makers[name]()
        found = init_and_train(table, args.workdir, name)
        base = baseline_auc(table)
        diff = float(found["auc"]) - base  # type: ignore[arg-type]
        failed |= bool(found["wrong"]) or not found["accepted"] or diff < -0.005
        print(f"{name:8s} {len(table.frame):7,d} {table.frame.shape[1]:4d} {found['features']:5d} "
              f"{found['init_s']:6.1f} {found['train_s']:7.1f} {found['model']:24s} {found['auc']:9.4f} "
              f"{base:8.4f} {diff:+7.4f} {found['floor']:5.2f} {'passed' if found['accepted'] else 'REJECTED':8s} "
              f"{', '.join(found['wrong']) or 'none'}")  # type: ignore[str-format]  # fmt: skip
    if "telecom" in tables and args.min_counts:
        min_count_sweep(tables["telecom"], args.workdir, [None if c == "none" else int(c) for c in args.min_counts])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
