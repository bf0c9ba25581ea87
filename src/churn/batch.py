"""Scoring a whole table with a run, chunk by chunk, into a writer: the one implementation
behind `predict`, the service's CSV answers and every part scored on a Dask cluster.

Memory stays flat however large the table: chunks of `chunk_rows` rows are read ahead in a
background thread, cleaned and scored with the run's scorer, and written in input order. The
data quality of the whole table comes back as data (`churn.quality.QualityTally`); each door
words it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from churn import explaining, tables
from churn.cleaning import check_unparsed, clean_features
from churn.columns import SCORING_REMEDY, require_columns
from churn.explaining import Explain
from churn.progress import RowProgress
from churn.quality import QualityTally
from churn.scoring import LoadedRun, Scored, score
from churn.sql import RowDigest


@dataclass(frozen=True)
class BatchResult:
    rows: int
    positives: int  # rows predicted to churn
    quality: QualityTally


class Discard:
    """A writer that keeps nothing but the row count: scoring only to observe (monitor)."""

    rows = 0

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows


def score_table(
    loaded: LoadedRun,
    source: tables.Source,
    writer: tables.TableWriter | tables.SqlTableWriter | Discard,
    chunk_rows: int,
    max_unparsed_share: float | None,
    progress: RowProgress | None = None,
    inspect: Callable[[pa.Table, int], None] | None = None,
    unparsed_key: str | None = "data.max_unparsed_share",
    explain: Explain | None = None,
    observe: Callable[[Scored, pa.Table], None] | None = None,
    keep: Sequence[str] = (),
    more: Callable[[int, Scored], dict[str, Any]] | None = None,
    digest: RowDigest | None = None,
) -> BatchResult:
    """Check a table against the run, score it chunk by chunk into `writer` (id,
    churn_probability, churn_prediction per row, in input order, and with `explain` its reason
    codes and contributions), and tally its data quality.

    `max_unparsed_share` None leaves that check to the caller (a part of a larger input);
    `unparsed_key` is the setting its message names (None: a reader who cannot change it).
    `inspect(chunk, first_row)` sees each chunk before it is scored (and may refuse it);
    `observe(scored, chunk)` sees it scored (monitoring's tally), the chunk with the `keep`
    columns the table holds (a label). `more(first_row, scored)` gives columns to write after
    the scores (the budget's contact decisions). `digest` sees every row read (a database's).

    Raises:
        DataError: a feature column is missing, the file is unreadable, or a numeric column holds
            more values that are not numbers than `max_unparsed_share` allows.
        ExplainTooSlowError: a forest's explanations would take longer than `explain.max_seconds`
            (None: the caller checked, as the cluster's client does for all the parts at once).
    """
    spec = loaded.scorer.spec
    header = tables.table_columns(source)
    require_columns(header, spec.columns, source, SCORING_REMEDY)
    id_column = loaded.features.id_column if loaded.features.id_column in header else None
    columns = [*spec.columns] + ([id_column] if id_column else [])
    columns += [c for c in keep if c in header and c not in columns]
    chunks: Iterator[pa.Table] = tables.iter_table(source, columns, chunk_rows, spec.categorical, digest)
    quality = QualityTally(loaded.features)
    if inspect is not None:
        chunks = _inspected(chunks, inspect)
    explainer = None
    if explain is not None:
        check_explain_time(loaded, [source], explain, str(source))
        explainer = explaining.explainer_for(loaded.scorer)
    write = _Writer(loaded, writer, id_column, quality, explainer, explain, observe, more)
    positives = write.all(chunks, progress or RowProgress("", quiet=True))
    # Checked on the whole input, so that the answer never depends on the chunk size; the
    # writer has published nothing yet, so a refused input leaves no output behind.
    if max_unparsed_share is not None:
        check_unparsed(quality.unparsed(), source, max_unparsed_share, unparsed_key)
    return BatchResult(writer.rows, positives, quality)


def _inspected(chunks: Iterator[pa.Table], inspect: Callable[[pa.Table, int], None]) -> Iterator[pa.Table]:
    first = 0
    for chunk in chunks:
        inspect(chunk, first)
        first += chunk.num_rows
        yield chunk


def check_explain_time(loaded: LoadedRun, sources: Sequence[tables.Source], explain: Explain, what: str) -> None:
    """Time a slow explainer (a forest's) on the first rows of the first source; refuse the
    whole input when it would take longer than explain.max_seconds. Fast explainers pass.

    Raises:
        ExplainTooSlowError: the estimate is over the setting.
    """
    explainer = explaining.explainer_for(loaded.scorer)
    if not explainer.slow or explain.max_seconds is None:
        return
    spec = loaded.scorer.spec
    chunks = tables.iter_table(sources[0], list(spec.columns), explaining.PROBE_ROWS, categorical=spec.categorical)
    try:
        first = next(chunks, None)
    finally:
        chunks.close()
    if first is not None:
        probe = clean_features(first, spec).features
        explaining.check_time(explainer, probe, sum(tables.count_rows(s) for s in sources), explain, what)


@dataclass
class _Writer:
    """Each chunk scored (and explained) into the writer, its data quality tallied."""

    loaded: LoadedRun
    writer: tables.TableWriter | tables.SqlTableWriter | Discard
    id_column: str | None
    quality: QualityTally
    explainer: explaining.Explainer | None
    explain: Explain | None
    observe: Callable[[Scored, pa.Table], None] | None
    more: Callable[[int, Scored], dict[str, Any]] | None
    written: int = 0

    def all(self, chunks: Iterator[pa.Table], progress: RowProgress) -> int:
        positives = 0
        for chunk in chunks:
            positives += self.one(chunk)
            progress.update(chunk.num_rows)
        progress.finish()
        return positives

    def one(self, chunk: pa.Table) -> int:
        scored = score(self.loaded.scorer, chunk)
        self.quality.add(scored.cleaned)
        if self.observe is not None:
            self.observe(scored, chunk)
        if isinstance(self.writer, Discard):  # scored only to be observed: no columns to build
            self.writer.rows += chunk.num_rows
            self.written += chunk.num_rows
            return int(scored.predictions.sum())
        columns = {self.id_column: chunk.column(self.id_column)} if self.id_column else {}
        columns |= {"churn_probability": scored.probabilities, "churn_prediction": scored.predictions}
        if self.more is not None:
            columns |= self.more(self.written, scored)
        self.written += chunk.num_rows
        if self.explainer is not None and self.explain is not None:
            columns |= explaining.explanation_columns(self.explainer, scored.cleaned.features, self.explain)
        self.writer.write(pa.table(columns))
        return int(scored.predictions.sum())
