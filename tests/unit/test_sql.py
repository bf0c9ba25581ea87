"""churn.io.sql's pieces: URLs shown without passwords, names quoted, database messages in one line."""

import pyarrow as pa
import pytest

from churn.config import load_config
from churn.errors import ChurnError, ConfigError
from churn.io import sql, tables
from churn.io.sql import Database, RowDigest, SqlSource


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://churn:s3cr%40t@db.example:5432/crm", "postgresql://churn:***@db.example:5432/crm"),
        (
            "postgresql://churn@db/crm?sslmode=require&password=abc",
            "postgresql://churn@db/crm?sslmode=require&password=***",
        ),
        ("sqlite:///data/crm.db", "sqlite:///data/crm.db"),
        ("sqlite:////srv/crm.db", "sqlite:////srv/crm.db"),
    ],
)
def test_a_url_is_shown_without_its_password(url, shown):
    assert sql.redact(url) == shown
    assert str(SqlSource(Database(url), table="t")) == f"{shown} table t"


def test_the_password_from_the_named_variable_reaches_the_driver_only(monkeypatch):
    monkeypatch.setenv("CRM_PASSWORD", "p@ss word")
    database = Database("postgresql://churn@127.0.0.1:5432/crm", password_env="CRM_PASSWORD")
    assert sql._uri(database) == "postgresql://churn:p%40ss%20word@127.0.0.1:5432/crm?connect_timeout=5"
    assert "p@ss" not in str(database) and database.password == "p@ss word"
    no_user = Database("postgresql://127.0.0.1/crm", password_env="CRM_PASSWORD")
    assert sql._uri(no_user) == "postgresql://127.0.0.1/crm?password=p%40ss+word&connect_timeout=5"
    monkeypatch.delenv("CRM_PASSWORD")
    with pytest.raises(ChurnError, match="data.source.password_env names CRM_PASSWORD, which is not set"):
        sql._uri(database)


def test_a_database_message_is_one_line_without_the_password():
    database = Database("postgresql://churn:hunter22@127.0.0.1:5432/crm")
    error = Exception('NOT_FOUND: Failed to prepare query: ERROR:  relation "x" does not exist\nLINE 1: select '
                      "* from x\n              ^\n\nQuery was: select * from x. SQLSTATE: 42P01 hunter22")  # fmt: skip
    assert sql.one_line(database, error) == 'relation "x" does not exist'
    login = Exception('IO: [libpq] Failed to connect: connection to server at "127.0.0.1", port 5432 failed: '
                      'FATAL:  password authentication failed for user "churn" (hunter22)\n')  # fmt: skip
    message = sql._connect_problem(database, login)
    assert "hunter22" not in message and "***" in message
    shown = "postgresql://churn:***@127.0.0.1:5432/crm"
    assert message.startswith(f"{shown}: the server at 127.0.0.1:5432 refused the login")


def test_table_names_are_quoted_so_no_name_ends_the_statement():
    assert SqlSource(Database("sqlite:///x.db"), "crm.Customers").select == 'SELECT * FROM "crm"."Customers"'
    hostile = SqlSource(Database("sqlite:///x.db"), '"x""; drop table y; --"')
    assert hostile.parts == ('x"; drop table y; --',) and hostile.select == 'SELECT * FROM "x""; drop table y; --"'
    query = SqlSource(Database("sqlite:///x.db"), query="select * from t;  ")
    assert sql.select_of(query, ["a", "b.c"]) == 'SELECT "a", "b.c" FROM (\nselect * from t\n) AS churn_source'


def test_a_source_names_a_table_or_a_query_not_both():
    with pytest.raises(ChurnError, match="name a --table or give a --query"):
        SqlSource(Database("sqlite:///x.db"), "t", "select 1")
    assert isinstance(tables.source_of("data/x.csv"), type(tables.Path("x")))
    assert tables.source_of("sqlite:///x.db", query="select 1").query == "select 1"


def test_the_columns_are_read_once_per_source(tmp_path, monkeypatch):
    from support import load_sqlite

    url = load_sqlite(tmp_path / "crm.db", "t", pa.table({"a": [1, 2], "b": ["x", "y"]}))
    connected = []
    real_connect = sql.connect
    monkeypatch.setattr(sql, "connect", lambda *args, **kwargs: connected.append(1) or real_connect(*args, **kwargs))
    source = SqlSource(Database(url), "t")
    (table,) = tables.iter_table(source, ["a"], None)
    assert tables.table_columns(source) == ["a", "b"] and table.column_names == ["a"]
    assert len(connected) == 2  # the columns once, the rows once
    assert tables.table_columns(SqlSource(Database(url), "t")) == ["a", "b"] and len(connected) == 3


def test_an_unknown_scheme_names_the_driver_it_looked_for():
    with pytest.raises(ChurnError, match=r"no ADBC driver for mysql:// is installed \(looked for adbc_driver_mysql\)"):
        sql.columns(SqlSource(Database("mysql://u@h/db"), "t"))


def test_the_row_digest_is_order_and_chunk_free_and_sees_every_value():
    table = pa.table({"b": ["x", "y", None, "z"], "a": [1.0, 2.0, 3.0, None]})

    def digest(*parts):
        rows = RowDigest()
        for part in parts:
            rows.update(part)
        return rows.hexdigest()

    whole = digest(table)
    assert whole == digest(table.slice(0, 1), table.slice(1)) == digest(table.take([3, 1, 0, 2]))
    assert whole == digest(table.select(["a", "b"]))  # columns by name, not position
    assert whole != digest(table.slice(1)) != digest(table.set_column(1, "a", pa.array([1.0, 2.0, 3.0, 4.0])))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"url": "postgresql://u:pw@h/db", "table": "t"}, "data.source.url holds a password"),
        ({"url": "postgresql://u@h/db?password=S3cr3t", "table": "t"}, "data.source.url holds a password"),
        ({"url": "postgresql://u@h/db?sslmode=require&PASSWORD=S3cr3t", "table": "t"}, "holds a password"),
        ({"url": "postgresql://u:Sec/ret@h/db", "table": "t"}, "data.source.url holds a password"),
        ({"url": "postgresql://u@[::1:5432/db", "table": "t"}, "data.source.url a postgresql:// URL could not be"),
        ({"url": "sqlite:///x.db", "table": "t", "query": "select 1"}, "data.source.table and data.source.query are"),
        ({"url": "crm.db", "table": "t"}, "data.source.url 'crm.db' is not a database URL"),
    ],
)
def test_a_bad_data_source_is_a_config_error(write_config, source, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config({"data.path": None, "data.source": source}))


def test_data_path_and_a_data_source_with_rows_are_one_too_many(write_config):
    with pytest.raises(ConfigError, match="data.source and data.path both name a table"):
        load_config(write_config({"data.source": {"url": "sqlite:///x.db", "table": "t"}}))
    only_variable = load_config(write_config({"data.source": {"url": "sqlite:///x.db", "password_env": "PW"}}))
    assert only_variable.data.source.password_env == "PW"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # a / ? or # in a password moves the rest of it out of the user part: hidden all the same
        ("postgresql://churn:Sec/retPW@127.0.0.1:5432/crm", "postgresql://churn:***@127.0.0.1:5432/crm"),
        ("postgresql://churn:Se?cret#PW@127.0.0.1:5432/crm", "postgresql://churn:***@127.0.0.1:5432/crm"),
        ("sqlite://churn:SecretPW@/crm.db", "sqlite://churn:***@/crm.db"),
        ("postgresql://u:pw@[::1:55432/crm", "postgresql://u:***@[::1:55432/crm"),
        ("postgresql://churn@db/crm?password=a&b#c&sslmode=x", "postgresql://churn@db/crm?password=***"),
    ],
)
def test_a_password_is_hidden_even_where_the_url_does_not_parse(url, shown):
    assert sql.redact(url) == shown
    assert sql.has_password(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://churn:Sec/retPW@127.0.0.1:5432/crm",
        "postgresql://u:pw@[::1:55432/crm",
        "postgresql://u:pw@[zz]:55432/crm",
        "postgresql://churn:pw@127.0.0.1:99999/crm",
        "sqlite://churn:SecretPW@/crm.db",
    ],
)
def test_a_url_that_does_not_parse_is_refused_naming_only_its_scheme(url):
    with pytest.raises(ChurnError) as error:
        Database(url)
    message = str(error.value)
    assert message.startswith(("a postgresql:// URL", "a sqlite:// URL")) and "pw" not in message.lower()
    assert "Sec" not in message and "retPW" not in message and "::1" not in message


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("select * from t; drop table t", "more than one statement"),
        ("select * from t) x; delete from t; select (1", "closes a parenthesis it never opened"),
        ("select 1 from (select 2", "parenthesis(es) open"),
        ("select 'it''s", "unclosed quote"),
        ("select 1 /* never closed", "unclosed comment"),
        (" ; -- nothing", "is empty"),
    ],
)
def test_a_query_must_be_one_statement(query, problem):
    with pytest.raises(ChurnError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        SqlSource(Database("sqlite:///x.db"), query=query)


@pytest.mark.parametrize(
    "query",
    ["select * from t -- latest rows", "select * from t; -- latest rows", "select ';' as a, $$;$$ as b from t;;\n"],
)
def test_trailing_semicolons_and_comments_are_not_part_of_the_query(query):
    source = SqlSource(Database("sqlite:///x.db"), query=query)
    assert ";" not in source.select.replace("';'", "").replace("$$;$$", "") and "--" not in source.select


def test_names_in_messages_are_shortened_escaped_and_checked():
    with pytest.raises(ChurnError, match="is not a table name"):
        SqlSource(Database("sqlite:///x.db"), "")
    with pytest.raises(ChurnError) as long_name:
        SqlSource(Database("sqlite:///x.db"), "t" * 100_000 + ".x.y")
    assert len(str(long_name.value)) < 300
    with pytest.raises(ChurnError, match=r"\\x1b"):
        SqlSource(Database("sqlite:///x.db"), "bad\x1bname")
    with pytest.raises(ChurnError, match="longer than the 63 bytes PostgreSQL keeps of a name: it would use 'aaa"):
        SqlSource(Database("postgresql://churn@127.0.0.1/crm"), "a" * 64)
    assert SqlSource(Database("sqlite:///x.db"), '"customers"').parts == ("customers",)
