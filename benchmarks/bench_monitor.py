"""Benchmark `monitor` against `predict` on the same rows and run.

    python benchmarks/bench_monitor.py
    python benchmarks/bench_monitor.py --rows 1000000 --repeat 3 --model models/<run_id>

Generates Telco-shaped rows (seeded, cached in --workdir) and the same rows without the Churn
column (a month's batch has no labels yet), trains the config's `model` section once (or takes
--model), then runs, each as a separate process measured from outside (wall time, peak resident
memory), `python main.py predict` and `python main.py monitor` on the same file, --repeat times
alternately, and prints each time, the median ratio monitor / predict and the peak memory; then
monitor on the labelled file, which adds the realised metrics (scikit-learn's). Goals (issue
18): monitor under 1.5x predict at 1,000,000 rows, peak under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import pyarrow.csv as pacsv
from common import REPO, add_common_options, bench_config, find_or_train_model, generate, generate_once, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command (default 3)")
    add_common_options(parser)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    run = find_or_train_model(args)
    config = bench_config(args)
    labelled = args.workdir / f"customers_{args.rows}.csv"
    generate_once(labelled, lambda: generate(args.rows, labelled, args.seed))
    data = args.workdir / f"customers_{args.rows}_unlabelled.csv"
    generate_once(data, lambda: pacsv.write_csv(pacsv.read_csv(labelled).drop_columns(["Churn"]), data))
    base = [sys.executable, str(REPO / "main.py")]
    predict = [*base, "predict", "-q", "-c", str(config), "--input", str(data), "--model", str(run),
               "--output", str(args.workdir / "scored.csv")]  # fmt: skip
    monitor = [*base, "monitor", "-q", "-c", str(config), "--input", str(data), "--model", str(run),
               "--output", str(args.workdir / "monitoring")]  # fmt: skip
    times: dict[str, list[dict[str, float]]] = {"predict": [], "monitor": []}
    for _ in range(args.repeat):
        times["predict"].append(measure(predict))
        times["monitor"].append(measure(monitor, allowed=(0, 4)))
    print(f"run {run.name}, {args.rows:,} rows of {data.name}")
    for name, measured in times.items():
        seconds = ", ".join(f"{m['seconds']:.2f}" for m in measured)
        print(f"{name:8} {seconds} s; peak {max(m['peak_mb'] for m in measured):.0f} MB")
    ratios = [m["seconds"] / p["seconds"] for m, p in zip(times["monitor"], times["predict"], strict=True)]
    print(f"monitor / predict: median {statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})")
    figures = json.loads((args.workdir / "monitoring" / "monitor.json").read_text())
    top = figures["columns"][0]
    estimated, test = figures["estimated"]["roc_auc"], figures["test"]["roc_auc"]
    print(f"verdict {figures['verdict']}; largest PSI {top['column']} {top['psi']:.4f}; "
          f"estimated ROC AUC {estimated:.4f} (test {test:.4f})")  # fmt: skip
    with_labels = measure([*monitor[:7], str(labelled), *monitor[8:]], allowed=(0, 4))
    print(f"monitor with labels ({labelled.name}, realised metrics too): {with_labels['seconds']:.2f} s, "
          f"peak {with_labels['peak_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
