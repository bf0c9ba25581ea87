"""The scoring core: a whole table scored with a run, chunk by chunk, as an iterator of typed
scored chunks. Every door composes it with its own writer and its own rules: `predict` (and
its budget), `monitor`, the service's CSV answers and every part scored on a Dask cluster.

Memory stays flat however large the table: chunks of `chunk_rows` rows are read ahead in a
background thread, cleaned, scored with the run's scorer (and explained), and handed over in
input order. The data quality of each chunk comes with it, and of the whole table at the end
(`ScoredTable.quality`); each door words it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from churn.cleaning import check_unparsed, clean_features
from churn.explain import explainers
from churn.explain.explainers import Explain
from churn.io import tables
from churn.io.columns import SCORING_REMEDY, require_columns
from churn.scoring import decisions
from churn.scoring.quality import QualityTally
from churn.scoring.scorers import LoadedRun, Scored, predict_labels, score

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnparsedLimit:
    """The largest share of a numeric column's values that may fail to parse, and the setting
    a refusal names (None: one the reader cannot change, as a service's client)."""

    share: float
    setting: str | None = "data.max_unparsed_share"


@dataclass(frozen=True)
class ScoreOptions:
    """How a table is scored: its chunk size, the check on values that are not numbers (None:
    the caller checks, as for one part of a larger input), explanations, and columns to carry
    along beside the features and the id (a label)."""

    chunk_rows: int
    unparsed: UnparsedLimit | None = None
    explain: Explain | None = None
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk of a table, scored: the rows as read (features, id, kept columns), their
    scores and decisions, their explanations (empty unless asked for) and data quality."""

    first_row: int
    rows: pa.Table
    scored: Scored
    id_column: str | None
    quality: QualityTally
    explanations: Mapping[str, Any] = field(default_factory=dict)

    @property
    def probabilities(self) -> np.ndarray:
        return self.scored.probabilities

    @property
    def predictions(self) -> np.ndarray:
        return self.scored.predictions

    def __len__(self) -> int:
        return self.rows.num_rows

    def output(self, extra: Mapping[str, Any] | None = None) -> pa.Table:
        """What `predict` writes for these rows: the id, churn_probability, churn_prediction,
        then `extra` columns (a budget's), then the explanations."""
        columns: dict[str, Any] = {self.id_column: self.rows.column(self.id_column)} if self.id_column else {}
        columns |= {"churn_probability": self.probabilities, "churn_prediction": self.predictions}
        return pa.table(columns | dict(extra or {}) | dict(self.explanations))


class ScoredTable:
    """A table scored chunk by chunk: iterate it (once) for `ScoredChunk`s in input order.

    The checks that need the whole table run when the last chunk has been handed over, so a
    door that publishes only after the loop publishes nothing for a refused table.

    Raises (while iterating):
        DataError: a feature column is missing, the table is unreadable, or a numeric column
            holds more values that are not numbers than `options.unparsed` allows.
        ExplainTooSlowError: a forest's explanations would take longer than `explain.max_seconds`.
    """

    def __init__(self, run: LoadedRun, source: tables.Source, options: ScoreOptions) -> None:
        self.run, self.source, self.options = run, source, options
        self.quality = QualityTally(run.features)
        header = tables.table_columns(source)
        require_columns(header, run.scorer.spec.columns, source, SCORING_REMEDY)
        id_column = run.features.id_column
        self.id_column = id_column if id_column in header else None
        columns = [*run.scorer.spec.columns] + ([self.id_column] if self.id_column else [])
        self.columns = columns + [c for c in options.keep if c in header and c not in columns]

    @property
    def rows(self) -> int:
        return self.quality.rows

    def __iter__(self) -> Iterator[ScoredChunk]:
        spec, explain = self.run.scorer.spec, self.options.explain
        explainer = None
        if explain is not None:
            check_explain_time(self.run, [self.source], explain, str(self.source))
            explainer = explainers.explainer_for(self.run.scorer)
        first = 0
        for rows in tables.iter_table(self.source, self.columns, self.options.chunk_rows, spec.categorical):
            scored = score(self.run.scorer, rows)
            quality = QualityTally(self.run.features)
            quality.add(scored.cleaned)
            self.quality.merge(quality)
            explanations = {}
            if explainer is not None and explain is not None:
                explanations = explainers.explanation_columns(explainer, scored.cleaned.features, explain)
            yield ScoredChunk(first, rows, scored, self.id_column, quality, explanations)
            first += rows.num_rows
        # On the whole table, so that the answer never depends on the chunk size.
        if (limit := self.options.unparsed) is not None:
            check_unparsed(self.quality.unparsed(), self.source, limit.share, limit.setting)


def check_explain_time(loaded: LoadedRun, sources: Sequence[tables.Source], explain: Explain, what: str) -> None:
    """Time a slow explainer (a forest's) on the first rows of the first source; refuse the
    whole input when it would take longer than explain.max_seconds. Fast explainers pass.

    Raises:
        ExplainTooSlowError: the estimate is over the setting.
    """
    explainer = explainers.explainer_for(loaded.scorer)
    if not explainer.slow or explain.max_seconds is None:
        return
    spec = loaded.scorer.spec
    chunks = tables.iter_table(sources[0], list(spec.columns), explainers.PROBE_ROWS, categorical=spec.categorical)
    try:
        first = next(chunks, None)
    finally:
        chunks.close()
    if first is not None:
        probe = clean_features(first, spec).features
        explainers.check_time(explainer, probe, sum(tables.count_rows(s) for s in sources), explain, what)


def write_chunks(chunks: Iterable[ScoredChunk], writer: tables.TableWriter | tables.SqlTableWriter) -> int:
    """Each chunk's output into the writer, in order; the number predicted to churn."""
    positives = 0
    for chunk in chunks:
        writer.write(chunk.output())
        positives += int(chunk.predictions.sum())
    return positives


def write_with_budget(
    chunks: Iterable[ScoredChunk], writer: tables.TableWriter | tables.SqlTableWriter, run: LoadedRun, budget: int
) -> tuple[int, int]:
    """Each chunk's output, with expected_saving and contact (`decisions`' rule) after the
    decisions: the chunks are kept aside on disk while every customer is ranked (8 bytes a row
    in memory), then written; one read, so every rank belongs to its own row. Returns the
    number predicted to churn and the number contacted."""
    probabilities: list[np.ndarray] = []
    with tables.Spill() as spill:
        for chunk in chunks:
            spill.write(chunk.output())
            probabilities.append(chunk.probabilities)
        everyone = np.concatenate(probabilities) if probabilities else np.zeros(0)
        predictions = predict_labels(everyone, run.scorer.threshold)
        savings, contact = decisions.contacts(everyone, predictions, run.record.decision, budget)
        first = 0
        for table in spill.replay():
            rows = slice(first, first + table.num_rows)
            at = table.column_names.index("churn_prediction") + 1
            table = table.add_column(at, "expected_saving", pa.array(savings[rows]))
            writer.write(table.add_column(at + 1, "contact", pa.array(contact[rows])))
            first += table.num_rows
    chosen = int(contact.sum())
    if chosen < budget:
        logger.info(
            "budget %s: contacting %s, every customer predicted to churn (contacting anyone else would lose "
            "money on average)",
            f"{budget:,}",
            f"{chosen:,}",
        )
    return int(predictions.sum()), chosen
