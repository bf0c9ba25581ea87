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


def generate(rows: int, path: Path, seed: int, config: Path = REPO / "config.yaml") -> None:
    """N synthetic customers shaped like the config's table (the shipped one by default), none a
    copy of a shipped row or of another, written in blocks to keep memory flat; seeded.

    Plain resampling would repeat each shipped customer about 140 times in a million rows, so
    copies of training rows would land in every CV fold and in the test rows, and a forest would
    memorise them. Here each row takes its label at the shipped rate, then its numbers from one
    real customer of that class, jittered within the column's spread (whole numbers shifted by up
    to 3, others scaled by a few percent, kept inside the observed range, blanks kept), and its
    categories from a second customer of that class, each one replaced, at a 10 % rate, by a
    third's. Rows whose features repeat an earlier row are dropped and drawn again."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))["data"]
    source = pd.read_csv(REPO / data["path"] if not Path(data["path"]).is_absolute() else data["path"],
                         dtype=str, keep_default_na=False)  # fmt: skip
    target, id_column = data["target"], data.get("id_column")
    numeric = list(data["numeric_features"])
    categorical = [c for c in source.columns if c not in {*numeric, target, id_column}]
    positive = str(data["positive_label"])
    by_class = {label: group.reset_index(drop=True) for label, group in source.groupby(target)}
    rates = source[target].value_counts(normalize=True)
    rng = np.random.default_rng(seed)
    seen: set[int] = {*pd.util.hash_pandas_object(source[numeric + categorical], index=False).tolist()}
    written = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        while written < rows:
            count = min(GENERATE_BLOCK, rows - written)
            labels = rng.choice(rates.index.to_numpy(), count, p=rates.to_numpy())
            block = pd.concat(
                [_synthetic(by_class[label], int((labels == label).sum()), (numeric, categorical, target), rng)
                 for label in by_class]
            )  # fmt: skip
            block = block.sample(frac=1, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
            hashes = pd.util.hash_pandas_object(block[numeric + categorical], index=False).to_numpy()
            fresh = ~pd.Series(hashes).duplicated().to_numpy() & ~np.isin(hashes, np.fromiter(seen, np.uint64))
            block, hashes = block[fresh].reset_index(drop=True), hashes[fresh]
            seen.update(hashes.tolist())
            if id_column:
                block.insert(0, id_column, [f"SYN-{i:09d}" for i in range(written, written + len(block))])
            block[source.columns].to_csv(handle, index=False, header=written == 0, lineterminator="\n")
            written += len(block)
    tmp.replace(path)
    assert positive in set(rates.index), f"{target} has no {positive!r}"


def _synthetic(
    customers: pd.DataFrame, count: int, columns: tuple[list[str], list[str], str], rng: np.random.Generator
) -> pd.DataFrame:
    """`count` rows of one class: numbers of one donor jittered, categories of a second, each
    replaced by a third donor's at a 10 % rate. `columns`: the numeric, categorical and target."""
    numeric, categorical, target = columns

    def donors() -> pd.DataFrame:
        return customers.iloc[rng.integers(0, len(customers), count)].reset_index(drop=True)

    numbers, categories, others = donors(), donors(), donors()
    frame = pd.DataFrame({column: _jittered(numbers[column], customers[column], rng) for column in numeric})
    for column in categorical:
        frame[column] = np.where(rng.random(count) < 0.10, others[column], categories[column])
    frame[target] = customers[target].iloc[0]
    return frame


def _jittered(values: pd.Series, observed: pd.Series, rng: np.random.Generator) -> pd.Series:
    """A numeric column's values moved within its spread, inside its observed range; blanks and
    other text left as they are."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    known = pd.to_numeric(observed, errors="coerce").dropna()
    whole = bool((known == known.round()).all())
    moved = numbers + rng.integers(-3, 4, len(numbers)) if whole else numbers * rng.normal(1.0, 0.03, len(numbers))
    moved = np.clip(moved, known.min(), known.max())
    text = pd.Series(moved).map(lambda v: f"{v:.0f}" if whole else f"{v:.2f}")
    return pd.Series(np.where(np.isnan(numbers), values, text))


def generate_once(path: Path, make: Callable[[], None]) -> None:
    """Make the benchmark's input with `make` unless a run before left it in the workdir."""
    if path.exists():
        return
    started = time.perf_counter()
    make()
    print(f"generated {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def measure(command: list[str], allowed: tuple[int, ...] = (0,)) -> dict[str, float]:
    """Wall time, peak resident memory, CPU time and exit code of a command run in its own
    process; `allowed`: the exit codes that count as success (monitor's alarm is 4)."""
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    code, seconds, peak_kib, cpu = result.stdout.split()
    if int(code) not in allowed:
        raise SystemExit(f"command failed ({code}): {' '.join(command)}")
    return {"seconds": float(seconds), "peak_mb": int(peak_kib) / 1024, "cpu": float(cpu), "code": int(code)}


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
