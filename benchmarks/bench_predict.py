"""Benchmark `python main.py predict` against the straightforward way of scoring a file.

    python benchmarks/bench_predict.py --rows 1000000
    python benchmarks/bench_predict.py --rows 5000000 --skip-baseline

1. Generates Telco-shaped data of N rows (seeded: rows resampled with replacement from the
   shipped file, fresh customer ids), cached in --workdir.
2. Scores with the run that --model names; by default with the config's `model` section
   (logistic regression in the shipped config), trained once into --workdir.
3. Runs, each as a separate process measured from outside (wall time, peak resident memory of
   that process alone): the straightforward way (pandas reads the whole CSV, the saved
   model's predict_proba and predict on it, pandas to_csv) and `python main.py predict`.
4. Prints rows per second, peak memory and the speed ratio, and fails (exit 1) when the two
   outputs' probabilities differ by more than 1e-9 or their decisions differ at all.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd
from common import REPO, add_common_options, find_or_train_model, generate, generate_once, measure

TOLERANCE = 1e-9

STRAIGHTFORWARD = """
import json, sys
from pathlib import Path
import joblib, pandas as pd
run, source, target = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
schema = json.loads((run / "metadata.json").read_text())["schema"]
model = joblib.load(run / "model.joblib")
frame = pd.read_csv(source)
out = pd.DataFrame({schema["id_column"]: frame[schema["id_column"]]})
out["churn_probability"] = model.predict_proba(frame)[:, 1]
out["churn_prediction"] = model.predict(frame).astype("int8")
out.to_csv(target, index=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to score (default 1,000,000)")
    parser.add_argument("--skip-baseline", action="store_true", help="measure only main.py predict")
    add_common_options(parser)
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"telco_{args.rows}.csv"
    generate_once(data, lambda: generate(args.rows, data, args.seed))
    run = find_or_train_model(args)
    metadata = json.loads((run / "metadata.json").read_text())
    size_mb = data.stat().st_size / 1e6
    print(f"model: run {metadata['run_id']} ({metadata['model_name']}), input {args.rows:,} rows, {size_mb:.0f} MB")

    ours_out = args.workdir / "predict_ours.csv"
    results = {}
    if not args.skip_baseline:
        baseline_out = args.workdir / "predict_straightforward.csv"
        baseline = [sys.executable, "-c", STRAIGHTFORWARD, str(run), str(data), str(baseline_out)]
        results["straightforward"] = measure(baseline)
    results["main.py predict"] = measure(
        [sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(args.config),
         "--input", str(data), "--output", str(ours_out), "--model", str(run.resolve())]
    )  # fmt: skip

    print(f"{'method':<18}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}")
    for name, figures in results.items():
        rate = args.rows / figures["seconds"]
        print(f"{name:<18}{figures['seconds']:>10.2f}{rate:>12,.0f}{figures['peak_mb']:>10.0f}")
    if not args.skip_baseline:
        ratio = results["straightforward"]["seconds"] / results["main.py predict"]["seconds"]
        print(f"speed ratio (main.py predict / straightforward rows per second): {ratio:.2f}x")
        compare(pd.read_csv(ours_out), pd.read_csv(baseline_out))


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Print the largest difference; exit 1 when the outputs disagree."""
    difference = float(np.max(np.abs(ours["churn_probability"].to_numpy() - theirs["churn_probability"].to_numpy())))
    decisions = int((ours["churn_prediction"] != theirs["churn_prediction"]).sum())
    print(f"largest probability difference: {difference:.3g}; decisions that differ: {decisions}")
    if difference > TOLERANCE or decisions or len(ours) != len(theirs):
        raise SystemExit(f"FAILED: the outputs differ (tolerance {TOLERANCE:g})")


if __name__ == "__main__":
    main()
