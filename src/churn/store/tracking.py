"""Experiment tracking with MLflow (optional: `pip install -r requirements-tracking.txt`).

With `tracking.enabled`, every train is also one MLflow run named by the churn run id: the
flattened config and the selected model's parameters, the test and CV metrics, tags, the
report and tables as artefacts, one nested run per candidate setting with its fold metrics,
and the model itself (loadable with `mlflow.pyfunc.load_model`, servable with `mlflow models
serve`), registered as a new version whose alias `champion` moves only when the validation
gate passes. The local run folder is written first and stays the source of truth: when the
tracking store fails, training says so in one warning line and carries on.

This module is imported only when tracking is on, so the plain install never pays for MLflow.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churn.config import Config
from churn.errors import ConfigError
from churn.io import tables
from churn.store import runs
from churn.store.files import write_json_atomic
from churn.store.record import ExplanationsRecord, RunRecord, TestMetrics

if TYPE_CHECKING:
    from churn.training.selection import Comparison

logger = logging.getLogger(__name__)

INSTALL = "pip install -r requirements-tracking.txt"
CHAMPION = "champion"
RUN_TAG = "churn.run_id"  # on the MLflow run and on the model version: the churn run it came from
# Logged with the model, so that an environment rebuilt from it (not `--env-manager local`)
# gets the versions it was trained with; the churn package itself must be installed too.
MODEL_PACKAGES = ("scikit-learn", "pandas", "numpy", "pyarrow", "pydantic", "scipy")
EXAMPLE_ROWS = 5
# Types skops rebuilds for churn models beyond its defaults: the cleaning step, and the trees.
SKOPS_TRUSTED = frozenset(
    {
        "churn.cleaning.FeatureSpec",
        "churn.preprocessing.FeatureCleaner",
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


def tracking_uri(config: Config) -> str:
    """The configured URI, else a SQLite file beside the runs (MLflow 3's local default backend)."""
    return config.tracking.uri or f"sqlite:///{(config.paths.models_dir / 'mlflow.db').resolve()}"


def check_available(config: Config, asked_by: str | None = None) -> None:
    """Refuse, before any training, to track without MLflow; `asked_by`: the command-line flag
    that turned tracking on (None: the config did).

    Raises:
        ConfigError: tracking is on and MLflow is not installed.
    """
    if importlib.util.find_spec("mlflow") is None:
        if asked_by is not None:
            raise ConfigError(
                f"{asked_by} asks for MLflow tracking but MLflow is not installed; install it with "
                f"{INSTALL}, or train without {asked_by}"
            )
        raise ConfigError(
            f"{config.source}: tracking.enabled is true but MLflow is not installed; install it with {INSTALL}, "
            "or train with --no-track"
        )


@dataclass(frozen=True)
class TrainedRun:
    """What one training leaves to log: the saved run folder and record, the fitted model and
    what it was trained from, the comparison, and the report's global view of the contributions
    (`churn.training.insights`; None when no test row was explained)."""

    run_dir: Path
    record: RunRecord
    model: Any
    source: tables.Source
    comparison: Comparison
    contributions: pd.DataFrame | None


def log_training(config: Config, trained: TrainedRun) -> str | None:
    """Log a saved training to MLflow; return the MLflow run id, or None (with one warning
    line naming the URI and the cause) when the tracking store fails."""
    uri = tracking_uri(config)
    try:
        with _mlflow(uri) as mlflow:
            return _log(mlflow, config, trained)
    except Exception as error:  # noqa: BLE001 - a failing store must not fail a training saved locally
        run_id = trained.record.run_id
        logger.warning("tracking: run %s not logged to %s (%s); it is saved locally", run_id, uri, _cause(error))
        return None


def record_where(run_dir: Path, config: Config, mlflow_run_id: str) -> None:
    """Note in the run folder where MLflow logged it, so that `models promote` moves its champion
    whether or not the config that promotes enables tracking (`train --track`)."""
    where = {
        "uri": tracking_uri(config),
        "experiment": config.tracking.experiment,
        "registered_model": config.tracking.registered_model,
        "mlflow_run_id": mlflow_run_id,
    }
    write_json_atomic(run_dir / runs.TRACKING, where)


def move_champion(config: Config, run_id: str, where: Mapping[str, Any] | None = None) -> None:
    """Point the registered model's `champion` alias at the version of a churn run (promote), in
    the store the run was logged to (`where`, from its folder), else the config's.

    Warns instead of failing: `models promote` has already moved `latest`, the source of truth.
    """
    if where is not None:
        name, uri = where.get("registered_model"), str(where["uri"])
    else:
        name, uri = config.tracking.registered_model, tracking_uri(config)
    if name is None:
        return
    try:
        with _mlflow(uri) as mlflow:
            client = mlflow.MlflowClient()
            version = _version_of(client, name, run_id)
            if version is None:
                logger.warning(
                    "tracking: run %s has no version of model %s in %s; champion not moved", run_id, name, uri
                )
                return
            client.set_registered_model_alias(name, CHAMPION, version)
            logger.info("tracking: %s@%s is now version %s (run %s)", name, CHAMPION, version, run_id)
    except Exception as error:  # noqa: BLE001 - see above
        logger.warning("tracking: champion of %s not moved in %s (%s)", name, uri, _cause(error))


@contextlib.contextmanager
def _mlflow(uri: str) -> Iterator[Any]:
    # An unreachable server must fail in seconds, not after MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    import mlflow

    level = logging.getLogger("churn").getEffectiveLevel()
    for name in ("mlflow", "alembic"):  # their notices would drown train's own lines
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(previous)


def _log(mlflow: Any, config: Config, trained: TrainedRun) -> str:
    record = trained.record
    experiment = _experiment(mlflow, config)
    with mlflow.start_run(experiment_id=experiment, run_name=record.run_id) as parent:
        mlflow.log_params(_params(config, record))
        mlflow.log_metrics(_metrics(record.metrics, record.threshold.value, record.train_seconds))
        mlflow.set_tags(_tags(record))
        for path in _run_files(trained.run_dir):
            mlflow.log_artifact(str(path), artifact_path="churn_run")
        if trained.contributions is not None and record.explanations is not None:
            _log_global_contributions(mlflow, trained.contributions, record.explanations)
        _log_candidates(mlflow, experiment, trained.comparison, config.training.selection_metric)
        info = _log_model(mlflow, trained.model, record, trained.source)
        _register(mlflow, config, info.model_uri, record)
        logger.info(
            "tracking: logged run %s to %s (MLflow run %s)", record.run_id, tracking_uri(config), parent.info.run_id
        )
        return str(parent.info.run_id)


def _experiment(mlflow: Any, config: Config) -> str:
    found = mlflow.get_experiment_by_name(config.tracking.experiment)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if tracking_uri(config).startswith("sqlite:"):  # keep artefacts beside the runs, not in ./mlruns
        location = (config.paths.models_dir / "mlflow-artifacts").resolve().as_uri()
    return str(mlflow.create_experiment(config.tracking.experiment, artifact_location=location))


def _params(config: Config, record: RunRecord) -> dict[str, str]:
    params = runs.flatten(config.to_dict()) | runs.flatten(record.model.params, "selected_model.")
    params["selected_model.name"] = record.model.name
    return {key: str(value)[:6000] for key, value in params.items()}  # MLflow's limit on a value


def _metrics(metrics: TestMetrics, threshold: float, train_seconds: float) -> dict[str, float]:
    """Every test metric, the costs and the confusion matrix as numbers of their own."""
    values = metrics.model_dump()
    numbers = {key: float(value) for key, value in values.items() if isinstance(value, (int, float))}
    numbers |= {f"confusion_{cell}": float(count) for cell, count in values["confusion_matrix"].items()}
    numbers |= {key: float(value) for key, value in (values["costs"] or {}).items()}
    return numbers | {"threshold": threshold, "train_seconds": train_seconds}


def _tags(record: RunRecord) -> dict[str, str]:
    missed = record.validation.missed
    return {
        RUN_TAG: record.run_id,
        "churn.training_data_sha256": record.data.sha256,
        "churn.git_commit": record.environment.git_commit or "unknown",
        "churn.status": record.status,
        "churn.gate_misses": "; ".join(missed) if missed else "none",
    }


def _run_files(run_dir: Path) -> list[Path]:
    """The report, its plots, the leaderboard, the tables, metrics and metadata: the run folder
    less the model files (the model is logged as an MLflow model)."""
    model_files = {runs.MODEL, runs.SCORER, runs.TREES}
    return sorted(
        path
        for path in run_dir.iterdir()
        if path.is_file() and path.name not in model_files and not path.name.startswith(".")
    )


def _log_global_contributions(mlflow: Any, table: pd.DataFrame, explanations: ExplanationsRecord) -> None:
    """The report's global view: each input column's mean |contribution| on the explained test
    rows as a metric `mean_abs_contribution.<column>`, and the whole table (with the direction
    of each effect) as churn_run/global_contributions.json."""
    pairs = zip(table["column"], table["mean_abs_contribution"], strict=True)
    mlflow.log_metrics({f"mean_abs_contribution.{_metric_name(column)}": value for column, value in pairs})
    summary = {"margin": explanations.margin, "base": explanations.base, "rows": explanations.rows}
    mlflow.log_dict(summary | {"columns": table.to_dict(orient="records")}, "churn_run/global_contributions.json")


def _metric_name(column: str) -> str:
    """A column name as MLflow takes it in a metric's name (letters, digits, _ - . space /)."""
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in str(column))


def _log_candidates(mlflow: Any, experiment: str, comparison: Comparison, metric: str) -> None:
    selected = comparison.best[0]
    for score in comparison.tried:
        with mlflow.start_run(experiment_id=experiment, run_name=score.label, nested=True):
            mlflow.log_params({key: str(value) for key, value in score.setting.items()} | {"model": score.name})
            for name, values in score.fold_scores.items():
                for fold, value in enumerate(values, start=1):
                    mlflow.log_metric(f"fold_{name}", value, step=fold)
                mlflow.log_metric(f"cv_{name}_mean", score.mean(name))
                mlflow.log_metric(f"cv_{name}_std", score.std(name))
            chosen = score.name == selected.name and score.setting == selected.setting
            mlflow.set_tags({"churn.selection_metric": metric, "churn.selected": str(chosen).lower()})


def _log_model(mlflow: Any, model: Any, record: RunRecord, source: tables.Source) -> Any:
    example = _input_example(record, source)
    trusted = _skops_types(model)
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=_signature(mlflow, example, model),
        input_example=example,
        pyfunc_predict_fn="predict_proba",  # [P(stays), P(churns)] per row, as /invocations answers
        # skops, not pickle: loading it cannot run code, only rebuild the types listed here
        serialization_format="skops" if trusted is not None else "cloudpickle",
        skops_trusted_types=trusted,
        pip_requirements=[f"{name}=={importlib_metadata.version(name)}" for name in MODEL_PACKAGES],
    )


def _skops_types(model: Any) -> list[str] | None:
    """The types skops must be told to trust for this model, or None if any is not one of ours."""
    import skops.io

    needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    if not set(needed) <= SKOPS_TRUSTED:
        logger.warning("tracking: the model holds types skops does not know (%s); logged with cloudpickle", needed)
        return None
    return list(needed)


def _signature(mlflow: Any, example: pd.DataFrame, model: Any) -> Any:
    """Every feature column of any type: the model's first step cleans whatever arrives
    (numbers as text, 0/1 flags as ints or floats, nulls), so MLflow must not refuse it first."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

    inputs = Schema([ColSpec(type=AnyType(), name=column) for column in example.columns])
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1, model.predict_proba(example).shape[1]))])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _input_example(record: RunRecord, source: tables.Source) -> pd.DataFrame:
    """A few training rows as a client sends them: the feature columns, as pandas reads the file."""
    columns = list(record.features.columns)
    if isinstance(source, tables.SqlSource):  # the first chunk only: the table may be large
        chunks = tables.iter_table(source, columns, EXAMPLE_ROWS)
        try:
            return next(chunks).to_pandas()
        finally:
            chunks.close()
    if tables.table_format(source) == "parquet":
        return pd.read_parquet(source, columns=columns).head(EXAMPLE_ROWS)
    return pd.read_csv(source, usecols=columns, nrows=EXAMPLE_ROWS)[columns]


def _register(mlflow: Any, config: Config, model_uri: str, record: RunRecord) -> None:
    name = config.tracking.registered_model
    if name is None:
        return
    with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints its own notices here
        version = mlflow.register_model(model_uri, name, tags={RUN_TAG: record.run_id})
    moved = record.accepted
    if moved:
        mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, version.version)
    logger.info(
        "tracking: %s version %s registered%s", name, version.version, f", now {name}@{CHAMPION}" if moved else ""
    )


def _version_of(client: Any, name: str, run_id: str) -> str | None:
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.tags.get(RUN_TAG) == run_id:
            return str(version.version)
    return None


def _cause(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text[:300]}"
