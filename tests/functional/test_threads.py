"""Parallelism made explicit: predict scores on one OpenMP thread per scoring thread (its own
row slices use the usable cores), unless the user set OMP_NUM_THREADS; the numbers do not move."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from support import REPO, TELCO_SAMPLE, write_quick_config

from churn import pipeline
from churn.cli import main
from churn.config import load_config

PROBE = """
import os, sys
from churn.cli import main
code = main(sys.argv[1:])
from threadpoolctl import threadpool_info
openmp = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"]
print(os.environ.get("OMP_NUM_THREADS"), openmp)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("threads")
    config = write_quick_config(folder, {"model.name": "hist_gradient_boosting", "model.params": {"max_iter": 20}},
                                validation={})  # fmt: skip
    pipeline.train(load_config(config))
    return config


def run_predict(config, output, env):
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env
    command = ["predict", "-q", "-c", str(config), "--input", str(TELCO_SAMPLE), "--output", str(output)]
    done = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=REPO, env=environment, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].split(maxsplit=1)


@pytest.mark.slow  # predict in subprocesses under several thread settings
def test_predict_runs_openmp_on_one_thread_unless_told_and_scores_the_same(trained, tmp_path):
    variable, pools = run_predict(trained, tmp_path / "one.csv", {})
    assert variable == "1" and pools.strip() == "[1]"  # scikit-learn's OpenMP loaded, on one thread
    variable, pools = run_predict(trained, tmp_path / "two.csv", {"OMP_NUM_THREADS": "2"})
    assert variable == "2" and pools.strip() == "[2]"
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()


@pytest.mark.slow  # a training and predict under a set variable
def test_in_process_predict_leaves_a_set_variable_alone(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert main(["predict", "-q", "-c", str(trained), "--input", str(TELCO_SAMPLE), "--output",
                 str(tmp_path / "p.csv")]) == 0  # fmt: skip
    assert os.environ["OMP_NUM_THREADS"] == "2"
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(pd.read_csv(TELCO_SAMPLE))
