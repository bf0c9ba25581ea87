"""The stage modules chained on the 400-row Telco sample kept under tests/data."""

import json

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE

from churn import pipeline, runs
from churn.compiling import unwrap
from churn.config import load_config
from churn.data_loader import load_training_data, split_data
from churn.model import load_model, predict_proba
from churn.scoring import score


@pytest.fixture
def config(write_config):
    return load_config(write_config())


@pytest.fixture
def trained(config):
    return pipeline.train(config)


def test_train_writes_a_complete_run_and_points_latest_at_it(config, trained):
    names = {p.name for p in trained.run_dir.iterdir()}
    assert {"metadata.json", "metrics.json", "model.joblib", "leaderboard.csv", "report.md"} <= names
    assert not [name for name in names if name.endswith(".tmp")]
    assert runs.read_latest(config.paths.models_dir) == trained.run_id
    metadata = json.loads((trained.run_dir / "metadata.json").read_text())
    assert metadata["training_data"]["rows_used"] == 400
    assert metadata["training_data"]["train_rows"] + metadata["training_data"]["test_rows"] == 400
    assert metadata["config"]["data"]["target"] == "Churn"
    assert metadata["schema"]["categories"]["Contract"] == ["Month-to-month", "One year", "Two year"]
    assert metadata["class_balance"]["positive"] == 105
    recorded = metadata["artefacts"]
    assert set(recorded) == {"model.joblib", "scorer.json", "metrics.json", "leaderboard.csv", "test_predictions.csv",
                             "threshold_curve.csv", "feature_effects.csv"}  # fmt: skip
    assert all(len(digest) == 64 for digest in recorded.values())
    assert runs.is_complete(trained.run_dir)
    metrics = json.loads((trained.run_dir / "metrics.json").read_text())
    assert 0.5 < metrics["roc_auc"] <= 1 and metrics["cv_folds"] == 3


def test_same_config_and_data_give_the_same_metrics(config, trained):
    again = pipeline.train(config)
    assert again.run_id != trained.run_id
    drop = {"train_seconds"}
    assert {k: v for k, v in again.metrics.items() if k not in drop} == {
        k: v for k, v in trained.metrics.items() if k not in drop
    }


def test_saved_model_takes_the_raw_file_and_equals_the_run_scorer(config, trained):
    reloaded = load_model(trained.run_dir, trained.metadata)
    raw = pd.read_csv(TELCO_SAMPLE)  # pandas' own types: SeniorCitizen as ints, TotalCharges as text
    scorer = pipeline.load_run(config, None).scorer
    np.testing.assert_allclose(predict_proba(reloaded, raw), score(scorer, raw).probabilities, rtol=0, atol=1e-12)
    assert reloaded.threshold == trained.metadata["threshold"] == scorer.threshold


def test_preprocessing_learns_only_from_training_rows(config, trained):
    data = load_training_data(TELCO_SAMPLE, config.data)
    X_train, X_test, _, _ = split_data(data.X, data.y, config.split)
    model = unwrap(load_model(trained.run_dir, trained.metadata))
    numeric = model.named_steps["preprocess"].named_transformers_["numeric"]
    learned = list(config.data.numeric_features)
    learned.remove("TotalCharges")  # filled with a constant, not learned
    np.testing.assert_allclose(numeric.named_steps["impute"].statistics_, X_train[learned].median())
    np.testing.assert_allclose(numeric.named_steps["scale"].mean_, X_train[learned].mean())
    # and the held-out rows would have moved it: the statistic is not the one over all rows
    assert not np.allclose(numeric.named_steps["scale"].mean_, data.X[learned].mean())
    assert len(X_test) == trained.metadata["training_data"]["test_rows"]


def test_predict_writes_one_row_per_input_row_in_order(config, trained, tmp_path):
    out = tmp_path / "p.csv"
    result = pipeline.predict(config, TELCO_SAMPLE, out)
    predictions = pd.read_csv(out)
    source = pd.read_csv(TELCO_SAMPLE)
    assert result.rows == len(source) == len(predictions)
    assert list(predictions.columns) == ["customerID", "churn_probability", "churn_prediction"]
    assert predictions["customerID"].tolist() == source["customerID"].tolist()


def test_evaluate_reports_training_metrics_on_a_labelled_file(config, trained):
    metrics = pipeline.evaluate(config, TELCO_SAMPLE)
    assert metrics["rows"] == 400
    assert metrics["run_id"] == trained.run_id
    assert set(trained.metrics) - {"cv_roc_auc_mean", "cv_roc_auc_std", "cv_folds", "train_seconds"} <= set(metrics)
