"""Benchmark `python main.py predict` from a PostgreSQL table into a table, beside the same rows
from Parquet into Parquet.

    python benchmarks/bench_sql.py --rows 1000000

1. Generates Telco-shaped data of N rows (as bench_predict does, cached in --workdir), typed as
   a database holds it (numbers as numbers, a blank TotalCharges as NULL), written to Parquet
   and loaded into a throwaway PostgreSQL server (tests/postgres.py: the machine's initdb and
   pg_ctl, on loopback, removed after).
2. Runs, each as its own process measured from outside (wall time, peak resident memory):
   Parquet to Parquet; the table to Parquet (reading alone); the table to a table (reading and
   the one-transaction write, replacing the previous table).
3. Prints the median of --repeat runs of each: seconds, rows per second, peak memory, the
   time against the Parquet path, and where the CPU went: churn's process (user + system) and
   the PostgreSQL server (its backends' CPU, read from the postmaster's reaped children in
   /proc), which on one machine share its cores; fails (exit 1) when the table's scores differ
   from the Parquet output's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from common import REPO, add_common_options, find_or_train_model, generate, generate_once, measure

sys.path.insert(0, str(REPO / "tests"))  # the tests' throwaway server
from postgres import PASSWORD, find_programs, running_postgres  # noqa: E402


def typed(csv_path) -> pa.Table:
    frame = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce")
    return pa.Table.from_pandas(frame.drop(columns=["Churn"], errors="ignore"), preserve_index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to score (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path; the median is shown (default 3)")
    add_common_options(parser)
    args = parser.parse_args()
    if find_programs() is None:
        raise SystemExit("PostgreSQL's initdb and pg_ctl are not installed (Debian: apt-get install postgresql)")

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"customers_{args.rows}.csv"
    generate_once(data, lambda: generate(args.rows, data, args.seed))
    parquet = args.workdir / f"customers_{args.rows}_typed.parquet"
    table = typed(data)
    pq.write_table(table, parquet)
    run = find_or_train_model(args)
    print(f"model: run {run.name}, input {args.rows:,} rows")
    os.environ["PGPASSWORD"] = PASSWORD  # the measured processes inherit it: never on their command line
    with running_postgres() as server:
        server.load("customers", table)
        server.execute("VACUUM ANALYZE customers")  # now, not by autovacuum during a measured run
        url = server.url()
        predict = [sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(args.config), "--model",
                   str(run.resolve())]  # fmt: skip
        from_table = ["--input", url, "--table", "customers"]
        out = args.workdir / "sql_out.parquet"
        paths = {
            "Parquet -> Parquet": [*predict, "--input", str(parquet), "--output", str(out)],
            "table -> Parquet": [*predict, *from_table, "--output", str(args.workdir / "sql_table_out.parquet")],
            "table -> table": [*predict, *from_table, "--output", url, "--output-table", "scores", "--overwrite"],
        }
        postmaster = int((server.folder / "data" / "postmaster.pid").read_text().split()[0])
        results = {name: median_of(args.repeat, command, postmaster) for name, command in paths.items()}
        check_same(server.read("SELECT * FROM scores"), pq.read_table(out))
    base = results["Parquet -> Parquet"]["seconds"]
    print(f"{'path':<22}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}{'x Parquet':>11}{'churn CPU s':>13}"
          f"{'server CPU s':>14}")  # fmt: skip
    for name, figures in results.items():
        rate = args.rows / figures["seconds"]
        print(f"{name:<22}{figures['seconds']:>10.2f}{rate:>12,.0f}{figures['peak_mb']:>10.0f}"
              f"{figures['seconds'] / base:>10.2f}x{figures['cpu']:>13.2f}{figures['server_cpu']:>14.2f}")  # fmt: skip
    print(f"cores this process may use: {len(os.sched_getaffinity(0))}")


def median_of(repeat: int, command: list[str], postmaster: int) -> dict[str, float]:
    figures = sorted((measured(command, postmaster) for _ in range(repeat)), key=lambda figure: figure["seconds"])
    return figures[len(figures) // 2]


def measured(command: list[str], postmaster: int) -> dict[str, float]:
    """common.measure's figures of one run, and the server's CPU meanwhile."""
    before = server_cpu(postmaster)
    figures = measure(command)
    time.sleep(0.3)  # the postmaster reaps the run's backends
    return figures | {"server_cpu": server_cpu(postmaster) - before}


def server_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster and every backend it has reaped (fields 14-17 of /proc/PID/stat)."""
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def check_same(written: pa.Table, expected: pa.Table) -> None:
    scores = written.drop_columns(["run_id", "scored_at"])
    same = scores.num_rows == expected.num_rows and all(
        scores.column(name).to_pylist() == expected.column(name).to_pylist() for name in expected.column_names
    )
    print(f"the table's {scores.num_rows:,} scores equal the Parquet output's: {same}")
    if not same:
        raise SystemExit("FAILED: the table's scores differ from the Parquet path's")


if __name__ == "__main__":
    main()
