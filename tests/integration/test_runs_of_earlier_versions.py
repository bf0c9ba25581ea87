"""Runs written by earlier churns, kept under tests/data/earlier_runs as they wrote them, still
load, score the same bytes, list, show and report: two of before the typed record (schema_version
1), and two of the main branch of 2026-12-02 (schema_version 2, thresholds chosen by the
out-of-fold cost grid, before the break-even rule and the scoring core)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from support import REPO, TELCO_SAMPLE, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.errors import ModelError
from churn.explain.explainers import Explain
from churn.store import runs

V1 = REPO / "tests" / "data" / "earlier_runs"
LINEAR, TREES = "20261201T144531441Z-184de1", "20261201T144535085Z-c26da7"
V2_LINEAR, V2_TREES = "20261202T145355351Z-20c1e6", "20261202T145356526Z-998943"


@pytest.fixture
def models(tmp_path):
    """A models folder holding copies of both version-1 runs, and a config pointing at it."""
    for run_id in (LINEAR, TREES, V2_LINEAR, V2_TREES):
        shutil.copytree(V1 / run_id, tmp_path / "models" / run_id)
    return load_config(write_quick_config(tmp_path, paths={"models_dir": "models", "predictions_dir": "out"}))


@pytest.mark.parametrize("run_id", [LINEAR, TREES])
def test_a_version_1_record_is_read_into_the_current_one(models, run_id):
    old = json.loads((V1 / run_id / "metadata.json").read_text())
    metrics = json.loads((V1 / run_id / "metrics.json").read_text())
    record = runs.read_record(models.paths.models_dir / run_id)
    assert "schema_version" not in old and record.schema_version == 2
    assert record.run_id == old["run_id"] and record.model.name == old["model_name"]
    assert record.threshold.value == old["threshold"] == metrics["threshold"]
    assert record.threshold.objective == old["threshold_choice"]["objective"]
    assert record.metrics.roc_auc == metrics["roc_auc"] and record.selection.cv_folds == metrics["cv_folds"]
    assert record.metrics.costs.expected_cost == metrics["expected_cost"]
    assert record.data.rows_used == old["training_data"]["rows_used"]
    assert record.split.test_rows == old["training_data"]["test_rows"]
    assert record.features.positive_label == old["config"]["data"]["positive_label"]
    assert record.artefacts == old["artefacts"] and runs.is_complete(models.paths.models_dir / run_id)


@pytest.mark.parametrize("run_id", [LINEAR, TREES])
def test_a_version_1_run_predicts_the_bytes_it_predicted_then(models, run_id, tmp_path):
    pipeline.predict(models, TELCO_SAMPLE, tmp_path / "p.csv", run=run_id)
    assert (tmp_path / "p.csv").read_bytes() == (V1 / f"{run_id}.predictions.csv").read_bytes()


def test_version_1_runs_list_promote_and_report(models):
    rows = {row["run_id"]: row for row in runs.list_runs(models.paths.models_dir)}
    assert {rows[LINEAR]["status"], rows[TREES]["status"]} == {"accepted"}
    assert rows[TREES]["model"] == "hist_gradient_boosting" and rows[TREES]["test_roc_auc"] > 0.5
    runs.promote(models.paths.models_dir, LINEAR)
    report = pipeline.rebuild_report(models, None)
    assert LINEAR in report.read_text() and (report.parent / "roc.png").is_file()


def test_a_version_1_run_with_changed_metrics_is_refused_naming_the_file(models):
    (models.paths.models_dir / LINEAR / "metrics.json").write_text("{}")
    assert not runs.is_complete(models.paths.models_dir / LINEAR)
    with pytest.raises(ModelError, match=r"metrics\.json: sha256 differs"):
        runs.read_record(models.paths.models_dir / LINEAR)


def test_a_version_1_linear_run_is_refused_explanations_with_retrain(models, tmp_path):
    with pytest.raises(ModelError, match="retrain it to explain"):
        pipeline.predict(models, TELCO_SAMPLE, tmp_path / "p.csv", run=LINEAR, explain=Explain(3))
    assert not (tmp_path / "p.csv").exists()


def test_a_version_1_tree_run_explains_from_the_trees_it_saved(models, tmp_path):
    pipeline.predict(models, TELCO_SAMPLE, tmp_path / "p.csv", run=TREES, explain=Explain(3, contributions=True))
    explained = pd.read_csv(tmp_path / "p.csv")
    before = pd.read_csv(V1 / f"{TREES}.predictions.csv")
    assert explained["churn_probability"].tolist() == before["churn_probability"].tolist()
    contributions = explained.filter(like="contribution_").sum(axis=1).to_numpy()
    margin = np.log(explained["churn_probability"] / (1 - explained["churn_probability"])).to_numpy()
    assert np.abs(contributions - margin).max() < 1e-9


def test_a_version_1_report_says_to_retrain_for_explanations(models):
    report = pipeline.rebuild_report(models, TREES).read_text()
    assert "trained before churn explained its predictions; retrain" in report
    assert not (models.paths.models_dir / TREES / "contributions.png").exists()


@pytest.mark.parametrize("run_id", [V2_LINEAR, V2_TREES])
def test_a_run_of_the_main_branch_before_the_scoring_core_predicts_the_same_bytes(models, run_id, tmp_path):
    record = runs.read_record(models.paths.models_dir / run_id)
    assert record.schema_version == 2 and record.threshold.objective == "min_cost"
    pipeline.predict(models, TELCO_SAMPLE, tmp_path / "p.csv", run=run_id)
    assert (tmp_path / "p.csv").read_bytes() == (V1 / f"{run_id}.predictions.csv").read_bytes()
    pipeline.predict(models, TELCO_SAMPLE, tmp_path / "b.csv", run=run_id, budget=5)
    budget = pd.read_csv(tmp_path / "b.csv")  # its own threshold still decides: contacts are predicted churners
    assert budget["contact"].sum() == 5 and (budget["churn_prediction"] >= budget["contact"]).all()


@pytest.mark.parametrize("run_id", [V2_LINEAR, V2_TREES])
def test_a_run_of_the_main_branch_before_the_scoring_core_explains_and_is_monitored(models, run_id, tmp_path):
    from churn.workflows import monitor

    pipeline.predict(models, TELCO_SAMPLE, tmp_path / "p.csv", run=run_id, explain=Explain(3, contributions=True))
    explained = pd.read_csv(tmp_path / "p.csv")
    contributions = explained.filter(like="contribution_").sum(axis=1).to_numpy()
    margin = np.log(explained["churn_probability"] / (1 - explained["churn_probability"])).to_numpy()
    assert np.abs(contributions - margin).max() < 1e-9
    figures = monitor.monitor(models, TELCO_SAMPLE, run=run_id, output=tmp_path / "monitor").report.to_json()
    assert figures["run_id"] == run_id and figures["rows"] == 400  # its reference.json read as the typed profile
