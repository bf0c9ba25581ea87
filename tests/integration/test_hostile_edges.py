"""The newest doors as a hostile user tries them: outputs that cannot be written, written over
their input, a history or a reference profile that is not what churn wrote, a drifted batch
scored without a word, and the service's monitoring window under two threads."""

import gzip
import json
import logging
import threading

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE, run_cli, trained_copy, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.errors import ChurnError, DataError, ModelError
from churn.monitoring import journal, profiles, tallies
from churn.store import runs
from churn.store.files import sha256_file
from churn.workflows import monitor
from churn.workflows.init import init

SAMPLE = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edges")
    pipeline.train(load_config(write_quick_config(folder)))
    return folder


@pytest.fixture
def work(template, tmp_path):
    """This test's own copy of the trained folder: its config, models and history."""
    config = load_config(trained_copy(template, tmp_path / "work"))
    return config, tmp_path / "work"


def assert_one_error_line(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and all(f in lines[-1] for f in fragments), result.stderr


# init: its own input, folders


@pytest.mark.parametrize("name", ["small.csv", pytest.param("small.csv.gz", marks=pytest.mark.slow)])
def test_init_never_writes_over_its_input(tmp_path, name):
    data = tmp_path / name
    text = TELCO_SAMPLE.read_bytes()
    data.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    before = data.read_bytes()
    result = run_cli("init", "--data", data, "--target", "Churn", "--output", data, "--force", cwd=tmp_path)
    assert_one_error_line(result, "--output is the input file")
    assert data.read_bytes() == before


def test_init_creates_a_missing_folder_and_refuses_a_folder(tmp_path):
    written = init(TELCO_SAMPLE, "Churn", tmp_path / "configs" / "crm.yaml")
    assert (tmp_path / "configs" / "crm.yaml").is_file() and written.inferred.numeric
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ChurnError, match="is a folder; --output names the config file"):
        init(TELCO_SAMPLE, "Churn", tmp_path / "folder.yaml", force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        init(TELCO_SAMPLE, "Churn", tmp_path / "file" / "crm.yaml")


# outputs that cannot be written: refused before the first row is read, nothing written


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("file/monitor", "is a file, not a folder"),
        ("/proc/churn-monitor", "cannot be written here"),
        ("existing.txt", "is a file, not a folder"),
    ],
)
def test_monitor_refuses_an_output_it_cannot_write_before_reading(work, where, fragment):
    config, folder = work
    (folder / "file").write_text("x")
    (folder / "existing.txt").write_text("x")
    before = monitor.history(config)
    result = run_cli("monitor", "-c", folder / "config.yaml", "--input", TELCO_SAMPLE, "--output", where, cwd=folder)
    assert_one_error_line(result, fragment)
    assert monitor.history(config) == before


@pytest.mark.parametrize(
    ("option", "where", "fragment"),
    [
        ("--output", "/sys/kernel/churn.csv", "cannot be written here"),
        ("--report", "/sys/kernel/churn.json", "cannot be written here"),
        ("--output", "file/out.csv", "is a file, not a folder"),
        ("--output", ".", "is a folder; --output names a file"),
        ("--output", "sqlite:///crm.db", "writing to a database needs --output-table"),
        ("--output", "postgresql://churn@127.0.0.1:1/crm", "writing to a database needs --output-table"),
    ],
)
def test_predict_refuses_an_output_it_cannot_write_before_reading(work, option, where, fragment):
    config, folder = work
    (folder / "file").write_text("x")
    extra = [] if option == "--output" else ["--output", "scores.csv"]
    result = run_cli("predict", "-c", folder / "config.yaml", "--input", TELCO_SAMPLE, option, where, *extra,
                     cwd=folder)  # fmt: skip
    assert_one_error_line(result, fragment)
    assert not (folder / "scores.csv").exists() and not (folder / "data" / "predictions").exists()
    assert not list(folder.glob("sqlite*")) and not list(folder.glob("postgresql*"))  # never a URL as a folder


# the history: bad lines skipped, named, dropped when the next batch is added


SLOW = pytest.mark.slow  # two monitored batches each; the fast suite keeps two kinds of bad line


@pytest.mark.parametrize(
    "bad",
    [b"garbage", pytest.param(b'{"run_id": "x", "inp', marks=SLOW), pytest.param(b"[]", marks=SLOW),
     pytest.param(b"42", marks=SLOW), pytest.param(b'{"run_id": "x"}', marks=SLOW),
     pytest.param(b"\xff\xfe not utf-8", marks=SLOW)],
)  # fmt: skip
def test_a_bad_history_line_is_skipped_with_a_warning_and_dropped_at_the_next_batch(work, bad, caplog):
    config, folder = work
    monitor.monitor(config, TELCO_SAMPLE, output=folder / "one")
    history = config.paths.models_dir / journal.HISTORY
    good = history.read_bytes()
    history.write_bytes(good + bad + b"\n")
    with caplog.at_level(logging.WARNING, logger="churn"):
        assert len(monitor.history(config)) == 1
    assert any("line 2 is not a monitored batch; skipped" in r.getMessage() for r in caplog.records)
    printed = run_cli("monitor", "-c", folder / "config.yaml", "--history", cwd=folder)
    assert printed.returncode == 0 and "line 2 is not a monitored batch" in printed.stderr
    result = run_cli("monitor", "-c", folder / "config.yaml", "--input", TELCO_SAMPLE, "--output", "two", cwd=folder)
    assert result.returncode in (0, 4) and "Traceback" not in result.stderr
    assert (folder / "two" / "monitor.html").is_file()
    lines = history.read_bytes().splitlines()
    assert len(lines) == 2 and bad not in lines and lines[0] == good.strip()


# the reference profile: parsed whole, refused naming the file


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.pop("columns"),
        lambda r: r["columns"]["tenure"]["shares"].pop(),
        lambda r: r["columns"]["tenure"]["edges"].reverse(),
        lambda r: r["columns"]["Contract"].update(kind="ordinal"),
        lambda r: r.update(schema_version=7),
        lambda r: r["probabilities"]["shares"].pop(),
    ],
)
def test_a_malformed_reference_profile_is_refused_naming_the_file(work, change):
    config, folder = work
    run_dir = runs.resolve_run(config.paths.models_dir, None)
    path = run_dir / runs.REFERENCE
    reference = json.loads(path.read_text())
    change(reference)
    path.write_text(json.dumps(reference))
    record = json.loads((run_dir / runs.METADATA).read_text())  # as if written so: the digest agrees
    record["artefacts"][runs.REFERENCE] = sha256_file(path)
    (run_dir / runs.METADATA).write_text(json.dumps(record))
    with pytest.raises(ModelError, match=f"{runs.REFERENCE}: not a reference profile churn can read"):
        monitor.monitor(config, TELCO_SAMPLE, output=folder / "out")
    result = run_cli("monitor", "-c", folder / "config.yaml", "--input", TELCO_SAMPLE, cwd=folder)
    assert_one_error_line(result, "not a reference profile churn can read", "retrain")


# predict says what monitor would


def shifted(rows: pd.DataFrame) -> pd.DataFrame:
    month = rows.copy()
    rng = np.random.default_rng(1)
    month["tenure"] = rng.integers(0, 4, len(month)).astype(str)
    return month


def test_predict_warns_of_a_drifted_column_with_monitor_s_psi(work, caplog):
    config, folder = work
    source = folder / "month.csv"
    shifted(SAMPLE).to_csv(source, index=False)
    with caplog.at_level(logging.WARNING, logger="churn"):
        pipeline.predict(config, source, folder / "scored.csv")
    drifted = [r.getMessage() for r in caplog.records if "has drifted from the training rows" in r.getMessage()]
    figures = monitor.monitor(config, source, output=folder / "out").report.to_json()
    alarms = {c["column"]: c["psi"] for c in figures["columns"] if c["psi"] >= config.monitor.psi_alarm}
    assert alarms and len(drifted) == len(alarms)
    by_psi = sorted(alarms.items(), key=lambda item: -item[1])  # largest first, as the lines come
    for line, (name, psi) in zip(drifted, by_psi, strict=True):
        assert f"column {name} has drifted" in line and f"PSI {psi:.2f}" in line
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="churn"):
        pipeline.predict(config, TELCO_SAMPLE, folder / "scored.csv")  # the rows it learned from: no drift line
    assert not any("has drifted" in r.getMessage() for r in caplog.records)


def test_predict_warns_of_a_column_missing_in_every_row(work, caplog):
    config, folder = work
    source = folder / "blank.csv"
    SAMPLE.assign(MonthlyCharges="").to_csv(source, index=False)
    with caplog.at_level(logging.WARNING, logger="churn"):
        pipeline.predict(config, source, folder / "scored.csv")
    assert any("column MonthlyCharges is missing in every row" in r.getMessage() for r in caplog.records)


def test_a_rejected_run_named_by_model_scores_with_a_warning(work, caplog):
    config, folder = work
    run_dir = runs.resolve_run(config.paths.models_dir, None)
    record = json.loads((run_dir / runs.METADATA).read_text())
    record["status"], record["validation"]["missed"] = "rejected", ["ROC AUC 0.61 < min_roc_auc 0.8"]
    (run_dir / runs.METADATA).write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="churn"):
        pipeline.predict(config, TELCO_SAMPLE, folder / "scored.csv", run=run_dir.name)
    assert any(f"run {run_dir.name} is rejected by its validation gate (ROC AUC 0.61" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_monitor_names_the_positive_label_when_the_labels_hold_one_class(work):
    config, folder = work
    source = folder / "maybe.csv"
    SAMPLE.assign(Churn="maybe").to_csv(source, index=False)
    realised = monitor.monitor(config, source, output=folder / "out").report.to_json()["realised"]
    assert "one class only" in realised["note"] and "the positive label is 'Yes'" in realised["note"]


# the service's monitoring window: two threads, every slot written once


def test_the_window_takes_every_row_of_two_threads_in_its_own_slot(work):
    config, folder = work
    loaded = pipeline.load_run(config, None)
    reference = profiles.read_reference(loaded.run_dir, loaded.record)
    size, adds, rows = 120_000, 400, 150  # two threads x 400 adds x 150 rows = 120,000 rows: every slot once
    window = tallies.Window(reference, size)
    columns = len(reference.profile.columns)

    def add(thread):
        for k in range(adds):
            label = (thread * adds + k) % 7 + 1  # which add wrote a slot: 1..7, never the initial 0
            window.add(np.zeros((rows, columns), dtype="int16"), np.full(rows, label / 10))

    threads = [threading.Thread(target=add, args=(t,)) for t in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    tally = window.tally()
    assert len(tally.all_probabilities) == size
    assert (tally.all_probabilities > 0).all()  # no slot left as it started
