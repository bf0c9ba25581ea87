"""Table files through pyarrow: whole or in fixed-size chunks in, atomic CSV/Parquet out.

CSV is read with every column as text (the data loader parses what it needs), so a stray
value never makes the reader guess a type and fail half-way. Every problem with a file is a
`DataError` naming the file and, for a failure inside the data, the rows involved.
"""

from __future__ import annotations

import contextlib
import csv
import io
import queue
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churn.errors import ChurnError, DataError, FormatError
from churn.io import sql
from churn.io.columns import require_columns
from churn.io.sql import Database, SqlSource
from churn.io.sql_writer import SqlTableWriter, SqlTarget
from churn.store.files import atomic_path, is_device

if TYPE_CHECKING:
    import pandas as pd

# pandas' and pyarrow's default NA lists also swallow real category values such as "None".
NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "#N/A"]
SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# pyarrow holds ~40x a block in memory while parsing it (measured: 4 MiB blocks cost ~180 MB),
# while blocks under 512 KiB make reading slower (1M rows: 1.16 s at 256 KiB, 0.80 s at 1 MiB);
# the rows are regrouped into chunks of predict.chunk_rows afterwards.
READ_BLOCK_BYTES = 1 << 20
# A churn table has tens of columns; a header of more is refused before anything is parsed, so
# a wide file (or upload) cannot hold a process for minutes.
MAX_COLUMNS = 10_000


@dataclass(frozen=True)
class CsvBytes:
    """A CSV file held in memory (an uploaded request body), read as a file is: messages name it."""

    data: bytes
    name: str = "request body"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ArrowRows:
    """Rows already in memory as an Arrow table (a JSON request's customers): read as a table is,
    in slices, without a reader thread (there is nothing to read ahead)."""

    table: pa.Table
    name: str = "request"

    def __str__(self) -> str:
        return self.name


Source = Path | CsvBytes | SqlSource | ArrowRows


def source_of(
    given: str | Path, table: str | None = None, query: str | None = None, password_env: str | None = None
) -> Source:
    """What --data or --input names: a database URL read with `table` or `query`, or a file."""
    if sql.is_url(given):
        if table is None and query is None:
            raise ChurnError(f"{sql.redact(str(given))}: a database URL needs --table NAME or --query SQL")
        return SqlSource(Database(str(given), password_env), table, query)
    if table is not None or query is not None:
        raise ChurnError(f"--table and --query read from a database URL; {given} is a file")
    return Path(given)


def open_writer(
    destination: str | Path, table: str | None, if_exists: str, run_id: str, password_env: str | None = None
) -> TableWriter | SqlTableWriter:
    """The writer for predict's --output: a database table (a URL with `table`), or a file."""
    if sql.is_url(destination):
        if table is None:
            raise ChurnError(f"{sql.redact(str(destination))}: writing to a database needs --output-table NAME")
        return SqlTableWriter(SqlTarget(Database(str(destination), password_env), table), if_exists, run_id)
    if table is not None:
        raise ChurnError(f"--output-table writes into a database; --output {destination} is a file, give a URL")
    return TableWriter(destination)


def table_format(path: Source) -> str:
    """Return "csv" or "parquet" from the file name ("sql" for a database); anything else is a DataError."""
    if isinstance(path, CsvBytes):
        return "csv"
    if isinstance(path, ArrowRows):
        return "arrow"
    if isinstance(path, SqlSource):
        return "sql"
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise DataError(f"{path}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def _check_exists(path: Source) -> str:
    fmt = table_format(path)
    if isinstance(path, Path) and not path.is_file():
        raise DataError(f"{path}: file not found; check the path (data.path in the config, or --data/--input)")
    return fmt


def table_columns(path: Source) -> list[str]:
    """The column names of a table, from its header (CSV), schema (Parquet) or a read of no rows (SQL)."""
    fmt = _check_exists(path)
    with _translate_errors(path):
        if isinstance(path, SqlSource):
            names = sql.columns(path)
        elif isinstance(path, ArrowRows):
            names = list(path.table.column_names)
        else:
            names = list(pq.ParquetFile(path).schema_arrow.names) if fmt == "parquet" else _csv_header(path)
    if not names or names == [""]:
        raise DataError(f"{path}: has no columns; expected a header row naming the columns")
    if len(names) > MAX_COLUMNS:
        raise DataError(
            f"{path}: has {len(names):,} columns, more than the {MAX_COLUMNS:,} churn reads; "
            "keep the columns the model needs"
        )
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise DataError(f"{path}: column name(s) {', '.join(map(repr, duplicated))} appear more than once; rename them")
    return names


def _csv_header(path: Source) -> list[str]:
    # The csv module reads just the first record; pyarrow would parse a whole block to find it.
    with _open_csv_stream(path) as stream, io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as text:
        try:
            return next(csv.reader(text))
        except StopIteration:
            raise FormatError(f"{path}: is empty; expected a CSV file with a header row and data rows") from None
        except UnicodeDecodeError:
            raise FormatError(f"{path}: is not UTF-8 text; re-save it as UTF-8") from None
        except csv.Error as exc:
            raise FormatError(
                f"{path}: the header row is not valid CSV ({exc}); fix it or re-export the file"
            ) from None


def read_table(
    path: Source,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    digest: sql.RowDigest | None = None,
) -> pd.DataFrame:
    """Read a whole table into pandas (CSV columns as text, `categorical` ones as Categoricals);
    `columns` limits what is read, `digest` (if given) sees every row.

    Raises:
        DataError: the file is missing, empty, header-only, not UTF-8 or not parseable.
    """
    (table,) = iter_table(path, columns, chunk_rows=None, categorical=categorical, digest=digest)
    return table.to_pandas()


def iter_table(
    path: Source,
    columns: Sequence[str] | None,
    chunk_rows: int | None,
    categorical: Sequence[str] = (),
    digest: sql.RowDigest | None = None,
) -> Generator[pa.Table]:
    """Yield the table as Arrow tables of exactly `chunk_rows` rows (the last may be shorter);
    `chunk_rows=None` yields one table; `digest`, if given, is updated with each.

    CSV columns are read as text; those named in `categorical` are dictionary-encoded while
    parsing, which costs almost nothing and makes them pandas Categoricals. A database gives
    its own column types.

    Raises:
        DataError: as read_table; a failure inside the data names the rows read before it.
    """
    if isinstance(path, ArrowRows):  # in memory: sliced, no reader thread
        yield from _slices(path, columns, chunk_rows)
        return
    header = table_columns(path)  # header problems first, with their own messages
    require_columns(
        header,
        columns or (),
        path,
        "add them to the file" if not isinstance(path, SqlSource) else "add them to the table or the query",
    )
    if isinstance(path, SqlSource):
        batches = sql.batches(path, columns or header, categorical)
    elif isinstance(path, Path) and table_format(path) == "parquet":
        batches = _parquet_batches(path, columns, chunk_rows)
    else:
        batches = _csv_batches(path, header, columns, categorical)
    done = 0
    for table in _prefetch(_rechunk(path, batches, chunk_rows)):
        done += table.num_rows
        if digest is not None:
            digest.update(table)
        yield table
    if done == 0:
        what = "has a header row but no data rows"
        what = "the table or query gives no rows" if isinstance(path, SqlSource) else what
        raise DataError(f"{path}: {what}; pass a table with at least one row")


def _slices(rows: ArrowRows, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.Table]:
    require_columns(rows.table.column_names, columns or (), rows, "send them")
    table = rows.table.select(list(columns)) if columns is not None else rows.table
    if table.num_rows == 0:
        raise DataError(f"{rows}: holds no rows; send at least one")
    step = chunk_rows or table.num_rows
    for start in range(0, table.num_rows, step):
        yield table.slice(start, step)


def _prefetch(tables: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Read ahead in a background thread while the caller works on the current chunk.

    pyarrow parses without holding the GIL, so on two cores reading and scoring overlap.
    Errors in the reader are raised here, in order; a consumer that stops early stops the reader.
    """
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for table in tables:
                while not stop.is_set():
                    try:
                        buffer.put(("table", table), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            buffer.put(("error", exc))

    reader = threading.Thread(target=produce, name="churn-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _rechunk(path: Source, batches: Iterator[pa.RecordBatch], chunk_rows: int | None) -> Iterator[pa.Table]:
    """Regroup the reader's batches (sized in bytes) into tables of exactly chunk_rows rows."""
    pending: list[pa.RecordBatch] = []
    pending_rows = yielded = 0
    while True:
        with _translate_errors(path, rows_read=yielded + pending_rows):
            batch = next(batches, None)
        if batch is None:
            break
        pending.append(batch)
        pending_rows += batch.num_rows
        while chunk_rows is not None and pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows)
            yielded += chunk_rows
            rest = table.slice(chunk_rows)
            pending, pending_rows = rest.to_batches(), rest.num_rows
    if pending_rows:
        yield pa.Table.from_batches(pending)


def _csv_batches(
    path: Source, header: list[str], columns: Sequence[str] | None, categorical: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    with _csv_reader(path, header, columns, categorical) as reader:
        yield from reader


@contextlib.contextmanager
def _csv_reader(
    path: Source, header: list[str], columns: Sequence[str] | None, categorical: Sequence[str]
) -> Iterator[pa_csv.CSVStreamingReader]:
    """pyarrow's streaming reader; `header` is the file's column names, already read and checked."""
    coded, coded_text = set(categorical), pa.dictionary(pa.int32(), pa.string())
    types = {name: coded_text if name in coded else pa.string() for name in header}
    with _open_csv_stream(path) as stream:
        yield pa_csv.open_csv(
            stream,
            # Single-threaded reading is faster here with quoted newlines allowed, and its
            # parse errors name the file's line ("Row #N").
            read_options=pa_csv.ReadOptions(block_size=READ_BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=types,
                include_columns=list(columns) if columns is not None else None,
                null_values=NA_VALUES,
                strings_can_be_null=True,
            ),
        )


def _open_csv_stream(path: Source) -> Any:
    if isinstance(path, CsvBytes):
        return pa.input_stream(pa.py_buffer(path.data))
    return pa.input_stream(str(path), compression="gzip" if path.name.lower().endswith(".gz") else None)


def count_rows(path: Source) -> int:
    """Data rows of a table: exact for Parquet (its metadata) and SQL (a count); for CSV its lines
    less the header, which counts a quoted newline inside a value as a row (an estimate, for a
    time estimate)."""
    if isinstance(path, SqlSource):
        return sql.count_rows(path)
    if isinstance(path, ArrowRows):
        return path.table.num_rows
    if not isinstance(path, CsvBytes) and table_format(path) == "parquet":
        with _translate_errors(path):
            return int(pq.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with _translate_errors(path), _open_csv_stream(path) as stream:
        while block := stream.read(READ_BLOCK_BYTES):
            lines, last = lines + block.count(b"\n"), block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def _parquet_batches(path: Path, columns: Sequence[str] | None, chunk_rows: int | None) -> Iterator[pa.RecordBatch]:
    parquet = pq.ParquetFile(path)
    yield from parquet.iter_batches(batch_size=chunk_rows or 1 << 16, columns=list(columns) if columns else None)


@contextlib.contextmanager
def _translate_errors(path: Source, rows_read: int = 0) -> Iterator[None]:
    """Turn pyarrow's and the OS's read errors into one DataError naming the file and rows."""
    try:
        yield
    except DataError:
        raise
    except (pa.ArrowException, OSError, EOFError, ValueError) as exc:
        raise FormatError(_describe(path, exc, rows_read)) from None


def _describe(path: Source, exc: Exception, rows_read: int) -> str:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    if "Empty CSV file" in detail:
        return f"{path}: is empty; expected a CSV file with a header row and data rows"
    if "UTF8" in detail or "UTF-8" in detail:
        problem = "is not UTF-8 text; re-save it as UTF-8"
    elif isinstance(path, SqlSource):  # the database's own errors are worded in churn.io.sql
        problem = f"could not be read ({detail})"
    elif table_format(path) == "parquet":
        problem = f"is not a readable Parquet file ({detail}); re-export it"
    else:
        problem = f"is not a valid CSV ({detail}); fix that row or re-export the file"
    # The reader works in blocks of bytes, so the bad row is known only to follow the rows read.
    where = f" (the bad row follows data row {rows_read:,}, all read correctly)" if rows_read else ""
    return f"{path}: {problem}{where}"


class TableWriter:
    """Write chunks (DataFrames or Arrow tables) to one CSV or Parquet file, atomically;
    "-" streams CSV to stdout, and a binary stream (a service's response) receives CSV.

    Use as a context manager: the file appears under its name only when the block ends
    without an exception; otherwise the temporary file is removed and any existing file kept.
    """

    def __init__(self, destination: str | Path | io.BufferedIOBase | io.BytesIO) -> None:
        self.destination = destination
        self.rows = 0
        self._parquet_writer: Any = None
        self._stack = contextlib.ExitStack()
        self._sink: Any = None

    def __enter__(self) -> TableWriter:
        if isinstance(self.destination, io.IOBase):
            self._sink = pa.PythonFile(self.destination, mode="w")
            self.format = "csv"
        elif str(self.destination) == "-":
            self._sink = pa.PythonFile(sys.stdout.buffer, mode="w")
            self.format = "csv"
        elif is_device(self.destination):  # /dev/null, a named pipe: written straight, as CSV
            self._sink = self._stack.enter_context(pa.OSFile(str(self.destination), mode="w"))
            self.format = "csv"
        else:
            path = Path(self.destination)
            self.format = table_format(path)
            tmp = self._stack.enter_context(atomic_path(path))
            compression = "gzip" if path.name.lower().endswith(".gz") else None
            self._sink = self._stack.enter_context(pa.output_stream(str(tmp), compression=compression))
        return self

    def write(self, frame: pd.DataFrame | pa.Table) -> None:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        if self.format == "parquet":
            if self._parquet_writer is None:
                self._parquet_writer = pq.ParquetWriter(self._sink, table.schema)
                # closed as part of the cleanup, before the sink and the temporary file, on any exit
                self._stack.callback(self._parquet_writer.close)
            self._parquet_writer.write_table(table)
        else:
            if self.rows == 0:
                self._sink.write(_csv_line(table.column_names))
            self._sink.write(_csv_rows(table))
        self.rows += table.num_rows

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if str(self.destination) == "-":
                sys.stdout.buffer.flush()
        finally:
            self._stack.__exit__(*exc_info)


def _csv_line(values: list[str]) -> bytes:
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(values)
    return line.getvalue().encode("utf-8")


def _csv_rows(table: pa.Table) -> pa.Buffer:
    """CSV rows without quotes, as pandas would write them; quoted only where a value needs it."""
    for quoting in ("none", "needed"):  # "none" refuses values with a comma, quote or newline
        buffer = pa.BufferOutputStream()
        try:
            pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False, quoting_style=quoting))
        except pa.ArrowInvalid:
            continue
        return buffer.getvalue()
    raise AssertionError("unreachable: quoting 'needed' accepts every value")


def write_table(frame: pd.DataFrame, destination: str | Path) -> None:
    """Write one DataFrame atomically as CSV or Parquet by file name; "-" writes CSV to stdout."""
    with TableWriter(destination) as writer:
        writer.write(frame)


class Spill:
    """Chunks kept on disk between two passes over them (Arrow IPC in a temporary folder, removed
    on exit): a budget ranks every customer before the first row is written, yet the input is
    read once, so every row's rank belongs to that very row."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def __enter__(self) -> Spill:
        folder = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="churn-spill-"))
        self._path = Path(folder) / "chunks.arrows"
        return self

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = table.schema
            self._writer = pa.ipc.new_stream(str(self._path), table.schema)
        self._writer.write_table(table if table.schema == self._schema else table.cast(self._schema))
        self.rows += table.num_rows

    def replay(self) -> Iterator[pa.Table]:
        """The chunks in the order written, each as it was."""
        if self._writer is None:
            return
        self._writer.close()
        with pa.memory_map(str(self._path)) as source, pa.ipc.open_stream(source) as reader:
            for batch in reader:
                yield pa.Table.from_batches([batch])

    def __exit__(self, *exc_info: Any) -> None:
        with contextlib.suppress(pa.ArrowException):
            if self._writer is not None:
                self._writer.close()
        self._stack.close()
