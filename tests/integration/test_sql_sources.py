"""SQL sources on SQLite (embedded, no server): train from a table and from a query, predict into
a table, and the file path's results byte for byte."""

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from support import TELCO, TELCO_SAMPLE, load_sqlite, read_sqlite, trained_copy, typed_table, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.errors import ChurnError, DataError
from churn.io import tables
from churn.io.sql import Database, RowDigest, SqlSource
from churn.workflows.predict import Output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained from the sample file, and the shipped data in a SQLite database (typed)."""
    folder = tmp_path_factory.mktemp("sql")
    config = load_config(write_quick_config(folder))
    pipeline.train(config)
    url = load_sqlite(folder / "crm.db", "customers", typed_table(TELCO))
    load_sqlite(folder / "crm.db", "sample", typed_table(TELCO_SAMPLE))
    return folder, url


@pytest.fixture
def work(trained, tmp_path):
    folder, url = trained
    config = load_config(trained_copy(folder, tmp_path / "work"))
    return config, url.replace(str(folder), str(tmp_path / "work")), tmp_path / "work"


def source(url, table=None, query=None):
    return SqlSource(Database(url), table, query)


def table_as_csv(table: pa.Table, path):
    tables.write_table(table.to_pandas(), path)
    return path.read_bytes()


def test_predict_from_a_table_writes_the_bytes_predict_writes_from_the_file(work):
    config, url, folder = work
    pipeline.predict(config, TELCO, folder / "from_file.csv")
    result = pipeline.predict(config, source(url, "customers"), folder / "from_table.csv")
    assert result.rows == 7043
    assert (folder / "from_table.csv").read_bytes() == (folder / "from_file.csv").read_bytes()


def test_predict_into_a_table_holds_the_file_columns_and_the_run_id_and_time(work):
    config, url, folder = work
    pipeline.predict(config, TELCO, folder / "from_file.csv")
    result = pipeline.predict(config, source(url, "customers"), Output(url, "scores"))
    assert result.output == f"{url} table scores"
    written = read_sqlite(folder / "crm.db", "SELECT * FROM scores")
    assert written.column_names[-2:] == ["run_id", "scored_at"]
    run_id = pipeline.load_run(config, None).run_id
    assert set(written.column("run_id").to_pylist()) == {run_id}
    assert len(set(written.column("scored_at").to_pylist())) == 1
    scores = written.drop_columns(["run_id", "scored_at"])
    assert table_as_csv(scores, folder / "back.csv") == (folder / "from_file.csv").read_bytes()


@pytest.mark.slow  # three trainings
def test_a_query_and_a_table_train_the_same_model_as_the_file(work):
    config, url, folder = work
    from_file = pipeline.load_run(config, None).record
    by_table = pipeline.train(config, source(url, "sample")).record
    by_query = pipeline.train(config, source(url, query="SELECT * FROM sample;")).record
    for record in (by_table, by_query):
        assert record.metrics == from_file.metrics
        assert record.threshold == from_file.threshold
        assert record.data.rows_read == from_file.data.rows_read == 400
        assert record.data.url == url
    assert (by_table.data.table, by_table.data.query) == ("sample", None)
    assert (by_query.data.table, by_query.data.query) == (None, "SELECT * FROM sample;")
    assert by_table.data.path == f"{url} table sample"
    # the same rows by table or by query: the same digest, which is not the file's bytes' digest
    assert by_table.data.sha256 == by_query.data.sha256 != from_file.data.sha256
    assert len(by_table.data.sha256) == 64
    report = (folder / "models" / by_query.run_id / "report.md").read_text()
    assert f"database: `{url} (query)`" in report and "query: `SELECT * FROM sample;`" in report


def test_the_digest_names_the_rows_in_any_order_and_any_chunking(work):
    config, url, folder = work
    data = typed_table(TELCO_SAMPLE)
    load_sqlite(folder / "crm.db", "reversed", data.take(pa.array(range(len(data) - 1, -1, -1))))
    changed = data.set_column(1, "gender", pc.if_else(pc.equal(pc.cast(data.column("tenure"), pa.string()), "1"),
                                                      "Other", data.column("gender")))  # fmt: skip
    load_sqlite(folder / "crm.db", "changed", changed)

    def digest(table, chunk_rows):
        rows = RowDigest()
        for _ in tables.iter_table(source(url, table), ["customerID", "gender", "tenure"], chunk_rows, digest=rows):
            pass
        return rows.hexdigest()

    assert digest("sample", None) == digest("sample", 7) == digest("reversed", 50)
    assert digest("changed", None) != digest("sample", None)


@pytest.mark.slow  # a training from the database
def test_train_reads_the_database_data_source_names(work, tmp_path):
    config, url, folder = work
    config_path = write_quick_config(folder, {"data.path": None, "data.source": {"url": url, "table": "sample"}})
    record = pipeline.train(load_config(config_path)).record
    assert record.data.table == "sample" and record.data.rows_read == 400
    assert json.loads((folder / "models" / record.run_id / "metadata.json").read_text())["data"]["url"] == url


def test_evaluate_and_monitor_read_a_database(work):
    config, url, folder = work
    evaluation = pipeline.evaluate(config, source(url, "customers"))
    assert evaluation.metrics.rows == 7043 and evaluation.input == f"{url} table customers"
    from_file = pipeline.evaluate(config, TELCO)
    assert evaluation.metrics == from_file.metrics
    from churn.workflows import monitor

    result = monitor.monitor(config, source(url, query="SELECT * FROM customers WHERE tenure > 12"))
    assert result.output == folder / "monitoring" / "query"
    figures = json.loads((result.output / "monitor.json").read_text())
    assert figures["rows"] == 4857 and len(figures["input_sha256"]) == 64
    assert figures["input"] == f"{url} (query)"


def test_evaluate_knows_the_training_table_by_its_digest(work):
    config, url, folder = work
    pipeline.train(config, source(url, "sample"))
    overlap = pipeline.evaluate(config, source(url, query="SELECT * FROM sample")).training_overlap
    assert overlap is not None and overlap.kind == "training file"


def test_an_existing_table_is_refused_replaced_or_added_to(work):
    config, url, folder = work
    small = source(url, query="SELECT * FROM customers LIMIT 10")
    pipeline.predict(config, small, Output(url, "scores"))
    with pytest.raises(DataError, match="table scores: the table exists; pass --overwrite"):
        pipeline.predict(config, source(url, "customers"), Output(url, "scores"))
    assert read_sqlite(folder / "crm.db", "SELECT count(*) AS n FROM scores").column("n")[0].as_py() == 10
    pipeline.predict(config, source(url, query="SELECT * FROM customers LIMIT 25"), Output(url, "scores", "replace"))
    assert read_sqlite(folder / "crm.db", "SELECT count(*) AS n FROM scores").column("n")[0].as_py() == 25
    pipeline.predict(config, small, Output(url, "scores", "append"))
    assert read_sqlite(folder / "crm.db", "SELECT count(*) AS n FROM scores").column("n")[0].as_py() == 35
    with pytest.raises(DataError, match="append needs the table's columns to be customerID, churn_probability"):
        pipeline.predict(config, small, Output(url, "sample", "append"))
    assert _tables(folder) == ["customers", "sample", "scores"]


def test_a_refused_input_leaves_the_previous_table_as_it_was(work):
    config, url, folder = work
    pipeline.predict(config, source(url, query="SELECT * FROM customers LIMIT 10"), Output(url, "scores"))
    before = read_sqlite(folder / "crm.db", "SELECT * FROM scores")
    # every chunk is written into the staging table before the unparsed share is checked
    bad = "SELECT *, 'not a number' AS tenure_text FROM customers"
    query = bad.replace("*, 'not a number' AS tenure_text", ", ".join(_columns_with_text_tenure()))
    with pytest.raises(DataError, match="tenure"):
        pipeline.predict(config, source(url, query=query), Output(url, "scores", "replace"))
    assert read_sqlite(folder / "crm.db", "SELECT * FROM scores").equals(before)
    assert _tables(folder) == ["customers", "sample", "scores"]  # no staging table left


def _columns_with_text_tenure():
    names = typed_table(TELCO_SAMPLE).column_names
    return [("'n/a' AS tenure" if name == "tenure" else f'"{name}"') for name in names]


def _tables(folder):
    found = read_sqlite(folder / "crm.db", "SELECT name FROM sqlite_master WHERE type = 'table'")
    return sorted(found.column("name").to_pylist())


@pytest.mark.parametrize(
    ("table", "query", "message"),
    [
        ("nosuch", None, r"table nosuch: the database refused the read \(.*no such table: nosuch\); check --table"),
        (None, "SELEC * FROM customers", r"\(query\): the database refused the read \(.*syntax error\); fix --query"),
        (None, "SELECT customerID, tenure FROM customers", r"missing required column\(s\) MonthlyCharges"),
    ],
)
def test_a_bad_table_or_query_is_one_clear_error(work, table, query, message):
    config, url, folder = work
    with pytest.raises(DataError, match=message):
        pipeline.predict(config, source(url, table, query), folder / "out.csv")
    assert not (folder / "out.csv").exists()


def test_a_column_of_two_types_in_sqlite_is_named(work):
    config, url, folder = work
    import sqlite3

    with sqlite3.connect(folder / "crm.db") as connection:  # SQLite keeps each value's own type
        connection.execute("CREATE TABLE mixed (customerID TEXT, x)")
        rows = [(f"c{i}", i if i < 1500 else "text") for i in range(2000)]
        connection.executemany("INSERT INTO mixed VALUES (?, ?)", rows)
    with pytest.raises(DataError, match=r"column x holds INT64 values and then STRING/BINARY ones .*CAST the column"):
        list(tables.iter_table(source(url, "mixed"), ["customerID", "x"], 100))


def test_a_missing_database_file_or_a_wrong_pairing_is_refused(work, tmp_path):
    config, url, folder = work
    with pytest.raises(DataError, match="database file .*missing.db not found"):
        tables.table_columns(source(f"sqlite:///{tmp_path}/missing.db", "t"))
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(ChurnError, match="a database URL needs --table NAME or --query SQL"):
        tables.source_of(url)
    with pytest.raises(ChurnError, match="--table and --query read from a database URL"):
        tables.source_of("customers.csv", table="customers")
    with pytest.raises(ChurnError, match="writing to a database needs --output-table NAME"):
        pipeline.predict(config, source(url, "customers"), Output(url))
    with pytest.raises(ChurnError, match="--output-table is customers, which the input reads"):
        pipeline.predict(config, source(url, "customers"), Output(url, "customers", "replace"))


def _count(folder, table="customers"):
    return read_sqlite(folder / "crm.db", f'SELECT count(*) AS n FROM "{table}"').column("n")[0].as_py()


def test_the_input_table_is_never_written_however_it_is_spelled(work, monkeypatch):
    config, url, folder = work
    monkeypatch.chdir(folder)
    reads = [source(url, "customers"), source("sqlite:///./crm.db", "customers"),
             source(url, query="select * from customers -- the whole table"),
             source(url, query="SELECT c.* FROM sample s JOIN Customers c USING (customerID)")]  # fmt: skip
    writes = [(url, "CUSTOMERS"), ("sqlite:///crm.db", "customers"), (f"sqlite:///{folder}/./crm.db", "main.customers"),
              (url, '"customers"')]  # fmt: skip
    for read in reads:
        for destination, table in writes:
            for if_exists in ("replace", "append"):
                with pytest.raises(ChurnError, match="which the input reads; write the scores to another table"):
                    pipeline.predict(config, read, Output(destination, table, if_exists))
    assert _count(folder) == 7043 and _tables(folder) == ["customers", "sample"]
    with pytest.raises(ChurnError, match="--output is the input file"):  # nor the database file itself
        pipeline.predict(config, source(url, "sample"), folder / "crm.db", quality_report=None)
    with pytest.raises(ChurnError, match="--output is the input file"):
        pipeline.predict(config, source(url, "sample"), folder / "out.csv", quality_report=folder / "crm.db")


def test_a_view_over_the_input_is_seen_through(work):
    config, url, folder = work
    import sqlite3

    with sqlite3.connect(folder / "crm.db") as connection:
        connection.execute("CREATE VIEW recent AS SELECT * FROM customers WHERE tenure < 12")
    with pytest.raises(ChurnError, match="--output-table is customers, which the input reads"):
        pipeline.predict(config, source(url, "recent"), Output(url, "Customers", "replace"))
    assert _count(folder) == 7043


def test_append_compares_types_too(work):
    config, url, folder = work
    small = source(url, query="SELECT * FROM customers LIMIT 10")
    pipeline.predict(config, small, Output(url, "scores"))
    pipeline.predict(config, small, Output(url, "scores", "append"))  # the table churn wrote takes its own rows
    assert _count(folder, "scores") == 20
    import sqlite3

    with sqlite3.connect(folder / "crm.db") as connection:
        connection.execute("CREATE TABLE texts (customerID TEXT, churn_probability TEXT, churn_prediction INTEGER, "
                           "run_id TEXT, scored_at TEXT)")  # fmt: skip
    with pytest.raises(DataError, match="column churn_probability is string in the table, and predict writes floating"):
        pipeline.predict(config, small, Output(url, "texts", "append"))
    assert _count(folder, "texts") == 0


def test_main_dot_a_table_and_the_time_written_as_iso_text(work):
    config, url, folder = work
    pipeline.predict(config, source(url, query="SELECT * FROM customers LIMIT 5"), Output(url, "main.scores"))
    import sqlite3

    with sqlite3.connect(folder / "crm.db") as connection:
        declared = {row[1]: row[2] for row in connection.execute("PRAGMA table_info(scores)")}
        (scored_at,) = connection.execute("SELECT DISTINCT scored_at FROM scores").fetchone()
    assert declared["scored_at"] == "TEXT" and declared["churn_probability"] == "REAL"
    assert scored_at.endswith("+00:00") and "T" in scored_at
    with pytest.raises(ChurnError, match="a SQLite file has one schema, main; give table or main.table"):
        pipeline.predict(config, source(url, "sample"), Output(url, "crm.scores"))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT * FROM customers) x; DELETE FROM customers; SELECT * FROM (SELECT 1", "closes a parenthesis"),
        ("SELECT * FROM customers; DELETE FROM customers", "holds more than one statement"),
        ("SELECT customerID, tenure, tenure, * FROM customers", "appear more than once; rename them"),
    ],
)
def test_a_query_that_is_not_one_select_with_distinct_columns_is_refused(work, query, message):
    config, url, folder = work
    with pytest.raises(ChurnError, match=message):
        pipeline.predict(config, source(url, query=query), folder / "out.csv")
    assert _count(folder) == 7043 and not (folder / "out.csv").exists()


def test_a_trailing_comment_or_semicolon_keeps_the_query_whole(work):
    config, url, folder = work
    for query in ("SELECT * FROM sample -- November", "SELECT * FROM sample; -- November\n", "SELECT * FROM sample;;"):
        assert pipeline.predict(config, source(url, query=query), folder / "out.csv").rows == 400


def test_a_locked_database_is_named_busy(work):
    config, url, folder = work
    import subprocess
    import sys

    # another process: SQLite's locks are POSIX locks, which one process never conflicts with itself on
    hold = "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); " \
           "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)"  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", hold, str(folder / "crm.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DataError, match="the database is busy"):
            pipeline.predict(config, source(url, "sample"), folder / "out.csv")
    finally:
        holder.kill()
        holder.wait(timeout=10)
