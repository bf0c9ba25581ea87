"""Benchmark `python main.py train` with the shipped config on a large Telco-shaped table.

    python benchmarks/bench_train.py --rows 1000000

1. Generates N synthetic customers without the leak of plain resampling (where each shipped
   customer would appear ~140 times, so near-copies land on both sides of every CV fold): each
   row takes its churn label at the shipped rate, then its account numbers from one real
   customer of that class (tenure shifted by up to 3 months, charges scaled by a few percent),
   its demographics from a second and its services and contract from a third. No two rows are
   the same. Cached in --workdir.
2. Trains with the shipped config (all its candidates), only data.path and the models folder
   changed, as a separate process measured from outside: wall time and peak resident memory.
3. Prints them with the selected model, its CV ROC AUC, and how many rows the candidates were
   compared on (training.selection_rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from common import GENERATE_BLOCK, REPO, SHIPPED, generate_once, measure

from churn.store import runs

ACCOUNT = ["tenure", "MonthlyCharges", "TotalCharges"]
DEMOGRAPHICS = ["gender", "SeniorCitizen", "Partner", "Dependents"]


def synthesize(rows: int, path: Path, seed: int) -> None:
    source = pd.read_csv(SHIPPED, dtype=str, keep_default_na=False)
    services = [c for c in source.columns if c not in ACCOUNT + DEMOGRAPHICS + ["customerID", "Churn"]]
    by_class = {label: source[source["Churn"] == label].reset_index(drop=True) for label in ("Yes", "No")}
    churn_rate = (source["Churn"] == "Yes").mean()
    rng = np.random.default_rng(seed)
    seen: set[int] = set()  # hashes of the feature values written: no row is written twice
    written = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        while written < rows:
            count = min(GENERATE_BLOCK, rows - written)
            labels = np.where(rng.random(count) < churn_rate, "Yes", "No")
            block = pd.concat(
                [_block(by_class[label], (labels == label).sum(), services, rng) for label in ("Yes", "No")]
            )
            block = block.sample(frac=1, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
            hashes = pd.util.hash_pandas_object(block.drop(columns="Churn").astype(str), index=False).to_numpy()
            fresh = ~pd.Series(hashes).duplicated().to_numpy() & ~np.isin(hashes, np.fromiter(seen, np.uint64))
            block, hashes = block[fresh].reset_index(drop=True), hashes[fresh]
            seen.update(hashes.tolist())
            block.insert(0, "customerID", [f"SYN-{i:09d}" for i in range(written, written + len(block))])
            block.to_csv(handle, index=False, header=written == 0, lineterminator="\n")
            written += len(block)
    tmp.replace(path)


def _block(customers: pd.DataFrame, count: int, services: list[str], rng: np.random.Generator) -> pd.DataFrame:
    def donors(columns: list[str]) -> pd.DataFrame:
        return customers[columns].iloc[rng.integers(0, len(customers), count)].reset_index(drop=True)

    account = donors(ACCOUNT)
    tenure = np.clip(account["tenure"].astype(int) + rng.integers(-3, 4, count), 0, 72)
    monthly = account["MonthlyCharges"].astype(float) * rng.normal(1.0, 0.03, count)
    total = pd.to_numeric(account["TotalCharges"], errors="coerce") * rng.normal(1.0, 0.03, count)
    frame = pd.DataFrame(
        {
            "tenure": tenure,
            "MonthlyCharges": monthly.round(2),
            "TotalCharges": np.where(
                tenure == 0, " ", total.round(2).astype(str)
            ),  # blank for new customers, as shipped
        }
    )
    frame = pd.concat([frame, donors(DEMOGRAPHICS), donors(services)], axis=1)
    frame["Churn"] = customers["Churn"].iloc[0]
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("-c", "--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    data = args.workdir / f"synthetic_{args.rows}.csv"
    generate_once(data, lambda: synthesize(args.rows, data, args.seed))
    frame = pd.read_csv(data, dtype=str, keep_default_na=False).drop(columns="customerID")
    duplicates = int(frame.drop(columns="Churn").duplicated().sum())
    print(f"input: {args.rows:,} rows, {data.stat().st_size / 1e6:.0f} MB, {duplicates} duplicated feature rows")
    del frame

    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    config["data"]["path"] = str(data)
    models = args.workdir / f"train_models_{args.rows}"
    config["paths"] = {"models_dir": str(models), "predictions_dir": str(args.workdir)}
    bench_config = args.workdir / f"train_config_{args.rows}.yaml"
    bench_config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    figures = measure([sys.executable, str(REPO / "main.py"), "train", "-q", "-c", str(bench_config)])

    run = models / (models / "latest").read_text().strip()
    record = runs.read_record(run)
    metrics, selection = record.metrics, record.selection
    print(f"train wall time {figures['seconds']:.1f} s, peak memory {figures['peak_mb']:.0f} MB")
    print(f"selected {record.model.name}: CV ROC AUC {metrics.cv_roc_auc_mean:.4f} ± "
          f"{metrics.cv_roc_auc_std:.4f}, test ROC AUC {metrics.roc_auc:.4f}")  # fmt: skip
    print(f"compared on {selection.compared_on_rows:,} of {selection.training_rows:,} training rows")


if __name__ == "__main__":
    main()
