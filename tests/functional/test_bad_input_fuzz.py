"""Bad input by the hundred: generated files for predict and train.

The contract under every one: exit 0 with one prediction per data row, or exit 2 with exactly
one `error:` line; never a traceback (an exception escaping `main`), never exit 1, never a
partial output file.
"""

import contextlib
import csv
import io
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import TELCO_SAMPLE, write_quick_config

from churn.cli import main
from churn.store import runs

SAMPLE_ROWS = list(csv.DictReader(TELCO_SAMPLE.open(encoding="utf-8")))[:40]
HEADER = list(SAMPLE_ROWS[0])
NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges"]
NUMBERS_OR_MISSING = ["", " ", "NaN", "nan", "inf", "-inf", "-5", "-1e9", "1e308", "1e400", "None", "NULL"]
NOT_NUMBERS = [
    "0x1F", "abc", "1,5", "x" * 5000, 'say "hi"', "a,b", "line\nbreak", "tab\there", "é ü", "🙂", "   padded   ", "\\",
]  # fmt: skip
ODD_VALUES = NUMBERS_OR_MISSING + NOT_NUMBERS
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same cases on every run, so CI is repeatable
    database=None,  # and nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
counter = itertools.count()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    paths = {"models_dir": str(folder / "models"), "predictions_dir": str(folder / "predictions")}
    write_quick_config(folder, cv_folds=2, validation={}, paths=paths)  # exit 3 is the gate's, not bad input's
    assert run_main(["train", "-q", "-c", str(folder / "config.yaml")])[0] == 0
    return folder


def run_main(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


@st.composite
def table_files(draw, with_target=False, max_rows=12):
    """A CSV file built from sample rows, with damage of every kind.

    Returns (bytes, data rows or None, expectation): the row count is None where the damage
    makes "a data row" ambiguous (ragged rows, another delimiter, stray bytes); a file with
    rows and no structural damage must be scored, whatever odd values its cells hold, except
    that text in a numeric column may stop it with the not-numbers error."""
    columns = [c for c in HEADER if with_target or c != "Churn"]
    rows = [[row[c] for c in columns] for row in draw(st.lists(st.sampled_from(SAMPLE_ROWS), max_size=max_rows))]
    text_in_numbers = False
    for row in rows:
        for _ in range(draw(st.integers(0, 3))):
            position, value = draw(st.integers(0, len(columns) - 1)), draw(st.sampled_from(ODD_VALUES))
            row[position] = value
            text_in_numbers |= columns[position] in NUMERIC and value in NOT_NUMBERS
    header = list(columns)
    damage = draw(st.sampled_from(["none", "none", "duplicate", "empty_name", "drop", "ragged", "delimiter"]))
    if damage == "duplicate":
        header[draw(st.integers(1, len(header) - 1))] = header[0]
    elif damage == "empty_name":
        header[draw(st.integers(0, len(header) - 1))] = ""
    elif damage == "drop" and rows:
        gone = draw(st.integers(0, len(header) - 1))
        header, rows = header[:gone] + header[gone + 1 :], [r[:gone] + r[gone + 1 :] for r in rows]
    elif damage == "ragged" and rows:
        victim = draw(st.integers(0, len(rows) - 1))
        rows[victim] = rows[victim] + ["extra"] if draw(st.booleans()) else rows[victim][:-2]
    well_formed = damage in ("none", "drop", "duplicate", "empty_name")
    expect = "any"
    if damage == "none" and rows:
        # text in a numeric column may stop the run (data.max_unparsed_share), with its own error
        expect = "success or the not-numbers error" if text_in_numbers else "success"
    buffer = io.StringIO()
    delimiter = "," if damage != "delimiter" else draw(st.sampled_from([";", "\t", "|"]))
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        if draw(st.integers(0, 9)) == 0:
            buffer.write("\n")  # an empty line between rows
    text = buffer.getvalue()
    if draw(st.booleans()) and damage == "none":
        text = text.rstrip("\r\n")  # no newline at the end
    data = text.encode("utf-8")
    if draw(st.integers(0, 4)) == 0:
        data = b"\xef\xbb\xbf" + data  # a byte-order mark
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(min_size=1, max_size=20)) + data[cut:]  # stray bytes
        well_formed, expect = False, "any"
    return data, (len(rows) if well_formed else None), expect


any_file = st.one_of(
    table_files(),
    table_files(),
    table_files(),
    st.binary(max_size=3000).map(lambda data: (data, None, False)),
    st.just((b"", None, False)),
)


def check_contract(code, stdout, stderr, out: Path, expected_rows):
    assert code in (0, 2), (code, stderr)
    lines = stderr.strip().splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert not out.exists()
        return
    assert lines == [], stderr  # -q: a success prints nothing on stderr
    written = list(csv.reader(out.open(encoding="utf-8")))
    assert written[0][-2:] == ["churn_probability", "churn_prediction"]
    if expected_rows is not None:
        assert len(written) - 1 == expected_rows
    for row in written[1:]:
        assert 0.0 <= float(row[-2]) <= 1.0 and row[-1] in ("0", "1")


@pytest.mark.slow  # a hundred generated files through predict
@FUZZ
@given(case=any_file)
def test_predict_under_generated_bad_input(workspace, case):
    data, expected_rows, expect = case
    index = next(counter)
    source, out = workspace / f"in_{index}.csv", workspace / f"out_{index}.csv"
    source.write_bytes(data)
    argv = ["predict", "-q", "-c", str(workspace / "config.yaml"), "--input", str(source), "--output", str(out)]
    code, stdout, stderr = run_main(argv)
    check_contract(code, stdout, stderr, out, expected_rows)
    if expect == "success" and code != 0:
        pytest.fail(f"a well-formed file was refused: {stderr}")
    if expect == "success or the not-numbers error" and code != 0 and "not numbers" not in stderr:
        pytest.fail(f"a file whose only damage is text in numbers was refused for another reason: {stderr}")


@settings(FUZZ, max_examples=60)
@given(
    case=st.one_of(
        table_files(with_target=True, max_rows=40),  # enough rows, often, for a model to train
        st.binary(max_size=2000).map(lambda data: (data, None, False)),
    )
)
def test_train_under_generated_bad_input(workspace, case):
    data, _, _ = case
    index = next(counter)
    source = workspace / f"train_{index}.csv"
    source.write_bytes(data)
    models = workspace / "models"
    latest_before = (models / "latest").read_text()
    code, stdout, stderr = run_main(["train", "-q", "-c", str(workspace / "config.yaml"), "--data", str(source)])
    assert code in (0, 2), (code, stderr)
    if code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert (models / "latest").read_text() == latest_before
        return
    # a training that succeeded made a new, complete, accepted run of this very file, now latest
    latest = (models / "latest").read_text().strip()
    assert latest != latest_before.strip() and f"saved run {latest}" in stdout
    assert runs.is_complete(models / latest)
    metadata = runs.read_metadata(models / latest)
    assert metadata["status"] == "accepted" and metadata["training_data"]["path"] == str(source.resolve())
    used = metadata["training_data"]
    assert used["train_rows"] + used["test_rows"] == used["rows_used"] <= used["rows_read"]
    metrics = json.loads((models / latest / "metrics.json").read_text())
    assert metrics["rows"] == used["test_rows"] and 0.0 <= metrics["roc_auc"] <= 1.0
