"""PostgreSQL as a hostile user spells it: the input table named another way as the output, a
table of other types to append to, and a budget read while another session deletes rows."""

import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from postgres import PASSWORD, running_postgres
from support import TELCO, typed_table, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.errors import ChurnError, DataError
from churn.io.sql import Database, SqlSource
from churn.workflows.predict import Output

pytestmark = pytest.mark.slow  # a server of its own: with the slow checks, as tests/e2e/test_postgres.py


@pytest.fixture(scope="module")
def server():
    with running_postgres() as postgres:
        postgres.load("customers", typed_table(TELCO))
        yield postgres


@pytest.fixture
def config(server, tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    config = load_config(write_quick_config(tmp_path))
    pipeline.train(config)
    return config


def count(server, table="customers"):
    return server.read(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py()


def test_the_input_table_is_never_written_however_it_is_spelled(server, config, tmp_path):
    url = server.url()
    localhost = url.replace("127.0.0.1", "localhost")
    server.execute("CREATE OR REPLACE VIEW recent AS SELECT * FROM customers WHERE tenure < 12")
    reads = [SqlSource(Database(url), "customers"), SqlSource(Database(url), "public.customers"),
             SqlSource(Database(url), query="select * from public.customers -- all of them"),
             SqlSource(Database(localhost), "recent")]  # fmt: skip
    writes = [(url, "public.customers"), (localhost, "customers"), (url, '"customers"')]
    for read in reads:
        for destination, table in writes:
            for if_exists in ("replace", "append"):
                with pytest.raises(ChurnError, match="--output-table is public.customers, which the input reads"):
                    pipeline.predict(config, read, Output(destination, table, if_exists))
    long_name = "customers_of_the_month_of_november_two_thousand_and_twenty_six_x"  # 65 bytes
    for name in (long_name, long_name + "y"):  # two names PostgreSQL would cut to the same 63 bytes
        with pytest.raises(ChurnError, match=f"PostgreSQL keeps of a name: it would use '{long_name[:63]}'"):
            pipeline.predict(config, reads[0], Output(url, name, "replace"))
    assert count(server) == 7043
    # another table of another schema is written, in that schema
    server.execute("CREATE SCHEMA IF NOT EXISTS crm")
    pipeline.predict(config, reads[0], Output(url, "crm.customers"))
    assert count(server, "crm.customers") == 7043 and count(server) == 7043


def test_append_to_a_table_of_other_types_names_the_column_and_both_types(server, config):
    url = server.url()
    small = SqlSource(Database(url), query="select * from customers limit 20")
    pipeline.predict(config, small, Output(url, "scores", "replace"))
    pipeline.predict(config, small, Output(url, "scores", "append"))  # its own types: cast where they differ
    assert count(server, "scores") == 40
    server.execute("DROP TABLE IF EXISTS texts")
    server.execute("CREATE TABLE texts (\"customerID\" text, churn_probability text, churn_prediction smallint, "
                   "run_id text, scored_at timestamptz)")  # fmt: skip
    with pytest.raises(DataError, match="column churn_probability is text in the table, and predict writes floating"):
        pipeline.predict(config, small, Output(url, "texts", "append"))
    assert count(server, "texts") == 0


def test_a_budget_on_a_table_being_deleted_from_ranks_every_row_it_writes(server, config, tmp_path):
    """Another session deletes rows while predict reads: every written row's saving and contact
    are its own (one read), never a neighbour's."""
    url = server.url()
    big = pa.concat_tables([typed_table(TELCO)] * 20)  # 140,860 rows: a read that lasts
    ids = pa.array([f"c{i:07d}" for i in range(len(big))])
    server.load("moving", big.set_column(big.column_names.index("customerID"), "customerID", ids))
    stop, deleted = threading.Event(), []

    def delete_rows():
        with server.connect() as connection:
            cursor = connection.cursor()
            for _ in range(400):  # bounded: at most 400 deletes, 20 s
                if stop.is_set():
                    return
                cursor.execute("DELETE FROM moving WHERE ctid IN (SELECT ctid FROM moving ORDER BY random() LIMIT 50)")
                connection.commit()
                deleted.append(50)
                time.sleep(0.05)

    writer = threading.Thread(target=delete_rows)
    writer.start()
    try:
        result = pipeline.predict(config, SqlSource(Database(url), "moving"), tmp_path / "scored.csv", budget=1000)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert deleted, "the other session deleted nothing while predict ran"
    import pandas as pd

    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == result.rows and scored["customerID"].is_unique
    decision = config.decision
    expected = scored["churn_probability"] * decision.churn_cost * decision.offer_success_rate - decision.offer_cost
    np.testing.assert_allclose(scored["expected_saving"], expected, rtol=0, atol=1e-9)  # each row its own
    contacted = scored[scored["contact"] == 1]
    assert (
        len(contacted) == 1000
        and (contacted["churn_prediction"] == 1).all()
        and (contacted["expected_saving"] > 0).all()
    )
    others = scored[(scored["contact"] == 0) & (scored["churn_prediction"] == 1)]
    assert contacted["expected_saving"].min() >= others["expected_saving"].max()
    rows_now = count(server, "moving")
    assert rows_now < len(big)  # rows were deleted; the written ones are one consistent snapshot of them
    still = set(pc.cast(server.read('SELECT "customerID" FROM moving').column(0), pa.string()).to_pylist())
    assert len(set(scored["customerID"]) - still) <= sum(deleted)
