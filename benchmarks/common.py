"""What the benchmarks share: Telco-shaped data, the model to score with, measuring a process."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "raw" / "telco_customer_churn.csv"
GENERATE_BLOCK = 500_000

# Run a command as a child and report its wall time, peak RSS and CPU seconds (user + system)
# (of that child only: this small process forks it, so the child starts small).
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{code} {seconds} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
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


def generate_once(path: Path, make: Callable[[], None]) -> None:
    """Make the benchmark's input with `make` unless a run before left it in the workdir."""
    if path.exists():
        return
    started = time.perf_counter()
    make()
    print(f"generated {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def measure(command: list[str], allowed: tuple[int, ...] = (0,)) -> dict[str, float]:
    """Wall time and peak resident memory of a command run in its own process; `allowed`: the
    exit codes that count as success (monitor's alarm is 4)."""
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    code, seconds, peak_kib, cpu = result.stdout.split()
    if int(code) not in allowed:
        raise SystemExit(f"command failed ({code}): {' '.join(command)}")
    return {"seconds": float(seconds), "peak_mb": int(peak_kib) / 1024, "cpu": float(cpu)}


def bench_config(args: argparse.Namespace) -> Path:
    """The config with its single `model` section (no comparison), writing into the work folder."""
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    config["training"].pop("candidates", None)
    base = args.config.resolve().parent
    config["data"]["path"] = str((base / config["data"]["path"]).resolve())
    config["paths"] = {"models_dir": str(args.workdir / "models"), "predictions_dir": str(args.workdir)}
    path = args.workdir / "bench_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def find_or_train_model(args: argparse.Namespace) -> Path:
    """--model, else the config's single `model` section (logistic regression in the shipped
    config, the model the goals were set for), trained once into the work folder."""
    if args.model:
        return Path(args.model)
    config = bench_config(args)
    latest = args.workdir / "models" / "latest"
    if not latest.is_file():
        print(f"training the config's model section into {args.workdir / 'models'}", file=sys.stderr)
        subprocess.run([sys.executable, str(REPO / "main.py"), "train", "-q", "-c", str(config)], check=True)
    return args.workdir / "models" / latest.read_text().strip()


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="run folder to score with (default: the config's model section, trained once)")
    parser.add_argument("-c", "--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=0)
