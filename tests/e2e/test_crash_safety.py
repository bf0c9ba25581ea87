"""Training killed at any moment, and two trainings at once, never leave a broken latest."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from support import REPO, TELCO_SAMPLE, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.store import runs

pytestmark = pytest.mark.slow  # twelve trainings killed at chosen moments, and two at once

KILLS = 12
WRITING_KILLS = (0.0, 0.01, 0.05)  # seconds after the run folder appears


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash")
    write_quick_config(folder)
    return folder


def start_training(folder):
    return subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "train", "-q", "-c", "config.yaml"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for_new_folder(models_dir, before, process, limit=120.0):
    deadline = time.perf_counter() + limit
    while process.poll() is None and time.perf_counter() < deadline:
        if {p.name for p in models_dir.iterdir()} - before:
            return
        time.sleep(0.002)


def test_training_killed_at_many_moments_never_breaks_latest(setup):
    folder = setup
    started = time.perf_counter()
    assert start_training(folder).wait(timeout=120) == 0
    full_run = time.perf_counter() - started
    config = load_config(folder / "config.yaml")
    moments = np.linspace(0.05, 1.0, KILLS) * full_run  # from start-up to the very last writes
    # Timed kills alone can all miss the writing window on a slower or busier machine (the first,
    # cold run sets the scale), so three more kills wait for the new run folder itself to appear.
    kills = [(moment, False) for moment in moments] + [(moment, True) for moment in WRITING_KILLS]
    for moment, after_folder in kills:
        before = {p.name for p in config.paths.models_dir.iterdir()}
        process = start_training(folder)
        if after_folder:
            wait_for_new_folder(config.paths.models_dir, before, process)
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait()
        latest = runs.read_latest(config.paths.models_dir)
        assert latest is not None and runs.is_complete(config.paths.models_dir / latest), moment
        new = {p.name for p in config.paths.models_dir.iterdir()} - before
        listed = {row["run_id"]: row for row in runs.list_runs(config.paths.models_dir)}
        for run_id in new & set(listed):
            row = listed[run_id]
            if not runs.is_complete(config.paths.models_dir / run_id):  # its writer is dead: not "training"
                assert row["status"] == "incomplete" and not row["latest"], moment
        # A killed writer cannot remove its temporary file: one may be left, but only in the run
        # it was writing (never a complete one) or as the pointer's, and the next training or
        # prune sweeps it away (checked at the end).
        for path in config.paths.models_dir.rglob("*.tmp"):
            in_run = path.parent != config.paths.models_dir
            assert (in_run and not runs.is_complete(path.parent)) or path.name.startswith(".latest."), (moment, path)
        assert pipeline.predict(config, TELCO_SAMPLE, folder / "after_kill.csv").rows == 400, moment
        (folder / "after_kill.csv").unlink()
    statuses = {row["status"] for row in runs.list_runs(config.paths.models_dir)}
    assert "incomplete" in statuses  # some kills did land mid-run
    assert start_training(folder).wait(timeout=120) == 0
    assert not list(config.paths.models_dir.rglob("*.tmp"))  # swept, in every folder


def test_two_trainings_at_once_both_finish_with_distinct_runs(setup):
    folder = setup
    config = load_config(folder / "config.yaml")
    before = {p.name for p in config.paths.models_dir.iterdir()} if config.paths.models_dir.exists() else set()
    first, second = start_training(folder), start_training(folder)
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    new = {p.name for p in config.paths.models_dir.iterdir() if p.is_dir()} - before
    assert len(new) == 2
    latest = runs.read_latest(config.paths.models_dir)
    assert latest in new and runs.is_complete(config.paths.models_dir / latest)
