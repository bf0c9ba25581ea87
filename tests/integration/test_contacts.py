"""Money per customer at every door: a run whose cost of churn is each customer's
MonthlyCharges x 12 gives the same expected_saving and contact through predict, the notebook's
`churn.decisions`, the service (JSON and CSV) and Dask; the budget ranks by saving, not by
probability; the contact list, the holdout and the campaign, end to end."""

import io
import json
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support import DELETE, TELCO_SAMPLE, assert_clean_error, run_cli, without_horizons, write_quick_config

import churn
from churn import pipeline
from churn.config import load_config
from churn.scoring import experiment
from churn.scoring.core import ContactPlan
from churn.service.app import create_app

VALUE = {"decision.churn_cost": DELETE, "decision.value_column": "MonthlyCharges", "decision.value_months": 12,
         "survival.duration_column": "tenure"}  # fmt: skip
SAMPLE = pd.read_csv(TELCO_SAMPLE)


@pytest.fixture(scope="module")
def valued(tmp_path_factory):
    """A trained run with per-customer value, and its config (only read by these tests)."""
    folder = tmp_path_factory.mktemp("valued")
    config = load_config(write_quick_config(folder, VALUE))
    pipeline.train(config)
    return folder, config


def cli(config, folder, *args):
    return run_cli("-c", config.source, *args, cwd=folder)


def predicted(config, tmp_path, name="out.csv", plan=None):
    result = pipeline.predict(config, TELCO_SAMPLE, tmp_path / name, budget=plan)
    return result, pd.read_csv(tmp_path / name)


def test_every_door_gives_the_same_saving_and_contact(valued, tmp_path):
    folder, config = valued
    _, ours = predicted(config, tmp_path)
    assert without_horizons(ours).columns.tolist()[-2:] == ["expected_saving", "contact"]
    months = 12 - ours["expected_months_12m"]  # revenue at risk: the value of the months not expected to be kept
    np.testing.assert_allclose(ours["revenue_at_risk_12m"], SAMPLE["MonthlyCharges"] * months, rtol=0, atol=1e-9)
    expected = ours["churn_probability"] * SAMPLE["MonthlyCharges"] * 12 * 0.3 - 50
    np.testing.assert_allclose(ours["expected_saving"], expected, rtol=0, atol=1e-9)
    assert (ours["contact"] == (ours["expected_saving"] > 0)).all()
    notebook = churn.decisions(SAMPLE.drop(columns="Churn"), models_dir=config.paths.models_dir)
    np.testing.assert_array_equal(notebook["expected_saving"], ours["expected_saving"])
    np.testing.assert_array_equal(notebook["contact"], ours["contact"])
    with TestClient(create_app(config)) as client:
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        body = {"customers": SAMPLE.drop(columns="Churn").head(50).to_dict(orient="records")}
        answer = client.post("/predict", json=body).json()["predictions"]
        csv = client.post("/predict", content=TELCO_SAMPLE.read_bytes(), headers={"content-type": "text/csv"})
    assert [row["expected_saving"] for row in answer] == ours["expected_saving"].head(50).tolist()
    assert [row["contact"] for row in answer] == ours["contact"].head(50).tolist()
    served = pd.read_csv(io.BytesIO(csv.content))
    pd.testing.assert_frame_equal(served[ours.columns], ours)


@pytest.mark.slow  # a local Dask cluster starts
def test_dask_gives_the_same_saving_and_contact(valued, tmp_path):
    from churn.scoring import distributed

    _, config = valued
    ours = predicted(config, tmp_path)[1]
    distributed.predict(config, TELCO_SAMPLE, tmp_path / "dask", None, None)
    parts = pd.read_parquet(tmp_path / "dask")
    np.testing.assert_array_equal(parts["expected_saving"], ours["expected_saving"])
    np.testing.assert_array_equal(parts["contact"], ours["contact"])


def test_the_budget_takes_the_highest_savings_which_differ_from_the_highest_probabilities(valued, tmp_path):
    _, config = valued
    result, ours = predicted(config, tmp_path, plan=40)
    chosen = set(ours.index[ours["contact"] == 1])
    assert result.contacts.contacted == len(chosen) == 40
    assert chosen == set(ours["expected_saving"].nlargest(40).index)
    assert chosen != set(ours["churn_probability"].nlargest(40).index)


def test_the_contact_list_holds_only_the_chosen_sorted_with_reasons_in_points(valued, tmp_path):
    _, config = valued
    result, listed = predicted(config, tmp_path, "list.csv", ContactPlan(25, only=True))
    assert len(listed) == 25 and listed["contact"].eq(1).all()
    assert listed["expected_saving"].is_monotonic_decreasing
    assert listed.columns.tolist()[:5] == [
        "customerID",
        "churn_probability",
        "expected_saving",
        "contact",
        "MonthlyCharges",
    ]
    assert listed["reason_1"].str.fullmatch(r".+ is .+: \+\d+\.\d points of churn probability").all()
    assert result.contacts.chosen.saving == pytest.approx(listed["expected_saving"].sum())


def test_the_holdout_is_seeded_recorded_and_measured_by_campaign(valued, tmp_path):
    folder, config = valued
    plan = ContactPlan(None, 0.3, 11, only=True)
    result, listed = predicted(config, tmp_path, "campaign.csv", plan)
    again = predicted(config, tmp_path, "again.csv", plan)[1]
    pd.testing.assert_frame_equal(listed, again)
    assert set(listed["group"]) == {"contact", "holdout"}
    assert (listed["contact"] == (listed["group"] == "contact")).all()
    assert result.contacts.chosen.held_out == (listed["group"] == "holdout").sum()
    assert result.contacts.detectable_fall is not None
    held = listed["group"].eq("holdout").to_numpy()
    deciles = experiment.saving_deciles(listed["expected_saving"].to_numpy())
    assert max(abs(held[deciles == d].mean() - held.mean()) for d in range(10)) <= 0.1  # 10 to 20 a decile here
    outcomes = tmp_path / "outcomes.parquet"  # a CRM's export; CSV is read the same way
    rng = np.random.default_rng(0)
    churned = rng.random(len(listed)) < np.where(held, 0.6, 0.3)
    frame = pd.DataFrame({"customerID": listed["customerID"], "Churn": np.where(churned, "Yes", "No")})
    frame.to_parquet(outcomes, index=False)
    contacts = ("campaign", "--contacts", tmp_path / "campaign.csv")
    done = cli(config, folder, *contacts, "--outcomes", outcomes, "--output", tmp_path / "c")
    assert done.returncode == 0, done.stderr
    figures = json.loads((tmp_path / "c" / "campaign.json").read_text())
    assert figures["groups"]["holdout"]["customers"] == held.sum()
    assert figures["churn_fall"]["low"] < figures["churn_fall"]["estimate"] < figures["churn_fall"]["high"]
    assert "money" in figures and (tmp_path / "c" / "campaign.html").read_text().startswith("<!DOCTYPE html>")
    assert "offer_success_rate" in done.stdout


@pytest.mark.slow  # a contact list, then campaign five times
def test_campaign_refuses_outcomes_that_do_not_match_the_list(valued, tmp_path):
    folder, config = valued
    predicted(config, tmp_path, "campaign.csv", ContactPlan(None, 0.3, 1, only=True))
    listed = pd.read_csv(tmp_path / "campaign.csv")
    rows = pd.DataFrame({"customerID": listed["customerID"], "Churn": "No"})
    cases = {
        "missing.csv": (rows.iloc[1:], "1 customer(s) are not in"),
        "extra.csv": (pd.concat([rows, pd.DataFrame({"customerID": ["nobody-1"], "Churn": ["Yes"]})]), "nobody-1"),
    }
    contacts = ("campaign", "--contacts", tmp_path / "campaign.csv")
    for name, (frame, fragment) in cases.items():
        frame.to_csv(tmp_path / name, index=False)
        output = tmp_path / name.replace(".csv", "")
        done = cli(config, folder, *contacts, "--outcomes", tmp_path / name, "--output", output)
        assert_clean_error(done, fragment)
        assert not output.exists()
    contacted = listed["group"] == "contact"
    listed[contacted].to_csv(tmp_path / "one_group.csv", index=False)
    rows[contacted].to_csv(tmp_path / "contacted.csv", index=False)
    one_group = ("campaign", "--contacts", tmp_path / "one_group.csv")
    done = cli(config, folder, *one_group, "--outcomes", tmp_path / "contacted.csv")
    assert_clean_error(done, "the holdout group is empty")


def test_a_missing_value_is_an_error_naming_the_row_and_the_old_output_stays(valued, tmp_path):
    folder, config = valued
    frame = SAMPLE.drop(columns="Churn").astype({"MonthlyCharges": "object"})
    frame.loc[7, "MonthlyCharges"] = ""
    frame.to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "out.csv").write_text("old\n")
    done = cli(config, folder, "predict", "--input", tmp_path / "bad.csv", "--output", tmp_path / "out.csv")
    assert_clean_error(
        done, "decision.value_column MonthlyCharges is missing at data row 8", frame.loc[7, "customerID"]
    )
    assert (tmp_path / "out.csv").read_text() == "old\n"


def test_with_constant_costs_the_budget_keeps_to_the_predicted_churners(write_config, tmp_path):
    config = load_config(write_config())
    pipeline.train(config)
    result, ours = predicted(config, tmp_path, plan=10_000)
    assert (ours["contact"] == ours["churn_prediction"]).all()  # auto threshold = break-even: one decision
    assert result.contacts.contacted == ours["churn_prediction"].sum()


def test_evaluate_costs_each_customer_and_monitor_runs_without_the_money(valued, tmp_path):
    _, config = valued
    evaluation = pipeline.evaluate(config, TELCO_SAMPLE)
    p = predicted(config, tmp_path)[1]
    worth = SAMPLE["MonthlyCharges"] * 12
    churned = (SAMPLE["Churn"] == "Yes").to_numpy()
    contact = p["contact"].to_numpy() == 1
    by_hand = 50 * contact.sum() + (worth * churned * np.where(contact, 0.7, 1.0)).sum()
    assert evaluation.metrics.costs.expected_cost == pytest.approx(by_hand)
    assert evaluation.metrics.costs.cost_contact_nobody == pytest.approx((worth * churned).sum())
    monitored = pipeline.monitor(config, TELCO_SAMPLE, output=tmp_path / "monitoring")
    figures = monitored.report.to_json()
    assert "expected_cost" not in figures["estimated"] and "roc_auc" in figures["estimated"]


def test_contact_options_that_cannot_apply_are_refused_with_one_line(valued, tmp_path):
    folder, config = valued
    predict = ("predict", "--input", TELCO_SAMPLE, "--output", tmp_path / "out.csv")
    assert_clean_error(cli(config, folder, *predict, "--seed", "3"), "--seed draws the --holdout")
    assert_clean_error(cli(config, folder, *predict, "--holdout", "1.5"), "above 0 and below 1")
    dask = ("--engine", "dask", "--holdout", "0.2")
    assert_clean_error(cli(config, folder, *predict, *dask), "--holdout is not available with --engine dask")
    assert not (tmp_path / "out.csv").exists()
