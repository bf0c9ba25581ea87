"""Benchmark `predict --explain 3` against plain `predict` per model kind, and churn's exact
TreeSHAP of forests beside shap's on the same rows.

    python benchmarks/bench_explain.py
    python benchmarks/bench_explain.py --rows 100000 --kinds random_forest --no-serve

1. Trains, once into --workdir, a run per model kind on the shipped data: the config's `model`
   section set to that kind, with the shipped candidates' parameters (gradient boosting, which
   the shipped config does not list, takes scikit-learn's defaults: 100 trees of depth 3). The
   random forest is trained three times: with the shipped grid's two leaf sizes
   (`min_samples_leaf` 10 and 20, the trees the comparison fits) and without one, so that its
   trees grow to the shipped cap of 1,000 leaves.
2. Generates Telco-shaped inputs of each --rows (seeded, cached in --workdir).
3. Per kind and size, each a separate process measured from outside (wall time, peak resident
   memory): `python main.py predict` and `python main.py predict --explain 3`, and their ratio;
   a refusal (over predict.max_explain_seconds) is printed with predict's own estimate.
4. Per forest, in one process on one thread (BLAS/OpenMP limited to one): churn's walk
   (`churn.explain.pathshap`, numba-compiled) and, with shap installed,
   `shap.TreeExplainer(..., feature_perturbation="tree_path_dependent").shap_values` on the
   same --forest-rows transformed rows; ms a row each, the ratio, the largest difference; and
   the walk's numpy path (no numba) on the same rows, with whether its bits are the walk's.
5. Unless --no-serve: `python main.py serve` per kind on loopback, 1-row /predict with and
   without `"explain": 3` over one keep-alive connection (bounded in count and time), p50/p99.
"""

from __future__ import annotations

import argparse
import json
import os
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
FORESTS = {  # the forest runs beside shap: name -> min_samples_leaf (None: scikit-learn's 1)
    "random_forest_leaf10": 10,
    "random_forest_leaf20": 20,
    "random_forest": None,
}
BESIDE_RUN = """
import json, sys, time
from pathlib import Path
import numpy as np, pyarrow.csv as pc
from threadpoolctl import threadpool_limits
from churn.store import runs
from churn.cleaning import clean_features
from churn.explain import treeshap
from churn.scoring.compiling import FastScorer
from churn.model import load_model
run, source, rows = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
scorer = FastScorer(load_model(run, runs.read_record(run)))
table = pc.read_csv(source, convert_options=pc.ConvertOptions(column_types={c: "string" for c in scorer.spec.columns}))
matrix = scorer.transform(clean_features(table.slice(0, rows), scorer.spec).features)
forest = scorer.classifier
walk = treeshap.deep_trees(forest, np.arange(matrix.shape[1]), matrix.shape[1], threads=1)
found = {"leaves": float(np.mean([t.tree_.n_leaves for t in forest.estimators_])),
         "depth": float(np.mean([t.tree_.max_depth for t in forest.estimators_])), "compiled": walk.compiled}
with threadpool_limits(1):
    started = time.perf_counter()
    mine = walk.contributions(matrix)
    found["churn"] = time.perf_counter() - started
    try:
        import shap
    except ImportError:
        shap = None
    plain = treeshap.PathShap(treeshap.forest_trees(forest), 0.0, np.arange(matrix.shape[1]), matrix.shape[1],
                              compiled=False)
    started = time.perf_counter()
    found["same_bits"] = bool(np.array_equal(plain.contributions(matrix), mine))
    found["numpy"] = time.perf_counter() - started
    if shap is not None:
        explainer = shap.TreeExplainer(forest, feature_perturbation="tree_path_dependent")
        started = time.perf_counter()
        theirs = np.asarray(explainer.shap_values(matrix, check_additivity=False))[..., 1]
        found["shap"] = time.perf_counter() - started
        found["difference"] = float(np.abs(mine - theirs).max())
print(json.dumps(found))
"""


def train(kind: str, args: argparse.Namespace) -> tuple[Path, Path]:
    folder = args.workdir / f"explain_{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    config_path, latest = folder / "config.yaml", folder / "models" / "latest"
    if not latest.is_file():
        config = kind_config(args.config, "random_forest" if kind in FORESTS else kind, folder, False)
        if FORESTS.get(kind) is not None:
            config["model"]["params"] = {**config["model"]["params"], "min_samples_leaf": FORESTS[kind]}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
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


def bench_files(kind: str, run: Path, config: Path, args: argparse.Namespace) -> list[str]:
    lines = []
    for rows in args.rows:
        data, out = data_of(rows, args), args.workdir / "explained.csv"
        plain = measure(predict(run, config, data, out))
        explained = measure(predict(run, config, data, out, "--explain", "3"), allowed=(0, 2))
        if explained["code"] != 0:  # a forest over predict.max_explain_seconds: its own estimate
            lines.append(f"{kind:24} {rows:>10,} refused: {refusal(run, config, data, out)}")
            continue
        ratio = explained["seconds"] / plain["seconds"]
        lines.append(f"{kind:24} {rows:>10,} {plain['seconds']:9.2f} {explained['seconds']:9.2f} {ratio:6.1f}x "
                     f"{plain['peak_mb']:8.0f} {explained['peak_mb']:8.0f}")  # fmt: skip
    return lines


def beside_shap(kind: str, run: Path, args: argparse.Namespace) -> str:
    """A forest's rows explained by churn's walk and by shap, one thread each, in one process."""
    data = data_of(args.forest_rows, args)
    done = subprocess.run([sys.executable, "-c", BESIDE_RUN, str(run), str(data), str(args.forest_rows)],
                          capture_output=True, text=True, check=True, env=one_thread())  # fmt: skip
    found = json.loads(done.stdout.strip().splitlines()[-1])
    per_row = {key: found[key] / args.forest_rows * 1000 for key in ("churn", "numpy", "shap") if key in found}
    shap_text = f"{per_row['shap']:9.2f} {per_row['shap'] / per_row['churn']:6.1f}x {found['difference']:9.1e}" if (
        "shap" in per_row) else f"{'-':>9} {'-':>7} {'-':>9}"  # fmt: skip
    walk = "numba" if found["compiled"] else "numpy"
    numpy_text = f"{per_row['numpy']:9.2f} {'same' if found['same_bits'] else 'DIFFER':>5}"
    return (f"{kind:22} {found['leaves']:7.0f} {found['depth']:6.1f} {args.forest_rows:>7,} {walk:>6} "
            f"{per_row['churn']:9.3f} {shap_text} {numpy_text}")  # fmt: skip


def one_thread() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": "1"}  # fmt: skip


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
    parser.add_argument("--forest-rows", type=int, default=1000, help="rows explained beside shap (default 1000)")
    parser.add_argument("--requests", type=int, default=1000, help="timed 1-row requests per case (default 1000)")
    parser.add_argument("--no-serve", action="store_true", help="skip the service's 1-row figures")
    parser.add_argument("-c", "--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.rows = [int(r) for r in args.rows.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + DEADLINE_SECONDS
    kinds = args.kinds.split(",")
    forests = [*FORESTS] if "random_forest" in kinds else []
    trained = {kind: train(kind, args) for kind in dict.fromkeys([*kinds, *forests])}
    print(f"{'model':24} {'rows':>10} {'predict s':>9} {'explain s':>9} {'ratio':>7} {'peak MB':>8} {'expl. MB':>8}")
    for kind in dict.fromkeys([*kinds, *forests]):
        run, config = trained[kind]
        for line in bench_files(kind, run, config, args):
            print(line, flush=True)
    if forests:
        print(f"\nforest, one thread      {'leaves':>6} {'depth':>6} {'rows':>7} {'walk':>6} {'churn ms':>9} "
              f"{'shap ms':>9} {'ratio':>7} {'max diff':>9} {'numpy ms':>9} {'bits':>5}")  # fmt: skip
        for kind in forests:
            print(beside_shap(kind, trained[kind][0], args), flush=True)
    if args.no_serve:
        return
    print(f"\n1-row /predict (ms)      {'p50':>9} {'p99':>9} {'expl. p50':>9} {'expl. p99':>9}")
    for kind in kinds:
        run, config = trained[kind]
        print(bench_serve(kind, run, config, args, deadline), flush=True)


if __name__ == "__main__":
    main()
