"""The model logged to MLflow, served by `mlflow models serve`, answers as `python main.py serve`
and `python main.py predict` do: a client written for one works against the other."""

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE, Service, free_port, http, run_cli, write_quick_config

pytestmark = pytest.mark.slow  # MLflow's own model server started beside ours


def test_mlflow_models_serve_and_churn_serve_give_the_same_answers(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = write_quick_config(tmp_path, validation={}, tracking={"enabled": True, "uri": uri})
    assert run_cli("train", "-q", "-c", config, cwd=tmp_path).returncode == 0
    predicted = run_cli("predict", "-q", "-c", config, "--input", TELCO_SAMPLE, "--output", "cli.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    frame = pd.read_csv(TELCO_SAMPLE).head(50)
    body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()

    port = free_port()
    command = [shutil.which("mlflow"), "models", "serve", "-m", "models:/churn@champion", "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    log = (tmp_path / "mlflow-serve.log").open("w")
    server = subprocess.Popen(command, cwd=tmp_path, env=dict(os.environ, MLFLOW_TRACKING_URI=uri),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if http("GET", f"http://127.0.0.1:{port}/ping", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.25)
        status, _, theirs = http(
            "POST", f"http://127.0.0.1:{port}/invocations", body, {"content-type": "application/json"}
        )
        assert status == 200, (tmp_path / "mlflow-serve.log").read_text()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
        log.close()
    with Service(config) as ours:
        status, _, mine = http("POST", ours.url + "/invocations", body, {"content-type": "application/json"})
        assert status == 200
    theirs, mine = json.loads(theirs), json.loads(mine)
    assert set(theirs) == set(mine) == {"predictions"}
    assert np.asarray(theirs["predictions"]).shape == np.asarray(mine["predictions"]).shape == (50, 2)
    assert np.abs(np.asarray(theirs["predictions"]) - np.asarray(mine["predictions"])).max() <= 1e-9
    cli = pd.read_csv(tmp_path / "cli.csv")["churn_probability"].head(50).to_numpy()
    assert np.abs(np.asarray(theirs["predictions"])[:, 1] - cli).max() <= 1e-9
