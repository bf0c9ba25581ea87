"""Benchmark `python main.py serve`: a real server on loopback, one worker.

    python benchmarks/bench_serve.py

1. Scores with the run --model names; by default the config's `model` section (logistic
   regression in the shipped config), trained once into --workdir, as bench_predict does.
2. Starts `python main.py serve --workers 1` on a free loopback port and waits for /ready.
3. From one client process, over one keep-alive connection, request after request (every
   loop bounded in count and in time):
   - 1-row JSON requests: latency p50 and p99 (after a warm-up);
   - 1,000-row JSON requests: rows per second;
   - a 100,000-row CSV upload: rows per second (median of a few).
4. Checks the answers against `python main.py predict` on the same rows (within 1e-9) and
   prints the figures.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, add_common_options, find_or_train_model, generate, generate_once

from churn import runs

DEADLINE_SECONDS = 600  # the whole benchmark stops past this, whatever the counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Client:
    """One keep-alive HTTP/1.1 connection to the server on loopback."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes, kind: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.connection.request("POST", path, body=body, headers={"content-type": kind})
        answer = self.connection.getresponse()
        content = answer.read()
        return answer.status, content, time.perf_counter() - started


def start_server(config: Path, run: Path, port: int, deadline: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(REPO / "main.py"), "serve", "-q", "-c", str(config), "--model", str(run),
               "--port", str(port), "--workers", "1"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"serve exited with {server.returncode}")
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("serve was not ready in time")


def bodies(rows: pd.DataFrame, size: int, count: int) -> list[bytes]:
    """`count` different JSON bodies of `size` customers each."""
    records = rows.to_dict(orient="records")
    return [json.dumps({"customers": records[i * size : (i + 1) * size]}).encode() for i in range(count)]


def latencies(client: Client, payloads: list[bytes], requests: int, deadline: float) -> list[float]:
    seconds = []
    for index in range(requests):
        if time.monotonic() > deadline:
            break
        status, _, elapsed = client.post("/predict", payloads[index % len(payloads)], "application/json")
        if status != 200:
            raise SystemExit(f"a request failed with {status}")
        seconds.append(elapsed)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=3000, help="1-row requests to time (default 3,000)")
    parser.add_argument("--batches", type=int, default=300, help="1,000-row requests to time (default 300)")
    parser.add_argument("--uploads", type=int, default=5, help="100,000-row CSV uploads to time (default 5)")
    add_common_options(parser)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + DEADLINE_SECONDS

    run = find_or_train_model(args)
    csv_path = args.workdir / "telco_100000.csv"
    generate_once(csv_path, lambda: generate(100_000, csv_path, args.seed))
    upload = csv_path.read_bytes()
    rows = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    reference = cli_predictions(args, run, csv_path)  # the CSV main.py predict writes for the upload

    port = free_port()
    server = start_server(args.config, run.resolve(), port, deadline)
    try:
        client = Client(port)
        check_answers(client, rows, upload, reference)
        single = bodies(rows, 1, 500)
        latencies(client, single, 300, deadline)  # warm-up
        one = latencies(client, single, args.single, deadline)
        batch = latencies(client, bodies(rows, 1000, 50), args.batches, deadline)
        csv_seconds = [client.post("/predict", upload, "text/csv")[2] for _ in range(args.uploads)]
    finally:
        server.terminate()
        server.wait(timeout=15)
    report(run, one, batch, csv_seconds)


def cli_predictions(args: argparse.Namespace, run: Path, data: Path) -> bytes:
    out = args.workdir / "serve_reference.csv"
    command = [sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(args.config), "--input", str(data),
               "--output", str(out), "--model", str(run.resolve())]  # fmt: skip
    subprocess.run(command, check=True)
    return out.read_bytes()


def check_answers(client: Client, rows: pd.DataFrame, upload: bytes, reference: bytes) -> None:
    """The service answers what `python main.py predict` writes: the same CSV bytes for the
    upload, and the same probabilities (within 1e-9) as JSON."""
    expected = pd.read_csv(io.BytesIO(reference))["churn_probability"].head(1000)
    status, content, _ = client.post("/predict", bodies(rows, 1000, 1)[0], "application/json")
    got = pd.DataFrame(json.loads(content)["predictions"])["churn_probability"] if status == 200 else None
    difference = float(np.max(np.abs(got - expected))) if got is not None else float("inf")
    status_csv, content_csv, _ = client.post("/predict", upload, "text/csv")
    same_csv = status_csv == 200 and content_csv == reference
    print(f"answers against main.py predict: JSON max difference {difference:.2g}, CSV identical: {same_csv}")
    if difference > 1e-9 or not same_csv:
        raise SystemExit("FAILED: the service's answers differ from main.py predict")


def report(run: Path, one: list[float], batch: list[float], csv_seconds: list[float]) -> None:
    record = runs.read_record(run)
    print(f"model: run {record.run_id} ({record.model.name}); server: 1 worker, loopback; "
          f"{os.cpu_count()} cores, client on the same machine")  # fmt: skip
    milliseconds = np.asarray(one) * 1000
    print(f"1-row JSON requests ({len(one):,}): p50 {np.percentile(milliseconds, 50):.2f} ms, "
          f"p99 {np.percentile(milliseconds, 99):.2f} ms, mean {milliseconds.mean():.2f} ms")  # fmt: skip
    print(f"1,000-row JSON requests ({len(batch):,}): {1000 * len(batch) / sum(batch):,.0f} rows/s "
          f"(p50 {np.percentile(np.asarray(batch) * 1000, 50):.1f} ms per request)")  # fmt: skip
    median = statistics.median(csv_seconds)
    print(f"100,000-row CSV upload ({len(csv_seconds)}): {100_000 / median:,.0f} rows/s (median {median:.3f} s)")


if __name__ == "__main__":
    main()
