"""SQL databases as tables: read a table or a query in Arrow record batches, and write scores
into a table in one transaction.

Drivers are ADBC's (`adbc-driver-postgresql`, `adbc-driver-sqlite`, the optional `sql` extra):
they hand over Arrow record batches, the form every other table of churn already takes, with
the database's own column types, and PostgreSQL's reads and writes go through COPY. A URL of
another scheme is opened with the ADBC driver package of that name, where one is installed.

A password is never shown: every message names a database by `Database.shown`, which drops
it, and the database's own messages have it replaced before they are repeated.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import numpy as np
import pyarrow as pa

from churn.errors import ChurnError, DataError
from churn.io import sql_text
from churn.io.sql_text import check_url, has_password, is_url, redact, scheme_of  # noqa: F401 - churn.io.sql's face

INSTALL = "pip install -r requirements-sql.txt (or pip install -e '.[sql]')"
# libpq waits this long for a server that does not answer (an unreachable host), in seconds.
CONNECT_TIMEOUT_S = 5
_POSTGRES = "adbc_driver_postgresql"
_DRIVERS = {"postgresql": _POSTGRES, "postgres": _POSTGRES, "sqlite": "adbc_driver_sqlite"}
# pyarrow's names for what ADBC's SQLite driver says when a column changes type part-way
_SQLITE_RENAMED = re.compile(r"(.+):\d+")
_SQLITE_MISMATCH = re.compile(r"Type mismatch in column (\d+): expected (\S+) but got (\S+)")


@dataclass(frozen=True)
class Database:
    """A database URL, and the environment variable holding its password when the URL has none."""

    url: str
    password_env: str | None = None

    def __post_init__(self) -> None:
        check_url(self.url)

    @property
    def scheme(self) -> str:
        return scheme_of(self.url)

    @property
    def is_postgres(self) -> bool:
        return self.scheme in ("postgresql", "postgres")

    @property
    def shown(self) -> str:
        """The URL without its password (in the user part or a password= parameter)."""
        return redact(self.url)

    @property
    def address(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"

    @property
    def password(self) -> str | None:
        """The password this URL is opened with, if churn knows one (the driver may find its own)."""
        parts = urlsplit(self.url)
        if parts.password is not None:
            return unquote(parts.password)
        given = [value for key, value in parse_qsl(parts.query) if key.lower() == "password"]
        if given:
            return given[0]
        return os.environ.get(self.password_env) if self.password_env else None

    def __str__(self) -> str:
        return self.shown


@dataclass(frozen=True)
class SqlSource:
    """Rows of a database: a table (`schema.table` or `table`) or a query (one statement)."""

    database: Database
    table: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise ChurnError(f"{self.database}: name a --table or give a --query (one of them)")
        _ = self.select  # a bad name or query is refused before anything connects

    @functools.cached_property
    def parts(self) -> tuple[str, ...]:
        """The table's name as the database holds it (schema and table); () for a query."""
        if self.table is None:
            return ()
        return sql_text.table_name(self.table, self.database.scheme, "--table")

    @property
    def name(self) -> str:
        """A short name, for default output file names: the table's, or "query"."""
        return self.parts[-1] if self.parts else "query"

    @functools.cached_property
    def select(self) -> str:
        if self.query is not None:
            return sql_text.one_statement(self.query)
        return f"SELECT * FROM {sql_text.quoted(self.parts)}"

    def __str__(self) -> str:
        return f"{self.database.shown} " + (f"table {sql_text.shown(self.table)}" if self.table else "(query)")

    @functools.cached_property
    def column_names(self) -> tuple[str, ...]:
        """Read once per source: every door checks the columns before reading (and reading
        checks them again), and each check would be another connection and round trip."""
        return tuple(_read_columns(self))


def _driver(database: Database) -> Any:
    module = _DRIVERS.get(database.scheme, f"adbc_driver_{database.scheme}")
    try:
        return importlib.import_module(f"{module}.dbapi")
    except ImportError:
        if database.scheme in _DRIVERS:
            raise ChurnError(f"{database}: reading or writing a database needs the sql extra; {INSTALL}") from None
        raise ChurnError(
            f"{database}: no ADBC driver for {database.scheme}:// is installed (looked for {module}); churn "
            "opens postgresql:// and sqlite:// URLs, and others where an ADBC driver package exists"
        ) from None


@contextlib.contextmanager
def connect(database: Database, create: bool = False) -> Iterator[Any]:
    """A DB-API connection (autocommit off: every write is one transaction), closed after.

    `create`: a SQLite file may be created (writing); reading refuses a missing one.
    """
    driver = _driver(database)
    try:
        if database.scheme == "sqlite":
            connection = driver.connect(sqlite_path(database, create))
        else:
            connection = driver.connect(_uri(database))
    except ChurnError:
        raise
    except Exception as exc:  # the driver's own error: worded once, without the password
        raise DataError(_connect_problem(database, exc)) from None
    try:
        yield connection
    finally:
        with contextlib.suppress(Exception):  # a connection the server already dropped
            connection.close()


def sqlite_path(database: Database, create: bool) -> str:
    """The file a sqlite:// URL names (relative to the current folder after sqlite:///)."""
    path = database.url.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path  # sqlite:///relative.db, sqlite:////absolute.db
    if not path:
        raise ChurnError(f"{database}: name the database file, as sqlite:///data/crm.db")
    if not create and not Path(path).is_file():
        raise DataError(f"{database}: database file {path} not found; check the URL (sqlite:///relative/path.db)")
    if create and not Path(path).parent.is_dir():
        raise DataError(f"{database}: folder {Path(path).parent} does not exist; create it or fix the URL")
    return path


def _uri(database: Database) -> str:
    """The URL the driver opens: with the password from `password_env`, and a connect timeout."""
    parts = urlsplit(database.url)
    netloc, query = parts.netloc, dict(parse_qsl(parts.query))
    if parts.password is None and "password" not in query and database.password_env:
        password = os.environ.get(database.password_env)
        if password is None:
            raise ChurnError(
                f"{database}: data.source.password_env names {database.password_env}, which is not set; "
                "export it, or unset data.source.password_env to use PGPASSWORD or ~/.pgpass"
            )
        user, _, host = netloc.rpartition("@")
        if user:
            netloc = f"{user}:{quote(password, safe='')}@{host}"
        else:  # no user part to hold it: libpq's password parameter
            query["password"] = password
    if database.is_postgres:
        query.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def _connect_problem(database: Database, exc: Exception) -> str:
    detail = one_line(database, exc)
    where = f"the server at {database.address}"
    if "password authentication failed" in detail or "no password supplied" in detail:
        return (
            f"{database}: {where} refused the login ({detail}); give the password in PGPASSWORD, ~/.pgpass or "
            "the variable data.source.password_env names"
        )
    if any(word in detail for word in ("Connection refused", "timeout expired", "could not translate", "No route")):
        return f"{database}: cannot reach {where} ({detail}); check the host and port, and that the server runs"
    return f"{database}: cannot connect ({detail})"


def one_line(database: Database, exc: Exception) -> str:
    """The database's message, one line, the password (if churn knows it) replaced."""
    text = str(exc)
    for prefix in ("IO: [libpq] Failed to connect: ", "[libpq] Failed to connect: "):
        text = text.replace(prefix, "")
    text = text.split("\nQuery was:")[0]
    text = re.sub(r"^[A-Z_]+: ", "", text)  # ADBC's status name (NOT_FOUND: ...)
    text = text.replace("Failed to prepare query: ", "").replace("ERROR:  ", "")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("^")]
    line = lines[0] if lines else type(exc).__name__
    line = re.sub(r"^LINE \d+:.*", "", line) or type(exc).__name__
    password = database.password
    if password:
        line = line.replace(password, "***").replace(quote(password, safe=""), "***")
    return line[:300]


def _query_problem(source: SqlSource, exc: Exception) -> DataError:
    detail = one_line(source.database, exc)
    if "database is locked" in detail or "database is busy" in detail:
        return DataError(
            f"{source}: the database is busy (another connection holds a lock on it); retry when that write is done"
        )
    fix = "fix --query (or data.source.query)" if source.query else "check --table (or data.source.table)"
    return DataError(f"{source}: the database refused the read ({detail}); {fix}")


def select_of(source: SqlSource, columns: Sequence[str] | None, limit: int | None = None) -> str:
    """The read, the source inside parentheses on lines of their own: a trailing comment in
    a query ends at its line instead of swallowing the closing parenthesis."""
    picked = ", ".join(sql_text.quoted([column]) for column in columns) if columns else "*"
    tail = f" LIMIT {limit}" if limit is not None else ""
    return f"SELECT {picked} FROM (\n{source.select}\n) AS churn_source{tail}"


def columns(source: SqlSource) -> list[str]:
    """The column names the table or query gives, from a read of no rows (once per source)."""
    return list(source.column_names)


def _read_columns(source: SqlSource) -> list[str]:
    with connect(source.database) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(select_of(source, None, limit=0))
            names = [str(item[0]) for item in cursor.description or ()]
        except Exception as exc:
            raise _query_problem(source, exc) from None
    return _sqlite_duplicates_named(names) if source.database.scheme == "sqlite" else names


def _sqlite_duplicates_named(names: list[str]) -> list[str]:
    """SQLite renames a repeated column of a subquery `name:1`, `name:2`, ...: named back, so
    that the duplicate is refused as a file's or PostgreSQL's is."""
    present = set(names)
    return [
        match.group(1) if (match := _SQLITE_RENAMED.fullmatch(name)) and match.group(1) in present else name
        for name in names
    ]


def count_rows(source: SqlSource) -> int:
    with connect(source.database) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(f"SELECT count(*) FROM (\n{source.select}\n) AS churn_source")
            return int(cursor.fetchone()[0])
        except Exception as exc:
            raise _query_problem(source, exc) from None


def batches(
    source: SqlSource, columns: Sequence[str] | None, categorical: Sequence[str] = ()
) -> Iterator[pa.RecordBatch]:
    """The rows as record batches as the database streams them, column types its own (a
    PostgreSQL numeric arrives as its text); `categorical` columns dictionary-encoded, as the
    file readers give them."""
    with connect(source.database) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(select_of(source, columns))
            reader = cursor.fetch_record_batch()
        except Exception as exc:
            raise _query_problem(source, exc) from None
        rows = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:
                raise _read_problem(source, columns, exc, rows) from None
            rows += batch.num_rows
            yield _plain(batch, set(categorical))


def _read_problem(source: SqlSource, columns: Sequence[str] | None, exc: Exception, rows: int) -> DataError:
    mismatch = _SQLITE_MISMATCH.search(str(exc))
    if mismatch and columns:
        column = columns[int(mismatch.group(1))] if int(mismatch.group(1)) < len(columns) else mismatch.group(1)
        return DataError(
            f"{source}: column {column} holds {mismatch.group(2)} values and then {mismatch.group(3)} ones (after "
            f"row {rows:,}); SQLite keeps any type in any row: CAST the column to one type in --query"
        )
    return DataError(f"{source}: reading failed after {rows:,} rows ({one_line(source.database, exc)})")


def _plain(batch: pa.RecordBatch, categorical: set[str]) -> pa.RecordBatch:
    """Database-specific types as plain Arrow: extension types (numeric) as their storage,
    field metadata dropped, categorical columns dictionary-encoded."""
    arrays, fields = [], []
    for field, array in zip(batch.schema, batch.columns, strict=True):
        if isinstance(array, pa.ExtensionArray):
            array = array.storage
        if field.name in categorical and not pa.types.is_dictionary(array.type):
            array = array.dictionary_encode()
        arrays.append(array)
        fields.append(pa.field(field.name, array.type))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


class RowDigest:
    """A sha256 that names the rows read, whatever order the database returned them in.

    Each row is hashed to 64 bits (pandas' `hash_pandas_object`, over the columns sorted by
    name; a category hashes as its text), the row hashes are sorted, and sha256 is taken over
    them: the same rows give the same digest in any order and in any chunking.
    """

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []

    def update(self, table: pa.Table) -> None:
        import pandas as pd  # deferred: only a read that records a digest needs it

        frame = table.select(sorted(table.column_names)).to_pandas()
        self._hashes.append(pd.util.hash_pandas_object(frame, index=False).to_numpy())

    def hexdigest(self) -> str:
        hashes = np.sort(np.concatenate(self._hashes)) if self._hashes else np.zeros(0, dtype="uint64")
        return hashlib.sha256(hashes.astype("<u8").tobytes()).hexdigest()
