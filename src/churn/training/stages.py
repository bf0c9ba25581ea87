"""The stages of training that the train workflow chains: compare candidates, fit the winner,
score the test rows, and describe the run in its record.

Nothing that chooses the model or its threshold sees the test rows: the comparison and the
threshold use the training rows' out-of-fold predictions; the test rows are scored once, by
the final model, for the metrics and the report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from churn.cleaning import FeatureTable
from churn.codes import Coded
from churn.config import Config, DataConfig, DecisionConfig, PreprocessingConfig, SplitConfig, ValidationConfig
from churn.data_loader import TrainingData, describe_schema, split_data
from churn.io import tables
from churn.io.sql import SqlSource
from churn.model import build_estimator, build_pipeline, predict_proba, save_model, train_model, with_threshold
from churn.monitoring import profiles
from churn.parallel import usable_cores
from churn.preprocessing import FeatureCleaner, build_preprocessor
from churn.scoring.compiling import export_linear_tables, export_tree_tables, linear_tables
from churn.scoring.decisions import Money
from churn.store import runs
from churn.store.files import write_json_atomic
from churn.store.record import (
    ClassBalance,
    DataRecord,
    ExplanationsRecord,
    ModelRecord,
    RunRecord,
    SelectionRecord,
    SplitRecord,
    TestMetrics,
    ThresholdRecord,
    ValidationRecord,
)
from churn.survival.hazard import HazardModel
from churn.survival.horizons import SURVIVAL_MODEL, SURVIVAL_TABLES
from churn.training import insights, selection
from churn.training.evaluation import check_gate, compute_metrics, cost_summary, threshold_curve

if TYPE_CHECKING:
    from churn.survival.training import SurvivalFit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """The cleaned labelled table and its train/test split."""

    data: TrainingData
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    money: Money | None = None  # every row's, with per-customer costs

    def money_of(self, index: pd.Index) -> Money | None:
        """The per-customer money of these rows (None with constant costs)."""
        return self.money.take(index.to_numpy()) if self.money is not None else None

    def periods(self) -> tuple[tuple[str, str], tuple[str, str]] | None:
        """First and last time of the training rows and of the test rows (a time split only)."""
        times = self.data.times
        if times is None:
            return None
        return _period(times.loc[self.X_train.index]), _period(times.loc[self.X_test.index])


def _period(times: pd.Series) -> tuple[str, str]:
    def text(value: Any) -> str:
        return value.isoformat() if hasattr(value, "isoformat") else f"{value:g}"

    return text(times.min()), text(times.max())


def make_split(settings: SplitConfig, data: TrainingData, money: Money | None = None) -> Split:
    split = Split(data, *split_data(data.X, data.y, settings, data.times), money)
    logger.info("%d rows used: %d train / %d test", len(data.y), len(split.y_train), len(split.y_test))
    if (periods := split.periods()) is not None:
        logger.info(
            "time split on %s: training %s to %s, test %s to %s", settings.time_column, *periods[0], *periods[1]
        )
    return split


def pipeline_factory(data: DataConfig, options: PreprocessingConfig) -> selection.PipelineFactory:
    """Cleaning, preprocessing and a given classifier: the pipeline every candidate is fitted as."""

    def make(estimator: ClassifierMixin) -> Pipeline:
        cleaner = FeatureCleaner(
            data.numeric_features, data.categorical_features, data.max_unparsed_share, data.missing_values
        )
        preprocessor = build_preprocessor(
            data.numeric_features,
            data.categorical_features,
            options.numeric_impute,
            dict(options.fill_values),
            options.scale_numeric,
            options.min_category_count,
        )
        return build_pipeline(cleaner, preprocessor, estimator)

    return make


@dataclass(frozen=True)
class Selected:
    """What the comparison chose: the candidates ranked, the winner's threshold, the rows compared on."""

    comparison: selection.Comparison
    choice: selection.ThresholdChoice
    y_compared: pd.Series

    @property
    def best(self) -> selection.CandidateScore:
        return self.comparison.best[0]


def select_model(config: Config, split: Split) -> Selected:
    """Compare the candidates by cross-validation (on a sample of the training rows when there
    are many) and choose the threshold on the winner's out-of-fold predictions. (The whole config:
    the candidates come from `model` and `training`, the folds from `split`, the threshold from
    `model` and `decision`, the pipeline from `data` and `preprocessing`.)"""
    X_compared, y_compared = selection.selection_sample(
        split.X_train, split.y_train, config.training.selection_rows, config.split.random_state
    )
    time_ordered = config.split.method == "time"
    if time_ordered:  # a sample keeps the training rows' time order, which the forward folds need
        keep = np.sort(split.X_train.index.get_indexer(X_compared.index))
        X_compared, y_compared = split.X_train.iloc[keep], split.y_train.iloc[keep]
    if len(y_compared) < len(split.y_train):
        logger.info(
            "comparing candidates on a stratified sample of %s of the %s training rows",
            f"{len(y_compared):,}",
            f"{len(split.y_train):,}",
        )
    fixed = config.model.threshold if config.model.threshold != "auto" else 0.5
    make = pipeline_factory(config.data, config.preprocessing)
    comparison = selection.compare_candidates(config, make, X_compared, y_compared, float(fixed), time_ordered)
    validated = ~np.isnan(comparison.best[0].oof_probabilities)
    if not validated.all():  # forward-chaining folds never validate the earliest rows
        comparison, y_compared = selection.validated_only(comparison, validated), y_compared[validated]
    best = comparison.best[0]
    choice = selection.choose_threshold(
        y_compared, best.oof_probabilities, config.model.threshold, config.decision, split.money_of(y_compared.index)
    )
    logger.info("selected %s; threshold %.2f (%s)", best.name, choice.threshold, choice.objective)
    return Selected(comparison, choice, y_compared)


def fit_final(make_pipeline: selection.PipelineFactory, seed: int, split: Split, selected: Selected) -> Any:
    """The selected candidate fitted on every training row, with its threshold: the saved model."""
    best = selected.best
    started = time.perf_counter()
    logger.info("fitting %s on all %s training rows", best.name, f"{len(split.y_train):,}")
    estimator = build_estimator(best.name, best.params, seed)
    fitted = fit_on_cores(make_pipeline(estimator), split.X_train, split.y_train, usable_cores())
    logger.info("fitted in %.1f s", time.perf_counter() - started)
    return with_threshold(fitted, selected.choice.threshold)


def fit_on_cores(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, cores: int) -> Pipeline:
    """Fit on `cores` cores: OpenMP and BLAS limited to them (their default is every core of the
    machine, not the usable ones), and a forest's trees grown on as many threads, the same trees
    whatever the count (each tree's seed is drawn before any is grown). The saved forest scores
    on one thread, so that its sum of trees keeps one order."""
    classifier = pipeline.named_steps["classifier"]
    threaded = isinstance(classifier, RandomForestClassifier | ExtraTreesClassifier)
    if threaded:
        classifier.set_params(n_jobs=cores)
    with threadpool_limits(limits=cores):
        fitted = train_model(pipeline, X, y)
    if threaded:
        fitted.named_steps["classifier"].set_params(n_jobs=None)
    return fitted


def score_test_rows(
    decision: DecisionConfig, split: Split, model: Any, selected: Selected
) -> tuple[TestMetrics, np.ndarray]:
    """The final model's metrics on the test rows (and their probabilities, for the report)."""
    probabilities = predict_proba(model, split.X_test)
    threshold = selected.choice.threshold
    metrics = compute_metrics(split.y_test, probabilities, threshold)
    metrics.pop("threshold")  # the record keeps it in one place: record.threshold
    best = selected.best
    metrics |= {"cv_roc_auc_mean": best.mean("roc_auc"), "cv_roc_auc_std": best.std("roc_auc")}
    if decision.has_costs:
        metrics["costs"] = cost_summary(
            split.y_test, probabilities, threshold, decision, split.money_of(split.X_test.index)
        )
    return TestMetrics.model_validate(metrics), probabilities


@dataclass(frozen=True)
class Outcome:
    """The trained model and everything measured about it, before the run folder is written."""

    model: Any
    metrics: TestMetrics
    test_probabilities: np.ndarray
    missed: list[str]  # validation criteria the metrics miss


def judge(validation: ValidationConfig, model: Any, metrics: TestMetrics, probabilities: np.ndarray) -> Outcome:
    """The validation gate on the test metrics."""
    return Outcome(model, metrics, probabilities, check_gate(metrics.model_dump(), validation))


@dataclass(frozen=True)
class Explained:
    """The test rows explained for the report (None: the model cannot be explained here)."""

    table: pd.DataFrame | None
    record: ExplanationsRecord


def explain_test_rows(seed: int, split: Split, outcome: Outcome) -> Explained:
    ids = split.data.ids.loc[split.X_test.index] if split.data.ids is not None else None
    return Explained(*insights.explain_test_rows(outcome.model, split.X_test, outcome.test_probabilities, ids, seed))


@dataclass(frozen=True)
class Trained:
    """Everything a training measured and made, before its run folder is written."""

    split: Split
    selected: Selected
    outcome: Outcome
    explained: Explained
    survival: SurvivalFit | None = None


def write_run_files(folder: runs.RunFolder, trained: Trained, data: DataConfig, decision: DecisionConfig) -> None:
    """Everything the record will list: the model (and its tables for a linear one or shallow boosted trees), the
    metrics, and the tables the report is drawn from, so `report` can rebuild it from the folder."""
    split, selected, outcome, explained = trained.split, trained.selected, trained.outcome, trained.explained
    save_model(outcome.model, folder.path / runs.MODEL)
    scorer_tables = export_linear_tables(outcome.model)
    if scorer_tables is not None:
        write_json_atomic(folder.path / runs.SCORER, scorer_tables)
    if (tree_tables := export_tree_tables(outcome.model)) is not None:
        write_json_atomic(folder.path / runs.TREES, tree_tables)
    write_json_atomic(folder.path / runs.METRICS, outcome.metrics.model_dump(mode="json"))
    horizons = None  # the test rows' horizons as predict scores them: from each customer's present tenure
    if trained.survival is not None:
        horizons = trained.survival.model.predict_horizons(split.X_test).reset_index(drop=True)
    reference = reference_profile(data, split, outcome, horizons)
    write_json_atomic(folder.path / runs.REFERENCE, reference.model_dump(mode="json"))
    test = pd.DataFrame({"y_true": split.y_test.to_numpy(), "churn_probability": outcome.test_probabilities})
    if (money := split.money_of(split.X_test.index)) is not None:  # the report's saving curve reads them
        test["churn_cost"], test["offer_cost"] = money.churn_cost, money.offer_cost
        if money.value is not None:
            test["value"] = money.value
    if horizons is not None:
        test = test.join(horizons)
    compared = split.money_of(selected.y_compared.index)
    contents = {
        runs.LEADERBOARD: selection.leaderboard(selected.comparison.best),
        runs.TEST_PREDICTIONS: test,
        runs.THRESHOLD_CURVE: threshold_curve(selected.y_compared, selected.best.oof_probabilities, decision, compared),
    }
    if explained.table is not None:
        contents[runs.TEST_EXPLANATIONS] = explained.table
    if split.data.ids is not None:
        contents[runs.TRAINING_IDS] = pd.DataFrame({"id_hash": hash_ids(split.data.ids.loc[split.X_train.index])})
    if trained.survival is not None:
        contents |= write_survival_files(folder, trained.survival)
    for name, table in contents.items():
        tables.write_table(table, folder.path / name)


def write_survival_files(folder: runs.RunFolder, fit: SurvivalFit) -> dict[str, pd.DataFrame]:
    """The hazard model (and a linear one's lookup tables); the report's survival tables."""
    save_model(fit.model, folder.path / SURVIVAL_MODEL)
    survival_tables = export_hazard_tables(fit.model)
    if survival_tables is not None:
        write_json_atomic(folder.path / SURVIVAL_TABLES, survival_tables)
    return {runs.SURVIVAL_DECILES: fit.deciles, runs.SURVIVAL_CURVES: fit.curves}


def export_hazard_tables(model: HazardModel) -> dict[str, Any] | None:
    """A logistic hazard model as lookup tables for `churn.survival.horizons.LinearHazardScorer`:
    its feature part, and the intercept plus month term per month (None for trees)."""
    if not model.linear:
        return None
    tables = linear_tables(model.features_, model.classifier_.coef_[0][: model.width_], 0.0)
    if tables is None:
        return None
    return tables | {
        "kind": "discrete_time_logistic_hazard",
        "duration_column": model.duration_column,
        "horizons": list(model.horizons),
        "baseline": [float(b) for b in model.baseline_],
    }


def hash_ids(ids: pd.Series) -> np.ndarray:
    """64-bit hashes of ids as text (pandas' fixed-key SipHash): enough to find overlap, and no
    customer id is stored in the run folder."""
    return pd.util.hash_pandas_object(ids.astype("str").str.strip(), index=False).to_numpy()


def reference_profile(
    data: DataConfig, split: Split, outcome: Outcome, horizons: pd.DataFrame | None = None
) -> profiles.Reference:
    """What monitoring compares a batch with: the training rows' columns, the test rows' scores
    (and their churn within the last horizon)."""
    X = split.X_train
    features = FeatureTable(
        {c: X[c].to_numpy("float64") for c in data.numeric_features},
        {c: Coded.of(X[c]) for c in data.categorical_features},
        len(X),
    )
    categories = describe_schema(X, data).categories
    last = None if horizons is None else next(c for c in horizons.columns[::-1] if c.startswith("churn_within_"))
    return profiles.build_reference(
        features,
        categories,
        split.y_test.to_numpy(),
        outcome.test_probabilities,
        float(outcome.model.threshold),
        None if horizons is None or last is None else (last, horizons[last].to_numpy()),
    )


def _database_fields(source: tables.Source) -> dict[str, str | None]:
    """A database read's URL (without password), table and query, for the run's data record."""
    if not isinstance(source, SqlSource):
        return {}
    return {"url": source.database.shown, "table": source.table, "query": source.query}


def describe_run(
    config: Config, folder: runs.RunFolder, source: tables.Source, trained: Trained, train_seconds: float
) -> RunRecord:
    """The run's record, from every file already in its folder (their digests) and what training
    measured. (The whole config: the record keeps all of it.)"""
    split, selected, outcome = trained.split, trained.selected, trained.outcome
    data, best = split.data, selected.best
    positives = int(data.y.sum())
    return RunRecord(
        run_id=folder.run_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        status="rejected" if outcome.missed else "accepted",
        config_path=str(config.source.resolve()),
        config=config.to_dict(),
        data=DataRecord(
            path=str(source.resolve()) if isinstance(source, Path) else str(source),
            sha256=data.sha256,
            **_database_fields(source),
            rows_read=data.rows_read,
            rows_used=len(data.y),
            dropped_missing_target=data.dropped_missing_target,
            dropped_duplicate_ids=data.dropped_duplicate_ids,
            class_balance=ClassBalance(
                positive=positives, negative=len(data.y) - positives, positive_rate=float(data.y.mean())
            ),
            missing_values={column: int(count) for column, count in data.X.isna().sum().items()},
        ),
        split=SplitRecord(
            method=config.split.method,
            time_column=config.split.time_column,
            test_size=config.split.test_size,
            random_state=config.split.random_state,
            train_rows=len(split.y_train),
            test_rows=len(split.y_test),
            train_period=periods[0] if (periods := split.periods()) else None,
            test_period=periods[1] if periods else None,
        ),
        features=describe_schema(split.X_train, config.data),
        selection=SelectionRecord(
            metric=config.training.selection_metric,
            cv_folds=config.training.cv_folds,
            compared_on_rows=len(selected.y_compared),
            training_rows=len(split.y_train),
            sampled=len(selected.y_compared) < len(split.y_train),
        ),
        model=ModelRecord(name=best.name, params={k: v for k, v in best.params.items() if _jsonable(v)}),
        threshold=ThresholdRecord(
            value=float(outcome.model.threshold),  # the very number the saved model holds
            **{k: v for k, v in asdict(selected.choice).items() if k != "threshold"},
        ),
        decision=config.decision,
        metrics=outcome.metrics,
        validation=ValidationRecord(criteria=dict(config.validation.criteria), missed=outcome.missed),
        train_seconds=train_seconds,
        artefacts=folder.digests(),
        environment=runs.environment_info(),
        explanations=trained.explained.record,
        survival=trained.survival.record if trained.survival is not None else None,
    )


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))
