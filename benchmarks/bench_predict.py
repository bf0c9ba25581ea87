"""Benchmark `python main.py predict` against the straightforward way of scoring a file.

    python benchmarks/bench_predict.py --rows 1000000
    python benchmarks/bench_predict.py --rows 5000000 --skip-baseline

1. Generates Telco-shaped data of N rows (seeded: rows resampled with replacement from the
   shipped file, fresh customer ids), cached in --workdir.
2. Scores with the run that --model names; by default with the config's `model` section
   (logistic regression in the shipped config), trained once into --workdir.
3. Runs, each as a separate process measured from outside (wall time, peak resident memory of
   that process alone): the straightforward way (pandas reads the whole CSV, the saved
   pipeline's predict_proba, pandas to_csv) and `python main.py predict`.
4. Prints rows per second, peak memory and the speed ratio, and checks that both wrote the
   same probabilities to within 1e-9.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "raw" / "telco_customer_churn.csv"
GENERATE_BLOCK = 500_000

# Run a command as a child and report its wall time and peak RSS (ru_maxrss of that child only).
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{code} {seconds} {peak_kib}")
"""

STRAIGHTFORWARD = """
import json, sys
from pathlib import Path
import joblib, pandas as pd
from churn.data_loader import prepare_features
run, source, target = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
metadata = json.loads((run / "metadata.json").read_text())
schema = metadata["schema"]
model = joblib.load(run / "model.joblib")
frame = pd.read_csv(source)
X = prepare_features(frame, tuple(schema["numeric_features"]), tuple(schema["categorical_features"]), source)
probability = model.predict_proba(X)[:, 1]
out = pd.DataFrame({schema["id_column"]: frame[schema["id_column"]], "churn_probability": probability})
out["churn_prediction"] = (probability >= metadata["threshold"]).astype("int8")
out.to_csv(target, index=False)
"""


def generate(rows: int, path: Path, seed: int) -> None:
    """Telco-shaped rows resampled from the shipped file, written in blocks to keep memory flat."""
    source = pd.read_csv(SHIPPED, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        for start in range(0, rows, GENERATE_BLOCK):
            count = min(GENERATE_BLOCK, rows - start)
            block = source.iloc[rng.integers(0, len(source), count)].reset_index(drop=True)
            block["customerID"] = [f"BENCH-{i:09d}" for i in range(start, start + count)]
            block.to_csv(handle, index=False, header=start == 0, lineterminator="\n")
    tmp.replace(path)


def measure(command: list[str]) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    code, seconds, peak_kib = result.stdout.split()
    if code != "0":
        raise SystemExit(f"command failed ({code}): {' '.join(command)}")
    return {"seconds": float(seconds), "peak_mb": int(peak_kib) / 1024}


def find_or_train_model(args: argparse.Namespace) -> Path:
    """--model, else the config's single `model` section (logistic regression in the shipped
    config, the model the goals were set for), trained once into the work folder."""
    if args.model:
        return Path(args.model)
    config = _load_yaml(args.config)
    config["training"].pop("candidates", None)
    base = args.config.resolve().parent
    config["data"]["path"] = str((base / config["data"]["path"]).resolve())
    config["paths"] = {"models_dir": str(args.workdir / "models"), "predictions_dir": str(args.workdir)}
    bench_config = args.workdir / "bench_config.yaml"
    bench_config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    latest = args.workdir / "models" / "latest"
    if not latest.is_file():
        print(f"training the config's model section into {args.workdir / 'models'}", file=sys.stderr)
        subprocess.run([sys.executable, str(REPO / "main.py"), "train", "-q", "-c", str(bench_config)], check=True)
    return args.workdir / "models" / latest.read_text().strip()


def _load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to score (default 1,000,000)")
    parser.add_argument("--model", help="run folder to score with (default: the config's model section, trained once)")
    parser.add_argument("-c", "--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-baseline", action="store_true", help="measure only main.py predict")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"telco_{args.rows}.csv"
    if not data.is_file():
        started = time.perf_counter()
        generate(args.rows, data, args.seed)
        print(f"generated {data} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
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
        ours = pd.read_csv(ours_out, usecols=["churn_probability"])["churn_probability"].to_numpy()
        theirs = pd.read_csv(baseline_out, usecols=["churn_probability"])["churn_probability"].to_numpy()
        print(f"largest probability difference: {np.max(np.abs(ours - theirs)):.3g}")


if __name__ == "__main__":
    main()
