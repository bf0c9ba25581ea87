"""Scores into a database table, in one transaction; and the refusal to write into a table the
read takes its rows from.

Every name is resolved as the database itself will resolve it before anything is written:
PostgreSQL's schema search path (a bare name goes into `current_schema()`, and every statement
names the table with its schema, so a same-named table further down the path is never
touched), SQLite's case-insensitive names and its one schema, `main`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from churn.errors import ChurnError, DataError
from churn.io import sql_text
from churn.io.sql import Database, SqlSource, connect, one_line, select_of, sqlite_path

Key = tuple[str, ...]  # a table as the database names it: (schema, table) or, in SQLite, (table,)


@dataclass(frozen=True)
class SqlTarget:
    """A table to write scores into."""

    database: Database
    table: str

    def __post_init__(self) -> None:
        _ = self.parts  # a bad name is refused before anything connects

    @functools.cached_property
    def parts(self) -> tuple[str, ...]:
        """The name's parts; SQLite's `main.` dropped (its only schema a file has)."""
        parts = sql_text.table_name(self.table, self.database.scheme, "--output-table")
        if self.database.scheme == "sqlite" and len(parts) == 2:
            if parts[0].lower() != "main":
                raise ChurnError(
                    f"--output-table {sql_text.shown(self.table)!r}: a SQLite file has one schema, "
                    "main; give table or main.table"
                )
            parts = parts[1:]
        return parts

    def __str__(self) -> str:
        return f"{self.database.shown} table {sql_text.shown(self.table)}"


def resolve(target: SqlTarget, cursor: Any) -> Key:
    """The table the database will write: PostgreSQL's schema filled in from its search path."""
    if not target.database.is_postgres or len(target.parts) == 2:
        return _key(target.database, target.parts)
    cursor.execute("SELECT current_schema()")
    schema = cursor.fetchone()[0]
    if schema is None:
        raise DataError(f"{target}: no schema of the search path exists to create the table in; give schema.table")
    return (str(schema), target.parts[0])


def _key(database: Database, parts: tuple[str, ...]) -> Key:
    return tuple(part.lower() for part in parts) if database.scheme == "sqlite" else parts


def refuse_writing_into_read(source: SqlSource, target: SqlTarget) -> None:
    """Refuse an output table that the read takes rows from, however it is spelled: another
    case (SQLite), the schema written out or not, another URL for the same database.

    Raises:
        ChurnError: the output table is one the input reads.
    """
    both_postgres = source.database.is_postgres and target.database.is_postgres
    if not both_postgres and not source.database.scheme == target.database.scheme == "sqlite":
        return  # other databases, or a read and a write in two kinds of database: nothing shared
    if target.database.scheme == "sqlite":
        written = sqlite_path(target.database, create=True)
        read = sqlite_path(source.database, create=False)
        if not Path(written).exists() or not os.path.samefile(written, read):
            return
        into = _key(target.database, target.parts)
        touched = _sqlite_tables_read(source)
    else:
        with connect(source.database) as connection:
            cursor = connection.cursor()
            server, touched = _postgres_identity(cursor), _postgres_tables_read(source, connection)
        with connect(target.database) as connection:
            cursor = connection.cursor()
            if _postgres_identity(cursor) != server:
                return
            into = resolve(target, cursor)
    if into in touched:
        raise ChurnError(
            f"{target}: --output-table is {'.'.join(into)}, which the input reads; write the scores to another table"
        )


def _postgres_identity(cursor: Any) -> tuple[str, ...]:
    """The server and database a connection reached, whatever host name or address led there."""
    cursor.execute(
        "SELECT current_database()::text, pg_postmaster_start_time()::text, "
        "(SELECT oid FROM pg_database WHERE datname = current_database())::text"
    )
    return tuple(cursor.fetchone())


def _postgres_tables_read(source: SqlSource, connection: Any) -> set[Key]:
    """Every table the read scans, from PostgreSQL's own plan of it (views seen through)."""
    cursor = connection.cursor()
    cursor.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})  # EXPLAIN cannot run in COPY
    try:
        cursor.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {select_of(source, None)}")
        plan = json.loads(cursor.fetchone()[0])
    except Exception as exc:
        raise DataError(f"{source}: the database refused the read ({one_line(source.database, exc)})") from None
    found: set[Key] = set()
    _relations(plan, found)
    return found


def _relations(node: Any, found: set[Key]) -> None:
    if isinstance(node, dict):
        if "Relation Name" in node and "Schema" in node:
            found.add((str(node["Schema"]), str(node["Relation Name"])))
        for value in node.values():
            _relations(value, found)
    elif isinstance(node, list):
        for value in node:
            _relations(value, found)


def _sqlite_tables_read(source: SqlSource) -> set[Key]:
    """Every table of the file the read opens (SQLite's OpenRead of a table's or an index's
    root page, in the compiled statement), views seen through."""
    path = Path(sqlite_path(source.database, create=False)).resolve()
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as connection:
        try:
            steps = connection.execute(f"EXPLAIN {select_of(source, None)}").fetchall()
            pages = dict(connection.execute("SELECT rootpage, tbl_name FROM sqlite_master").fetchall())
        except sqlite3.Error as exc:
            raise DataError(f"{source}: the database refused the read ({exc}); fix --query") from None
    # EXPLAIN's rows: addr, opcode, p1, p2 (the root page), p3 (the database: 0 is main), ...
    return {
        (str(pages[p2]).lower(),)
        for _, opcode, _, p2, p3, *_ in steps
        if opcode == "OpenRead" and p3 == 0 and p2 in pages
    }


# Arrow type families that one kind of column can take another's values in (a cast, exact).
_KINDS = (
    ("integer", pa.types.is_integer),
    ("floating", pa.types.is_floating),
    ("text", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    ("timestamp", pa.types.is_timestamp),
    ("boolean", pa.types.is_boolean),
)
_TAKES = {"floating": {"floating", "integer"}}


def _kind(data_type: pa.DataType) -> str:
    if pa.types.is_dictionary(data_type):
        return _kind(data_type.value_type)
    return next((name for name, test in _KINDS if test(data_type)), str(data_type))


class SqlTableWriter:
    """Write chunks into a database table in one transaction, with a run_id and a scored_at
    column; used as `tables.TableWriter` is.

    A new or replaced table is built as a staging table beside it and renamed into place at
    the end, in the same transaction (`replace` drops the old one there): readers see the old
    table until the commit, and a failure or a kill (the server rolls an unfinished transaction
    back) leaves it as it was. `append` adds the rows inside one transaction, each column cast to
    the table's own type when it is of the same kind (a refusal naming both types otherwise).

    On PostgreSQL a staging table gets run_id and scored_at at the end, as columns added with a
    constant default (which PostgreSQL stores once, not per row) whose default is then dropped:
    cheaper than sending the same two values with every row. Elsewhere scored_at is ISO 8601
    text with its UTC offset (SQLite has no time type).
    """

    format = "table"

    def __init__(self, target: SqlTarget, if_exists: str, run_id: str) -> None:
        self.target = target
        self.if_exists = if_exists
        self.rows = 0
        self._run_id, self._scored_at = run_id, datetime.now(UTC)
        self._stack = contextlib.ExitStack()
        self._existing: pa.Schema | None = None
        self._name: Key = ()

    def __enter__(self) -> SqlTableWriter:
        self._connection = self._stack.enter_context(connect(self.target.database, create=True))
        self._cursor = self._connection.cursor()
        try:
            self._name = resolve(self.target, self._cursor)
        finally:
            self._connection.rollback()
        self._staging = (*self._name[:-1], _staging_name(self._name[-1]))
        self._existing = self._existing_schema()
        if self._existing is not None and self.if_exists == "fail":
            raise DataError(
                f"{self.target}: the table exists; pass --overwrite to replace it, or --if-exists append to add rows"
            )
        return self

    def _existing_schema(self) -> pa.Schema | None:
        try:
            if self.target.database.scheme == "sqlite":
                return self._sqlite_schema()
            self._cursor.execute(f"SELECT * FROM {sql_text.quoted(self._name)} LIMIT 0")
            return self._cursor.fetch_arrow_table().schema
        except Exception:  # taken as no such table: if it does exist, the rename at the end fails instead
            return None
        finally:
            self._connection.rollback()

    def _sqlite_schema(self) -> pa.Schema | None:
        """The table's columns with the types their declared types give (SQLite's affinity
        rules); a column declared without a type takes any value (null type: not checked)."""
        name = self._name[-1].replace("'", "''")
        self._cursor.execute(f"SELECT name, type FROM pragma_table_info('{name}')")
        found = self._cursor.fetchall()
        return (
            pa.schema([(str(column), _sqlite_affinity(str(declared or ""))) for column, declared in found])
            if found
            else None
        )

    @property
    def _appending(self) -> bool:
        return self.if_exists == "append" and self._existing is not None

    @property
    def _constants_added_at_the_end(self) -> bool:
        return self.target.database.is_postgres and not self._appending

    def write(self, frame: Any) -> None:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        if not self._constants_added_at_the_end:
            table = self._with_constants(table)
        if self._appending:
            table = self._conformed(table)
        name = self._name if self._appending else self._staging
        mode = "append" if self._appending or self.rows else "create"
        try:  # the schema apart: a dotted name would be taken as one table name
            self._cursor.adbc_ingest(name[-1], table, mode=mode, db_schema_name=name[0] if len(name) == 2 else None)
        except Exception as exc:
            raise DataError(f"{self.target}: writing failed ({one_line(self.target.database, exc)})") from None
        self.rows += table.num_rows

    def _with_constants(self, table: pa.Table) -> pa.Table:
        rows = table.num_rows
        run_id = pa.array([self._run_id] * rows, pa.string())
        if self.target.database.is_postgres:  # appending: a timestamptz, as the table churn made has
            when = pa.array([self._scored_at] * rows, pa.timestamp("us", tz="UTC"))
        else:  # no time type (SQLite): ISO 8601 text with its offset
            when = pa.array([self._scored_at.isoformat()] * rows, pa.string())
        return table.append_column("run_id", run_id).append_column("scored_at", when)

    def _conformed(self, table: pa.Table) -> pa.Table:
        """The chunk with the existing table's columns and types, or a refusal naming the first
        difference."""
        existing = self._existing
        assert existing is not None  # only called when appending
        if existing.names != table.column_names:
            raise DataError(
                f"{self.target}: --if-exists append needs the table's columns to be {', '.join(table.column_names)}; "
                f"it has {', '.join(existing.names)}; write to a new table or pass --overwrite"
            )
        columns = []
        for field, column in zip(existing, table.columns, strict=True):
            if pa.types.is_null(field.type):  # SQLite: declared without a type, takes anything
                columns.append(column)
                continue
            theirs, ours = _kind(field.type), _kind(column.type)
            if theirs != ours and ours not in _TAKES.get(theirs, ()):
                held = (field.metadata or {}).get(b"POSTGRESQL:type", str(field.type).encode()).decode()
                raise DataError(
                    f"{self.target}: --if-exists append: column {field.name} is {held} in the table, "
                    f"and predict writes {ours} ({column.type}); write to a new table or pass "
                    "--overwrite"
                )
            columns.append(column.cast(field.type.value_type if pa.types.is_dictionary(field.type) else field.type))
        return pa.table(columns, names=existing.names)

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
                    self._cursor.execute(f"DROP TABLE {sql_text.quoted(self._name)}")
                staging, bare = sql_text.quoted(self._staging), sql_text.quoted(self._name[-1:])
                self._cursor.execute(f"ALTER TABLE {staging} RENAME TO {bare}")
            self._connection.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._connection.rollback()
            raise DataError(
                f"{self.target}: the table was not replaced ({one_line(self.target.database, exc)}); it is as it was"
            ) from None

    def _add_constant_columns(self) -> None:
        staging = sql_text.quoted(self._staging)
        run_id = self._run_id.replace("'", "''")
        scored_at = self._scored_at.isoformat()
        self._cursor.execute(
            f"ALTER TABLE {staging} ADD COLUMN run_id TEXT DEFAULT '{run_id}', "
            f"ADD COLUMN scored_at TIMESTAMPTZ DEFAULT '{scored_at}'"
        )
        self._cursor.execute(
            f"ALTER TABLE {staging} ALTER COLUMN run_id DROP DEFAULT, ALTER COLUMN scored_at DROP DEFAULT"
        )


def _sqlite_affinity(declared: str) -> pa.DataType:
    """SQLite's type affinity of a declared type (its documented rules, in their order)."""
    upper = declared.upper()
    if "INT" in upper:
        return pa.int64()
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if not upper or "BLOB" in upper:
        return pa.null()
    return pa.float64()  # REAL, FLOA, DOUB, and NUMERIC's numbers


def _staging_name(table: str) -> str:
    """churn_staging_<table>_<random>, within PostgreSQL's 63 bytes."""
    head = table.encode()[:32].decode(errors="ignore")
    return f"churn_staging_{head}_{secrets.token_hex(4)}"
