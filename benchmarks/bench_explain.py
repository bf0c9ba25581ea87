"""Benchmark `predict --explain 3` against plain `predict`, and against shap, per model kind.

    python benchmarks/bench_explain.py
    python benchmarks/bench_explain.py --rows 100000 --kinds hist_gradient_boosting --no-serve

1. Trains, once into --workdir, a run per model kind on the shipped data: the config's `model`
   section set to that kind, with the shipped candidates' parameters (gradient boosting, which
   the shipped config does not list, takes scikit-learn's defaults: 100 trees of depth 3).
2. Generates Telco-shaped inputs of each --rows (seeded, cached in --workdir).
3. Per kind and size, each a separate process measured from outside (wall time, peak resident
   memory): `python main.py predict` and `python main.py predict --explain 3`, and their ratio.
   A random forest is explained on --forest-rows rows only (path-dependent TreeSHAP of deep
   trees costs tens of milliseconds a row); at each --rows size its refusal, with the time
   estimate predict gives, is printed instead.
4. With shap installed, `shap.TreeExplainer(..., feature_perturbation="tree_path_dependent")`
   on the same rows (its shap_values call alone, the rows already transformed), for the trees.
5. Unless --no-serve: `python main.py serve` per kind on loopback, 1-row /predict with and
   without `"explain": 3` over one keep-alive connection (bounded in count and time), p50/p99.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from bench_serve import Client, free_port, kind_config, wait_ready
from common import REPO, SHIPPED, generate, generate_once, measure

KINDS = ("logistic_regression", "hist_gradient_boosting", "gradient_boosting", "random_forest")
DEADLINE_SECONDS = 2400  # the whole benchmark stops past this, whatever the counts
SHAP_RUN = """
import sys, time
from pathlib import Path
import numpy as np, pyarrow.csv as pc, shap
from churn.store import runs
from churn.cleaning import clean_features
from churn.scoring.compiling import FastScorer
from churn.model import load_model
run, source = Path(sys.argv[1]), sys.argv[2]
scorer = FastScorer(load_model(run, runs.read_record(run)))
table = pc.read_csv(source, convert_options=pc.ConvertOptions(column_types={c: "string" for c in scorer.spec.columns}))
matrix = scorer.transform(clean_features(table, scorer.spec).features)
explainer = shap.TreeExplainer(scorer.classifier, feature_perturbation="tree_path_dependent")
started = time.perf_counter()
explainer.shap_values(matrix, check_additivity=False)
print(time.perf_counter() - started)
"""


def train(kind: str, args: argparse.Namespace) -> tuple[Path, Path]:
    folder = args.workdir / f"explain_{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    config_path, latest = folder / "config.yaml", folder / "models" / "latest"
    if not latest.is_file():
        config_path.write_text(yaml.safe_dump(kind_config(args.config, kind, folder, False), sort_keys=False))
        print(f"training {kind} into {folder / 'models'}", file=sys.stderr)
        subprocess.run([sys.executable, str(REPO / "main.py"), "train", "-q", "-c", str(config_path)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    return folder / "models" / latest.read_text().strip(), config_path


def data_of(rows: int, args: argparse.Namespace) -> Path:
    path = args.workdir / f"customers_{rows}.csv"
    generate_once(path, lambda: generate(rows, path, args.seed))
    return path


def predict(run: Path, config: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "main.py"), "predict", "-q", "-c", str(config), "--input", str(data),
            "--output", str(out), "--model", str(run), *extra]  # fmt: skip


def refusal(run: Path, config: Path, data: Path, out: Path) -> str:
    done = subprocess.run(predict(run, config, data, out, "--explain", "3"), capture_output=True, text=True,
                          check=False)  # fmt: skip
    return done.stderr.strip().splitlines()[-1] if done.returncode else "not refused"


def shap_seconds(run: Path, data: Path) -> float | None:
    if importlib.util.find_spec("shap") is None:
        return None
    done = subprocess.run([sys.executable, "-c", SHAP_RUN, str(run), str(data)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return float(done.stdout.strip())


def bench_files(kind: str, run: Path, config: Path, args: argparse.Namespace) -> list[str]:
    lines = []
    sizes = [min(args.forest_rows, rows) for rows in args.rows] if kind == "random_forest" else args.rows
    for rows in dict.fromkeys(sizes):
        data, out = data_of(rows, args), args.workdir / "explained.csv"
        plain = measure(predict(run, config, data, out))
        explained = measure(predict(run, config, data, out, "--explain", "3"))
        shap = shap_seconds(run, data) if kind != "logistic_regression" else None
        ratio = explained["seconds"] / plain["seconds"]
        shap_text = f"{shap:9.2f}" if shap is not None else f"{'-':>9}"
        lines.append(f"{kind:24} {rows:>10,} {plain['seconds']:9.2f} {explained['seconds']:9.2f} {ratio:6.1f}x "
                     f"{plain['peak_mb']:8.0f} {explained['peak_mb']:8.0f} {shap_text}")  # fmt: skip
    if kind == "random_forest":
        for rows in args.rows:
            lines.append(f"{kind:24} {rows:>10,} refused: {refusal(run, config, data_of(rows, args), out)}")
    return lines


def bench_serve(kind: str, run: Path, config: Path, args: argparse.Namespace, deadline: float) -> str:
    port = free_port()
    command = [sys.executable, str(REPO / "main.py"), "serve", "-q", "-c", str(config), "--model", str(run),
               "--port", str(port), "--workers", "1"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    records = pd.read_csv(SHIPPED, dtype=str, keep_default_na=False).drop(columns="Churn").head(500)
    records = records.to_dict(orient="records")
    try:
        wait_ready(server, port, "/ready", deadline)
        client = Client(port)
        figures = {}
        for explain in (0, 3):
            bodies = [json.dumps({"customers": [row], "explain": explain}).encode() for row in records]
            seconds = []
            for index in range(args.requests + 200):  # the first 200: warm-up
                if time.monotonic() > deadline:
                    break
                status, _, elapsed = client.post("/predict", bodies[index % len(bodies)], "application/json")
                if status != 200:
                    raise SystemExit(f"/predict answered {status}")
                seconds.append(elapsed)
            timed = sorted(seconds[200:])
            figures[explain] = (statistics.median(timed) * 1000, timed[int(len(timed) * 0.99) - 1] * 1000)
    finally:
        server.terminate()
        server.wait(timeout=15)
    (p50, p99), (e50, e99) = figures[0], figures[3]
    return f"{kind:24} {p50:9.2f} {p99:9.2f} {e50:9.2f} {e99:9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="input sizes, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="model kinds, comma-separated")
    parser.add_argument("--forest-rows", type=int, default=1000, help="rows a random forest explains (default 1000)")
    parser.add_argument("--requests", type=int, default=1000, help="timed 1-row requests per case (default 1000)")
    parser.add_argument("--no-serve", action="store_true", help="skip the service's 1-row figures")
    parser.add_argument("-c", "--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.rows = [int(r) for r in args.rows.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + DEADLINE_SECONDS
    trained = {kind: train(kind, args) for kind in args.kinds.split(",")}
    print(f"{'model':24} {'rows':>10} {'predict s':>9} {'explain s':>9} {'ratio':>7} {'peak MB':>8} "
          f"{'expl. MB':>8} {'shap s':>9}")  # fmt: skip
    for kind, (run, config) in trained.items():
        for line in bench_files(kind, run, config, args):
            print(line, flush=True)
    if args.no_serve:
        return
    print(f"\n1-row /predict (ms)      {'p50':>9} {'p99':>9} {'expl. p50':>9} {'expl. p99':>9}")
    for kind, (run, config) in trained.items():
        print(bench_serve(kind, run, config, args, deadline), flush=True)


if __name__ == "__main__":
    main()
