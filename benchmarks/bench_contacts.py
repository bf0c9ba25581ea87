"""Whom to contact on the shipped data: ranking by expected saving with each customer's value
against ranking by probability alone, measured on the test rows of one run.

    python benchmarks/bench_contacts.py
    python benchmarks/bench_contacts.py --budgets 100 200 500 --months 12

Trains the shipped config with `decision.value_column: MonthlyCharges` and `value_months` (the
constant churn_cost removed; everything else as shipped, the full comparison) in a temporary
folder, then prints on its test rows, for each budget and for the rule (every positive saving):
the customers both rankings pick, the saving each ranking gives on the test labels (a contacted
churner saves value x months x offer_success_rate, every contact costs its offer), and the value
at risk. The same figures the run's report shows in its "Money" section.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from common import REPO

from churn import pipeline
from churn.config import load_config
from churn.store import runs
from churn.training.report import saving_points, test_money


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--months", type=float, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = load_config(valued_config(Path(folder), args.months))
        result = pipeline.train(config)
        test = pd.read_csv(result.run_dir / runs.TEST_PREDICTIONS)
    decision = config.decision
    points = saving_points(test, decision)
    curve = points["curve"]
    money = test_money(test, decision)
    p = test["churn_probability"].to_numpy()
    saving_rank = np.argsort(-(p * money.churn_cost * decision.offer_success_rate - money.offer_cost), kind="stable")
    probability_rank = np.argsort(-p, kind="stable")
    print(f"run {result.run_id}: {result.record.model.name}, {len(test):,} test rows, test ROC AUC "
          f"{result.metrics.roc_auc:.4f}, threshold {result.record.threshold.value:.3f}")  # fmt: skip
    print(f"{'contacted':>22} {'same customers':>15} {'saving by value':>16} {'by probability':>15} {'difference':>11}")
    for label, k in [*((f"budget {b}", b) for b in args.budgets), ("every positive saving", points["positive"])]:
        same = len(set(saving_rank[:k]) & set(probability_rank[:k]))
        by_value, by_p = curve["saving"].iloc[k], curve["saving_by_probability"].iloc[k]
        print(f"{label:>22} {k:>6} ({same / max(k, 1):5.1%}) {by_value:16,.0f} {by_p:15,.0f} {by_value - by_p:11,.0f}")
    best = points["best"]
    print(f"the curve's maximum: {best:,} contacted, saving {curve['saving'].iloc[best]:,.0f} on the test labels")
    print(f"value at risk: {points['value_at_risk']:,.0f} over {args.months:g} months "
          f"({points['value_at_risk_monthly']:,.0f} a month)")  # fmt: skip


def valued_config(folder: Path, months: float) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["decision"].pop("churn_cost")
    config["decision"] |= {"value_column": "MonthlyCharges", "value_months": months}
    config["data"]["path"] = str(REPO / "data" / "raw" / "telco_customer_churn.csv")
    config["paths"] = {"models_dir": str(folder / "models"), "predictions_dir": str(folder / "predictions")}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
