"""Benchmark `predict --engine dask` against local predict on 10 million Telco-shaped rows.

    python benchmarks/bench_dask.py --rows 10000000 --parts 20

1. Generates the rows (resampled from the shipped file with fresh ids, seeded) as --parts
   Parquet parts, and the same rows as one Parquet file for local predict; cached in --workdir.
2. Scores with the config's `model` section (logistic regression), trained once, as the other
   benchmarks do; --model picks another run.
3. Measures, each `python main.py predict` a separate process timed from outside:
   - local predict of the single file (wall time, peak memory of the process);
   - predict --engine dask on a running local cluster of 1, then 2 worker processes (one
     thread each), reached with --scheduler: wall time of the command, and the peak memory of
     each worker process, read from the workers themselves.
4. Checks that every run wrote the same probabilities as local predict (within 1e-9, in order).
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from common import REPO, SHIPPED, add_common_options, find_or_train_model, generate_once, measure

from churn.store import runs


def generate_parts(rows: int, parts: int, folder: Path, seed: int) -> None:
    source = pd.read_csv(SHIPPED, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    edges = np.linspace(0, rows, parts + 1).astype(int)
    for index, (start, stop) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        block = source.iloc[rng.integers(0, len(source), stop - start)].reset_index(drop=True)
        block["customerID"] = [f"BENCH-{i:09d}" for i in range(start, stop)]
        block.to_parquet(folder / f"part-{index:03d}.parquet", index=False)


def join_parts(folder: Path, target: Path) -> None:
    """The parts as one Parquet file, streamed part by part."""
    files = sorted(folder.glob("*.parquet"))
    with pq.ParquetWriter(target, pq.read_schema(files[0])) as writer:
        for path in files:
            writer.write_table(pq.read_table(path))


def peak_mb() -> float:
    """Peak resident memory of the process this runs in (a worker, when sent with client.run)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dask_run(args: argparse.Namespace, run: Path, parts: Path, workers: int) -> dict[str, float | list[float]]:
    from distributed import Client, LocalCluster

    out = args.workdir / f"dask_scored_{workers}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=40) as cluster:
        with Client(cluster) as client:
            command = [sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(args.config), "--input",
                       str(parts), "--output", str(out), "--model", str(run), "--engine", "dask",
                       "--scheduler", cluster.scheduler_address]  # fmt: skip
            figures = measure(command)
            figures["worker_peak_mb"] = sorted(client.run(peak_mb).values())
    figures["output"] = str(out)
    return figures


def probabilities(path: Path) -> np.ndarray:
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    return np.concatenate([pq.read_table(f, columns=["churn_probability"]).column(0).to_numpy() for f in files])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--parts", type=int, default=20)
    add_common_options(parser)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    parts = args.workdir / f"parts_{args.rows}_{args.parts}"
    single = args.workdir / f"single_{args.rows}.parquet"
    generate_once(parts, lambda: generate_parts(args.rows, args.parts, parts, args.seed))
    generate_once(single, lambda: join_parts(parts, single))
    run = find_or_train_model(args).resolve()
    record = runs.read_record(run)
    print(f"model: run {record.run_id} ({record.model.name}); {args.rows:,} rows in {args.parts} parts")

    local_out = args.workdir / "dask_local.parquet"
    local = measure([sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(args.config), "--input",
                     str(single), "--output", str(local_out), "--model", str(run)])  # fmt: skip
    reference = probabilities(local_out)
    print(f"{'engine':<26}{'seconds':>9}{'rows/s':>13}  peak memory")
    local_rate = args.rows / local["seconds"]
    print(f"{'local predict':<26}{local['seconds']:>9.2f}{local_rate:>13,.0f}  {local['peak_mb']:.0f} MB")
    for workers in (1, 2):
        figures = dask_run(args, run, parts, workers)
        per_worker = ", ".join(f"{mb:.0f}" for mb in figures["worker_peak_mb"])  # type: ignore[union-attr]
        label = f"dask, {workers} worker(s)"
        rate = args.rows / figures["seconds"]  # type: ignore[operator]
        print(f"{label:<26}{figures['seconds']:>9.2f}{rate:>13,.0f}  {per_worker} MB per worker")
        difference = np.abs(probabilities(Path(str(figures["output"]))) - reference).max()
        if difference > 1e-9:
            raise SystemExit(f"FAILED: dask with {workers} worker(s) differs from local predict by {difference:.3g}")
    print("every run wrote the same probabilities as local predict (within 1e-9, in order)")


if __name__ == "__main__":
    main()
