"""Build the classifier from the config, train it, score with it, save and load it.

The saved artefact is self-contained: a `FixedThresholdClassifier` (holding the chosen
decision threshold) around the fitted `Pipeline` of cleaning, preprocessing and classifier.
A user can `joblib.load` it in a notebook and call `predict_proba` or `predict` on a table
as pandas reads it; loading needs only scikit-learn and the churn package.
"""

from __future__ import annotations

import inspect
import io
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
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline

from churn.errors import ConfigError, ModelError
from churn.preprocessing import FeatureCleaner
from churn.store import runs
from churn.store.files import atomic_path, sha256_file
from churn.store.record import RunRecord
from churn.store.upgrade import upgrade_model

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
    # scikit-learn validates parameter values only at fit time and has no public way to do it
    # sooner; its estimators' own `_validate_params` surfaces a bad value now, before minutes of
    # cross-validation, as a config error rather than a crash mid-run. Its InvalidParameterError
    # is both a ValueError and a TypeError.
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}.params: {exc}") from None


def build_pipeline(cleaner: FeatureCleaner, preprocessor: ColumnTransformer, estimator: ClassifierMixin) -> Pipeline:
    """Chain cleaning, preprocessing and classifier into the pipeline that is fitted and saved."""
    return Pipeline([("clean", cleaner), ("preprocess", preprocessor), ("classifier", estimator)])


def train_model(pipeline: Pipeline, X_train: pd.DataFrame, y_train: pd.Series) -> Pipeline:
    """Fit the pipeline on training rows only and return it."""
    return pipeline.fit(X_train, y_train)


def with_threshold(fitted: Pipeline, threshold: float) -> FixedThresholdClassifier:
    """The saved model: the fitted pipeline with its decision threshold, so that `predict`
    gives the CLI's `churn_prediction` (1 where the churn probability reaches the threshold)."""
    return FixedThresholdClassifier(fitted, threshold=float(threshold), response_method="predict_proba")


def predict_proba(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (churn) for each row."""
    return np.asarray(model.predict_proba(X)[:, 1], dtype="float64")


def save_model(model: FixedThresholdClassifier, path: Path) -> str:
    """Write the model atomically; return the file's sha256 for the metadata."""
    with atomic_path(path) as tmp:
        joblib.dump(model, tmp, compress=3)
    return sha256_file(path)


def load_model(run_dir: Path, record: RunRecord) -> FixedThresholdClassifier:
    """Load a run's saved model from the very bytes whose sha256 matched the recorded one.

    A joblib file runs code when it is loaded, so nothing is unpickled unless it is verified.

    Raises:
        ModelError: no digest is recorded, the file is missing or changed after training, or
            it does not hold a churn model.
    """
    payload = runs.read_artefact(run_dir, runs.MODEL, record)
    model = upgrade_model(joblib.load(io.BytesIO(payload)))
    try:
        unwrap(model)
    except ModelError as error:
        raise ModelError(f"{run_dir / runs.MODEL}: {error}") from None
    return model


def unwrap(model: Any) -> Pipeline:
    """The fitted pipeline inside a saved model.

    Raises:
        ModelError: the object is not a churn model (a threshold classifier around a pipeline
            whose first step cleans), e.g. one saved by an earlier version of churn.
    """
    pipeline = getattr(model, "estimator_", getattr(model, "estimator", None))
    if (
        not isinstance(model, FixedThresholdClassifier)
        or not isinstance(pipeline, Pipeline)
        or list(pipeline.named_steps)[:1] != ["clean"]
        or not hasattr(pipeline.named_steps["clean"], "spec_")
    ):
        raise ModelError(
            "the saved model is not a churn model with its cleaning step and threshold "
            "(it may come from an earlier version of churn); retrain it"
        )
    return pipeline
