"""The CLI against a real PostgreSQL server (tests/postgres.py starts a throwaway one): train from
a query, predict into a table, the file path's bytes, a kill during the write, a wrong password,
an unreachable port, and no password in any output."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest
import yaml
from postgres import PASSWORD, running_postgres
from support import (
    REPO,
    TELCO,
    TELCO_SAMPLE,
    free_port,
    make_subscriptions,
    run_cli,
    subscriptions_config,
    typed_table,
    write_quick_config,
)

from churn import pipeline
from churn.config import load_config
from churn.io import tables
from churn.io.sql import Database, SqlSource
from churn.workflows.predict import Output

# A server of its own and a dozen commands: with the slow checks (.ci/run's `pytest -m slow`, the CI
# workflow's e2e step), so that the set-up test command needs no PostgreSQL and keeps its budget;
# the SQLite tests (tests/integration/test_sql_sources.py) cover the database code in every run.
pytestmark = pytest.mark.slow

QUERY = "select * from customers_by_month where snapshot = '2026-11'"


@pytest.fixture(scope="module")
def server():
    with running_postgres() as postgres:
        postgres.load("customers", typed_table(TELCO))
        sample = typed_table(TELCO_SAMPLE)
        months = pa.array(["2026-11"] * len(sample))
        later = sample.append_column("snapshot", pa.array(["2026-12"] * len(sample)))
        by_month = pa.concat_tables([sample.append_column("snapshot", months), later])
        postgres.load("customers_by_month", by_month)
        yield postgres


@pytest.fixture
def folder(tmp_path):
    write_quick_config(tmp_path)
    return tmp_path


def cli(*args, folder, password=PASSWORD, timeout=300):
    """The CLI with the password where libpq looks for it (PGPASSWORD), never in the arguments."""
    environment = {"PGPASSWORD": password} if password is not None else {}
    return run_cli(*args, cwd=folder, timeout=timeout, env=environment)


def test_train_from_a_query_and_predict_into_a_table_as_from_files(server, folder, monkeypatch):
    url = server.url()
    trained = cli("train", "--data", url, "--query", QUERY, folder=folder)
    assert trained.returncode == 0, trained.stderr
    assert f"trained on {url} (query)" in trained.stdout
    (run,) = (folder / "models").glob("2*")
    data = json.loads((run / "metadata.json").read_text())["data"]
    assert (data["url"], data["query"], data["table"], data["rows_read"]) == (url, QUERY, None, 400)
    assert len(data["sha256"]) == 64
    # (the same rows from a file train the same model: tests/integration/test_sql_sources.py)

    predicted = cli("predict", "--input", url, "--table", "customers", "--output", url, "--output-table", "scores",
                    folder=folder)  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    assert "wrote 7043 predictions" in predicted.stdout and f"to {url} table scores" in predicted.stdout
    pipeline.predict(load_config(folder / "config.yaml"), TELCO, folder / "from_file.csv")  # the file path
    written = server.read("SELECT * FROM scores")
    assert written.column_names[-2:] == ["run_id", "scored_at"]
    assert set(written.column("run_id").to_pylist()) == {run.name}
    assert len(set(written.column("scored_at").to_pylist())) == 1
    tables.write_table(written.drop_columns(["run_id", "scored_at"]).to_pandas(), folder / "back.csv")
    assert (folder / "back.csv").read_bytes() == (folder / "from_file.csv").read_bytes()
    # in process from here (the CLI's wiring is checked above): a second batch, added in one
    # transaction with its own scoring time, and a schema-qualified table
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    config = load_config(folder / "config.yaml")
    first_100 = SqlSource(Database(url), query="select * from customers limit 100")
    pipeline.predict(config, first_100, Output(url, "scores", "append"))
    both = server.read("SELECT scored_at, count(*) AS n FROM scores GROUP BY scored_at ORDER BY scored_at")
    assert both.column("n").to_pylist() == [7043, 100]
    # a schema-qualified table
    with server.connect() as connection:
        connection.cursor().execute("CREATE SCHEMA IF NOT EXISTS crm")
        connection.commit()
    pipeline.predict(config, first_100, Output(url, "crm.scores"))
    assert server.read("SELECT count(*) AS n FROM crm.scores").column("n").to_pylist() == [100]
    defaults = server.read("SELECT column_default FROM information_schema.columns WHERE table_name = 'scores' "
                           "AND column_name IN ('run_id', 'scored_at')")  # fmt: skip
    assert defaults.column(0).to_pylist() == [None] * 4  # in public and crm: no default left behind


def test_a_kill_during_the_write_leaves_the_previous_table_intact(server, folder):
    url = server.url()
    big = pa.concat_tables([typed_table(TELCO)] * 30)  # 211,290 rows: a write that lasts
    server.load("big", big)
    assert cli("train", folder=folder, password=None).returncode == 0
    first = cli("predict", "--input", url, "--table", "customers", "--output", url, "--output-table", "kept",
                folder=folder)  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = server.read('SELECT * FROM kept ORDER BY "customerID"')
    command = [sys.executable, str(REPO / "main.py"), "predict", "--input", url, "--table", "big", "--output", url,
               "--output-table", "kept", "--overwrite"]  # fmt: skip
    writing = subprocess.Popen(command, cwd=folder, env=dict(os.environ, PGPASSWORD=PASSWORD),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert _wait_for(lambda: _staging_writes(server) > 0, seconds=60), "the staging table was never written"
        writing.send_signal(signal.SIGKILL)
    finally:
        writing.kill()
        writing.wait(timeout=30)
    assert _wait_for(lambda: _staging_writes(server) == 0, seconds=30)
    assert server.read('SELECT * FROM kept ORDER BY "customerID"').equals(before)
    leftover = server.read("SELECT tablename FROM pg_tables WHERE tablename LIKE 'churn_staging%'")
    assert leftover.num_rows == 0


def _staging_writes(server) -> int:
    found = server.read("SELECT count(*) AS n FROM pg_stat_activity WHERE query ILIKE '%churn_staging%' "
                        "AND pid <> pg_backend_pid()")  # fmt: skip
    return int(found.column("n")[0].as_py())


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_wrong_password_is_one_line_naming_the_server_and_not_the_password(server, folder):
    wrong = "wrong-Pw-4471"
    with_url = server.url().replace("churn@", f"churn:{wrong}@")  # the worst case: in the URL
    result = cli("train", "--data", with_url, "--table", "customers", folder=folder, password=None)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    shown = server.url().replace("churn@", "churn:***@")
    assert lines[0].startswith(f"error: {shown}: the server at 127.0.0.1:{server.port} refused the login")
    assert "PGPASSWORD" in lines[0]
    assert wrong not in result.stderr + result.stdout
    assert not (folder / "models").exists()


def test_an_unreachable_port_is_exit_2_within_10_seconds_naming_host_and_port(folder):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = cli("train", "--data", f"postgresql://churn@127.0.0.1:{port}/crm", "--table", "customers", folder=folder)
    assert time.monotonic() - started < 10
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: postgresql://churn@127.0.0.1:{port}/crm: cannot reach the server at "
                                    f"127.0.0.1:{port} (")  # fmt: skip
    assert "Traceback" not in result.stderr and not (folder / "models").exists()


def test_no_password_appears_in_any_output(server, folder):
    """The password in the URL (the worst case), in data.source.password_env, and in PGPASSWORD:
    grep every log line, metadata, report, prediction and monitoring file, and MLflow's store
    and artefacts, for it."""
    url, with_password = server.url(), server.url(password=True)
    tracking = {"enabled": False, "uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": "churn-sql"}
    write_quick_config(folder, tracking=tracking)
    outputs = []
    for args in (
        ("-v", "train", "--track", "--data", with_password, "--table", "customers_by_month"),
        (
            "-v",
            "predict",
            "--input",
            with_password,
            "--table",
            "customers",
            "--output",
            with_password,
            "--output-table",
            "scored_with_url",
            "--report",
            "quality.json",
        ),
        ("-v", "evaluate", "--input", with_password, "--query", QUERY),
        ("-v", "monitor", "--input", with_password, "--table", "customers"),
        ("-v", "predict", "--input", with_password, "--table", "nosuch"),
        ("models", "list"),
        ("-v", "predict", "--input", f"{url}?password={PASSWORD}", "--table", "customers", "--output", "q.csv"),
        ("-v", "predict", "--input", f"{url}?password={PASSWORD}", "--table", "nosuch"),
    ):
        result = cli(*args, folder=folder, password=None)
        outputs.append(result.stdout + result.stderr)
    assert "error: postgresql://churn:***@127.0.0.1" in outputs[4]  # the refused table, named without it
    assert "error: postgresql://churn@127.0.0.1" in outputs[7] and "?password=***" in outputs[7]
    source = {"url": url, "table": "customers_by_month", "password_env": "CRM_PASSWORD"}
    config = write_quick_config(folder, {"data.path": None, "data.source": source})
    by_variable = run_cli("-v", "train", "-c", config, cwd=folder, env={"CRM_PASSWORD": PASSWORD})
    assert by_variable.returncode == 0, by_variable.stderr
    outputs.append(by_variable.stdout + by_variable.stderr)
    assert "password_env" in (folder / "config.yaml").read_text()
    files = [path for path in folder.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"metadata.json", "report.md", "monitor.json", "quality.json", "mlflow.db", "MLmodel"} <= names
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    for text in outputs:
        assert PASSWORD not in text
    written = server.read("SELECT count(*) AS n FROM scored_with_url")
    assert written.column("n")[0].as_py() == 7043


def test_the_database_column_types_are_cleaned_as_a_file_s_text(server, tmp_path, monkeypatch):
    """integer, numeric, smallint, boolean and date columns: trained on (a time split on the
    date), and scored the same as the same rows exported to CSV."""
    frame = make_subscriptions(600, label="bool")
    frame["signup_month"] = [f"2026-{1 + i * 6 // len(frame):02d}-01" for i in range(len(frame))]
    server.load("raw", pa.Table.from_pandas(frame.astype(str), preserve_index=False))
    with server.connect() as connection:
        cursor = connection.cursor()
        cursor.execute("DROP TABLE IF EXISTS typed")
        cursor.execute("CREATE TABLE typed AS SELECT account, months_active::int, monthly_fee::numeric(10, 2), "
                       "support_calls::smallint, plan, autopay::int::boolean, region, churned::boolean, "
                       "signup_month::date FROM raw")  # fmt: skip
        connection.commit()
    exported = frame.assign(autopay=frame["autopay"].map({1: "true", 0: "false"}))  # as psql would export it
    exported.to_csv(tmp_path / "typed.csv", index=False)
    config = subscriptions_config(tmp_path / "typed.csv", positive_label=True)
    config["split"] = {"method": "time", "time_column": "signup_month", "test_size": 0.2, "random_state": 0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    loaded = load_config(tmp_path / "config.yaml")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    source = SqlSource(Database(server.url()), "typed")
    record = pipeline.train(loaded, source).record
    assert record.split.method == "time" and record.split.test_rows == 200  # May and June
    assert record.split.test_period[0].startswith("2026-05-01")
    assert record.features.categories["autopay"] == ("False", "True")
    pipeline.predict(loaded, source, tmp_path / "from_table.csv")
    pipeline.predict(loaded, tmp_path / "typed.csv", tmp_path / "from_file.csv")
    assert (tmp_path / "from_table.csv").read_bytes() == (tmp_path / "from_file.csv").read_bytes()
