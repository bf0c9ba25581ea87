"""Churn within 3, 6 and 12 months at every door: predict, the notebook (`churn.horizons` and
the saved `survival.joblib`), the service (JSON with "horizons": true, and CSV) and Dask give the
same numbers for the same customers, for a logistic hazard model (lookup tables) and a tree one
(the saved model); a missing tenure has no horizon anywhere; the horizon reasons add up to the
logistic hazard's log-odds; monitor compares churn within 12 months then and now; the run records and reports the
survival figures; a run without a survival model says so at each door."""

import io
import json
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support import SHIPPED_HORIZONS, TELCO_SAMPLE, run_cli, write_quick_config

import churn
from churn import pipeline
from churn.cleaning import FeatureSpec, clean_features
from churn.config import load_config
from churn.errors import ConfigError, ModelError
from churn.explain.explainers import Explain, LinearExplainer
from churn.service.app import create_app
from churn.survival.horizons import LinearHazardScorer

SAMPLE = pd.read_csv(TELCO_SAMPLE)
CUSTOMERS = SAMPLE.drop(columns="Churn").assign(tenure=SAMPLE["tenure"].astype("str"))
CUSTOMERS.loc[[3, 7], "tenure"] = ["", "unknown"]  # no present tenure: no horizon (unknown: a missing value)
KINDS = ["logistic_regression", "hist_gradient_boosting"]
LINEAR_ONLY = pytest.mark.parametrize("run", ["logistic_regression"], indirect=True)  # a door, not a kind


@pytest.fixture(scope="module", params=KINDS)
def run(request, tmp_path_factory):
    """A run whose hazard model is this kind, and its config (only read by these tests)."""
    folder = tmp_path_factory.mktemp(request.param)
    changes = {"survival.models": [request.param], "data.missing_values": ["unknown"]}
    config = load_config(write_quick_config(folder, changes))
    trained = pipeline.train(config)
    (folder / "customers.csv").write_text(CUSTOMERS.to_csv(index=False))
    return folder, config, trained


def served(config, body=None, csv=None):
    with TestClient(create_app(config)) as client:
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        info = client.get("/model").json()
        if csv is not None:
            return info, client.post("/predict", content=csv, headers={"content-type": "text/csv"})
        return info, client.post("/predict", json=body)


def test_every_door_gives_the_same_horizons(run, tmp_path):
    folder, config, trained = run
    assert trained.record.survival.model == config.survival.models[0]
    pipeline.predict(config, folder / "customers.csv", tmp_path / "out.csv")
    ours = pd.read_csv(tmp_path / "out.csv")
    assert ours.columns.tolist()[-4:] == SHIPPED_HORIZONS
    assert ours.loc[[3, 7], SHIPPED_HORIZONS].isna().all().all() and ours.drop(index=[3, 7]).notna().all().all()
    known = ours.drop(index=[3, 7])
    assert (known["churn_within_3m"] <= known["churn_within_6m"]).all()
    assert (known["churn_within_6m"] <= known["churn_within_12m"]).all()
    assert ((known["expected_months_12m"] > 0) & (known["expected_months_12m"] <= 12)).all()
    models_dir = config.paths.models_dir
    notebook = churn.horizons(CUSTOMERS, models_dir=models_dir)
    saved = churn.load_survival(models_dir=models_dir).predict_horizons(CUSTOMERS)
    for column in SHIPPED_HORIZONS:
        np.testing.assert_array_equal(notebook[column], ours[column])
        np.testing.assert_allclose(saved[column], ours[column], rtol=0, atol=1e-12)  # the tables against the model
    body = {"customers": CUSTOMERS.head(20).astype(object).where(CUSTOMERS.head(20).notna(), None).to_dict("records"),
            "horizons": True}  # fmt: skip
    info, answer = served(config, body)
    assert info["survival"]["columns"] == SHIPPED_HORIZONS and info["survival"]["horizons"] == [3, 6, 12]
    assert answer.status_code == 200, answer.text
    for column in SHIPPED_HORIZONS:
        sent = [row[column] for row in answer.json()["predictions"]]
        expected = ours[column].head(20)
        assert sent == [None if np.isnan(v) else v for v in expected], column
    _, csv = served(config, csv=(folder / "customers.csv").read_bytes())
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(csv.content)), ours)


@LINEAR_ONLY
def test_the_json_door_gives_horizons_only_when_asked_and_refuses_a_bad_flag(run):
    _, config, _ = run
    rows = SAMPLE.drop(columns="Churn").head(3).to_dict("records")
    _, plain = served(config, {"customers": rows})
    assert "churn_within_12m" not in plain.json()["predictions"][0]
    _, bad = served(config, {"customers": rows, "horizons": "yes"})
    assert bad.status_code == 422 and '"horizons" must be true or false' in bad.json()["detail"]


@LINEAR_ONLY
def test_the_run_records_and_reports_its_survival_figures(run):
    _, _, trained = run
    survival = trained.record.survival
    assert survival.duration_column == "tenure" and "TotalCharges" in survival.left_out
    assert survival.compared == [] and "the one kind configured" in (trained.run_dir / "report.md").read_text()
    assert "tenure" not in survival.features and "TotalCharges" not in survival.features
    metrics = survival.metrics
    assert 0.5 < metrics.harrell_c <= 1 and 0 < metrics.ibs < metrics.kaplan_meier_ibs  # better than no covariates
    report = (trained.run_dir / "report.md").read_text()
    assert "## Time to churn (test rows)" in report and f"{metrics.harrell_c:.4f}" in report
    deciles = pd.read_csv(trained.run_dir / "survival_deciles.csv")
    assert deciles["customers"].sum() == metrics.rows and len(deciles) == 10


def test_a_run_without_a_survival_model_says_so_at_each_door(tmp_path):
    config = load_config(write_quick_config(tmp_path, {"survival.duration_column": None}))
    trained = pipeline.train(config)
    assert trained.record.survival is None and "survival.joblib" not in trained.record.artefacts
    pipeline.predict(config, TELCO_SAMPLE, tmp_path / "out.csv")
    assert pd.read_csv(tmp_path / "out.csv").columns.tolist() == ["customerID", "churn_probability", "churn_prediction"]
    with pytest.raises(ConfigError, match="has no survival model"):
        churn.horizons(CUSTOMERS, models_dir=config.paths.models_dir)
    with pytest.raises(ModelError, match="has no survival model"):
        churn.load_survival(models_dir=config.paths.models_dir)
    info, answer = served(config, {"customers": SAMPLE.drop(columns="Churn").head(2).to_dict("records"),
                                   "horizons": True})  # fmt: skip
    assert info["survival"] is None
    assert answer.status_code == 422 and "has no survival model" in answer.json()["detail"]


def test_a_bad_survival_config_is_one_line_naming_the_key(tmp_path):
    cases = {
        "survival.duration_column": ("Contract", "survival.duration_column 'Contract' is not in data.numeric_features"),
        "survival.leave_out": ({"Churn": "x"}, "survival.leave_out names 'Churn', which is not a feature"),
        "survival.horizons": ([12, 3], "survival.horizons must list each horizon once, shortest first"),
    }
    for key, (value, message) in cases.items():
        path = write_quick_config(tmp_path, {key: value}, name=f"{key}.yaml")
        result = run_cli("train", "-c", path, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.slow  # a local Dask cluster starts
def test_dask_gives_the_same_horizons(run, tmp_path):
    from churn.scoring import distributed

    folder, config, _ = run
    pipeline.predict(config, folder / "customers.csv", tmp_path / "out.csv")
    ours = pd.read_csv(tmp_path / "out.csv")
    distributed.predict(config, folder / "customers.csv", tmp_path / "dask", None, None)
    parts = pd.read_parquet(tmp_path / "dask")
    for column in SHIPPED_HORIZONS:
        np.testing.assert_array_equal(parts[column], ours[column])


@LINEAR_ONLY
def test_monitor_compares_churn_within_the_last_horizon_then_and_now(run, tmp_path):
    folder, config, trained = run
    reference = json.loads((trained.run_dir / "reference.json").read_text())["horizon"]
    test_rows = pd.read_csv(trained.run_dir / "test_predictions.csv")
    assert reference["column"] == "churn_within_12m"
    assert reference["mean"] == pytest.approx(test_rows["churn_within_12m"].mean(), abs=1e-12)
    newcomers = SAMPLE.assign(Contract="Month-to-month")  # everyone on the riskiest contract
    newcomers.to_csv(tmp_path / "new.csv", index=False)
    report = pipeline.monitor(config, tmp_path / "new.csv", output=tmp_path / "watch").report
    scored = churn.horizons(newcomers.drop(columns="Churn"), models_dir=config.paths.models_dir)
    assert report.horizon.now == pytest.approx(scored["churn_within_12m"].mean(), abs=1e-12)
    assert report.horizon.then == reference["mean"] and report.horizon.change > 0
    written = json.loads((tmp_path / "watch" / "monitor.json").read_text())["horizon"]
    assert written["rows_now"] == len(SAMPLE)


def test_the_horizon_reasons_add_up_to_the_hazard_models_log_odds(run, tmp_path):
    folder, config, trained = run
    pipeline.predict(config, folder / "customers.csv", tmp_path / "why.csv", explain=Explain(3))
    written = pd.read_csv(tmp_path / "why.csv")
    if trained.record.survival.model != "logistic_regression":  # the month interacts with the features in trees
        assert not [c for c in written.columns if c.startswith("horizon_reason")]
        return
    tables = json.loads((trained.run_dir / "survival.json").read_text())
    scorer = LinearHazardScorer(tables)
    explainer = LinearExplainer(scorer.margin)
    features = clean_features(CUSTOMERS, FeatureSpec.from_dict(tables["features"])).features
    contributions = explainer.contributions(features)
    model = churn.load_survival(models_dir=config.paths.models_dir)
    margins = model.margins(CUSTOMERS)  # the saved model's own log-odds, less the month's baseline
    np.testing.assert_allclose(contributions.sum(axis=1) + explainer.base, margins, rtol=0, atol=1e-9)
    largest = contributions.max(axis=1)
    pushed = largest > 0
    np.testing.assert_allclose(written.loc[pushed, "horizon_reason_1_effect"], largest[pushed], rtol=0, atol=1e-12)
    names = np.asarray(explainer.columns)[contributions.argmax(axis=1)]
    assert written.loc[pushed, "horizon_reason_1"].tolist() == names[pushed].tolist()
    assert "tenure" not in explainer.columns and "TotalCharges" not in explainer.columns


def test_the_json_door_gives_the_horizon_reasons_predict_writes(run, tmp_path):
    folder, config, trained = run
    pipeline.predict(config, folder / "customers.csv", tmp_path / "why.csv", explain=Explain(2))
    written = pd.read_csv(tmp_path / "why.csv", keep_default_na=False, na_values=[""])
    rows = CUSTOMERS.head(10)
    body = {"customers": rows.astype(object).where(rows.notna(), None).to_dict("records"), "horizons": True,
            "explain": 2}  # fmt: skip
    _, answer = served(config, body)
    predictions = answer.json()["predictions"]
    if trained.record.survival.model != "logistic_regression":
        assert all("horizon_reasons" not in p for p in predictions)
        return
    for row, prediction in enumerate(predictions):
        line = written.loc[row]
        expected = [{"feature": line[f"horizon_reason_{k}"], "value": line[f"horizon_reason_{k}_value"],
                     "effect": line[f"horizon_reason_{k}_effect"]}
                    for k in (1, 2) if isinstance(line[f"horizon_reason_{k}"], str)]  # fmt: skip
        assert prediction["horizon_reasons"] == expected
