"""Benchmark `python main.py train` with the shipped config on a large Telco-shaped table.

    python benchmarks/bench_train.py --rows 1000000
    python benchmarks/bench_train.py --rows 1000000 --engine dask     # the comparison on a local Dask cluster

1. Generates N synthetic customers with `common.generate` (no row a copy of a shipped one or
   of another: numbers jittered, categories from a second customer of the same class, each
   perturbed at a 10 % rate), cached in --workdir.
2. Trains with the shipped config (all its candidates), only data.path and the models folder
   changed, as a separate process measured from outside: wall time and peak resident memory;
   with --engine dask the comparison's fits run on a local Dask cluster (one worker process per
   usable core, one thread each), whose worker processes are not in that peak.
3. Prints them with the selected model, its CV and test ROC AUC, and how many rows the
   candidates were compared on (training.selection_rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml
from common import REPO, generate, generate_once, measure

from churn.store import runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("-c", "--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("local", "dask"), default="local", help="train --engine (default local)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    data = args.workdir / f"customers_{args.rows}.csv"
    generate_once(data, lambda: generate(args.rows, data, args.seed, args.config))
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
    command = [sys.executable, str(REPO / "main.py"), "train", "-q", "-c", str(bench_config), "--engine", args.engine]
    figures = measure(command)

    run = models / (models / "latest").read_text().strip()
    record = runs.read_record(run)
    metrics, selection = record.metrics, record.selection
    seconds, peak = figures["seconds"], figures["peak_mb"]
    print(f"train --engine {args.engine}: wall time {seconds:.1f} s, peak memory {peak:.0f} MB")
    print(f"selected {record.model.name}: CV ROC AUC {metrics.cv_roc_auc_mean:.4f} ± "
          f"{metrics.cv_roc_auc_std:.4f}, test ROC AUC {metrics.roc_auc:.4f}")  # fmt: skip
    print(f"compared on {selection.compared_on_rows:,} of {selection.training_rows:,} training rows")


if __name__ == "__main__":
    main()
