"""Benchmark `python main.py serve` for every model kind, beside `mlflow models serve` on the
same model when MLflow is installed: real servers on loopback, one worker each.

    python benchmarks/bench_serve.py
    python benchmarks/bench_serve.py --kinds default,logistic_regression --no-mlflow
    python benchmarks/bench_serve.py --model models/<run_id>      # one given run, ours only

1. Trains, once into --workdir, a run per model kind: `default` is the shipped config's own
   comparison (its winner), the others the config's `model` section set to that kind (with the
   shipped candidates' parameters where the config has them), each with tracking on so that
   MLflow holds the very same model.
2. For each run: starts `python main.py serve --workers 1` on a free loopback port, checks its
   answers against `python main.py predict` (the CSV byte for byte, JSON within 1e-9), then
   from one client process over one keep-alive connection (every loop bounded in count and in
   time): 1-row and 1,000-row JSON to /predict, the same rows to /invocations (MLflow's
   protocol), and a 100,000-row CSV upload.
3. With MLflow installed, starts `mlflow models serve --env-manager local` on the run's
   registered model and times the same /invocations requests against it, checking that it
   answers the same probabilities.
4. Prints one table: per model kind and server, 1-row p50 and p99, 1,000-row rows/s and the CSV
   upload's rows/s.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
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
import yaml
from common import REPO, SHIPPED, add_common_options, generate, generate_once

from churn.store import runs

DEADLINE_SECONDS = 1200  # the whole benchmark stops past this, whatever the counts
KINDS = ("default", "logistic_regression", "hist_gradient_boosting", "random_forest", "gradient_boosting")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Client:
    """One keep-alive HTTP/1.1 connection to a server on loopback."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes, kind: str) -> tuple[int, bytes, float]:
        """One request; a connection the server closed while idle (its keep-alive timeout) is
        opened again once, as an HTTP client does, and the request timed from the new start."""
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self.connection.request("POST", path, body=body, headers={"content-type": kind})
                answer = self.connection.getresponse()
                return answer.status, answer.read(), time.perf_counter() - started
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def wait_ready(process: subprocess.Popen[bytes], port: int, path: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server was not ready in time")


def train_runs(args: argparse.Namespace) -> dict[str, tuple[Path, Path]]:
    """Per model kind, its run folder and config (trained once, tracked in MLflow when installed)."""
    found = {}
    tracked = importlib.util.find_spec("mlflow") is not None and not args.no_mlflow
    for kind in args.kinds:
        folder = args.workdir / f"serve_{kind}"
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / "config.yaml"
        latest = folder / "models" / "latest"
        if not latest.is_file():
            config_path.write_text(yaml.safe_dump(kind_config(args.config, kind, folder, tracked), sort_keys=False))
            print(f"training {kind} into {folder / 'models'}", file=sys.stderr)
            subprocess.run([sys.executable, str(REPO / "main.py"), "train", "-q", "-c", str(config_path)], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        found[kind] = (folder / "models" / latest.read_text().strip(), config_path)
    return found


def kind_config(path: Path, kind: str, folder: Path, tracked: bool) -> dict[str, object]:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["data"]["path"] = str(SHIPPED)
    config["paths"] = {"models_dir": str(folder / "models"), "predictions_dir": str(folder)}
    config["validation"] = {}
    tracking = {"enabled": True, "uri": f"sqlite:///{folder / 'mlflow.db'}", "registered_model": f"bench-{kind}"}
    config["tracking"] = tracking if tracked else {"enabled": False}
    if kind != "default":
        shipped = {c["name"]: c.get("params", {}) for c in config["training"].get("candidates", [])}
        config["training"].pop("candidates", None)
        config["model"] = {"name": kind, "params": shipped.get(kind, {}), "threshold": "auto"}
    return config


def bodies(rows: pd.DataFrame, size: int, count: int, mlflow: bool = False) -> list[bytes]:
    """`count` different JSON bodies of `size` customers each, for /predict or /invocations."""
    records = rows.to_dict(orient="records")
    key = "dataframe_records" if mlflow else "customers"
    return [json.dumps({key: records[i * size : (i + 1) * size]}).encode() for i in range(count)]


def timed(client: Client, path: str, payloads: list[bytes], requests: int, deadline: float) -> list[float]:
    seconds = []
    for index in range(requests):
        if time.monotonic() > deadline:
            break
        status, _, elapsed = client.post(path, payloads[index % len(payloads)], "application/json")
        if status != 200:
            raise SystemExit(f"a request to {path} failed with {status}")
        seconds.append(elapsed)
    return seconds


def measure(client: Client, rows: pd.DataFrame, args: argparse.Namespace, deadline: float, ours: bool) -> dict:
    """1-row and 1,000-row requests (/predict for ours, /invocations for both), and the CSV upload."""
    figures = {}
    paths = ("/predict", "/invocations") if ours else ("/invocations",)
    for path in paths:
        mlflow = path == "/invocations"
        single = bodies(rows, 1, 500, mlflow)
        timed(client, path, single, 300, deadline)  # warm-up
        figures[path] = (timed(client, path, single, args.single, deadline),
                         timed(client, path, bodies(rows, 1000, 50, mlflow), args.batches, deadline))  # fmt: skip
    return figures


def serve_ours(run: Path, config: Path, rows: pd.DataFrame, upload: Path, args: argparse.Namespace,
               deadline: float) -> tuple[dict, list[float]]:  # fmt: skip
    port = free_port()
    command = [sys.executable, str(REPO / "main.py"), "serve", "-q", "-c", str(config), "--model", str(run),
               "--port", str(port), "--workers", "1"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        wait_ready(server, port, "/ready", deadline)
        client = Client(port)
        check_answers(client, run, config, rows, upload)
        figures = measure(client, rows, args, deadline, ours=True)
        body = upload.read_bytes()
        csv_seconds = [client.post("/predict", body, "text/csv")[2] for _ in range(args.uploads)]
    finally:
        server.terminate()
        server.wait(timeout=15)
    return figures, csv_seconds


def serve_mlflow(kind: str, config: Path, rows: pd.DataFrame, args: argparse.Namespace, deadline: float) -> dict:
    port = free_port()
    folder = config.parent
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}")
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/bench-{kind}@champion",
               "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(server, port, "/ping", deadline)
        client = Client(port)
        ours = pd.read_csv(folder / "serve_reference.csv")["churn_probability"].to_numpy()[:1000]
        status, content, _ = client.post("/invocations", bodies(rows, 1000, 1, mlflow=True)[0], "application/json")
        theirs = np.asarray(json.loads(content)["predictions"])[:, 1] if status == 200 else None
        if theirs is None or float(np.max(np.abs(theirs - ours))) > 1e-9:
            raise SystemExit(f"FAILED: mlflow models serve answered otherwise for {kind}")
        return measure(client, rows, args, deadline, ours=False)
    finally:
        server.terminate()
        server.wait(timeout=30)


def check_answers(client: Client, run: Path, config: Path, rows: pd.DataFrame, upload: Path) -> None:
    """The service answers what `python main.py predict` writes: the same CSV bytes for the
    upload, and the same probabilities (within 1e-9) as JSON."""
    out = config.parent / "serve_reference.csv"
    subprocess.run([sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(config), "--input",
                    str(upload), "--output", str(out), "--model", str(run)], check=True)  # fmt: skip
    reference = out.read_bytes()
    expected = pd.read_csv(io.BytesIO(reference))["churn_probability"].head(1000)
    status, content, _ = client.post("/predict", bodies(rows, 1000, 1)[0], "application/json")
    got = pd.DataFrame(json.loads(content)["predictions"])["churn_probability"] if status == 200 else None
    difference = float(np.max(np.abs(got - expected))) if got is not None else float("inf")
    status_csv, content_csv, _ = client.post("/predict", upload.read_bytes(), "text/csv")
    if difference > 1e-9 or status_csv != 200 or content_csv != reference:
        raise SystemExit(
            f"FAILED: {run}: the service's answers differ from main.py predict (JSON by "
            f"{difference:.3g}, CSV {'identical' if content_csv == reference else 'different'})"
        )


def row(kind: str, server: str, path: str, one: list[float], batch: list[float], csv: list[float] | None) -> str:
    if not one or not batch:
        return f"{kind:<34}{server:<22}{path:<14}  not measured: the benchmark's deadline passed"
    milliseconds = np.asarray(one) * 1000
    rate = 1000 * len(batch) / sum(batch)
    upload = f"{100_000 / statistics.median(csv):>12,.0f}" if csv else f"{'':>12}"
    return (f"{kind:<34}{server:<22}{path:<14}{np.percentile(milliseconds, 50):>8.2f}"
            f"{np.percentile(milliseconds, 99):>8.2f}{rate:>12,.0f}{upload}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", type=lambda text: tuple(text.split(",")), default=KINDS,
                        help=f"model kinds to serve (default: {','.join(KINDS)})")  # fmt: skip
    parser.add_argument("--no-mlflow", action="store_true", help="do not time mlflow models serve")
    parser.add_argument("--single", type=int, default=2000, help="1-row requests to time (default 2,000)")
    parser.add_argument("--batches", type=int, default=100, help="1,000-row requests to time (default 100)")
    parser.add_argument("--uploads", type=int, default=5, help="100,000-row CSV uploads to time (default 5)")
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS,
                        help=f"seconds after which no more requests are sent (default {DEADLINE_SECONDS})")  # fmt: skip
    add_common_options(parser)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.deadline
    csv_path = args.workdir / "customers_100000.csv"
    generate_once(csv_path, lambda: generate(100_000, csv_path, args.seed))
    rows = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    if args.model:
        record = runs.read_record(Path(args.model))
        served = {record.model.name: (Path(args.model).resolve(), Path(args.config).resolve())}
        args.no_mlflow = True
    else:
        served = train_runs(args)
    with_mlflow = importlib.util.find_spec("mlflow") is not None and not args.no_mlflow
    lines = [f"{'model':<34}{'server':<22}{'endpoint':<14}{'p50 ms':>8}{'p99 ms':>8}{'1k rows/s':>12}"
             f"{'CSV rows/s':>12}"]  # fmt: skip
    print(f"one worker per server, loopback, one client process on the same {os.cpu_count()} cores")
    print(lines[0], flush=True)
    for kind, (run, config) in served.items():  # each row printed as soon as it is measured
        name = f"{kind} ({runs.read_record(run).model.name})" if kind == "default" else kind
        figures, csv_seconds = serve_ours(run, config, rows, csv_path, args, deadline)
        for path, (one, batch) in figures.items():
            print(row(name, "churn serve", path, one, batch, csv_seconds if path == "/predict" else None), flush=True)
        if with_mlflow:
            for path, (one, batch) in serve_mlflow(kind, config, rows, args, deadline).items():
                print(row(name, "mlflow models serve", path, one, batch, None), flush=True)


if __name__ == "__main__":
    main()
