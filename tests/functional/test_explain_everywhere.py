"""Every door gives the same reasons: `predict --explain` through CSV, Parquet and `--engine dask`
on a local cluster, the service's JSON and CSV answers, and the notebook function on the saved
`model.joblib`, for the same customers; and the CLI's errors for bad options."""

import time

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support import TELCO_SAMPLE, assert_clean_error, run_cli, without_horizons, write_quick_config

from churn.config import load_config
from churn.explain import explainers
from churn.service.app import create_app
from churn.store import runs

SAMPLE = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False).drop(columns="Churn")


def read_written(path):
    """What predict wrote, less the horizons (compared door by door in test_horizons_everywhere)."""
    if path.suffix == ".parquet":
        return without_horizons(pd.read_parquet(path))
    return without_horizons(pd.read_csv(path, dtype={"customerID": str}, keep_default_na=False, na_values=[""]))


def same_values(left, right):
    """Equal column for column: floats bit for bit (NaN as NaN), text as text (missing as None)."""
    assert list(left.columns) == list(right.columns)
    for column in left.columns:
        a, b = left[column], right[column]
        if b.dtype.kind == "f":
            assert np.array_equal(a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64"), equal_nan=True), column
        else:
            assert a.astype(object).where(a.notna(), None).tolist() == b.astype(object).where(b.notna(), None).tolist()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A gradient-boosting run trained by the CLI, its customers with blanks and an unseen category."""
    folder = tmp_path_factory.mktemp("explain")
    params = {"max_iter": 40, "max_depth": 3}
    config = write_quick_config(folder, {"model.name": "hist_gradient_boosting", "model.params": params,
                                         "predict.dask.workers": 2}, validation={})  # fmt: skip
    trained = run_cli("train", "-q", "-c", config, cwd=folder)
    assert trained.returncode == 0, trained.stderr
    customers = SAMPLE.copy()
    customers.loc[customers.index[::9], "TotalCharges"] = ""
    customers.loc[customers.index[::10], "InternetService"] = "Satellite"
    customers.to_csv(folder / "customers.csv", index=False)
    customers.to_parquet(folder / "customers.parquet")
    model_dir = runs.resolve_run(load_config(config).paths.models_dir, None)
    notebook = explainers.explain(joblib.load(model_dir / "model.joblib"), customers, top=3)
    notebook.insert(0, "customerID", customers["customerID"].to_numpy())
    return folder, config, customers, notebook


@pytest.mark.parametrize(
    ("source", "output"),
    [
        ("customers.csv", "why.csv"),
        pytest.param("customers.parquet", "why.parquet", marks=pytest.mark.slow),  # one CLI predict each
        pytest.param("customers.csv", "why.parquet", marks=pytest.mark.slow),
        pytest.param("customers.parquet", "why.csv", marks=pytest.mark.slow),
    ],
)
def test_predict_explain_equals_the_notebook_function(workspace, source, output):
    folder, config, _, notebook = workspace
    done = run_cli("predict", "-c", config, "--input", source, "--output", output, "--explain", "--contributions",
                   cwd=folder)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "InternetService" in done.stderr and "never seen in training" in done.stderr  # the warning stays
    same_values(read_written(folder / output), notebook)


@pytest.mark.slow  # a CLI predict with --explain 5
def test_predict_explain_k_without_contributions_has_k_reasons_only(workspace):
    folder, config, _, notebook = workspace
    done = run_cli("predict", "-q", "-c", config, "--input", "customers.csv", "--output", "five.csv", "--explain", "5",
                   cwd=folder)  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = read_written(folder / "five.csv")
    assert list(written.columns)[-3:] == ["reason_5", "reason_5_value", "reason_5_effect"]
    assert not any(c.startswith("contribution_") for c in written.columns)
    same_values(written[["customerID", "reason_1", "reason_1_value", "reason_1_effect"]],
                notebook[["customerID", "reason_1", "reason_1_value", "reason_1_effect"]])  # fmt: skip


@pytest.mark.slow
def test_dask_on_a_local_cluster_gives_the_same_explanations(workspace):
    folder, config, customers, notebook = workspace
    (folder / "parts").mkdir(exist_ok=True)
    for index, rows in enumerate(np.array_split(np.arange(len(customers)), 3)):
        customers.iloc[rows].to_parquet(folder / "parts" / f"{index}.parquet")
    done = run_cli("predict", "-q", "-c", config, "--input", "parts", "--output", "dask.csv", "--engine", "dask",
                   "--explain", "--contributions", cwd=folder, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    same_values(read_written(folder / "dask.csv"), notebook)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("0", "argument --explain: 0 must be at least 1"), ("-2", "argument --explain"),
     ("2.5", "argument --explain: '2.5' is not a whole number"), ("20", "--explain 20: this run has 19 input columns")],
)  # fmt: skip
def test_a_bad_explain_count_is_exit_2_naming_the_option_and_writes_nothing(workspace, value, fragment):
    folder, config, _, _ = workspace
    done = run_cli("predict", "-c", config, "--input", "customers.csv", "--output", "bad.csv", f"--explain={value}",
                   cwd=folder)  # fmt: skip
    assert_clean_error(done, fragment)
    assert not (folder / "bad.csv").exists()


@pytest.fixture(scope="module")
def client(workspace):
    _, config, _, _ = workspace
    with TestClient(create_app(load_config(config))) as served:
        deadline = time.monotonic() + 10  # bounded wait for the first model to load
        while served.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield served


def test_the_services_json_reasons_equal_the_clis(workspace, client):
    _, _, customers, notebook = workspace
    rows = customers.head(40)
    answer = client.post("/predict", json={"customers": rows.to_dict(orient="records"), "explain": 3})
    assert answer.status_code == 200, answer.text
    for k, prediction in enumerate(answer.json()["predictions"]):
        expected = notebook.iloc[k]
        reasons = [
            {"feature": expected[f"reason_{j}"], "value": _text(expected[f"reason_{j}_value"]),
             "effect": expected[f"reason_{j}_effect"]}
            for j in (1, 2, 3) if isinstance(expected[f"reason_{j}"], str)
        ]  # fmt: skip
        assert prediction["customerID"] == expected["customerID"] and prediction["reasons"] == reasons
        assert prediction["churn_probability"] == expected["churn_probability"]


def _text(value):
    return None if pd.isna(value) else value


def test_the_services_csv_answer_is_the_file_predict_explain_writes(workspace, client):
    folder, config, customers, _ = workspace
    body = customers.to_csv(index=False)
    answer = client.post("/predict?explain=3&contributions=true", content=body, headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    done = run_cli("predict", "-q", "-c", config, "--input", "customers.csv", "--output", "cli.csv", "--explain",
                   "--contributions", cwd=folder)  # fmt: skip
    assert done.returncode == 0
    assert answer.content == (folder / "cli.csv").read_bytes()


def test_the_model_endpoint_says_what_the_reasons_measure(workspace, client):
    _, _, _, notebook = workspace
    explanations = client.get("/model").json()["explanations"]
    assert explanations["available"] and explanations["margin"] == "log-odds"
    assert explanations["base"] == notebook["contribution_base"].iloc[0]


@pytest.mark.parametrize("value", [-1, 2.5, "3", True, 20, {"k": 3}])
def test_a_bad_explain_in_the_body_is_422_naming_it(workspace, client, value):
    _, _, customers, _ = workspace
    answer = client.post("/predict", json={"customers": customers.head(2).to_dict(orient="records"), "explain": value})
    assert answer.status_code == 422 and answer.json()["field"] == "explain", answer.text


def test_invocations_stays_mlflows_protocol(workspace, client):
    _, _, customers, notebook = workspace
    records = customers.head(3).to_dict(orient="records")
    plain = client.post("/invocations", json={"dataframe_records": records})
    asked = client.post("/invocations", json={"dataframe_records": records, "explain": 3})
    assert plain.status_code == asked.status_code == 200 and asked.json() == plain.json()  # no reasons there
    assert list(plain.json()) == ["predictions"]
    assert [row[1] for row in plain.json()["predictions"]] == notebook["churn_probability"].head(3).tolist()
