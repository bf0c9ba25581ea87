"""The predict workflow: `python main.py predict`, and what the other scoring doors share with it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from churn import batch, decisions, explaining, scoring, tables
from churn.config import Config
from churn.errors import ChurnError
from churn.explaining import Explain
from churn.files import refuse_overwriting_input, write_json_atomic
from churn.parallel import usable_cores
from churn.progress import RowProgress
from churn.quality import QualityTally
from churn.scoring import LoadedRun, Scored, score
from churn.sql import SqlSource, redact

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

    @property
    def unseen_categories(self) -> dict[str, int]:
        return {column: count for column, count in self.quality.unseen.items() if count}


def load_run(config: Config, run: str | Path | None) -> LoadedRun:
    """The run (default: the one `latest` names) in the config's models folder, ready to score
    on the cores this process may use."""
    return scoring.load_run(config.paths.models_dir, run, usable_cores())


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
    budget: int | None = None,
) -> PredictResult:
    """Score a file chunk by chunk with a saved run; write id, churn_probability and
    churn_prediction per row, in input order, and with `explain` the reason codes (and
    contributions) of each. Memory stays flat however large the file.

    With a contact `budget` (or `decision.contact_budget`), also `expected_saving` and `contact`
    (1 for the `budget` customers with the highest positive expected saving): the file is scored
    twice, once to rank every customer (8 bytes a row kept), once to write.

    The output is written to a temporary file and renamed when every chunk succeeded. Data
    quality against the training schema is logged as warnings and, optionally, written as JSON
    to `quality_report`.
    """
    output = output if isinstance(output, Output) else Output(output)
    destination = output.destination if output.destination is not None else default_output_path(config, input_path)
    _refuse_output_is_input(input_path, destination, output, quality_report)
    loaded = load_run(config, run)
    explain = explaining.checked(explain, loaded.scorer, config.predict.max_explain_seconds, "--explain")
    for path in (None if output.table else destination, quality_report):
        if path is not None and str(path) != "-":
            Path(path).parent.mkdir(parents=True, exist_ok=True)  # e.g. data/predictions on a fresh checkout
    budget = budget or config.decision.contact_budget
    more = _budget_columns(config, loaded, input_path, budget) if budget else None
    with tables.open_writer(destination, output.table, output.if_exists, loaded.run_id, output.password_env) as writer:
        result = batch.score_table(
            loaded,
            input_path,
            writer,
            config.predict.chunk_rows,
            config.data.max_unparsed_share,
            RowProgress("predict"),
            explain=explain,
            more=more,
        )
    for line in result.quality.warnings():
        logger.warning("%s: %s", input_path, line)
    if quality_report is not None:
        write_json_atomic(quality_report, {"input": str(input_path), "run_id": loaded.run_id} | result.quality.report())
    written = writer.target if isinstance(writer, tables.SqlTableWriter) else destination
    return PredictResult(str(written), result.rows, result.positives, result.quality)


def _refuse_output_is_input(
    source: tables.Source, destination: str | Path, output: Output, quality_report: Path | None
) -> None:
    """A file is never written over the input (files.refuse_overwriting_input), nor a table."""
    if isinstance(source, Path):
        refuse_overwriting_input(source, destination, quality_report)
    if not isinstance(source, SqlSource):
        return
    if output.table is not None and redact(str(destination)) == source.database.shown and output.table == source.table:
        raise ChurnError(f"{source}: --output-table is the input table; write the scores to another table")


def _budget_columns(config: Config, loaded: LoadedRun, input_path: tables.Source, budget: int) -> Any:
    """Rank every customer of the file by expected saving (a first scoring pass), and give the
    writer each chunk's expected_saving and contact columns."""
    found: list[np.ndarray] = []
    batch.score_table(loaded, input_path, batch.Discard(), config.predict.chunk_rows, config.data.max_unparsed_share,
                      RowProgress("ranking for the budget"),
                      observe=lambda scored, _: found.append(scored.probabilities))  # fmt: skip
    savings = decisions.expected_savings(np.concatenate(found) if found else np.zeros(0), loaded.record.decision)
    contact = decisions.budget_contacts(savings, budget)
    chosen = int(contact.sum())
    if chosen < budget:
        logger.info("budget %s: contacting %s; contacting anyone else would lose money on average (expected "
                    "saving not positive)", f"{budget:,}", f"{chosen:,}")  # fmt: skip

    def more(first: int, scored: Scored) -> dict[str, Any]:
        rows = slice(first, first + len(scored.probabilities))
        return {"expected_saving": savings[rows], "contact": contact[rows]}

    return more


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
