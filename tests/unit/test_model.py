import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from churn.errors import ConfigError, ModelError
from churn.model import (
    ESTIMATORS,
    build_estimator,
    load_model,
    predict_proba,
    save_model,
    train_model,
)
from churn.scoring import predict_labels


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
    return Pipeline([("identity", FunctionTransformer()), ("classifier", LogisticRegression())])


def tiny_data():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
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


def test_save_and_load_round_trip_gives_identical_probabilities(tmp_path):
    X, y = tiny_data()
    model = train_model(tiny_pipeline(), X, y)
    sha = save_model(model, tmp_path / "model.joblib")
    loaded = load_model(tmp_path / "model.joblib", sha)
    np.testing.assert_array_equal(predict_proba(loaded, X), predict_proba(model, X))


def test_load_model_refuses_a_file_changed_after_training(tmp_path):
    X, y = tiny_data()
    sha = save_model(train_model(tiny_pipeline(), X, y), tmp_path / "model.joblib")
    with (tmp_path / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelError, match="changed after training"):
        load_model(tmp_path / "model.joblib", sha)


def test_load_model_reports_missing_file_and_wrong_object(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "none.joblib", None)
    sha = save_model(DummyClassifier(), tmp_path / "dummy.joblib")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="not .*fitted scikit-learn Pipeline"):
        load_model(tmp_path / "dummy.joblib", sha)
