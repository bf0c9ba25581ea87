"""The train workflow: `python main.py train`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.config import Config
from churn.data_loader import TrainingData, load_training_data
from churn.errors import ConfigError
from churn.io.sql import Database, SqlSource
from churn.io.tables import Source
from churn.progress import Steps
from churn.scoring.decisions import Costs, Money, Rows
from churn.store import runs, tracking
from churn.store.record import RunRecord, TestMetrics
from churn.survival.training import train_survival
from churn.training import insights, selection, stages
from churn.training.report import write_report

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    record: RunRecord
    leaderboard: pd.DataFrame

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def metrics(self) -> TestMetrics:
        return self.record.metrics

    @property
    def gate_missed(self) -> list[str]:
        return list(self.record.validation.missed)


def train(config: Config, data_path: Source | None = None) -> TrainResult:
    """Compare candidates by CV on the training rows, refit the best, pick its threshold on
    out-of-fold predictions, evaluate once on the test rows, gate, and save a reported run.

    `latest` moves to the new run only when it passes the validation gate.
    """
    source = data_path or training_source(config)
    steps = Steps()
    _check_before_training(config)
    seed = config.split.random_state
    with steps.step(f"loading {source}"):
        data = load_training_data(source, config.data, config.split.time_column, config.decision.value_columns)
        split = stages.make_split(config.split, data, customer_money(config, data, source))
    with steps.step("comparing candidates"):
        selected = stages.select_model(config, split)
    with steps.step("fitting the selected model on every training row"):
        make = stages.pipeline_factory(config.data, config.preprocessing)
        model = stages.fit_final(make, seed, split, selected)
    with steps.step(f"scoring the {len(split.y_test):,} test rows"):
        outcome = stages.judge(
            config.validation, model, *stages.score_test_rows(config.decision, split, model, selected)
        )
    with steps.step("explaining test rows for the report"):
        explained = stages.explain_test_rows(seed, split, outcome)
    fitted_survival = None
    if config.survival.enabled:
        with steps.step("fitting the survival model"):
            fitted_survival = train_survival(config, split)
    trained = stages.Trained(split, selected, outcome, explained, fitted_survival)
    with runs.creating_run(config.paths.models_dir) as folder:
        with steps.step("writing the run folder"):
            stages.write_run_files(folder, trained, config.data, config.decision)
            record = stages.describe_run(config, folder, source, trained, steps.total())
        with steps.step("drawing the report"):
            write_report(folder.path, record)
        folder.finish(record)  # written last: it marks the run complete
        if record.accepted:
            runs.point_latest(config.paths.models_dir, record.run_id)
    result = TrainResult(folder.path, record, selection.leaderboard(selected.comparison.best))
    if config.tracking.enabled:  # after the local run folder, the source of truth, is complete
        with steps.step("logging the run to MLflow"):
            logged = tracking.TrainedRun(
                result.run_dir, record, model, source, selected.comparison, global_contributions(result.run_dir, record)
            )
            mlflow_run_id = tracking.log_training(config, logged)
            if mlflow_run_id is not None:
                tracking.record_where(result.run_dir, config, mlflow_run_id)
    return result


def customer_money(config: Config, data: TrainingData, source: Source) -> Money | None:
    """Every training row's money with per-customer costs, checked before any fit (None: constant costs).

    Raises:
        DataError: a value or offer cost is missing, not a number or negative (row and id named).
    """
    costs = Costs.of(config.decision)
    if costs is None or not costs.per_customer:
        return None
    ids = data.ids.to_numpy() if data.ids is not None else None
    return costs.money(data.money, len(data.y), Rows(str(source), 0, ids))


def training_source(config: Config) -> Source:
    """What the config says to train on: data.source's table or query, else data.path."""
    database = config.data.source
    if database is not None and (database.table or database.query) is not None:
        return SqlSource(Database(database.url, database.password_env), database.table, database.query)
    if config.data.path is None:
        raise ConfigError(
            f"{config.source}: data.source names no table or query; add data.source.table or pass "
            "--data URL --table NAME"
        )
    return config.data.path


def _check_before_training(config: Config) -> None:
    """Fail in seconds, not after minutes of training: tracking without MLflow, a bad model,
    parameter or value."""
    if config.tracking.enabled:
        tracking.check_available(config)
    selection.build_candidates(config)


def global_contributions(run_dir: Path, record: RunRecord) -> pd.DataFrame | None:
    """The report's global view of the contributions, from the run's explained test rows."""
    if record.explanations is None or not record.explanations.rows:
        return None
    explained = insights.read_explanations(run_dir / runs.TEST_EXPLANATIONS)
    return insights.global_contributions(explained, set(record.features.numeric_features))
