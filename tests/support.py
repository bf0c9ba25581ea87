"""Helpers shared by the test levels: paths, a second churn table, and running the real CLI."""

from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
TELCO = REPO / "data" / "raw" / "telco_customer_churn.csv"
TELCO_SAMPLE = Path(__file__).parent / "data" / "telco_sample.csv"


DELETE = object()  # a value for write_quick_config's `changes`: remove this key


def write_quick_config(
    folder: Path, changes: dict[str, Any] | None = None, name: str = "config.yaml", cv_folds: int = 3, **sections: Any
) -> Path:
    """The shipped config with one model instead of the comparison, on the 400-row sample, its
    models and predictions in `folder`; `sections` replace whole top-level sections and
    `changes` set dotted keys (DELETE removes one). Written to folder/name.

    Without the survival model unless `changes` or `sections` touch `survival` (it adds about
    1.3 s to each of the suite's hundred quick trainings; the shipped config's own runs, the e2e
    template and the horizon tests keep it)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["training"].pop("candidates")
    if "survival" not in sections and not any(key.startswith("survival.") for key in changes or {}):
        config["survival"]["duration_column"] = None
    config["training"]["cv_folds"] = cv_folds
    config["data"]["path"] = str(TELCO_SAMPLE)
    config["paths"] = {"models_dir": "models", "predictions_dir": "predictions"}
    config.update(sections)
    for dotted, value in (changes or {}).items():
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def write_telco_config(folder: Path, comparison: bool = True, survival: bool = True) -> Path:
    """The shipped config on the full shipped data, its models and predictions in `folder`;
    without `comparison`, its single model section instead of the candidates; without
    `survival`, no survival model."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    if not comparison:
        config["training"].pop("candidates")
    if not survival:
        config["survival"]["duration_column"] = None
    config["data"]["path"] = str(TELCO)
    config["paths"] = {"models_dir": str(folder / "models"), "predictions_dir": str(folder / "predictions")}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


SHIPPED_HORIZONS = ["churn_within_3m", "churn_within_6m", "churn_within_12m", "expected_months_12m"]
HORIZON_PREFIXES = ("churn_within_", "expected_months_", "revenue_at_risk_", "horizon_reason_")


def horizon_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a run with a survival model adds (tests/functional/test_horizons_everywhere.py)."""
    return [c for c in frame.columns if c.startswith(HORIZON_PREFIXES)]


def without_horizons(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=horizon_columns(frame))


def trained_copy(template: Path, folder: Path) -> Path:
    """A copy of a trained template folder (its config and models) in `folder`, for a test that
    changes what it trained: module-scoped runs are only read, or copied per test."""
    shutil.copytree(template, folder, dirs_exist_ok=True)
    return folder / "config.yaml"


def run_cli(
    *args: str | Path, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python main.py ARGS` from the repository in a subprocess, in folder `cwd`; `env`
    adds environment variables."""
    env = dict(os.environ, PYTHONHASHSEED="0") | (env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "main.py"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def make_subscriptions(rows: int = 300, seed: int = 0, label: str = "int") -> pd.DataFrame:
    """A second, non-Telco churn table with its own names, label spelling and a learnable signal.

    label: "int" (1/0), "bool" (true/false), "text" ("yes"/"no").
    """
    rng = np.random.default_rng(seed)
    months = rng.integers(1, 60, rows)
    calls = rng.poisson(2, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    autopay = rng.integers(0, 2, rows)
    fee = np.round(rng.uniform(5, 50, rows), 2)
    logit = -0.06 * months + 0.6 * calls + np.where(plan == "basic", 0.8, -0.4) - 0.9 * autopay
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    labels = {
        "int": churned.astype(int),
        "bool": np.where(churned, "true", "false"),
        "text": np.where(churned, "yes", "no"),
    }
    return pd.DataFrame(
        {
            "account": [f"A{i:05d}" for i in range(rows)],
            "months_active": months,
            "monthly_fee": fee,
            "support_calls": calls,
            "plan": plan,
            "autopay": autopay,
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "churned": labels[label],
        }
    )


def subscriptions_config(data_path: Path, positive_label: Any = 1, id_column: str | None = "account") -> dict[str, Any]:
    return {
        "data": {
            "path": str(data_path),
            "id_column": id_column,
            "target": "churned",
            "positive_label": positive_label,
            "numeric_features": ["months_active", "monthly_fee", "support_calls"],
            "categorical_features": ["plan", "autopay", "region"],
        },
        "model": {"name": "logistic_regression", "params": {"max_iter": 500}},
        "training": {"cv_folds": 3},
        "paths": {"models_dir": "models", "predictions_dir": "predictions"},
    }


class BoobyTrap:
    """Unpickling this writes a marker file: the proof that a model file was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.marker).write_text, ("loaded",))


def free_port() -> int:
    """A TCP port free on loopback right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library: (status, headers, body)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class Service:
    """`python main.py serve` in a subprocess on a free loopback port; stopped with SIGTERM."""

    def __init__(self, config: Path, *options: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, str(REPO / "main.py"), "serve", "-c", str(config), "--port", str(self.port)]
        self.log = config.parent / f"serve-{self.port}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [*command, *options], cwd=config.parent, stdout=self._log_file, stderr=subprocess.STDOUT,
            env=dict(os.environ, **(env or {})),
        )  # fmt: skip

    def wait_ready(self, seconds: float = 30) -> str:
        """The served run id, once /ready says so (polled every 0.1 s for at most `seconds`)."""
        import json
        import time

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                status, _, body = http("GET", self.url + "/ready", timeout=2)
            except OSError:
                status = 0
            if status == 200:
                return str(json.loads(body)["run_id"])
            time.sleep(0.1)
        raise AssertionError(f"not ready within {seconds} s: {self.log.read_text()}")

    def stop(self, seconds: float = 10) -> int:
        """SIGTERM, then the exit code (killed and failed if it takes longer than `seconds`)."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve did not exit within {seconds} s of SIGTERM") from None
        finally:
            self._log_file.close()

    def __enter__(self) -> Service:
        self.wait_ready()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.process.poll() is None:
            self.stop()


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2 with one `error:` line holding every fragment, and no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def fake_record(run_id: str, artefacts: dict[str, str], status: str = "accepted", **changes: Any) -> Any:
    """A valid run record with made-up figures, for tests of the run registry."""
    from churn.store.record import RunRecord

    metrics = {"rows": 10, "positive_rate": 0.3, "roc_auc": 0.8, "pr_auc": 0.6, "accuracy": 0.7, "precision": 0.5,
               "recall": 0.5, "f1": 0.5, "brier": 0.2, "confusion_matrix": {"tn": 5, "fp": 2, "fn": 1, "tp": 2},
               "cv_roc_auc_mean": 0.8, "cv_roc_auc_std": 0.01}  # fmt: skip
    features = {"numeric_features": ["n"], "categorical_features": ["c"], "id_column": None, "target": "y",
                "positive_label": "Yes", "dtypes": {"n": "float64", "c": "category"}, "categories": {"c": ["a"]},
                "numeric_ranges": {"n": {"min": 0.0, "max": 1.0, "missing": 0}}}  # fmt: skip
    payload = {
        "run_id": run_id, "created": "2026-01-01T00:00:00+00:00", "status": status, "config_path": "config.yaml",
        "config": {}, "features": features, "metrics": metrics,
        "data": {"path": "t.csv", "sha256": "0" * 64, "rows_read": 10, "rows_used": 10, "dropped_missing_target": 0,
                 "dropped_duplicate_ids": 0, "missing_values": {},
                 "class_balance": {"positive": 3, "negative": 7, "positive_rate": 0.3}},
        "split": {"test_size": 0.2, "random_state": 0, "train_rows": 8, "test_rows": 2},
        "selection": {"metric": "roc_auc", "cv_folds": 3, "compared_on_rows": 8, "training_rows": 8, "sampled": False},
        "model": {"name": "m", "params": {}},
        "threshold": {"value": 0.3, "objective": "fixed", "reason": "set in the config"},
        "decision": {}, "validation": {"criteria": {}, "missed": []}, "train_seconds": 1.0,
        "artefacts": artefacts, "environment": {"python": "3.11.7", "packages": {}, "git_commit": None},
    }  # fmt: skip
    return RunRecord.model_validate(payload | changes)


def typed_table(csv_path: Path) -> Any:
    """A CSV as a database would hold it: numbers as numbers (blank TotalCharges as NULL), text as text."""
    import pyarrow as pa

    frame = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    for column in ("TotalCharges", "MonthlyCharges", "tenure"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return pa.Table.from_pandas(frame, preserve_index=False)


def load_sqlite(database: Path, table: str, data: Any) -> str:
    """Write an Arrow table into a SQLite file (replacing the table); its sqlite:/// URL."""
    import adbc_driver_sqlite.dbapi as driver

    with driver.connect(str(database)) as connection:
        cursor = connection.cursor()
        cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        cursor.adbc_ingest(table, data, mode="create")
        connection.commit()
    return f"sqlite:///{database}"


def read_sqlite(database: Path, sql: str) -> Any:
    import adbc_driver_sqlite.dbapi as driver

    with driver.connect(str(database)) as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetch_arrow_table()


def path_dependent_value(tree: Any, row: Any, known: set[int]) -> float:
    """E[f | the features in `known`] under TreeSHAP's path-dependent rule: follow the known
    features (a missing value where the tree sends it), split by cover at the unknown ones."""

    def walk(node: int) -> float:
        if tree.leaf[node]:
            return float(tree.value[node])
        left, right = int(tree.left[node]), int(tree.right[node])
        if tree.feature[node] in known:
            value = row[tree.feature[node]]
            if np.isnan(value):
                goes_left = tree.missing_left is not None and bool(tree.missing_left[node])
            else:
                goes_left = bool(value <= tree.threshold[node])
            return walk(left if goes_left else right)
        return float((tree.cover[left] * walk(left) + tree.cover[right] * walk(right)) / tree.cover[node])

    return walk(0)


def brute_force_shapley(tree: Any, row: Any, width: int) -> np.ndarray:
    """Shapley values of the first `width` features, by the definition: every subset, weighted."""
    phi = np.zeros(width)
    for j in range(width):
        others = [d for d in range(width) if d != j]
        for size in range(width):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(width - size - 1) / math.factorial(width)
                gain = path_dependent_value(tree, row, {*subset, j}) - path_dependent_value(tree, row, set(subset))
                phi[j] += weight * gain
    return phi
