from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from support import BoobyTrap, fake_record

from churn.config import DataConfig
from churn.errors import ConfigError, ModelError
from churn.model import (
    ESTIMATORS,
    build_estimator,
    build_pipeline,
    load_model,
    predict_proba,
    save_model,
    train_model,
    with_threshold,
)
from churn.preprocessing import FeatureCleaner, build_preprocessor
from churn.scoring.scorers import predict_labels


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_build_estimator_builds_every_named_model_with_the_config_seed(name):
    estimator = build_estimator(name, {}, random_state=7)
    assert type(estimator) is ESTIMATORS[name]
    assert estimator.get_params()["random_state"] == 7


def test_build_estimator_keeps_an_explicit_random_state():
    assert build_estimator("random_forest", {"random_state": 1}, 7).random_state == 1


def test_build_estimator_rejects_unknown_name():
    with pytest.raises(ConfigError, match="'svm' is not a known model"):
        build_estimator("svm", {}, 0)


def test_build_estimator_rejects_a_parameter_the_estimator_does_not_accept():
    with pytest.raises(ConfigError, match="model.params: n_trees not accepted by RandomForestClassifier"):
        build_estimator("random_forest", {"n_trees": 5}, 0)


def test_build_estimator_rejects_a_bad_parameter_value_before_fitting():
    with pytest.raises(ConfigError, match="model.params: The 'max_iter' parameter of LogisticRegression"):
        build_estimator("logistic_regression", {"max_iter": "many"}, 0)


def tiny_pipeline():
    data = DataConfig(path=Path("."), target="y", positive_label=1, numeric_features=("a",), categorical_features=())
    preprocess = build_preprocessor(data.numeric_features, data.categorical_features)
    return build_pipeline(FeatureCleaner(("a",), ()), preprocess, LogisticRegression())


def tiny_data():
    X = pd.DataFrame({"a": ["0", "1", "2", "3", "4", "5"], "id": list("uvwxyz")})
    y = pd.Series([0, 0, 0, 1, 1, 1])
    return X, y


def test_train_and_predict_proba_give_probabilities_of_churn():
    X, y = tiny_data()
    model = train_model(tiny_pipeline(), X, y)
    probabilities = predict_proba(model, X)
    assert probabilities.shape == (6,)
    assert np.all(np.diff(probabilities) > 0)  # churn rises with a
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_predict_labels_applies_the_threshold_inclusively():
    assert predict_labels(np.array([0.2, 0.5, 0.7]), 0.5).tolist() == [0, 1, 1]


def test_the_saved_model_predicts_with_its_threshold_as_the_cli_does():
    X, y = tiny_data()
    fitted = train_model(tiny_pipeline(), X, y)
    probabilities = predict_proba(fitted, X)
    threshold = float(probabilities[2])  # a probability the model reaches exactly
    model = with_threshold(fitted, threshold)
    assert model.predict(X).tolist() == predict_labels(probabilities, threshold).tolist() == [0, 0, 1, 1, 1, 1]


def saved_run(tmp_path, model=None):
    X, y = tiny_data()
    model = model if model is not None else with_threshold(train_model(tiny_pipeline(), X, y), 0.5)
    return fake_record("r", {"model.joblib": save_model(model, tmp_path / "model.joblib")})


def test_save_and_load_round_trip_gives_identical_probabilities(tmp_path):
    X, _ = tiny_data()
    metadata = saved_run(tmp_path)
    loaded = load_model(tmp_path, metadata)
    original = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(predict_proba(loaded, X), predict_proba(original, X))


def test_load_model_refuses_a_file_changed_after_training(tmp_path):
    metadata = saved_run(tmp_path)
    with (tmp_path / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelError, match="changed after training"):
        load_model(tmp_path, metadata)


def test_load_model_refuses_a_missing_file_a_missing_digest_and_a_foreign_object(tmp_path):
    with pytest.raises(ModelError, match="missing, though metadata.json records it"):
        load_model(tmp_path, fake_record("r", {"model.joblib": "0" * 64}))
    saved_run(tmp_path)
    with pytest.raises(ModelError, match="records no sha256 for it"):
        load_model(tmp_path, fake_record("r", {}))
    metadata = saved_run(tmp_path, DummyClassifier())
    with pytest.raises(ModelError, match="not a churn model"):
        load_model(tmp_path, metadata)


@pytest.mark.parametrize("digest", [None, "0" * 64])
def test_a_booby_trapped_model_file_is_never_unpickled_without_a_matching_digest(tmp_path, digest):
    marker = tmp_path / "marker"
    joblib.dump(BoobyTrap(marker), tmp_path / "model.joblib")
    metadata = fake_record("r", {} if digest is None else {"model.joblib": digest})
    with pytest.raises(ModelError):
        load_model(tmp_path, metadata)
    assert not marker.exists()
