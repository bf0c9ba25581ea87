"""`python main.py predict --engine dask --scheduler ...` against a real `dask scheduler` and two
`dask worker` processes started on loopback: the cluster a user would run."""

import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
from support import TELCO_SAMPLE, free_port, run_cli, write_quick_config

pytestmark = pytest.mark.slow  # a real Dask scheduler and two workers


def start(command, log, cwd):
    return subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_predict_on_a_real_scheduler_and_two_workers_equals_local_predict(tmp_path):
    config = write_quick_config(tmp_path, validation={})
    assert run_cli("train", "-q", "-c", config, cwd=tmp_path).returncode == 0
    local = run_cli("predict", "-q", "-c", config, "--input", TELCO_SAMPLE, "--output", "local.csv", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    frame = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False)
    (tmp_path / "parts").mkdir()
    for index in range(4):
        frame.iloc[index * 100 : (index + 1) * 100].to_parquet(tmp_path / "parts" / f"{index}.parquet")

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = shutil.which("dask", path=os.path.dirname(sys.executable))
    log = (tmp_path / "cluster.log").open("w")
    processes = [
        start([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], log, tmp_path)
    ]
    worker = [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    processes += [start(worker, log, tmp_path) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60  # bounded wait for two workers to join
        while time.monotonic() < deadline and (tmp_path / "cluster.log").read_text().count("Starting established") < 2:
            time.sleep(0.25)
        done = run_cli("predict", "-c", config, "--input", "parts", "--output", "scored.csv", "--engine", "dask",
                       "--scheduler", address, cwd=tmp_path, timeout=120)  # fmt: skip
    finally:
        for process in processes:
            os.killpg(process.pid, 15)
        for process in processes:
            process.wait(timeout=30)
        log.close()
    assert done.returncode == 0, done.stderr + (tmp_path / "cluster.log").read_text()
    assert f"dask: scheduler {address} with 2 worker(s)" in done.stderr
    assert "dask: 4/4 parts done" in done.stderr
    assert (tmp_path / "scored.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
