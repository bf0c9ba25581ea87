"""Scoring a whole table with a run, chunk by chunk, into a writer: the one implementation
behind `predict`, the service's CSV answers and every part scored on a Dask cluster.

Memory stays flat however large the table: chunks of `chunk_rows` rows are read ahead in a
background thread, cleaned and scored with the run's scorer, and written in input order. The
data quality of the whole table comes back as data (`churn.quality.QualityTally`); each door
words it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from churn import tables
from churn.cleaning import check_unparsed
from churn.columns import SCORING_REMEDY, require_columns
from churn.progress import RowProgress
from churn.quality import QualityTally
from churn.scoring import LoadedRun, score


@dataclass(frozen=True)
class BatchResult:
    rows: int
    positives: int  # rows predicted to churn
    quality: QualityTally


def score_table(
    loaded: LoadedRun,
    source: tables.Source,
    writer: tables.TableWriter,
    chunk_rows: int,
    max_unparsed_share: float | None,
    progress: RowProgress | None = None,
    inspect: Callable[[pa.Table, int], None] | None = None,
    unparsed_key: str | None = "data.max_unparsed_share",
) -> BatchResult:
    """Check a table against the run, score it chunk by chunk into `writer` (id,
    churn_probability, churn_prediction per row, in input order), and tally its data quality.

    `max_unparsed_share` None leaves that check to the caller (a part of a larger input);
    `unparsed_key` is the setting its message names (None: a reader who cannot change it).
    `inspect(chunk, first_row)` sees each chunk before it is scored (and may refuse it).

    Raises:
        DataError: a feature column is missing, the file is unreadable, or a numeric column holds
            more values that are not numbers than `max_unparsed_share` allows.
    """
    spec = loaded.scorer.spec
    header = tables.table_columns(source)
    require_columns(header, spec.columns, source, SCORING_REMEDY)
    id_column = loaded.features.id_column if loaded.features.id_column in header else None
    columns = [*spec.columns] + ([id_column] if id_column else [])
    chunks: Iterator[pa.Table] = tables.iter_table(source, columns, chunk_rows, categorical=spec.categorical)
    quality = QualityTally(loaded.features)
    if inspect is not None:
        chunks = _inspected(chunks, inspect)
    positives = _write_scored(loaded, chunks, writer, id_column, quality, progress or RowProgress("", quiet=True))
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


def _write_scored(
    loaded: LoadedRun,
    chunks: Iterator[pa.Table],
    writer: tables.TableWriter,
    id_column: str | None,
    quality: QualityTally,
    progress: RowProgress,
) -> int:
    positives = 0
    for chunk in chunks:
        scored = score(loaded.scorer, chunk)
        quality.add(scored.cleaned)
        positives += int(scored.predictions.sum())
        ids = {id_column: chunk.column(id_column)} if id_column else {}
        writer.write(
            pa.table(ids | {"churn_probability": scored.probabilities, "churn_prediction": scored.predictions})
        )
        progress.update(chunk.num_rows)
    progress.finish()
    return positives
