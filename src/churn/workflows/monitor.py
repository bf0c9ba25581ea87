"""The monitor workflow: `python main.py monitor`, a batch of customers against the run that
scores it (drift per column and of the scores, performance estimated without labels)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from churn.config import Config
from churn.errors import ModelError
from churn.io.sql import RowDigest, SqlSource
from churn.io.tables import Source
from churn.labels import label_key, positive_flags
from churn.monitoring import journal, profiles, tallies, verdicts
from churn.progress import RowProgress
from churn.scoring.core import ScoredTable, ScoreOptions, UnparsedLimit
from churn.scoring.scorers import LoadedRun
from churn.store import upgrade
from churn.store.files import prepare_folder, refuse_overwriting_input, sha256_file, write_json_atomic
from churn.store.record import RunRecord
from churn.workflows.predict import default_output_path, load_run

logger = logging.getLogger(__name__)
MONITOR_JSON, MONITOR_HTML = "monitor.json", "monitor.html"


@dataclass(frozen=True)
class MonitorResult:
    output: Path
    report: verdicts.MonitorReport

    @property
    def verdict(self) -> str:
        return self.report.verdict


def read_reference(loaded: LoadedRun) -> profiles.Reference:
    """The run's reference profile, hash-checked and validated.

    Raises:
        ModelError: the run was trained before churn saved one, or it is not one churn can read.
    """
    if (gap := upgrade.gaps_of(loaded.record).reference) is not None:
        raise ModelError(f"{loaded.run_dir}: run {loaded.run_id} {gap}")
    reference = profiles.read_reference(loaded.run_dir, loaded.record)
    assert reference is not None  # recorded, so read or refused
    return reference


def default_output(config: Config, input_path: Source) -> Path:
    """monitoring/<input stem>/ beside the config (the stem as predict's default output takes it)."""
    stem = default_output_path(config, input_path).name.removesuffix("_predictions.csv")
    return config.source.parent / "monitoring" / stem


def monitor(
    config: Config, input_path: Source, run: str | Path | None = None, output: Path | None = None
) -> MonitorResult:
    """Score a batch with the run as predict does, and compare it with the run's reference:
    write monitor.json and monitor.html into `output` and add the batch to the history."""
    folder = output or default_output(config, input_path)
    if isinstance(input_path, Path):
        refuse_overwriting_input(input_path, folder / MONITOR_JSON, folder / MONITOR_HTML)
    prepare_folder(folder, "--output", create=False)  # before the batch is read, without leaving a folder
    loaded = load_run(config, run)
    reference = read_reference(loaded)
    tally = tallies.DriftTally(reference)
    digest = _score_into(tally, config, loaded, input_path)
    labels = tally.all_labels
    realised = realised_metrics(labels, tally.all_probabilities, loaded.record) if labels is not None else None
    batch_of = verdicts.Batch(str(input_path), digest)
    report = verdicts.report(reference, loaded.record, tally, config.monitor, batch_of, realised)
    history = journal.append_history(config.paths.models_dir, journal.history_line(report))
    write_outputs(folder, report, history)
    return MonitorResult(folder, report)


def _score_into(tally: tallies.DriftTally, config: Config, loaded: LoadedRun, input_path: Source) -> str | None:
    """Score the batch as predict does into the tally (warning about its data quality as predict
    does); the input file's sha256, hashed meanwhile on another thread (a database's rows:
    their digest, taken as they are read)."""
    rows = RowDigest() if isinstance(input_path, SqlSource) else None
    target, positive = loaded.features.target, label_key(loaded.features.positive_label)
    # decide=False: the expected cost below needs no money columns (per-customer costs have none)
    options = ScoreOptions(
        config.predict.chunk_rows, UnparsedLimit(config.data.max_unparsed_share), keep=(target,), decide=False
    )
    chunks = ScoredTable(loaded, input_path, options)
    progress = RowProgress("monitor")
    with ThreadPoolExecutor(max_workers=1) as hashing:
        digest = None
        if isinstance(input_path, Path) and input_path.is_file():
            digest = hashing.submit(sha256_file, input_path)
        for chunk in chunks:
            if rows is not None:
                rows.update(chunk.rows)
            labeled = target in chunk.rows.column_names
            tally.add(chunk, positive_flags(chunk.rows.column(target), positive)[0] if labeled else None)
            progress.update(len(chunk))
        progress.finish()
    for line in chunks.quality.warnings():
        logger.warning("%s: %s", input_path, line)
    if rows is not None:
        return rows.hexdigest()
    return digest.result() if digest is not None else None


def realised_metrics(labels: np.ndarray, probabilities: np.ndarray, record: RunRecord) -> dict[str, Any]:
    """The run's metrics on the batch's labelled rows, as evaluate computes them."""
    from churn.training.evaluation import compute_metrics, cost_summary  # deferred: scikit-learn's metrics

    known = ~np.isnan(labels)
    y, p = labels[known].astype("int64"), probabilities[known]
    if len(np.unique(y)) < 2:
        only = "churners" if len(y) and y[0] == 1 else f"rows whose label is not {record.features.positive_label!r}"
        return {
            "rows": int(known.sum()),
            "note": f"the labels hold one class only ({only}; the positive label is "
            f"{record.features.positive_label!r}): no ROC AUC",
        }
    threshold = record.threshold.value
    metrics = compute_metrics(y, p, threshold)
    figures: dict[str, Any] = {"rows": int(known.sum())}
    figures |= {k: metrics[k] for k in ("roc_auc", "precision", "recall", "pr_auc", "brier")}
    if record.decision.has_costs and not record.decision.per_customer:
        cost = cost_summary(y, p, threshold, record.decision)["expected_cost"]
        figures |= {"expected_cost": cost, "expected_cost_per_customer": cost / len(y)}
    return figures


def write_outputs(folder: Path, report: verdicts.MonitorReport, history: list[dict[str, Any]]) -> None:
    """monitor.html, then monitor.json, each written whole and renamed into place."""
    from churn.monitoring.page import write_page  # deferred: matplotlib, for the page only

    folder.mkdir(parents=True, exist_ok=True)
    figures = report.to_json()  # the page is drawn from monitor.json's very figures
    write_page(folder / MONITOR_HTML, figures, history)
    write_json_atomic(folder / MONITOR_JSON, figures)


def history(config: Config) -> list[dict[str, Any]]:
    """Every monitored batch of the models folder, oldest first."""
    return journal.read_history(config.paths.models_dir)
