"""train --engine dask: the comparison's fits on a real local cluster (a scheduler and two worker
processes), bit for bit the local comparison."""

import json
import time

import pandas as pd
import pytest
from distributed import LocalCluster
from support import free_port, run_cli, write_quick_config

from churn import parallel
from churn.store import runs

pytestmark = pytest.mark.slow  # a real local cluster, and trainings through the CLI: run apart (pytest -m slow)

CANDIDATES = [
    {
        "name": "logistic_regression",
        "params": {"max_iter": 1000},
        "search": {"method": "grid", "space": {"C": [0.3, 1.0]}},
    },
    {"name": "hist_gradient_boosting", "params": {"max_iter": 30, "max_depth": 3}},
    {"name": "random_forest", "params": {"n_estimators": 30, "min_samples_leaf": 10, "random_state": 0}},
]


def trained_run(folder, *options):
    folder.mkdir()
    changes = {"training.candidates": CANDIDATES, "training.selection_metric": "expected_cost"}
    config = write_quick_config(folder, changes)
    result = run_cli("train", "-q", "-c", str(config), *options, cwd=folder)
    assert result.returncode == 0, result.stderr
    run_dir = folder / "models" / (folder / "models" / runs.LATEST).read_text().strip()
    return run_dir, result


def test_the_comparison_on_a_cluster_is_bit_for_bit_the_local_one(tmp_path):
    local, _ = trained_run(tmp_path / "local")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote, result = trained_run(tmp_path / "dask", "--engine", "dask", "--scheduler", cluster.scheduler_address)
    assert "saved run" in result.stdout
    local_record, remote_record = (json.loads((run / runs.METADATA).read_text()) for run in (local, remote))
    for key in ("model", "threshold", "selection"):
        assert remote_record[key] == local_record[key], key
    assert (remote / runs.METRICS).read_bytes() == (local / runs.METRICS).read_bytes()
    for name in (runs.LEADERBOARD, runs.TEST_PREDICTIONS, runs.THRESHOLD_CURVE):
        found, expected = (pd.read_csv(run / name).filter(regex="^(?!fit_seconds)") for run in (remote, local))
        pd.testing.assert_frame_equal(found, expected, check_exact=True)  # all but how long the fits took
    leaderboard = pd.read_csv(remote / runs.LEADERBOARD)
    assert len(leaderboard) == len(CANDIDATES)  # every candidate was compared on the cluster


def test_an_unreachable_training_scheduler_is_the_clean_error_of_predict(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    config = write_quick_config(folder, {"training.candidates": CANDIDATES[:2]})
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli("train", "-q", "-c", str(config), "--engine", "dask", "--scheduler", address, cwd=folder)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the Dask scheduler at {address} within" in lines[0]
    assert "--scheduler / training.scheduler" in lines[0] and "Traceback" not in result.stderr
    assert time.monotonic() - started < parallel.CONNECT_SECONDS + 30
    assert not (folder / "models" / runs.LATEST).exists()  # nothing saved


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--scheduler", "tcp://127.0.0.1:1"), "--scheduler applies to --engine dask only"),
    ],
)
def test_a_scheduler_without_the_dask_engine_is_refused(tmp_path, options, message):
    config = write_quick_config(tmp_path)
    result = run_cli("train", "-q", "-c", str(config), *options, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr
