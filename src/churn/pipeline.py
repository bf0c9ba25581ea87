"""The train, predict and evaluate workflows: each wires the stage modules together."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churn import data_loader, runs, tables
from churn.config import Config, DataConfig, DecisionConfig
from churn.errors import DataError, ModelError
from churn.files import sha256_file, write_json_atomic
from churn.scoring import Scorer, load_scorer, score

if TYPE_CHECKING:
    from churn.selection import CandidateScore, Comparison, ThresholdChoice

# Modules that import scikit-learn or matplotlib (selection, evaluation, model, preprocessing,
# compiling, report) are imported inside the workflows that need them: `predict` with an
# exported scorer then starts in well under a second instead of about two.

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_dir: Path
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    leaderboard: pd.DataFrame

    @property
    def gate_missed(self) -> list[str]:
        return list(self.metadata["validation"]["missed"])


@dataclass(frozen=True)
class PredictResult:
    output: str
    rows: int
    predicted_positive: int
    unseen_categories: dict[str, int]
    quality: dict[str, Any]


@dataclass(frozen=True)
class LoadedRun:
    """A complete run ready to score: its folder, metadata and hash-checked scorer."""

    run_dir: Path
    metadata: dict[str, Any]
    scorer: Scorer

    @property
    def run_id(self) -> str:
        return str(self.metadata["run_id"])


@dataclass(frozen=True)
class _Split:
    """The cleaned labelled table and its stratified train/test split."""

    data: data_loader.TrainingData
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


@dataclass(frozen=True)
class _Fitted:
    """What model selection and the final fit produced, before anything is saved."""

    comparison: Comparison
    choice: ThresholdChoice
    model: Any  # the saved artefact: FixedThresholdClassifier around the fitted pipeline
    test_probabilities: np.ndarray
    metrics: dict[str, Any]
    y_compared: pd.Series  # labels of the rows compared on (all training rows, or a sample)

    @property
    def best(self) -> CandidateScore:
        return self.comparison.best[0]


def train(config: Config, data_path: Path | None = None) -> TrainResult:
    """Compare candidates by CV on the training rows, refit the best, pick its threshold on
    out-of-fold predictions, evaluate once on the test rows, gate, and save a reported run.

    `latest` moves to the new run only when it passes the validation gate.
    """
    from churn import selection

    source = data_path or config.data.path
    started = time.perf_counter()
    if config.tracking.enabled:
        from churn import tracking

        tracking.check_available(config)  # before minutes of training, not after
    selection.build_candidates(config)  # a bad model, parameter or value fails before any data is read
    data = data_loader.load_training_data(source, config.data)
    split = _Split(data, *data_loader.split_data(data.X, data.y, config.split))
    logger.info(
        "loaded %s: %d rows used, %d train / %d test", source, len(data.y), len(split.y_train), len(split.y_test)
    )
    fitted = _select_and_fit(config, split)
    fitted.metrics["train_seconds"] = round(time.perf_counter() - started, 3)
    result = _save_run(config, source, split, fitted)
    if config.tracking.enabled:  # after the local run folder, the source of truth, is complete
        tracking.log_training(config, result, fitted.comparison, fitted.model, source)
    return result


def _select_and_fit(config: Config, split: _Split) -> _Fitted:
    """Compare the candidates (on a sample of the training rows when there are many), choose
    the threshold on the winner's out-of-fold predictions, fit it on all training rows, and
    score the test rows for the metrics. Nothing that chooses the model sees the test rows."""
    from churn import selection
    from churn.model import build_pipeline, predict_proba
    from churn.preprocessing import build_cleaner, build_preprocessor

    def make_pipeline(estimator: Any) -> Any:
        cleaner = build_cleaner(config.data, config.data.max_unparsed_share)
        return build_pipeline(cleaner, build_preprocessor(config.data, config.preprocessing), estimator)

    X_compared, y_compared = selection.selection_sample(
        split.X_train, split.y_train, config.training.selection_rows, config.split.random_state
    )
    if len(y_compared) < len(split.y_train):
        logger.info("comparing candidates on a stratified sample of %s of the %s training rows", f"{len(y_compared):,}",
                    f"{len(split.y_train):,}")  # fmt: skip
    fixed = config.model.threshold if config.model.threshold != "auto" else 0.5
    comparison = selection.compare_candidates(config, make_pipeline, X_compared, y_compared, float(fixed))
    best = comparison.best[0]
    choice = selection.choose_threshold(y_compared, best.oof_probabilities, config.model.threshold, config.decision)
    logger.info("selected %s; threshold %.2f (%s)", best.name, choice.threshold, choice.objective)
    model = _fit_selected(config, split, best, choice.threshold, make_pipeline)
    test_probabilities = predict_proba(model, split.X_test)
    metrics = _test_metrics(config, split.y_test, test_probabilities, choice.threshold, best)
    return _Fitted(comparison, choice, model, test_probabilities, metrics, y_compared)


def _fit_selected(config: Config, split: _Split, best: CandidateScore, threshold: float, make_pipeline: Any) -> Any:
    """The selected candidate fitted on every training row, with its threshold: the saved model."""
    from churn.model import build_estimator, train_model, with_threshold

    started = time.perf_counter()
    logger.info("fitting %s on all %s training rows", best.name, f"{len(split.y_train):,}")
    estimator = build_estimator(best.name, best.params, config.split.random_state)
    model = with_threshold(train_model(make_pipeline(estimator), split.X_train, split.y_train), threshold)
    logger.info("fitted in %.1f s; scoring the %s test rows", time.perf_counter() - started, f"{len(split.y_test):,}")
    return model


def _save_run(config: Config, source: Path, split: _Split, fitted: _Fitted) -> TrainResult:
    """Write the run folder, metadata last; move latest if the gate passed."""
    from churn import selection
    from churn.compiling import export_linear_tables
    from churn.evaluation import check_gate
    from churn.model import save_model

    missed = check_gate(fitted.metrics, config.validation)
    board = selection.leaderboard(fitted.comparison.best)
    with runs.creating_run(config.paths.models_dir) as (run_id, run_dir):
        try:
            save_model(fitted.model, run_dir / runs.MODEL)
            scorer_tables = export_linear_tables(fitted.model)
            if scorer_tables is not None:
                write_json_atomic(run_dir / runs.SCORER, scorer_tables)
            write_json_atomic(run_dir / runs.METRICS, fitted.metrics)
            _write_run_tables(run_dir, config, split, fitted, board)
            # every file written so far, with its hash: the run is complete when all are there unchanged
            artefacts = {path.name: sha256_file(path) for path in sorted(run_dir.iterdir()) if path.is_file()}
            metadata = _run_metadata(config, run_id, source, split, fitted) | {"artefacts": artefacts}
            metadata["status"] = "rejected" if missed else "accepted"
            metadata["validation"] = {"criteria": dict(config.validation.criteria), "missed": missed}
            _draw_report(run_dir, metadata)
            write_json_atomic(run_dir / runs.METADATA, metadata)  # written last: it marks the run complete
        except FileNotFoundError:
            if run_dir.exists():
                raise
            raise ModelError(f"{run_dir}: the run folder was deleted while it was being written; train again") from None
        if not missed:
            runs.point_latest(config.paths.models_dir, run_id)
    return TrainResult(run_id, run_dir, fitted.metrics, metadata, board)


def _test_metrics(
    config: Config, y_test: pd.Series, probabilities: np.ndarray, threshold: float, best: CandidateScore
) -> dict[str, Any]:
    from churn.evaluation import compute_metrics, cost_summary

    metrics = compute_metrics(y_test, probabilities, threshold)
    metrics |= {
        "cv_roc_auc_mean": best.mean("roc_auc"),
        "cv_roc_auc_std": best.std("roc_auc"),
        "cv_folds": config.training.cv_folds,
    }
    if config.decision.has_costs:
        metrics |= cost_summary(y_test, probabilities, threshold, config.decision)
    return metrics


def _write_run_tables(run_dir: Path, config: Config, split: _Split, fitted: _Fitted, board: pd.DataFrame) -> None:
    """The tables the report is drawn from, so `report` can rebuild it from the run folder alone."""
    from churn.evaluation import feature_effects, threshold_curve

    test = pd.DataFrame({"y_true": split.y_test.to_numpy(), "churn_probability": fitted.test_probabilities})
    contents = {
        runs.LEADERBOARD: board,
        runs.TEST_PREDICTIONS: test,
        runs.THRESHOLD_CURVE: threshold_curve(fitted.y_compared, fitted.best.oof_probabilities, config.decision),
        runs.FEATURE_EFFECTS: feature_effects(fitted.model, split.X_test, split.y_test, config.split.random_state),
    }
    for name, table in contents.items():
        tables.write_table(table, run_dir / name)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def _run_metadata(config: Config, run_id: str, source: Path, split: _Split, fitted: _Fitted) -> dict[str, Any]:
    data = split.data
    return {
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_path": str(config.source.resolve()),
        "config": config.to_dict(),
        "decision": config.decision.model_dump(),  # parsed once here; evaluate reuses it, never the raw config
        "training_data": {
            "path": str(source.resolve()),
            "sha256": sha256_file(source),
            "rows_read": data.rows_read,
            "rows_used": int(len(data.y)),
            "dropped_missing_target": data.dropped_missing_target,
            "dropped_duplicate_ids": data.dropped_duplicate_ids,
            "train_rows": int(len(split.y_train)),
            "test_rows": int(len(split.y_test)),
        },
        "class_balance": {
            "positive": int(data.y.sum()),
            "negative": int(len(data.y) - data.y.sum()),
            "positive_rate": float(data.y.mean()),
        },
        "missing_values": {column: int(count) for column, count in data.X.isna().sum().items()},
        "schema": data_loader.describe_schema(split.X_train, config.data),
        "environment": runs.environment_info(),
        "model_name": fitted.best.name,
        "model_params": {k: v for k, v in fitted.best.params.items() if _jsonable(v)},
        "threshold": float(fitted.model.threshold),  # the same number the saved model holds
        "threshold_choice": asdict(fitted.choice),
        "selection": {
            "compared_on_rows": len(fitted.y_compared),
            "training_rows": len(split.y_train),
            "sampled": len(fitted.y_compared) < len(split.y_train),
        },
    }


def rebuild_report(config: Config, run: str | Path | None) -> Path:
    """Redraw report.md and its plots for an existing run (default: latest)."""
    run_dir = runs.resolve_run(config.paths.models_dir, run)
    runs.read_metadata(run_dir)  # refuses a run without metadata, with its own message
    if not runs.is_complete(run_dir):  # the report reads the run's tables: they must be the recorded ones
        raise ModelError(
            f"{run_dir}: a recorded artefact is missing or changed, or the run predates artefact hashes; "
            "its report cannot be rebuilt. Train again"
        )
    with runs.holding(run_dir):  # no sweep takes the report's temporary files meanwhile
        return _draw_report(run_dir, None)


def _draw_report(run_dir: Path, metadata: dict[str, Any] | None) -> Path:
    # matplotlib is imported only when a report is drawn: predict and evaluate start faster
    # and use less memory without it.
    from churn.report import write_report

    return write_report(run_dir, metadata)


def load_run(config: Config, run: str | Path | None) -> LoadedRun:
    """The run folder (default: latest), its metadata, and its hash-checked scorer."""
    run_dir = runs.resolve_run(config.paths.models_dir, run)
    metadata = runs.read_metadata(run_dir)
    return LoadedRun(run_dir, metadata, load_scorer(run_dir, metadata))


def default_output_path(config: Config, input_path: Path) -> Path:
    """data/predictions/<input stem>_predictions.csv (the stem without .csv, .csv.gz or .parquet)."""
    stem = input_path.name
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return config.paths.predictions_dir / f"{stem}_predictions.csv"


def predict(
    config: Config,
    input_path: Path,
    output: str | Path | None = None,
    run: str | Path | None = None,
    quality_report: Path | None = None,
) -> PredictResult:
    """Score a file chunk by chunk with a saved run; write id, churn_probability and
    churn_prediction per row, in input order. Memory stays flat however large the file.

    The output is written to a temporary file and renamed when every chunk succeeded. Data
    quality against the training schema is summed up in a warning and, optionally, written
    as JSON to `quality_report`.
    """
    destination = output if output is not None else default_output_path(config, input_path)
    _refuse_overwriting_input(input_path, destination)
    if quality_report is not None:
        _refuse_overwriting_input(input_path, quality_report)
    loaded = load_run(config, run)
    for path in (destination, quality_report):
        if path is not None and str(path) != "-":
            Path(path).parent.mkdir(parents=True, exist_ok=True)  # e.g. data/predictions on a fresh checkout
    with tables.TableWriter(destination) as writer:
        quality, positives = score_source(config, loaded, input_path, writer)
    report = {"input": str(input_path), "run_id": loaded.run_id} | quality.report()
    if quality_report is not None:
        write_json_atomic(quality_report, report)
    return PredictResult(str(destination), writer.rows, positives, dict(quality.unseen), report)


def score_source(
    config: Config, loaded: LoadedRun, source: tables.Source, writer: tables.TableWriter, progress: bool = True
) -> tuple[data_loader.QualityTally, int]:
    """The whole of predict but where its rows go: check a table file (or an uploaded CSV)
    against the run, score it chunk by chunk into `writer`, and log its data quality (and,
    with `progress`, rows done and rows per second).

    Returns the quality figures and the number of rows predicted to churn.
    """
    spec = loaded.scorer.spec
    header = tables.table_columns(source)
    data_loader.check_columns(header, spec.columns, source)
    id_column = _id_column(loaded, header)
    columns = [*spec.columns] + ([id_column] if id_column else [])
    quality = data_loader.QualityTally(loaded.metadata["schema"])
    chunks = tables.iter_table(source, columns, config.predict.chunk_rows, categorical=spec.categorical)
    tracker = _Progress("predict", quiet=not progress)
    positives = _write_scored(loaded.scorer, chunks, writer, id_column, quality, tracker)
    # Checked on the whole input, so that the answer never depends on the chunk size; the
    # writer has published nothing yet, so a refused input leaves no output behind.
    data_loader.check_unparsed(quality.unparsed(), source, config.data.max_unparsed_share)
    _log_quality(quality, source)
    return quality, positives


def _id_column(loaded: LoadedRun, header: list[str]) -> str | None:
    """The run's id column, when the input has it (an input without ids is scored all the same)."""
    id_column = loaded.metadata["schema"].get("id_column")
    return id_column if id_column in header else None


def _write_scored(
    scorer: Scorer,
    chunks: Iterator[pa.Table],
    writer: tables.TableWriter,
    id_column: str | None,
    quality: data_loader.QualityTally,
    progress: _Progress,
) -> int:
    """Score raw chunks and write id, churn_probability, churn_prediction per row; return the
    number predicted to churn."""
    positives = 0
    for chunk in chunks:
        scored = score(scorer, chunk)
        quality.add(scored.cleaned)
        positives += int(scored.predictions.sum())
        ids = {id_column: chunk.column(id_column)} if id_column else {}
        writer.write(
            pa.table(ids | {"churn_probability": scored.probabilities, "churn_prediction": scored.predictions})
        )
        progress.update(chunk.num_rows)
    progress.finish()
    return positives


def score_frames(loaded: LoadedRun, frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Score pandas batches as predict does, each into id (when the batch has it),
    churn_probability and churn_prediction: the shape Spark's `mapInPandas` and other
    batch-at-a-time engines take, from the very scorer predict uses."""
    id_column = loaded.metadata["schema"].get("id_column")
    for frame in frames:
        scored = score(loaded.scorer, frame)
        ids = {id_column: frame[id_column].to_numpy()} if id_column in frame.columns else {}
        yield pd.DataFrame(ids | {"churn_probability": scored.probabilities, "churn_prediction": scored.predictions})


def _log_quality(quality: data_loader.QualityTally, source: tables.Source) -> None:
    data_loader.warn_cleaning(quality.unparsed(), quality.infinite, source)
    for column, count in quality.unseen.items():
        logger.warning(
            "%s: column %s has %d value(s) never seen in training; encoded as no category", source, column, count
        )
    if (drift := quality.summary()) is not None:
        logger.warning("%s: input drift: %s", source, drift)


class _Progress:
    """A log line of rows done and rows per second every few seconds, so a long run never looks stuck."""

    def __init__(self, task: str, every_seconds: float = 5.0, quiet: bool = False) -> None:
        self.task, self.every = task, every_seconds if not quiet else float("inf")
        self.quiet = quiet
        self.rows = 0
        self.started = self.last = time.perf_counter()

    def update(self, rows: int) -> None:
        self.rows += rows
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            logger.info("%s: %s rows done, %s rows/s", self.task, f"{self.rows:,}", f"{self.rate():,.0f}")

    def rate(self) -> float:
        return self.rows / max(time.perf_counter() - self.started, 1e-9)

    def finish(self) -> None:
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.started
        logger.info("%s: %s rows in %.1f s, %s rows/s", self.task, f"{self.rows:,}", elapsed, f"{self.rate():,.0f}")


def _refuse_overwriting_input(input_path: Path, destination: str | Path) -> None:
    if str(destination) != "-" and Path(destination).resolve() == input_path.resolve():
        raise DataError(f"{destination}: --output is the input file; choose another output path")


def evaluate(config: Config, input_path: Path, run: str | Path | None = None) -> dict[str, Any]:
    """Score a labelled file with a saved run and compute the training metrics on it."""
    from churn.evaluation import compute_metrics, cost_summary

    loaded = load_run(config, run)
    schema = loaded.metadata["schema"]
    data_config = DataConfig(  # the run's own columns and label; ids are not needed to evaluate
        path=input_path,
        target=schema["target"],
        positive_label=loaded.metadata["config"]["data"]["positive_label"],
        numeric_features=tuple(schema["numeric_features"]),
        categorical_features=tuple(schema["categorical_features"]),
        max_unparsed_share=config.data.max_unparsed_share,
    )
    data = data_loader.load_training_data(input_path, data_config)
    scored = score(loaded.scorer, data.X)
    threshold = loaded.scorer.threshold
    metrics = compute_metrics(data.y, scored.probabilities, threshold)
    decision = DecisionConfig.model_validate(loaded.metadata["decision"])  # the run's own, as trained
    if decision.has_costs:
        metrics |= cost_summary(data.y, scored.probabilities, threshold, decision)
    return {"run_id": loaded.run_id, "input": str(input_path)} | metrics
