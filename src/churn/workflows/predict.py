"""The predict workflow: `python main.py predict`, and what the other scoring doors share with it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from churn.config import Config
from churn.errors import ChurnError
from churn.explain import explainers
from churn.explain.explainers import Explain
from churn.io import sql, tables
from churn.io.sql import Database, SqlSource
from churn.io.sql_writer import SqlTarget, refuse_writing_into_read
from churn.monitoring import profiles, tallies, verdicts
from churn.parallel import usable_cores
from churn.progress import RowProgress
from churn.scoring import core, decisions, experiment, scorers
from churn.scoring.core import ScoredTable, ScoreOptions, UnparsedLimit
from churn.scoring.quality import QualityTally
from churn.scoring.scorers import LoadedRun, score
from churn.store.files import prepare_output, refuse_overwriting_input, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Output:
    """Where predict writes: a file ("-" for stdout; None for the default file), or a database
    URL with the table to write (`if_exists`: fail, replace or append)."""

    destination: str | Path | None = None
    table: str | None = None
    if_exists: str = "fail"
    password_env: str | None = None


@dataclass(frozen=True)
class PredictResult:
    output: str
    rows: int
    predicted_positive: int
    quality: QualityTally
    contacts: Contacts | None = None  # with a budget, a holdout or a contact list
    horizons: core.HorizonTotals | None = None  # a run with a survival model

    @property
    def unseen_categories(self) -> dict[str, int]:
        return {column: count for column, count in self.quality.unseen.items() if count}


@dataclass(frozen=True)
class Contacts:
    """Whom predict chose to contact, in figures for its summary line."""

    chosen: core.Contacted
    break_even: float  # the average customer's, with per-customer costs
    per_customer: bool
    seed: int
    detectable_fall: float | None  # with a holdout: the smallest fall in churn it can detect

    @property
    def contacted(self) -> int:
        return self.chosen.contacted


def load_run(config: Config, run: str | Path | None) -> LoadedRun:
    """The run (default: the one `latest` names) in the config's models folder, ready to score
    on the cores this process may use; a run given by name that its gate rejected is scored
    with a warning naming its status."""
    loaded = scorers.load_run(config.paths.models_dir, run, usable_cores())
    record = loaded.record
    if run is not None and not record.accepted:
        logger.warning(
            "run %s is %s by its validation gate (%s); scoring with it because --model names it",
            loaded.run_id,
            record.status,
            "; ".join(record.validation.missed),
        )
    return loaded


def default_output_path(config: Config, input_path: tables.Source) -> Path:
    """data/predictions/<input stem>_predictions.csv (the stem without .csv, .csv.gz or .parquet;
    a database table's name, or "query")."""
    stem = input_path.name
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return config.paths.predictions_dir / f"{stem}_predictions.csv"


def predict(
    config: Config,
    input_path: tables.Source,
    output: str | Path | Output | None = None,
    run: str | Path | None = None,
    quality_report: Path | None = None,
    explain: Explain | None = None,
    budget: int | core.ContactPlan | None = None,
) -> PredictResult:
    """Score a table chunk by chunk with a saved run; write id, churn_probability and
    churn_prediction per row, in input order, and with `explain` the reason codes (and
    contributions) of each. Memory stays flat however large the table. A run with per-customer
    costs also writes each row's expected_saving and contact (positive saving).

    With a contact `budget` (a number, or a `ContactPlan` with a holdout or for the contact list
    alone; default `decision.contact_budget`), also `expected_saving` and `contact` (1 for the
    `budget` customers with the highest positive expected saving): the scored chunks are kept
    in a temporary file while every customer is ranked (about 30 bytes a row in memory), then
    written; the input is read once.

    Every output location is checked before the first row is read; the output is written to a
    temporary file (or table) and published when every chunk succeeded. Data quality and drift
    against the run are logged as warnings and, optionally, written as JSON to `quality_report`.
    """
    output = output if isinstance(output, Output) else Output(output)
    destination = output.destination if output.destination is not None else default_output_path(config, input_path)
    _check_outputs(input_path, destination, output, quality_report)
    loaded = load_run(config, run)
    plan = _plan(budget, config)
    costs = decisions.Costs.required(loaded.record.decision) if plan is not None else None  # refused before reading
    if plan is not None and plan.only:
        explain = _contact_reasons(explain, loaded)
    explain = explainers.checked(explain, loaded.scorer, config.predict.max_explain_seconds, "--explain")
    limit = UnparsedLimit(config.data.max_unparsed_share)
    decide = True if plan is not None else None
    horizons = None if config.predict.horizons else False
    options = ScoreOptions(config.predict.chunk_rows, limit, explain, decide=decide, horizons=horizons)
    chunks = ScoredTable(loaded, input_path, options)
    drift = _drift_tally(loaded)
    contacts = None
    totals = core.HorizonTotals() if chunks.horizon_scorer is not None else None
    with tables.open_writer(destination, output.table, output.if_exists, loaded.run_id, output.password_env) as writer:
        scored = _progress(chunks, drift, RowProgress("predict"), totals)
        if plan is not None and costs is not None:
            chosen = core.write_contacts(scored, writer, replace(plan, money_columns=costs.columns))
            contacts = _contacts(chosen, costs, plan)
            positives = chosen.predicted_positive
        else:
            positives = core.write_chunks(scored, writer)
    _warn(input_path, chunks.quality, drift, config)
    if quality_report is not None:
        write_json_atomic(quality_report, {"input": str(input_path), "run_id": loaded.run_id} | chunks.quality.report())
    written = writer.target if isinstance(writer, tables.SqlTableWriter) else destination
    return PredictResult(str(written), chunks.rows, positives, chunks.quality, contacts, totals)


def _plan(budget: int | core.ContactPlan | None, config: Config) -> core.ContactPlan | None:
    """The contact plan asked for: a plan, a budget, or the config's contact_budget (None: none)."""
    if isinstance(budget, core.ContactPlan):
        if budget.budget is None and config.decision.contact_budget is not None:
            return replace(budget, budget=config.decision.contact_budget)
        return budget
    budget = budget or config.decision.contact_budget
    return core.ContactPlan(budget) if budget else None


def _contact_reasons(explain: Explain | None, loaded: LoadedRun) -> Explain | None:
    """A contact list's reasons: --explain K (default 3) as sentences, or none (warned) for a run
    that cannot explain its predictions."""
    try:
        explainers.explainer_for(loaded.scorer)
    except ChurnError as error:
        logger.warning("the contact list has no reasons: %s", error)
        return None
    top = min(explain.top if explain is not None and explain.top else 3, len(loaded.scorer.spec.columns))
    return Explain(top, explain.contributions if explain is not None else False, words=True)


def _contacts(chosen: core.Contacted, costs: decisions.Costs, plan: core.ContactPlan) -> Contacts:
    break_even = costs.average_break_even(chosen.money)  # the break-even itself with constant costs
    fall = None
    if plan.holdout:
        churn = float(chosen.held_probabilities.mean()) if len(chosen.held_probabilities) else 0.0
        fall = experiment.detectable_effect(churn, chosen.contacted, chosen.held_out)
    return Contacts(chosen, break_even, costs.per_customer, plan.seed, fall)


def _check_outputs(source: tables.Source, destination: str | Path, output: Output, quality_report: Path | None) -> None:
    """Before anything is read: no output over an input (a file, a SQLite file, a table the read
    touches), every output file's folder there (created) and writable, no URL taken for a path."""
    inputs = [source] if isinstance(source, Path) else []
    if isinstance(source, SqlSource) and source.database.scheme == "sqlite":
        inputs.append(Path(sql.sqlite_path(source.database, create=False)))
    files = [quality_report] + ([] if output.table is not None else [destination])
    refuse_overwriting_input(inputs, *files)
    if output.table is not None:
        if not sql.is_url(destination):
            raise ChurnError(f"--output-table writes into a database; --output {destination} is a file, give a URL")
        target = SqlTarget(Database(str(destination), output.password_env), output.table)
        if isinstance(source, SqlSource):
            refuse_writing_into_read(source, target)
    elif sql.is_url(destination):
        raise ChurnError(f"{sql.redact(str(destination))}: writing to a database needs --output-table NAME")
    for path, option in ((None if output.table else destination, "--output"), (quality_report, "--report")):
        if path is not None:
            prepare_output(path, option)


def _drift_tally(loaded: LoadedRun) -> tallies.DriftTally | None:
    """The bins of the rows scored, counted as monitor counts them (None: a run without a profile)."""
    reference = profiles.read_reference(loaded.run_dir, loaded.record)
    return tallies.DriftTally(reference, keep_probabilities=False) if reference is not None else None


def _progress(
    chunks: ScoredTable,
    drift: tallies.DriftTally | None,
    progress: RowProgress,
    totals: core.HorizonTotals | None = None,
) -> Iterator[core.ScoredChunk]:
    for chunk in chunks:
        if drift is not None:
            drift.add(chunk)
        if totals is not None:
            totals.add(chunk.horizons)
        progress.update(len(chunk))
        yield chunk
    progress.finish()


def _warn(source: tables.Source, quality: QualityTally, drift: tallies.DriftTally | None, config: Config) -> None:
    """The data-quality lines, then one per column whose PSI reaches monitor.psi_alarm."""
    lines = quality.warnings()
    if drift is not None and quality.rows:
        lines += verdicts.drift_warnings(drift, config.monitor)
    for line in lines:
        logger.warning("%s: %s", source, line)


def score_frames(loaded: LoadedRun, frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Score pandas batches as predict does, each into id (when the batch has it),
    churn_probability and churn_prediction: the shape Spark's `mapInPandas` and other
    batch-at-a-time engines take, from the very scorer predict uses."""
    import pandas as pd  # deferred: the caller's frames are pandas already; predict does without it

    id_column = loaded.features.id_column
    for frame in frames:
        scored = score(loaded.scorer, frame)
        ids: dict[str, Any] = {id_column: frame[id_column].to_numpy()} if id_column and id_column in frame else {}
        yield pd.DataFrame(ids | {"churn_probability": scored.probabilities, "churn_prediction": scored.predictions})


def decide_frame(loaded: LoadedRun, frame: pd.DataFrame, budget: int | None = None) -> pd.DataFrame:
    """A pandas frame of raw rows scored and decided as predict decides them: id (when the
    frame has it), churn_probability, churn_prediction, expected_saving and contact (with a
    `budget`, the `budget` highest positive savings), through the same scoring core.

    Raises:
        ConfigError: the run has no decision costs.
        DataError: the frame has no rows, a feature or money column is missing, or a money value
            is bad (row named).
    """
    rows = tables.ArrowRows(pa.Table.from_pandas(frame, preserve_index=False), "the frame")
    (chunk,) = ScoredTable(loaded, rows, ScoreOptions(max(len(frame), 1), decide=True))  # the frame in one chunk
    assert chunk.savings is not None
    out = chunk.output().to_pandas()
    out["contact"] = decisions.contact_rule(chunk.savings, budget)  # the budget across the whole frame
    return out


def horizons_frame(loaded: LoadedRun, frame: pd.DataFrame) -> pd.DataFrame:
    """A pandas frame of raw rows with the run's horizons, as predict writes them for the same
    rows: id (when the frame has it), churn_probability, churn_prediction, churn_within_<h>m,
    expected_months_<h>m (and revenue at risk with a value column), through the scoring core.

    Raises:
        ConfigError: the run has no survival model.
        DataError: the frame has no rows, or a feature column is missing.
    """
    rows = tables.ArrowRows(pa.Table.from_pandas(frame, preserve_index=False), "the frame")
    (chunk,) = ScoredTable(loaded, rows, ScoreOptions(max(len(frame), 1), horizons=True))
    return chunk.output().to_pandas()
