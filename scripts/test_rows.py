"""Write the raw rows of a config's held-out test split to a CSV, as the table holds them:
`python scripts/test_rows.py [-c config.yaml] test_rows.csv`, then monitor or evaluate them
(docs/figures.md measures monitor on the shipped run's own test rows this way)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from churn.config import load_config
from churn.data_loader import load_training_data, split_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    config = load_config(args.config)
    if config.data.path is None:
        raise SystemExit("error: the config trains from a database; export the table to a file first")
    data = load_training_data(config.data.path, config.data)
    _, X_test, _, _ = split_data(data.X, data.y, config.split, data.times)
    raw = pd.read_csv(config.data.path, dtype=str, keep_default_na=False)
    raw.loc[X_test.index].to_csv(args.output, index=False)
    print(f"wrote {len(X_test):,} test rows to {args.output}")


if __name__ == "__main__":
    main()
