"""The train, predict and evaluate workflows: each wires the stage modules together."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn import data_loader, runs
from churn.config import Config, DataConfig
from churn.errors import DataError
from churn.evaluation import compute_metrics, cross_validate_roc_auc
from churn.files import sha256_file, write_json_atomic
from churn.model import (
    build_estimator,
    build_pipeline,
    load_model,
    predict_labels,
    predict_proba,
    save_model,
    train_model,
)
from churn.preprocessing import build_preprocessor

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("churn_probability", "churn_prediction")


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_dir: Path
    metrics: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class PredictResult:
    output: str
    rows: int
    predicted_positive: int
    unseen_categories: dict[str, int]


@dataclass(frozen=True)
class LoadedRun:
    run_dir: Path
    metadata: dict[str, Any]
    model: Any


def train(config: Config, data_path: Path | None = None) -> TrainResult:
    """Load, split, cross-validate, fit, evaluate on the held-out rows, save a run, move latest."""
    source = data_path or config.data.path
    started = time.perf_counter()
    # Built first so that a bad model parameter fails before any data is read.
    estimator = build_estimator(
        config.model.name, config.model.params, config.split.random_state, where=f"{config.source}: model"
    )
    data = data_loader.load_training_data(source, config.data)
    X_train, X_test, y_train, y_test = data_loader.split_data(data.X, data.y, config.split)
    logger.info("loaded %s: %d rows used, %d train / %d test", source, len(data.y), len(y_train), len(y_test))
    pipeline = build_pipeline(build_preprocessor(config.data, config.preprocessing), estimator)
    cv = cross_validate_roc_auc(pipeline, X_train, y_train, config.training.cv_folds, config.split.random_state)
    logger.info("%d-fold CV ROC AUC %.4f ± %.4f", cv["cv_folds"], cv["cv_roc_auc_mean"], cv["cv_roc_auc_std"])
    model = train_model(pipeline, X_train, y_train)
    metrics = compute_metrics(y_test, predict_proba(model, X_test), config.model.threshold) | cv
    metrics["train_seconds"] = round(time.perf_counter() - started, 3)
    run_id, run_dir = runs.create_run_dir(config.paths.models_dir)
    model_sha = save_model(model, run_dir / runs.MODEL)
    write_json_atomic(run_dir / runs.METRICS, metrics)
    metadata = _run_metadata(config, run_id, source, data, X_train, y_train, y_test, model_sha)
    write_json_atomic(run_dir / runs.METADATA, metadata)  # written last: it marks the run complete
    runs.point_latest(config.paths.models_dir, run_id)
    return TrainResult(run_id, run_dir, metrics, metadata)


def _run_metadata(
    config: Config,
    run_id: str,
    source: Path,
    data: data_loader.TrainingData,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    y_test: pd.Series,
    model_sha: str,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": "accepted",
        "model_name": config.model.name,
        "model_sha256": model_sha,
        "threshold": config.model.threshold,
        "config_path": str(config.source.resolve()),
        "config": config.raw,
        "training_data": {
            "path": str(source.resolve()),
            "sha256": sha256_file(source),
            "rows_read": data.rows_read,
            "rows_used": int(len(data.y)),
            "dropped_missing_target": data.dropped_missing_target,
            "dropped_duplicate_ids": data.dropped_duplicate_ids,
            "train_rows": int(len(y_train)),
            "test_rows": int(len(y_test)),
        },
        "class_balance": {
            "positive": int(data.y.sum()),
            "negative": int(len(data.y) - data.y.sum()),
            "positive_rate": float(data.y.mean()),
        },
        "schema": data_loader.describe_schema(X_train, config.data),
        "environment": runs.environment_info(),
    }


def load_run(config: Config, run: str | Path | None) -> LoadedRun:
    """The run folder (default: latest), its metadata, and its hash-checked model."""
    run_dir = runs.resolve_run(config.paths.models_dir, run)
    metadata = runs.read_metadata(run_dir)
    model = load_model(run_dir / runs.MODEL, metadata.get("model_sha256"))
    return LoadedRun(run_dir, metadata, model)


def default_output_path(config: Config, input_path: Path) -> Path:
    """data/predictions/<input stem>_predictions.csv (the stem without .csv, .csv.gz or .parquet)."""
    stem = input_path.name
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return config.paths.predictions_dir / f"{stem}_predictions.csv"


def predict(
    config: Config, input_path: Path, output: str | Path | None = None, run: str | Path | None = None
) -> PredictResult:
    """Score a file with a saved run and write id, churn_probability and churn_prediction per row."""
    destination = output if output is not None else default_output_path(config, input_path)
    _refuse_overwriting_input(input_path, destination)
    loaded = load_run(config, run)
    schema = loaded.metadata["schema"]
    frame = data_loader.read_table(input_path)
    X = data_loader.prepare_features(
        frame, tuple(schema["numeric_features"]), tuple(schema["categorical_features"]), input_path
    )
    unseen = data_loader.count_unseen_categories(X, schema["categories"])
    for column, count in unseen.items():
        logger.warning(
            "%s: column %s has %d value(s) never seen in training; encoded as no category", input_path, column, count
        )
    probabilities = predict_proba(loaded.model, X)
    predictions = _prediction_frame(frame, schema.get("id_column"), probabilities, loaded.metadata["threshold"])
    data_loader.write_table(predictions, destination)
    return PredictResult(str(destination), len(predictions), int(predictions["churn_prediction"].sum()), unseen)


def _refuse_overwriting_input(input_path: Path, destination: str | Path) -> None:
    if str(destination) != "-" and Path(destination).resolve() == input_path.resolve():
        raise DataError(f"{destination}: --output is the input file; choose another output path")


def _prediction_frame(
    frame: pd.DataFrame, id_column: str | None, probabilities: np.ndarray, threshold: float
) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    if id_column and id_column in frame.columns:
        columns[id_column] = frame[id_column].to_numpy()
    columns["churn_probability"] = probabilities
    columns["churn_prediction"] = predict_labels(probabilities, threshold)
    return pd.DataFrame(columns)


def evaluate(config: Config, input_path: Path, run: str | Path | None = None) -> dict[str, Any]:
    """Score a labelled file with a saved run and compute the training metrics on it."""
    loaded = load_run(config, run)
    schema = loaded.metadata["schema"]
    data_config = DataConfig(  # the run's own columns and label; ids are not needed to evaluate
        path=input_path,
        target=schema["target"],
        positive_label=loaded.metadata["config"]["data"]["positive_label"],
        numeric_features=tuple(schema["numeric_features"]),
        categorical_features=tuple(schema["categorical_features"]),
    )
    data = data_loader.load_training_data(input_path, data_config)
    metrics = compute_metrics(data.y, predict_proba(loaded.model, data.X), loaded.metadata["threshold"])
    return {"run_id": loaded.metadata["run_id"], "input": str(input_path)} | metrics
