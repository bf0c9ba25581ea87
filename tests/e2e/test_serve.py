"""`python main.py serve` as a real process on a free loopback port, driven over HTTP."""

import json
import shutil
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE, Service, http, run_cli, write_quick_config

from churn import pipeline
from churn.config import load_config

ROWS = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False).drop(columns="Churn")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One accepted run and predict's output for the sample, made once (the tests here are about serve)."""
    folder = tmp_path_factory.mktemp("serve")
    config = load_config(write_quick_config(folder, validation={}))
    pipeline.train(config)
    pipeline.predict(config, TELCO_SAMPLE, folder / "cli.csv")
    return folder


@pytest.fixture
def workspace(template, tmp_path):
    """This test's own copy of the template: its config, models and the predictions to match."""
    shutil.copytree(template, tmp_path / "work")
    return tmp_path / "work" / "config.yaml"


def post_json(url, payload, headers=None):
    status, answer_headers, body = http(
        "POST", url, json.dumps(payload).encode(), {"content-type": "application/json"} | (headers or {})
    )
    return status, answer_headers, json.loads(body)


def test_serve_answers_json_csv_mlflow_and_metrics_as_the_cli_does_then_exits_0_on_sigterm(workspace):
    cli = pd.read_csv(workspace.parent / "cli.csv")
    with Service(workspace) as service:
        assert http("GET", service.url + "/health")[2] == b'{"status":"ok"}'
        status, _, answer = post_json(service.url + "/predict", {"customers": ROWS.head(25).to_dict(orient="records")})
        assert status == 200
        got = pd.DataFrame(answer["predictions"])
        np.testing.assert_allclose(got["churn_probability"], cli["churn_probability"].head(25), rtol=0, atol=1e-9)
        assert got["customerID"].tolist() == cli["customerID"].head(25).tolist()
        status, headers, csv_answer = http(
            "POST", service.url + "/predict", TELCO_SAMPLE.read_bytes(), {"content-type": "text/csv"}
        )
        assert status == 200 and csv_answer == (workspace.parent / "cli.csv").read_bytes()
        frame = ROWS.head(3)
        split = {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
        status, _, mlflow = post_json(service.url + "/invocations", split)
        assert status == 200
        np.testing.assert_allclose(np.asarray(mlflow["predictions"])[:, 1], cli["churn_probability"].head(3), atol=1e-9)
        metrics = http("GET", service.url + "/metrics")[2].decode()
        assert 'churn_requests_total{endpoint="/predict",status="200"} 2.0' in metrics
        assert "churn_rows_scored_total 428.0" in metrics  # 25 + 400 + 3
        assert service.stop() == 0
    log = service.log.read_text()
    assert '"POST /predict" 200 rows=25' in log and "request_id=" in log
    assert "Traceback" not in log


def test_a_token_is_required_when_set(workspace):
    with Service(workspace, env={"CHURN_API_TOKEN": "s3cret"}) as service:
        assert http("GET", service.url + "/ready")[0] == 200
        assert http("GET", service.url + "/model")[0] == 401
        assert http("GET", service.url + "/model", headers={"authorization": "Bearer s3cret"})[0] == 200
        payload = {"customers": ROWS.head(1).to_dict(orient="records")}
        assert post_json(service.url + "/predict", payload)[0] == 401
        assert post_json(service.url + "/predict", payload, {"authorization": "Bearer s3cret"})[0] == 200


@pytest.mark.slow  # a live server under traffic while runs are promoted
def test_models_promote_under_traffic_moves_the_answers_without_a_failed_request(workspace):
    first = json.loads(run_cli("models", "list", "--json", "-c", workspace, cwd=workspace.parent).stdout)[0]["run_id"]
    pipeline.train(load_config(workspace))
    payload = {"customers": ROWS.head(2).to_dict(orient="records")}
    with Service(workspace) as service:
        second = service.wait_ready()
        assert second != first
        seen, statuses = [], []
        promoted_at = None
        deadline = time.monotonic() + 20
        for index in range(600):  # bounded in count and in time
            if time.monotonic() > deadline:
                break
            if index == 20:
                assert run_cli("models", "promote", first, "-c", workspace, cwd=workspace.parent).returncode == 0
                promoted_at = time.monotonic()
            status, _, answer = post_json(service.url + "/predict", payload)
            statuses.append(status)
            seen.append(answer.get("run_id"))
            if seen[-1] == first and time.monotonic() - promoted_at > 0.5:
                break
        assert set(statuses) == {200}
        assert seen[0] == second and seen[-1] == first
        switch = seen.index(first)
        assert set(seen[switch:]) == {first}  # once switched, never back
        assert promoted_at is not None


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(workspace):
    big = ROWS.sample(60_000, replace=True, random_state=0).to_csv(index=False).encode()
    with Service(workspace) as service:
        result = {}

        def upload():
            result["answer"] = http("POST", service.url + "/predict", big, {"content-type": "text/csv"}, timeout=30)

        sender = threading.Thread(target=upload)
        sender.start()
        time.sleep(0.3)  # the upload is sent and being scored
        service.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert service.stop() == 0
        assert time.monotonic() - started < 10
        sender.join(timeout=30)
    status, _, body = result["answer"]
    assert status == 200 and body.count(b"\n") == 60_001


def test_a_pinned_run_that_cannot_load_is_an_exit_2_error(workspace):
    done = run_cli("serve", "-c", workspace, "--model", "no-such-run", "--port", "0", cwd=workspace.parent, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: no-such-run: no such run folder; pass a path to a run folder or a run id from "
        "models"  # shown relative to the folder serve was started in
    ]


@pytest.mark.slow  # a two-worker service
def test_two_workers_serve_and_the_metrics_add_up_across_them(workspace):
    payload = {"customers": ROWS.head(3).to_dict(orient="records")}
    with Service(workspace, "--workers", "2") as service:
        statuses = [post_json(service.url + "/predict", payload)[0] for _ in range(20)]  # bounded: 20 requests
        metrics = http("GET", service.url + "/metrics")[2].decode()
        assert service.stop() == 0
    assert set(statuses) == {200}
    # whichever worker answered, the counts are summed across both
    assert 'churn_requests_total{endpoint="/predict",status="200"} 20.0' in metrics
    assert "churn_rows_scored_total 60.0" in metrics


def test_quiet_serve_logs_errors_only(workspace):
    with Service(workspace, "-q") as service:
        assert post_json(service.url + "/predict", {"customers": ROWS.head(1).to_dict(orient="records")})[0] == 200
        assert service.stop() == 0
    assert service.log.read_text() == ""


def test_a_pinned_run_is_logged_as_pinned_not_as_following(workspace):
    run_id = (workspace.parent / "models" / "latest").read_text().strip()
    with Service(workspace, "--model", run_id) as service:
        assert service.wait_ready() == run_id
    log = service.log.read_text()
    assert f"serving run {run_id}, pinned" in log and "following" not in log
