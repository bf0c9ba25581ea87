"""predict --engine dask on local clusters of two worker processes, against local predict."""

import gzip
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from support import TELCO_SAMPLE, free_port, write_quick_config

from churn import parallel, pipeline
from churn.config import load_config
from churn.errors import ChurnError, DataError
from churn.scoring import distributed

# a local Dask cluster starts for most of them: run apart (pytest -m slow)
pytestmark = pytest.mark.slow

SAMPLE = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    paths = {"models_dir": str(folder / "models"), "predictions_dir": str(folder / "predictions")}
    predict = {"chunk_rows": 50, "dask": {"workers": 2}}
    config = load_config(write_quick_config(folder, paths=paths, predict=predict))
    pipeline.train(config)
    return config, folder


def split_into(frame, folder, parts, kind):
    """The frame as `parts` files in `folder`, named so they sort in order."""
    folder.mkdir()
    for index, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        block = frame.iloc[rows]
        path = folder / f"part{index:02d}.{kind}"
        if kind == "parquet":
            block.to_parquet(path)
        elif kind == "csv.gz":
            path.write_bytes(gzip.compress(block.to_csv(index=False).encode()))
        else:
            block.to_csv(path, index=False)
    return folder


def local_predictions(config, frame, tmp_path):
    frame.to_csv(tmp_path / "whole.csv", index=False)
    pipeline.predict(config, tmp_path / "whole.csv", tmp_path / "local.csv")
    return tmp_path / "local.csv"


def test_a_parquet_folder_scores_to_parts_in_input_order_equal_to_local_predict(trained, tmp_path):
    config, _ = trained
    folder = split_into(SAMPLE, tmp_path / "in", 4, "parquet")
    result = distributed.predict(config, folder, tmp_path / "scored", None, None)
    assert (result.parts, result.rows) == (4, 400)
    parts = sorted((tmp_path / "scored").iterdir())
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(4)]
    ours = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    local = pd.read_csv(local_predictions(config, SAMPLE, tmp_path))
    assert list(ours.columns) == ["customerID", "churn_probability", "churn_prediction"]
    assert ours["customerID"].tolist() == local["customerID"].tolist()
    assert np.abs(ours["churn_probability"] - local["churn_probability"]).max() <= 1e-9
    assert ours["churn_prediction"].tolist() == local["churn_prediction"].tolist()


def test_a_csv_glob_scores_into_one_csv_identical_to_local_predict(trained, tmp_path):
    config, _ = trained
    split_into(SAMPLE.iloc[:200], tmp_path / "a", 2, "csv")
    split_into(SAMPLE.iloc[200:], tmp_path / "b", 2, "csv.gz")
    for path in (tmp_path / "b").iterdir():
        path.rename(tmp_path / "a" / f"z{path.name}")  # after the plain CSV parts in name order
    distributed.predict(config, tmp_path / "a" / "*.csv*", tmp_path / "scored.csv", None, None)
    expected = local_predictions(config, SAMPLE, tmp_path)
    assert (tmp_path / "scored.csv").read_bytes() == expected.read_bytes()


def test_a_bad_part_is_an_error_naming_it_and_nothing_is_published(trained, tmp_path):
    config, _ = trained
    folder = split_into(SAMPLE, tmp_path / "in", 4, "csv")
    bad = folder / "part02.csv"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:5] + [lines[5] + ",extra,fields"] + lines[6:]) + "\n")
    with pytest.raises(DataError, match=r"part02\.csv: is not a valid CSV"):
        distributed.predict(config, folder, tmp_path / "scored", None, None)
    assert not (tmp_path / "scored").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the staging folder is gone


@pytest.mark.slow  # 160,000 rows on a cluster, one worker killed mid-run
def test_a_worker_killed_mid_run_is_replaced_and_the_output_is_complete(trained, tmp_path):
    config, _ = trained
    big = SAMPLE.sample(160_000, replace=True, random_state=1).reset_index(drop=True)
    big["customerID"] = [f"C{i:07d}" for i in range(len(big))]
    folder = split_into(big, tmp_path / "in", 16, "parquet")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        victim = next(iter(client.run(os.getpid).values()))
        killed = threading.Event()

        def kill_after_the_first_part():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # bounded: at most a minute
                if any(tmp_path.glob(".scored.*.tmp/part-*.parquet")):
                    os.kill(victim, signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_after_the_first_part)
        killer.start()
        result = distributed.predict(config, folder, tmp_path / "scored", None, cluster.scheduler_address)
        killer.join()
    assert killed.is_set() and result.rows == 160_000
    ours = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "scored").iterdir())], ignore_index=True)
    local = pd.read_csv(local_predictions(config, big, tmp_path))
    assert ours["customerID"].tolist() == local["customerID"].tolist()
    assert np.abs(ours["churn_probability"] - local["churn_probability"]).max() <= 1e-9


def test_an_unreachable_scheduler_is_an_error_naming_it_within_the_time_allowed(trained, tmp_path, monkeypatch):
    assert parallel.CONNECT_SECONDS == 10
    monkeypatch.setattr(parallel, "CONNECT_SECONDS", 2)  # the same path, sooner
    config, _ = trained
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ChurnError, match=f"cannot reach the Dask scheduler at {address} within 2 s"):
        distributed.predict(config, TELCO_SAMPLE, tmp_path / "scored", None, address)
    assert time.monotonic() - started < 2 + 5


def test_inputs_that_cannot_be_scored_are_refused_before_any_cluster_starts(trained, tmp_path):
    config, _ = trained
    with pytest.raises(DataError, match="no files to score"):
        distributed.predict(config, tmp_path / "nothing-*.parquet", tmp_path / "out", None, None)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: unsupported file type"):
        distributed.predict(config, tmp_path, tmp_path / "out", None, None)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep").write_text("x")
    with pytest.raises(DataError, match="already exists"):
        distributed.predict(config, TELCO_SAMPLE, tmp_path / "taken", None, None)


def test_an_existing_csv_or_folder_is_kept_unless_overwrite_and_then_replaced(trained, tmp_path):
    config, _ = trained
    (tmp_path / "scored.csv").write_text("last month\n")
    (tmp_path / "scored").mkdir()
    (tmp_path / "scored" / "part-00000.parquet").write_text("last month")
    for output in (tmp_path / "scored.csv", tmp_path / "scored"):
        with pytest.raises(DataError, match="already exists; choose a new output, or pass --overwrite"):
            distributed.predict(config, TELCO_SAMPLE, output, None, None)
    assert (tmp_path / "scored.csv").read_text() == "last month\n"
    distributed.predict(config, TELCO_SAMPLE, tmp_path / "scored.csv", None, None, overwrite=True)
    assert (tmp_path / "scored.csv").read_bytes() == local_predictions(config, SAMPLE, tmp_path).read_bytes()
    distributed.predict(config, TELCO_SAMPLE, tmp_path / "scored", None, None, overwrite=True)
    parts = sorted((tmp_path / "scored").glob("part-*.parquet"))
    assert len(pd.concat([pd.read_parquet(p) for p in parts])) == len(SAMPLE)
    assert not list(tmp_path.glob(".scored*"))  # neither the staging folder nor the old one is left
