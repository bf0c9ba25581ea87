"""The stage modules chained on the 400-row Telco sample kept under tests/data."""

import json

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE

from churn import pipeline
from churn.config import load_config
from churn.data_loader import load_training_data, split_data
from churn.model import load_model, predict_proba, unwrap
from churn.scoring.scorers import score
from churn.store import runs


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
    assert metadata["schema_version"] == 2 and runs.read_record(trained.run_dir) == trained.record
    record = trained.record
    assert record.data.rows_used == 400
    assert record.split.train_rows + record.split.test_rows == 400
    assert record.config["data"]["target"] == "Churn"
    assert record.features.categories["Contract"] == ("Month-to-month", "One year", "Two year")
    assert record.data.class_balance.positive == 105
    assert set(record.artefacts) == {
        "model.joblib", "scorer.json", "metrics.json", "leaderboard.csv", "test_predictions.csv",
        "threshold_curve.csv", "test_explanations.csv", "reference.json", "training_ids.parquet",
    }  # fmt: skip
    assert all(len(digest) == 64 for digest in record.artefacts.values())
    assert runs.is_complete(trained.run_dir)
    metrics = json.loads((trained.run_dir / "metrics.json").read_text())  # the record's metrics, for other tools
    assert metrics == record.metrics.model_dump(mode="json")
    assert 0.5 < record.metrics.roc_auc <= 1 and record.selection.cv_folds == 3


@pytest.mark.slow  # a second training of the same config
def test_same_config_and_data_give_the_same_metrics(config, trained):
    again = pipeline.train(config)
    assert again.run_id != trained.run_id
    assert again.metrics == trained.metrics
    assert again.record.threshold == trained.record.threshold


def test_saved_model_takes_the_raw_file_and_equals_the_run_scorer(config, trained):
    reloaded = load_model(trained.run_dir, trained.record)
    raw = pd.read_csv(TELCO_SAMPLE)  # pandas' own types: SeniorCitizen as ints, TotalCharges as text
    scorer = pipeline.load_run(config, None).scorer
    np.testing.assert_allclose(predict_proba(reloaded, raw), score(scorer, raw).probabilities, rtol=0, atol=1e-12)
    assert reloaded.threshold == trained.record.threshold.value == scorer.threshold


def test_preprocessing_learns_only_from_training_rows(config, trained):
    data = load_training_data(TELCO_SAMPLE, config.data)
    X_train, X_test, _, _ = split_data(data.X, data.y, config.split)
    model = unwrap(load_model(trained.run_dir, trained.record))
    numeric = model.named_steps["preprocess"].named_transformers_["numeric"]
    learned = list(config.data.numeric_features)
    learned.remove("TotalCharges")  # filled with a constant, not learned
    np.testing.assert_allclose(numeric.named_steps["impute"].statistics_, X_train[learned].median())
    np.testing.assert_allclose(numeric.named_steps["scale"].mean_, X_train[learned].mean())
    # and the held-out rows would have moved it: the statistic is not the one over all rows
    assert not np.allclose(numeric.named_steps["scale"].mean_, data.X[learned].mean())
    assert len(X_test) == trained.record.split.test_rows


def test_predict_writes_one_row_per_input_row_in_order(config, trained, tmp_path):
    out = tmp_path / "p.csv"
    result = pipeline.predict(config, TELCO_SAMPLE, out)
    predictions = pd.read_csv(out)
    source = pd.read_csv(TELCO_SAMPLE)
    assert result.rows == len(source) == len(predictions)
    assert list(predictions.columns) == ["customerID", "churn_probability", "churn_prediction"]
    assert predictions["customerID"].tolist() == source["customerID"].tolist()


def test_evaluate_reports_training_metrics_on_a_labelled_file(config, trained):
    evaluation = pipeline.evaluate(config, TELCO_SAMPLE)
    assert evaluation.metrics.rows == 400 and evaluation.run_id == trained.run_id
    assert set(trained.metrics.model_dump()) - {"cv_roc_auc_mean", "cv_roc_auc_std"} == set(
        evaluation.metrics.model_dump()
    )
    assert evaluation.threshold == trained.record.threshold.value and evaluation.metrics.costs is not None


def test_churn_load_model_is_hash_checked_and_gives_predicts_numbers(config, trained, monkeypatch):
    import churn
    from churn.errors import ModelError

    monkeypatch.chdir(config.paths.models_dir.parent)
    model = churn.load_model("latest")
    frame = pd.read_csv(config.data.path)
    assert np.array_equal(model.predict_proba(frame)[:, 1], churn.load_model(trained.run_id).predict_proba(frame)[:, 1])
    assert churn.load_model(trained.run_dir, models_dir="elsewhere").threshold == trained.record.threshold.value
    with (trained.run_dir / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelError, match="sha256"):
        churn.load_model("latest")


def test_a_forest_fitted_on_two_cores_is_the_forest_of_one_and_saved_to_score_on_one():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from churn.training.stages import fit_on_cores

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = pd.Series((X["a"] + rng.normal(size=400) > 0).astype(int))

    def forest():
        return Pipeline([("clean", FunctionTransformer()), ("classifier", RandomForestClassifier(30, random_state=1))])

    one, two = fit_on_cores(forest(), X, y, 1), fit_on_cores(forest(), X, y, 2)
    assert np.array_equal(one.predict_proba(X), two.predict_proba(X))
    assert two.named_steps["classifier"].n_jobs is None
