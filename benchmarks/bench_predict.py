"""Benchmark `python main.py predict` against the straightforward way of scoring a file.

    python benchmarks/bench_predict.py --rows 1000000
    python benchmarks/bench_predict.py --rows 5000000 --skip-baseline

1. Generates Telco-shaped data of N rows (`common.generate`: seeded, no row a copy of a shipped
   one), cached in --workdir.
2. Scores with the run that --model names; by default with the config's `model` section
   (logistic regression in the shipped config), trained once into --workdir.
3. Runs, each as a separate process measured from outside (wall time, peak resident memory of
   that process alone): the straightforward way in one pass (pandas reads the whole CSV, the
   saved model's predict_proba once, its threshold applied to those probabilities, pandas
   to_csv), the same with predict_proba and then predict (two passes through the model, as a
   notebook often does; shown for reference, labelled), and `python main.py predict`.
4. For a run with a survival model (the shipped config has one), `main.py predict` writes the
   horizons (churn_within_3m/6m/12m, expected_months_12m); it is also timed with --no-horizons,
   and the cost of the horizons printed as a ratio against that plain predict.
5. Prints, for the median of --repeat runs of each, rows per second, peak memory and the speed
   ratio against the one-pass way, and fails (exit 1) when the outputs' probabilities differ by
   more than 1e-9 or their decisions differ.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from common import REPO, add_common_options, find_or_train_model, generate, generate_once, measure

from churn.store import runs

TOLERANCE = 1e-9

# The straightforward way, as a notebook would write it: the saved model on the whole file.
# {decide} is one pass (the threshold on the probabilities) or two (predict after predict_proba).
STRAIGHTFORWARD = """
import sys
from pathlib import Path
import joblib, pandas as pd
run, source, target, id_column = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
model = joblib.load(run / "model.joblib")
frame = pd.read_csv(source)
out = pd.DataFrame({{id_column: frame[id_column]}})
out["churn_probability"] = probabilities = model.predict_proba(frame)[:, 1]
out["churn_prediction"] = {decide}
out.to_csv(target, index=False)
"""
ONE_PASS = "(probabilities >= model.threshold).astype('int8')"
TWO_PASSES = "model.predict(frame).astype('int8')"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to score (default 1,000,000)")
    parser.add_argument("--skip-baseline", action="store_true", help="measure only main.py predict")
    parser.add_argument("--two-passes", action="store_true", help="also time predict_proba then predict")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method; the median is shown (default 3)")
    add_common_options(parser)
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"customers_{args.rows}.csv"
    generate_once(data, lambda: generate(args.rows, data, args.seed))
    run = find_or_train_model(args)
    record = runs.read_record(run)
    size_mb = data.stat().st_size / 1e6
    print(f"model: run {record.run_id} ({record.model.name}), input {args.rows:,} rows, {size_mb:.0f} MB")

    ours_out = args.workdir / "predict_ours.csv"
    baseline_out = args.workdir / "predict_straightforward.csv"
    id_column = str(record.features.id_column)
    baselines = {"one pass": ONE_PASS} | ({"two passes": TWO_PASSES} if args.two_passes else {})
    ours = [sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(args.config), "--input", str(data),
            "--output", str(ours_out), "--model", str(run.resolve())]  # fmt: skip
    results = {"main.py predict": median_of(args.repeat, ours)}
    if record.survival is not None:
        header = ours_out.open(encoding="utf-8").readline().strip()
        print(f"main.py predict writes: {header}")
        results["main.py predict --no-horizons"] = median_of(args.repeat, [*ours, "--no-horizons"])
    for name, decide in ({} if args.skip_baseline else baselines).items():
        code = STRAIGHTFORWARD.format(decide=decide)
        command = [sys.executable, "-c", code, str(run), str(data), str(baseline_out), id_column]
        results[f"straightforward, {name}"] = median_of(args.repeat, command)
        compare(pd.read_csv(ours_out), pd.read_csv(baseline_out))

    print(f"{'method':<30}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}")
    for name, figures in results.items():
        rate = args.rows / figures["seconds"]
        print(f"{name:<30}{figures['seconds']:>10.2f}{rate:>12,.0f}{figures['peak_mb']:>10.0f}")
    seconds = results["main.py predict"]["seconds"]
    if (plain := results.get("main.py predict --no-horizons")) is not None:
        print(f"the horizons cost: {seconds / plain['seconds']:.2f}x plain predict (--no-horizons)")
    for name in results:
        if name.startswith("straightforward"):
            way = name.split(", ")[1]
            print(f"speed ratio against the {way} way: {results[name]['seconds'] / seconds:.2f}x")
            if plain is not None:  # the same columns as the straightforward way writes
                like = results[name]["seconds"] / plain["seconds"]
                print(f"speed ratio against the {way} way, like for like (--no-horizons, its columns): {like:.2f}x")


def median_of(repeat: int, command: list[str]) -> dict[str, float]:
    """The run of median time among `repeat` runs of a command (machines here are noisy)."""
    figures = sorted((measure(command) for _ in range(repeat)), key=lambda figure: figure["seconds"])
    return figures[len(figures) // 2]


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Print the largest difference; exit 1 when the outputs disagree."""
    difference = float(np.max(np.abs(ours["churn_probability"].to_numpy() - theirs["churn_probability"].to_numpy())))
    decisions = int((ours["churn_prediction"] != theirs["churn_prediction"]).sum())
    print(f"largest probability difference: {difference:.3g}; decisions that differ: {decisions}")
    if difference > TOLERANCE or decisions or len(ours) != len(theirs):
        raise SystemExit(f"FAILED: the outputs differ (tolerance {TOLERANCE:g})")


if __name__ == "__main__":
    main()
