"""`monitor` on a run trained on the shipped data: its own test split is stable (exit 0), a month
whose tenure and contract mix shifted is an alarm naming them (exit 4), labels give realised
figures, and the history grows one line per batch and survives a kill mid-write."""

import json
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from support import REPO, TELCO, run_cli, write_telco_config

from churn import pipeline
from churn.config import load_config
from churn.data_loader import load_training_data, split_data
from churn.errors import ModelError
from churn.monitoring import journal
from churn.store import runs
from churn.workflows import monitor

RAW = pd.read_csv(TELCO, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run of the shipped single model on the full shipped data, and the raw rows of its test split."""
    folder = tmp_path_factory.mktemp("monitored")
    config = load_config(write_telco_config(folder, comparison=False, survival=False))
    result = pipeline.train(config)
    data = load_training_data(config.data.path, config.data)
    _, X_test, _, _ = split_data(data.X, data.y, config.split)
    test_ids = set(data.ids.loc[X_test.index])
    test_rows = RAW[RAW["customerID"].isin(test_ids)]
    return folder, config, result, test_rows


def shifted_month(rows: pd.DataFrame) -> pd.DataFrame:
    """Newer customers, most of them on month-to-month contracts."""
    month = rows.copy()
    rng = np.random.default_rng(1)
    month["tenure"] = rng.integers(0, 6, len(month)).astype(str)
    month["Contract"] = np.where(rng.random(len(month)) < 0.9, "Month-to-month", month["Contract"])
    return month


def test_the_run_folder_holds_a_hashed_reference_profile(trained):
    _, _, result, _ = trained
    assert runs.REFERENCE in result.record.artefacts
    reference = json.loads((result.run_dir / runs.REFERENCE).read_text())
    assert set(reference["columns"]) == set(result.record.features.columns)
    contract = reference["columns"]["Contract"]
    assert contract["categories"] == ["Month-to-month", "One year", "Two year"]
    assert sum(contract["shares"]) == pytest.approx(1.0) and contract["shares"][-2] == 0.0  # no unseen in training
    tenure = reference["columns"]["tenure"]
    assert len(tenure["shares"]) == len(tenure["edges"]) + 3
    assert max(tenure["shares"][:-2]) < 0.2  # deciles: no bin holds much more than a tenth
    assert reference["calibration"]["expected_calibration_error"] < 0.1
    assert len(reference["calibration"]["bins"]) >= 5


def test_the_test_split_is_stable(trained, tmp_path):
    folder, config, _, test_rows = trained
    source = tmp_path / "test_split.csv"
    test_rows.drop(columns="Churn").to_csv(source, index=False)
    result = run_cli("monitor", "-c", folder / "config.yaml", "--input", source, "--output", tmp_path / "out",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert figures["verdict"] in ("stable", "warning")
    assert all(column["psi"] < config.monitor.psi_warn for column in figures["columns"])
    assert figures["prediction"]["psi"] < 0.05  # the very rows the reference's scores came from
    assert figures["prediction"]["mean_now"] == pytest.approx(figures["prediction"]["mean_then"], abs=1e-9)
    assert abs(figures["estimated"]["roc_auc"] - figures["test"]["roc_auc"]) < 0.05
    assert "realised" not in figures
    assert figures["rows"] == len(test_rows)


def test_a_shifted_month_is_an_alarm_naming_tenure_and_contract(trained, tmp_path):
    folder, _, _, test_rows = trained
    source = tmp_path / "2026-12.csv"
    shifted_month(test_rows).to_csv(source, index=False)
    result = run_cli("monitor", "-c", folder / "config.yaml", "--input", source, "--output", tmp_path / "out",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 4, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: monitoring alarm: ") and "Traceback" not in result.stderr
    assert "tenure: PSI" in errors[0] and "Contract: PSI" in errors[0]
    figures = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert figures["verdict"] == "alarm"
    assert [c["column"] for c in figures["columns"][:2]] == ["tenure", "Contract"]
    assert figures["columns"][0]["band"] == "major shift"
    assert figures["prediction"]["mean_now"] > figures["prediction"]["mean_then"] + 0.1
    assert figures["prediction"]["contacted_share_now"] > figures["prediction"]["contacted_share_then"]
    # the file holds Churn: realised figures beside the estimates, on the same rows
    assert figures["realised"]["rows"] == len(test_rows)
    assert 0.5 < figures["realised"]["roc_auc"] < 1.0


def test_labels_give_realised_figures_equal_to_evaluate(trained, tmp_path):
    folder, config, result, test_rows = trained
    source = tmp_path / "labelled.csv"
    test_rows.to_csv(source, index=False)
    figures = monitor.monitor(config, source, output=tmp_path / "out").report.to_json()
    evaluated = pipeline.evaluate(config, source)
    for key in ("roc_auc", "precision", "recall"):
        assert figures["realised"][key] == pytest.approx(getattr(evaluated.metrics, key), abs=1e-12)
        assert figures["realised"][key] == pytest.approx(getattr(result.record.metrics, key), abs=1e-12)


def test_the_page_is_one_file_with_no_external_reference(trained, tmp_path):
    folder, config, _, test_rows = trained
    source = tmp_path / "month.csv"
    shifted_month(test_rows).to_csv(source, index=False)
    monitor.monitor(config, source, output=tmp_path / "out")
    page = (tmp_path / "out" / "monitor.html").read_text()
    found = Collected()
    found.feed(page)
    assert found.tags["html"] == 1 and found.tags["svg"] >= 1 + len(config.data.features)  # inline charts
    assert found.tags["rect"] >= 2 * 10  # then and now per probability decile, at least
    assert not found.sources and not found.links and "http" not in page and "url(" not in page
    assert "ALARM" in page and "What an estimate cannot see" in page
    assert sorted((tmp_path / "out").iterdir()) == [
        tmp_path / "out" / "monitor.html",
        tmp_path / "out" / "monitor.json",
    ]


class Collected(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sources, self.links = {}, [], []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        attributes = dict(attrs)
        if tag in ("img", "script") and "src" in attributes:
            self.sources.append(attributes["src"])
        if tag in ("link", "a", "iframe"):
            self.links.append(attributes)


def test_the_history_grows_one_line_per_batch_and_the_page_draws_the_trend(trained, tmp_path):
    folder, config, _, test_rows = trained
    before = len(monitor.history(config))
    for month in ("a", "b"):
        source = tmp_path / f"{month}.csv"
        test_rows.sample(frac=0.5, random_state=ord(month)).to_csv(source, index=False)
        monitor.monitor(config, source, output=tmp_path / month)
    lines = monitor.history(config)
    assert len(lines) == before + 2
    assert [line["input"] for line in lines[-2:]] == [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert all(len(line["input_sha256"]) == 64 and line["estimated_roc_auc"] > 0.5 for line in lines[-2:])
    assert "Trend over" in (tmp_path / "b" / "monitor.html").read_text()
    printed = run_cli("monitor", "-c", folder / "config.yaml", "--history", cwd=tmp_path)
    assert printed.returncode == 0 and str(tmp_path / "b.csv") in printed.stdout


KILL_MID_WRITE = """
import os, signal, sys
from pathlib import Path
from churn.monitoring import journal
from churn.store import files
def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)
files.os.replace = killed  # the new history is written beside, and the process dies before the rename
lines = journal.read_history(Path(sys.argv[1]))
journal.append_history(Path(sys.argv[1]), lines[-1])
"""


def test_the_history_survives_a_kill_mid_write(trained, tmp_path):
    folder, config, _, test_rows = trained
    source = tmp_path / "one.csv"
    test_rows.head(300).to_csv(source, index=False)
    monitor.monitor(config, source, output=tmp_path / "one")
    history = config.paths.models_dir / journal.HISTORY
    before = history.read_bytes()
    killed = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, str(config.paths.models_dir)], cwd=REPO,
                            capture_output=True, timeout=60, check=False)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert history.read_bytes() == before
    assert len(monitor.history(config)) == before.count(b"\n")


def test_a_run_without_a_reference_is_refused_with_retrain(trained, tmp_path):
    folder, config, result, test_rows = trained
    record = result.record.model_copy(update={"artefacts": {k: v for k, v in result.record.artefacts.items()
                                                            if k != runs.REFERENCE}})  # fmt: skip
    loaded = pipeline.load_run(config, result.run_dir)
    with pytest.raises(ModelError, match="retrain it to monitor"):
        monitor.read_reference(type(loaded)(loaded.run_dir, record, loaded.scorer))


def test_monitor_needs_an_input(trained, tmp_path):
    folder, *_ = trained
    result = run_cli("monitor", "-c", folder / "config.yaml", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: monitor needs --input")


def test_bad_input_is_one_error_line_and_writes_nothing(trained, tmp_path):
    folder, config, _, test_rows = trained
    source = tmp_path / "broken.csv"
    test_rows.drop(columns=["tenure", "Contract"]).to_csv(source, index=False)
    before = monitor.history(config)
    result = run_cli("monitor", "-c", folder / "config.yaml", "--input", source, "--output", tmp_path / "out",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "tenure, Contract" in result.stderr
    assert not (tmp_path / "out").exists() and monitor.history(config) == before
