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
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import numpy as np
import pyarrow as pa

from churn.errors import ChurnError, DataError

INSTALL = "pip install -r requirements-sql.txt (or pip install -e '.[sql]')"
# libpq waits this long for a server that does not answer (an unreachable host), in seconds.
CONNECT_TIMEOUT_S = 5
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_POSTGRES = "adbc_driver_postgresql"
_DRIVERS = {"postgresql": _POSTGRES, "postgres": _POSTGRES, "sqlite": "adbc_driver_sqlite"}
# pyarrow's names for what ADBC's SQLite driver says when a column changes type part-way
_SQLITE_MISMATCH = re.compile(r"Type mismatch in column (\d+): expected (\S+) but got (\S+)")


def is_url(text: str | Path) -> bool:
    """A database URL (scheme://...) rather than a file path."""
    return isinstance(text, str) and bool(_URL.match(text))


@dataclass(frozen=True)
class Database:
    """A database URL, and the environment variable holding its password when the URL has none."""

    url: str
    password_env: str | None = None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.split("+")[0].lower()

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
        given = urlsplit(self.url).password
        if given is not None:
            return unquote(given)
        return os.environ.get(self.password_env) if self.password_env else None

    def __str__(self) -> str:
        return self.shown


def redact(url: str) -> str:
    """The URL without its password: the user part keeps the user, a password= parameter shows ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    # spelled out rather than urlunsplit, which drops the empty host of sqlite:///file.db
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class SqlSource:
    """Rows of a database: a table (`schema.table` or `table`) or a query."""

    database: Database
    table: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise ChurnError(f"{self.database}: name a --table or give a --query (one of them)")

    @property
    def name(self) -> str:
        """A short name, for default output file names: the table's, or "query"."""
        return (self.table or "query").split(".")[-1]

    @property
    def select(self) -> str:
        return self.query.strip().rstrip(";") if self.query else f"SELECT * FROM {quote_table(self.table or '')}"

    def __str__(self) -> str:
        return f"{self.database.shown} " + (f"table {self.table}" if self.table else "(query)")

    @functools.cached_property
    def column_names(self) -> tuple[str, ...]:
        """Read once per source: every door checks the columns before reading (and reading
        checks them again), and each check would be another connection and round trip."""
        return tuple(_read_columns(self))


def quote_table(name: str) -> str:
    """`schema.table` as "schema"."table": names are quoted, so their case is kept and no
    name can end the statement."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


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
            connection = driver.connect(_sqlite_path(database, create))
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


def _sqlite_path(database: Database, create: bool) -> str:
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
    if parts.password is None and database.password_env:
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
    if database.scheme in ("postgresql", "postgres"):
        query.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def _connect_problem(database: Database, exc: Exception) -> str:
    detail = _one_line(database, exc)
    where = f"the server at {database.address}"
    if "password authentication failed" in detail or "no password supplied" in detail:
        return (f"{database}: {where} refused the login ({detail}); give the password in PGPASSWORD, ~/.pgpass or "
                "the variable data.source.password_env names")  # fmt: skip
    if any(word in detail for word in ("Connection refused", "timeout expired", "could not translate", "No route")):
        return f"{database}: cannot reach {where} ({detail}); check the host and port, and that the server runs"
    return f"{database}: cannot connect ({detail})"


def _one_line(database: Database, exc: Exception) -> str:
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
    detail = _one_line(source.database, exc)
    fix = "fix --query (or data.source.query)" if source.query else "check --table (or data.source.table)"
    return DataError(f"{source}: the database refused the read ({detail}); {fix}")


def _select(source: SqlSource, columns: Sequence[str] | None, limit: int | None = None) -> str:
    picked = ", ".join(quote_table(column) for column in columns) if columns else "*"
    tail = f" LIMIT {limit}" if limit is not None else ""
    return f"SELECT {picked} FROM ({source.select}) AS churn_source{tail}"


def columns(source: SqlSource) -> list[str]:
    """The column names the table or query gives, from a read of no rows (once per source)."""
    return list(source.column_names)


def _read_columns(source: SqlSource) -> list[str]:
    with connect(source.database) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(_select(source, None, limit=0))
            return [str(item[0]) for item in cursor.description or ()]
        except Exception as exc:
            raise _query_problem(source, exc) from None


def count_rows(source: SqlSource) -> int:
    with connect(source.database) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(f"SELECT count(*) FROM ({source.select}) AS churn_source")
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
            cursor.execute(_select(source, columns))
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
    return DataError(f"{source}: reading failed after {rows:,} rows ({_one_line(source.database, exc)})")


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


@dataclass(frozen=True)
class SqlTarget:
    """A table to write scores into."""

    database: Database
    table: str

    def __str__(self) -> str:
        return f"{self.database.shown} table {self.table}"


class SqlTableWriter:
    """Write chunks into a database table in one transaction, with a run_id and a scored_at
    column; used as `tables.TableWriter` is.

    A new or replaced table is built as a staging table beside it and renamed into place at
    the end, in the same transaction (`replace` drops the old one there): readers see the old
    table until the commit, and a failure or a kill (the server rolls an unfinished transaction
    back) leaves it as it was. `append` adds the rows inside one transaction.

    On PostgreSQL a staging table gets run_id and scored_at at the end, as columns added with a
    constant default (which PostgreSQL stores once, not per row) whose default is then dropped:
    cheaper than sending the same two values with every row.
    """

    format = "table"

    def __init__(self, target: SqlTarget, if_exists: str, run_id: str) -> None:
        self.target = target
        self.if_exists = if_exists
        self.rows = 0
        self._run_id, self._scored_at = run_id, datetime.now(UTC)
        self._stack = contextlib.ExitStack()
        self._existing: list[str] | None = None
        self._staging = _staging_name(target.table)

    def __enter__(self) -> SqlTableWriter:
        self._connection = self._stack.enter_context(connect(self.target.database, create=True))
        self._cursor = self._connection.cursor()
        self._existing = self._existing_columns()
        if self._existing is not None and self.if_exists == "fail":
            raise DataError(
                f"{self.target}: the table exists; pass --overwrite to replace it, or --if-exists append to add rows"
            )
        return self

    def _existing_columns(self) -> list[str] | None:
        try:
            self._cursor.execute(f"SELECT * FROM {quote_table(self.target.table)} LIMIT 0")
            found = [str(item[0]) for item in self._cursor.description or ()]
        except Exception:  # taken as no such table: if it does exist, the rename at the end fails instead
            found = None
        self._connection.rollback()
        return found

    @property
    def _appending(self) -> bool:
        return self.if_exists == "append" and self._existing is not None

    @property
    def _constants_added_at_the_end(self) -> bool:
        return self.target.database.scheme in ("postgresql", "postgres") and not self._appending

    def write(self, frame: Any) -> None:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        if not self._constants_added_at_the_end:
            table = self._with_constants(table)
        if self.rows == 0 and self._appending:
            self._check_append(table.column_names)
        name, mode = self._destination()
        *schema, bare = name.split(".")
        try:  # the schema apart: a dotted name would be taken as one table name
            self._cursor.adbc_ingest(bare, table, mode=mode, db_schema_name=".".join(schema) or None)
        except Exception as exc:
            raise DataError(f"{self.target}: writing failed ({_one_line(self.target.database, exc)})") from None
        self.rows += table.num_rows

    def _destination(self) -> tuple[str, str]:
        if self._appending:
            return self.target.table, "append"
        return self._staging, "create" if self.rows == 0 else "append"

    def _with_constants(self, table: pa.Table) -> pa.Table:
        rows = table.num_rows
        run_id = pa.array([self._run_id] * rows, pa.string())
        when = pa.array([self._scored_at] * rows, pa.timestamp("us", tz="UTC"))
        return table.append_column("run_id", run_id).append_column("scored_at", when)

    def _check_append(self, columns: list[str]) -> None:
        if self._existing != columns:
            raise DataError(
                f"{self.target}: --if-exists append needs the table's columns to be {', '.join(columns)}; it has "
                f"{', '.join(self._existing or [])}; write to a new table or pass --overwrite"
            )

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        try:
            if exc_type is None:
                self._publish()
            else:
                with contextlib.suppress(Exception):
                    self._connection.rollback()
        finally:
            self._stack.close()

    def _publish(self) -> None:
        try:
            if self._constants_added_at_the_end:
                self._add_constant_columns()
            if not self._appending:
                if self._existing is not None:  # replace: the old table goes in the same transaction
                    self._cursor.execute(f"DROP TABLE {quote_table(self.target.table)}")
                bare = self.target.table.split(".")[-1]
                self._cursor.execute(f"ALTER TABLE {quote_table(self._staging)} RENAME TO {quote_table(bare)}")
            self._connection.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._connection.rollback()
            raise DataError(f"{self.target}: the table was not replaced ({_one_line(self.target.database, exc)}); "
                            "it is as it was") from None  # fmt: skip

    def _add_constant_columns(self) -> None:
        staging = quote_table(self._staging)
        run_id = self._run_id.replace("'", "''")
        scored_at = self._scored_at.isoformat()
        self._cursor.execute(f"ALTER TABLE {staging} ADD COLUMN run_id TEXT DEFAULT '{run_id}', "
                             f"ADD COLUMN scored_at TIMESTAMPTZ DEFAULT '{scored_at}'")  # fmt: skip
        self._cursor.execute(f"ALTER TABLE {staging} ALTER COLUMN run_id DROP DEFAULT, "
                             "ALTER COLUMN scored_at DROP DEFAULT")  # fmt: skip


def _staging_name(table: str) -> str:
    """churn_staging_<table>_<random>, in the target's schema, within PostgreSQL's 63 characters."""
    *schema, bare = table.split(".")
    name = f"churn_staging_{bare[:32]}_{secrets.token_hex(4)}"
    return ".".join([*schema, name])
