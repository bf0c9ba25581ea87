"""Build the classifier from the config, train it, score with it, save and load it.

The saved artefact is the whole fitted `Pipeline` (preprocessor + classifier), so a user can
`joblib.load` it in a notebook and call `predict_proba` on a DataFrame.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from churn.errors import ConfigError, ModelError
from churn.files import atomic_path, sha256_file

ESTIMATORS: Mapping[str, type[BaseEstimator]] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "gradient_boosting": GradientBoostingClassifier,
}


def build_estimator(name: str, params: Mapping[str, Any], random_state: int, where: str = "model") -> ClassifierMixin:
    """Instantiate a named classifier with the config's parameters.

    The config's random_state is passed on unless the params set their own, so a run repeats.

    Raises:
        ConfigError: the name is unknown or a parameter is not one the estimator accepts.
    """
    if name not in ESTIMATORS:
        raise ConfigError(f"{where}.name {name!r} is not a known model; use one of {', '.join(ESTIMATORS)}")
    estimator_class = ESTIMATORS[name]
    accepted = set(inspect.signature(estimator_class).parameters)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(
            f"{where}.params: {', '.join(unknown)} not accepted by {estimator_class.__name__}; "
            f"valid parameters are {', '.join(sorted(accepted))}"
        )
    settings = dict(params)
    if "random_state" in accepted:
        settings.setdefault("random_state", random_state)
    estimator = estimator_class(**settings)
    _check_params(estimator, where)
    return estimator


def _check_params(estimator: BaseEstimator, where: str) -> None:
    # scikit-learn validates values only at fit time; its (private) validator surfaces a bad value
    # now, before minutes of cross-validation, as a config error rather than a crash mid-run.
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except InvalidParameterError as exc:
        raise ConfigError(f"{where}.params: {exc}") from None


def build_pipeline(preprocessor: ColumnTransformer, estimator: ClassifierMixin) -> Pipeline:
    """Chain preprocessing and classifier into the one object that is fitted and saved."""
    return Pipeline([("preprocess", preprocessor), ("classifier", estimator)])


def train_model(pipeline: Pipeline, X_train: pd.DataFrame, y_train: pd.Series) -> Pipeline:
    """Fit the pipeline on training rows only and return it."""
    return pipeline.fit(X_train, y_train)


def predict_proba(model: Pipeline, X: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (churn) for each row."""
    return np.asarray(model.predict_proba(X)[:, 1], dtype="float64")


def save_model(model: Pipeline, path: Path) -> str:
    """Write the fitted pipeline atomically; return the file's sha256 for the metadata."""
    with atomic_path(path) as tmp:
        joblib.dump(model, tmp, compress=3)
    return sha256_file(path)


def load_model(path: Path, expected_sha256: str | None) -> Pipeline:
    """Load a fitted pipeline after checking its sha256 against the one recorded at training.

    The hash is checked before unpickling: a joblib file runs code when loaded.

    Raises:
        ModelError: the file is missing, changed after training, or not a fitted pipeline.
    """
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; train a model first (python main.py train)")
    if expected_sha256 is not None and sha256_file(path) != expected_sha256:
        raise ModelError(
            f"{path}: sha256 differs from the one recorded at training; the file changed after training, "
            "so it is not loaded. Retrain, or restore the original file"
        )
    model = joblib.load(path)
    if not isinstance(model, Pipeline):
        raise ModelError(f"{path}: does not hold a fitted scikit-learn Pipeline; retrain the model")
    return model
