"""The HTTP service in process (FastAPI's TestClient, lifespan running) on a small trained run:
every endpoint, every status, and the same numbers as the CLI's scorer."""

import json
import logging
import re
import shutil
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support import TELCO_SAMPLE, BoobyTrap, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.service.app import create_app
from churn.store import runs

SAMPLE = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False)


def wait_for(condition, seconds=10.0):
    """Poll `condition` every 50 ms, at most `seconds`; bounded like every loop in these tests."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


LIMITS = {"max_rows": 50, "max_body_mb": 0.25}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One trained run and a service on it, for the tests that only read: trained once."""
    folder = tmp_path_factory.mktemp("served")
    paths = {"models_dir": str(folder / "models"), "predictions_dir": str(folder / "predictions")}
    config = load_config(write_quick_config(folder, serve=LIMITS, paths=paths))
    trained = pipeline.train(config)
    with TestClient(create_app(config)) as client:
        assert wait_for(lambda: client.get("/ready").status_code == 200)
        yield config, trained, client


@pytest.fixture
def config(served):
    return served[0]


@pytest.fixture
def trained(served):
    return served[1]


@pytest.fixture
def client(served):
    return served[2]


@pytest.fixture
def own(write_config):
    """A models folder, config and trained run of this test's own, for tests that change them."""
    config = load_config(write_config({"serve.max_rows": 50}))
    return config, pipeline.train(config)


def customers(rows=5, start=0):
    return SAMPLE.drop(columns="Churn").iloc[start : start + rows].to_dict(orient="records")


def cli_probabilities(config, frame, tmp_path):
    """What `predict` writes for these rows, through a file, as the CLI does."""
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    pipeline.predict(config, path, tmp_path / "cli.csv")
    return pd.read_csv(tmp_path / "cli.csv")


# answers


def test_health_ready_and_model_describe_the_served_run(client, trained):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "run_id": trained.run_id}
    info = client.get("/model").json()
    assert info["run_id"] == trained.run_id and info["model_name"] == "logistic_regression"
    assert info["threshold"] == trained.record.threshold.value and info["created"] == trained.record.created
    assert info["test_metrics"]["roc_auc"] == trained.metrics.roc_auc
    schema = info["input_schema"]
    assert schema["id_column"] == "customerID" and schema["numeric_columns"] == [
        "tenure",
        "MonthlyCharges",
        "TotalCharges",
    ]
    assert schema["categorical_columns"]["Contract"] == ["Month-to-month", "One year", "Two year"]


def test_json_predictions_equal_the_cli_for_numbers_as_numbers_floats_or_text(client, config, tmp_path):
    rows = customers(40)
    as_numbers = [
        r
        | {
            "tenure": int(r["tenure"]),
            "SeniorCitizen": int(r["SeniorCitizen"]),
            "MonthlyCharges": float(r["MonthlyCharges"]),
        }
        for r in rows
    ]
    expected = cli_probabilities(config, pd.DataFrame(rows), tmp_path)
    for body in (rows, as_numbers):
        answer = client.post("/predict", json={"customers": body})
        assert answer.status_code == 200, answer.text
        predictions = pd.DataFrame(answer.json()["predictions"])
        assert predictions["customerID"].tolist() == expected["customerID"].tolist()  # request order, ids echoed
        np.testing.assert_allclose(predictions["churn_probability"], expected["churn_probability"], rtol=0, atol=1e-9)
        assert predictions["churn_prediction"].tolist() == expected["churn_prediction"].tolist()
        assert answer.headers["x-request-id"]


def test_json_integers_too_large_for_a_double_are_scored_as_the_cli_reads_them(client, config, tmp_path):
    """pyarrow refuses ints beyond 2**53 as float64; such a value is bad data, not a server error."""
    numeric = ("tenure", "MonthlyCharges", "TotalCharges")
    rows = [row | {name: float(row[name]) for name in numeric} for row in customers(3)]  # JSON numbers only
    rows[0]["TotalCharges"], rows[1]["tenure"], rows[2]["MonthlyCharges"] = 2**53 + 1, 2**63 - 1, -(2**63)
    expected = cli_probabilities(config, pd.DataFrame(rows), tmp_path)
    answer = client.post("/predict", json={"customers": rows})
    assert answer.status_code == 200, answer.text
    probabilities = [prediction["churn_probability"] for prediction in answer.json()["predictions"]]
    np.testing.assert_allclose(probabilities, expected["churn_probability"], rtol=0, atol=1e-9)


def test_csv_body_gets_the_csv_predict_writes(client, config, tmp_path):
    expected = cli_probabilities(config, SAMPLE, tmp_path)
    answer = client.post("/predict", content=TELCO_SAMPLE.read_bytes(), headers={"content-type": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content == (tmp_path / "cli.csv").read_bytes()
    assert len(expected) == 400


def test_invocations_speaks_mlflows_protocol(client, config, tmp_path):
    rows = customers(6)
    expected = cli_probabilities(config, pd.DataFrame(rows), tmp_path)["churn_probability"].to_numpy()
    frame = pd.DataFrame(rows)
    split = {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
    for body in (split, {"dataframe_records": rows}):
        answer = client.post("/invocations", json=body)
        assert answer.status_code == 200, answer.text
        predictions = np.asarray(answer.json()["predictions"])
        assert predictions.shape == (6, 2)
        np.testing.assert_allclose(predictions[:, 1], expected, rtol=0, atol=1e-9)
        np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_an_unseen_category_is_scored_with_a_warning_naming_column_and_value(client):
    rows = customers(2)
    rows[1]["Contract"] = "Ten year"
    answer = client.post("/predict", json={"customers": rows})
    assert answer.status_code == 200
    assert answer.json()["warnings"] == [
        "column Contract has 1 value(s) never seen in training (e.g. 'Ten year'); scored as no category",
    ]  # one value is not drift: the drift line needs 5 values and 0.5 % of a column


# bad input: 4xx naming what to fix, never a 500


@pytest.mark.parametrize(
    ("body", "status", "row", "field", "detail"),
    [
        (b"{not json", 400, None, None, "not valid JSON"),
        (b'{"rows": []}', 422, None, "rows", "unknown key 'rows' in the body; the body takes customers, explain"),
        (b'{"customer": []}', 422, None, "customer", "(did you mean customers?)"),
        (b'{"customers": [], "contributions": true}', 422, None, "contributions", "CSV answers only"),
        (b"[]", 422, None, "customers", '{"customers": [{...}, ...]}'),
        (b'{"customers": []}', 422, None, None, "at least one customer"),
        (b'{"customers": [1]}', 422, 0, None, "row 0 must be a JSON object"),
    ],
)
def test_malformed_bodies(client, body, status, row, field, detail):
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    payload = answer.json()
    assert detail in payload["detail"] and payload.get("row") == row and payload.get("field") == field
    assert payload["request_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"tenure": "abc"}, "tenure", "row 1 field tenure must be a number, got 'abc'"),
        ({"tenure": True}, "tenure", "row 1 field tenure must be a number, numeric text or null, got true"),
        ({"MonthlyCharges": [1, 2]}, "MonthlyCharges", "must be a number, numeric text or null, got [1,2]"),
        ({"Contract": {"a": 1}}, "Contract", "row 1 field Contract must be text, a number, true/false or null"),
    ],
)
def test_a_value_of_the_wrong_kind_is_422_naming_row_and_field(client, change, field, detail):
    rows = customers(3)
    rows[1] |= change
    answer = client.post("/predict", json={"customers": rows})
    assert answer.status_code == 422, answer.text
    assert answer.json()["row"] == 1 and answer.json()["field"] == field and detail in answer.json()["detail"]


def test_a_missing_feature_is_422_naming_row_and_field(client):
    rows = customers(3)
    del rows[2]["PaymentMethod"]
    answer = client.post("/invocations", json={"dataframe_records": rows})
    assert answer.status_code == 422
    assert (answer.json()["row"], answer.json()["field"]) == (2, "PaymentMethod")


def test_null_and_blank_are_missing_values_not_errors(client):
    rows = customers(2)
    rows[0] |= {"TotalCharges": None, "gender": None}
    rows[1] |= {"tenure": " "}
    assert client.post("/predict", json={"customers": rows}).status_code == 200


def test_too_many_rows_or_too_large_a_body_is_413(client):
    assert client.post("/predict", json={"customers": customers(51)}).status_code == 413  # serve.max_rows 50
    big = b'{"customers": [' + b" " * 300_000 + b"]}"  # serve.max_body_mb 0.25
    answer = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "serve.max_body_mb" in answer.json()["detail"]


def test_other_content_types_are_415_and_broken_csv_400_or_422(client):
    form = client.post("/predict", content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    not_text = client.post("/predict", content=b"\xff\xfe\x00garbage", headers={"content-type": "text/csv"})
    assert not_text.status_code == 400 and "not UTF-8" in not_text.json()["detail"]
    ragged = TELCO_SAMPLE.read_bytes().replace(b"\n", b",extra\n", 3)
    broken = client.post("/predict", content=ragged, headers={"content-type": "text/csv"})
    assert broken.status_code == 400 and "not a valid CSV" in broken.json()["detail"]
    lacking = client.post("/predict", content=b"customerID,tenure\nA,1\n", headers={"content-type": "text/csv"})
    assert lacking.status_code == 422 and "missing required column" in lacking.json()["detail"]


def test_an_internal_error_is_a_500_with_the_request_id_the_log_carries(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("churn.scoring.core.score", broken)  # the core every door scores through
    with caplog.at_level(logging.ERROR, logger="churn.service"):
        answer = client.post("/predict", json={"customers": customers(1)}, headers={"x-request-id": "trace-42"})
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error; report it with this request id", "request_id": "trace-42"}
    record = next(r for r in caplog.records if "request_id=trace-42" in r.getMessage() and r.exc_info)
    assert "boom" in str(record.exc_info[1])


# access, metrics, documentation


def test_a_token_guards_everything_but_the_probes_and_the_documentation_page(config, trained):
    with TestClient(create_app(config, token="s3cret")) as client:
        assert wait_for(lambda: client.get("/ready").status_code == 200)
        for path in ("/health", "/ping", "/version"):
            assert client.get(path).status_code == 200, path
        for path in ("/model", "/metrics", "/openapi.json"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401, path
            assert client.get(path, headers={"authorization": "Bearer s3cret"}).status_code == 200, path
        answer = client.post("/predict", json={"customers": customers(1)})
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        document = client.get("/openapi.json", headers={"authorization": "Bearer s3cret"}).json()
        assert document["paths"]["/predict"]["post"]["security"] == [{"bearer": []}]
        page = client.get("/docs").text  # holds no data: it asks for the token and sends it for the document
        assert "const required = true;" in page and 'request.headers["Authorization"] = "Bearer " + token' in page


def test_the_documentation_page_loads_swagger_ui_from_the_service_itself(client):
    page = client.get("/docs").text
    assert "const required = false;" in page and "/openapi.json" in page
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/docs/") for source in sources)  # no CDN
    for source in sources:
        answer = client.get(source)
        assert answer.status_code == 200 and len(answer.content) > 1000, source
    assert client.get("/docs/../config.yaml").status_code == 404
    assert client.get("/docs/redoc.standalone.js").status_code == 404  # only the listed files


def test_metrics_count_requests_rows_and_the_loaded_run(config, trained):
    with TestClient(create_app(config)) as client:  # metrics of its own: only this test's requests
        assert wait_for(lambda: client.get("/ready").status_code == 200)
        client.post("/predict", json={"customers": customers(7)})
        client.post("/predict", content=b"{", headers={"content-type": "application/json"})
        text = client.get("/metrics").text
    assert 'churn_requests_total{endpoint="/predict",status="200"} 1.0' in text
    assert 'churn_requests_total{endpoint="/predict",status="400"} 1.0' in text
    assert "churn_rows_scored_total 7.0" in text
    assert f'churn_model_info{{run_id="{trained.run_id}"}} 1.0' in text
    assert 'churn_model_reloads_total{result="success"} 1.0' in text
    assert 'churn_request_duration_seconds_bucket{endpoint="/predict",le="0.01"}' in text


def test_openapi_documents_every_feature_its_categories_and_every_error(client):
    document = client.get("/openapi.json").json()
    customer = document["components"]["schemas"]["Customer"]
    assert {"tenure", "Contract", "SeniorCitizen"} <= set(customer["required"])
    assert customer["properties"]["Contract"]["x-training-categories"] == ["Month-to-month", "One year", "Two year"]
    tenure_types = {option.get("type") for option in customer["properties"]["tenure"]["anyOf"]}
    assert tenure_types == {"number", "string", "null"}
    predict = document["paths"]["/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert {"200", "400", "401", "413", "415", "422", "500", "503"} <= set(predict["responses"])
    assert "/invocations" in document["paths"] and "/metrics" in document["paths"]
    assert client.get("/docs").status_code == 200


# models without a restart


def test_ready_is_503_until_a_model_exists_then_the_service_picks_it_up(write_config):
    config = load_config(write_config())
    with TestClient(create_app(config)) as client:
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json={"customers": customers(1)}).status_code == 503
        result = pipeline.train(config)
        assert wait_for(lambda: client.get("/ready").status_code == 200, seconds=5)
        assert client.post("/predict", json={"customers": customers(1)}).json()["run_id"] == result.run_id


def ready_run(client):
    answer = client.get("/ready")
    return answer.json().get("run_id") if answer.status_code == 200 else None


@pytest.mark.slow  # two trainings and a promote
def test_a_promote_switches_within_two_seconds_and_a_pinned_service_stays(own):
    config, first = own
    with TestClient(create_app(config)) as client, TestClient(create_app(config, run=first.run_id)) as pinned:
        assert wait_for(lambda: ready_run(client) == first.run_id and ready_run(pinned) == first.run_id)
        second = pipeline.train(config)
        started = time.monotonic()
        assert wait_for(lambda: ready_run(client) == second.run_id, seconds=5)
        assert time.monotonic() - started < 2.0
        runs.promote(config.paths.models_dir, first.run_id)  # the rollback
        assert wait_for(lambda: ready_run(client) == first.run_id, seconds=5)
        runs.promote(config.paths.models_dir, second.run_id)
        assert wait_for(lambda: ready_run(client) == second.run_id, seconds=5)
        assert ready_run(pinned) == first.run_id  # pinned: it never switched


def test_a_run_that_fails_its_hash_check_is_refused_and_the_old_one_keeps_serving(own, write_config, caplog):
    config, trained = own
    elsewhere = load_config(write_config(paths={"models_dir": "elsewhere", "predictions_dir": "p"}, name="other.yaml"))
    broken = pipeline.train(elsewhere)  # trained apart, damaged, then moved in: no race with the watcher
    (broken.run_dir / "scorer.json").write_text(json.dumps({"tampered": True}))
    shutil.copytree(broken.run_dir, config.paths.models_dir / broken.run_id)
    with TestClient(create_app(config)) as client, caplog.at_level(logging.ERROR, logger="churn.service"):
        assert wait_for(lambda: ready_run(client) == trained.run_id)
        # latest changed behind the registry's back (promote refuses a damaged run)
        (config.paths.models_dir / "latest").write_text(broken.run_id + "\n")
        assert wait_for(lambda: "refused run" in caplog.text, seconds=5)
        assert broken.run_id in caplog.text and "sha256 differs" in caplog.text
        answer = client.post("/predict", json={"customers": customers(1)})
        assert answer.status_code == 200 and answer.json()["run_id"] == trained.run_id
        assert 'churn_model_reloads_total{result="failure"} 1.0' in client.get("/metrics").text


def test_a_booby_trapped_model_is_refused_without_being_unpickled(own, tmp_path, caplog):
    config, trained = own
    marker = tmp_path / "marker"
    trap = config.paths.models_dir / "20990101T000000000Z-trap00"
    shutil.copytree(trained.run_dir, trap)
    (trap / "scorer.json").unlink()
    joblib.dump(BoobyTrap(marker), trap / "model.joblib")  # would write the marker if it were ever loaded
    metadata = json.loads((trap / "metadata.json").read_text()) | {"run_id": trap.name}
    for digest in (None, "0" * 64):  # no digest recorded, then a digest that does not match
        artefacts = {"model.joblib": digest} if digest else {}
        (trap / "metadata.json").write_text(json.dumps(metadata | {"artefacts": artefacts}))
        with TestClient(create_app(config, run=trap.name)) as client, caplog.at_level(logging.ERROR, "churn.service"):
            assert wait_for(lambda: "refused run" in caplog.text, seconds=5)
            assert client.get("/ready").status_code == 503
        caplog.clear()
    assert not marker.exists()


def test_an_unknown_path_or_method_is_answered_in_json_with_the_request_id(client):
    for answer in (client.get("/nowhere"), client.get("/predict"), client.put("/model")):
        assert answer.status_code in (404, 405), answer.text
        payload = answer.json()
        assert payload["detail"] and payload["request_id"] == answer.headers["x-request-id"]


def test_a_budget_contacts_the_highest_savings_as_predict_budget_does(client, config, tmp_path):
    rows = customers(40)
    answer = client.post("/predict", json={"customers": rows, "budget": 2})
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    frame = pd.DataFrame(rows)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    pipeline.predict(config, tmp_path / "rows.csv", tmp_path / "cli.csv", budget=2)
    cli = pd.read_csv(tmp_path / "cli.csv")
    assert (cli["expected_saving"] > 0).sum() > 2  # more customers worth contacting than the budget allows
    assert [p["contact"] for p in predictions] == cli["contact"].tolist() and cli["contact"].sum() == 2
    np.testing.assert_allclose([p["expected_saving"] for p in predictions], cli["expected_saving"], rtol=0, atol=1e-9)
    chosen = cli.loc[cli["contact"] == 1, "expected_saving"]
    assert chosen.min() >= cli.loc[cli["contact"] == 0, "expected_saving"].max()
    decision = config.decision
    expected = cli["churn_probability"] * decision.churn_cost * decision.offer_success_rate - decision.offer_cost
    np.testing.assert_allclose(cli["expected_saving"], expected, rtol=0, atol=1e-9)
    for bad in (0, "5", 2.5):
        refused = client.post("/predict", json={"customers": rows[:2], "budget": bad})
        assert refused.status_code == 422 and refused.json()["field"] == "budget"


def test_the_csv_door_takes_a_budget_as_predict_does(client, config, tmp_path):
    frame = pd.DataFrame(customers(40))
    frame.to_csv(tmp_path / "rows.csv", index=False)
    pipeline.predict(config, tmp_path / "rows.csv", tmp_path / "cli.csv", budget=3)
    answer = client.post("/predict?budget=3", content=(tmp_path / "rows.csv").read_bytes(),
                         headers={"content-type": "text/csv"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.content == (tmp_path / "cli.csv").read_bytes()  # byte for byte, budget columns included
    assert pd.read_csv(tmp_path / "cli.csv")["contact"].sum() == 3


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("?budget=abc", "query budget must be a whole number of contacts, at least 1"),
        ("?explian=3", "unknown query parameter 'explian' (did you mean explain?)"),
        ("?explain=3&explain=4", "query parameter explain is given 2 times; give it once"),
        ("?budget=2&budget=3", "query parameter budget is given 2 times"),
    ],
)
def test_unknown_repeated_or_bad_query_parameters_are_refused(client, query, detail):
    for body, kind in ((SAMPLE.head(3).to_csv(index=False).encode(), "text/csv"),
                       (json.dumps({"customers": customers(3)}).encode(), "application/json")):  # fmt: skip
        answer = client.post(f"/predict{query}", content=body, headers={"content-type": kind})
        assert answer.status_code == 422 and detail in answer.json()["detail"], (kind, answer.text)


def test_a_refused_request_adds_nothing_to_monitoring_or_the_metrics(config, trained):
    with TestClient(create_app(config)) as client:  # a window and metrics of its own
        assert wait_for(lambda: client.get("/ready").status_code == 200)
        refused = [
            client.post("/predict", json={"customers": customers(9), "budget": 0}),
            client.post("/predict", json={"customers": customers(9), "explain": 99}),
            client.post(
                "/predict?budget=x",
                content=SAMPLE.head(9).to_csv(index=False).encode(),
                headers={"content-type": "text/csv"},
            ),  # fmt: skip
        ]
        assert [answer.status_code for answer in refused] == [422, 422, 422]
        assert client.get("/monitor").status_code == 404  # nothing scored yet
        assert "churn_rows_scored_total 0.0" in client.get("/metrics").text
        client.post("/predict", json={"customers": customers(4), "budget": 2})
        assert client.get("/monitor").json()["rows"] == 4
        assert "churn_rows_scored_total 4.0" in client.get("/metrics").text
