"""The evaluate workflow: `python main.py evaluate`, a saved run's metrics on a labelled table.

The table is scored by the scoring core, as predict scores it; its labels are read with the
rules of training: the run's positive label against exactly two distinct values, rows with a
missing label left out, and a customer whose id repeats an earlier row's counted once.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from churn.config import Config
from churn.errors import DataError
from churn.io.sql import RowDigest, SqlSource
from churn.io.tables import Source
from churn.labels import label_key, positive_flags
from churn.scoring.core import ScoredTable, ScoreOptions, UnparsedLimit
from churn.scoring.decisions import Money
from churn.scoring.scorers import LoadedRun
from churn.store import runs
from churn.store.files import sha256_file
from churn.store.record import LabelledMetrics
from churn.workflows.predict import load_run

logger = logging.getLogger(__name__)


class Overlap(BaseModel):
    """Rows of the table the run was trained on: all of it (the training file), or by id."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["training file", "training ids"]
    rows: int
    share: float
    message: str


class Evaluation(BaseModel):
    """A saved run's metrics on a labelled table."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    input: str
    threshold: float
    metrics: LabelledMetrics
    training_overlap: Overlap | None


class _Labelled:
    """What evaluating keeps of each scored chunk: probabilities, labels, ids, the label keys seen."""

    def __init__(self) -> None:
        self.probabilities: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.ids: list[pa.ChunkedArray] = []
        self.money: list[Money] = []  # with per-customer costs
        self.keys: set[str] = set()

    def joined(self) -> tuple[np.ndarray, np.ndarray, pa.ChunkedArray | None]:
        ids = pa.chunked_array([c for part in self.ids for c in part.chunks]) if self.ids else None
        return np.concatenate(self.probabilities), np.concatenate(self.labels), ids


def evaluate(config: Config, input_path: Source, run: str | Path | None = None) -> Evaluation:
    """Score a labelled table with a saved run and compute the training metrics on it, warning
    when the table holds rows the run was trained on (its metrics are then optimistic)."""
    loaded = load_run(config, run)
    features = loaded.features
    target, positive = features.target, label_key(features.positive_label)
    options = ScoreOptions(config.predict.chunk_rows, UnparsedLimit(config.data.max_unparsed_share), keep=(target,))
    chunks = ScoredTable(loaded, input_path, options)
    if target not in chunks.columns:
        raise DataError(f"{input_path}: no column {target}, the run's target; evaluate needs labelled rows")
    digest = RowDigest() if isinstance(input_path, SqlSource) else None
    kept = _Labelled()
    for chunk in chunks:
        if digest is not None:
            digest.update(chunk.rows)
        flags, keys = positive_flags(chunk.rows.column(target), positive)
        kept.probabilities.append(chunk.probabilities)
        kept.labels.append(flags)
        kept.keys |= keys
        if chunk.id_column:
            kept.ids.append(chunk.rows.column(chunk.id_column))
        if chunk.money is not None:
            kept.money.append(chunk.money)
    _check_labels(kept.keys, positive, features.positive_label, target, input_path)
    names = (target, str(features.id_column))
    probabilities, labels, ids, keep = _training_rows(*kept.joined(), input_path, names)
    money = Money.concat(kept.money).take(keep) if kept.money else None
    sha256 = (
        digest.hexdigest() if digest is not None else sha256_file(input_path) if isinstance(input_path, Path) else ""
    )
    overlap = training_overlap(loaded, sha256, ids)
    if overlap is not None:
        logger.warning("%s: %s", input_path, overlap.message)
    return Evaluation(
        run_id=loaded.run_id,
        input=str(input_path),
        threshold=loaded.record.threshold.value,
        metrics=_metrics(labels, probabilities, loaded, money),
        training_overlap=overlap,
    )


def _check_labels(keys: set[str], positive: str, label: object, target: str, source: Source) -> None:
    """Exactly two distinct labels, one of them the run's positive label, as training requires.

    Raises:
        DataError: naming the target column and what it holds.
    """
    shown = ", ".join(repr(key) for key in sorted(keys)[:10])
    if len(keys) != 2:
        raise DataError(
            f"{source}: target column {target} must hold exactly two distinct values, found "
            f"{len(keys)}: {shown}; fix the file or evaluate another run"
        )
    if positive not in keys:
        raise DataError(
            f"{source}: the run's positive label {label!r} is not among the values of {target} "
            f"({shown}); this table labels churn otherwise than the run was trained with"
        )


def _training_rows(
    probabilities: np.ndarray, labels: np.ndarray, ids: pa.ChunkedArray | None, source: Source, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray, pa.ChunkedArray | None, np.ndarray]:
    """The rows training would keep (and the mask that keeps them): a label, and (with ids)
    the first row of each customer."""
    target, id_column = names
    keep = ~np.isnan(labels)
    if not keep.all():
        logger.warning("%s: dropped %d row(s) whose target %s is missing", source, int((~keep).sum()), target)
    if ids is not None:
        text = pa.compute.cast(ids, pa.string()).to_pandas()
        repeated = (text.duplicated(keep="first") & text.notna()).to_numpy() & keep
        if repeated.any():
            logger.warning("%s: dropped %d row(s) repeating an earlier %s", source, int(repeated.sum()), id_column)
        keep &= ~repeated
    kept_ids = ids.filter(pa.array(keep)) if ids is not None else None
    return probabilities[keep], labels[keep].astype("int64"), kept_ids, keep


def _metrics(labels: np.ndarray, probabilities: np.ndarray, loaded: LoadedRun, money: Money | None) -> LabelledMetrics:
    from churn.training.evaluation import compute_metrics, cost_summary  # deferred: scikit-learn's metrics

    threshold = loaded.record.threshold.value
    metrics = compute_metrics(labels, probabilities, threshold)
    metrics.pop("threshold")
    decision = loaded.record.decision  # the run's own, as trained
    if decision.has_costs:
        metrics["costs"] = cost_summary(labels, probabilities, threshold, decision, money)
    return LabelledMetrics.model_validate(metrics)


def training_overlap(loaded: LoadedRun, sha256: str, ids: pa.ChunkedArray | None) -> Overlap | None:
    """How much of a labelled table the run trained on: all of it when it is the training table
    (same sha256), else the rows whose ids were in the training split. None: no overlap found."""
    record = loaded.record
    if sha256 == record.data.sha256:
        share = record.split.train_rows / max(record.data.rows_used, 1)
        message = (
            f"this is the file run {record.run_id} was trained on: {share:.0%} of its rows were training "
            "rows, so these metrics are optimistic; the run's own test metrics are in its report"
        )
        return Overlap(kind="training file", rows=record.split.train_rows, share=share, message=message)
    if ids is None or runs.TRAINING_IDS not in record.artefacts:
        return None
    from churn.training.stages import hash_ids  # deferred: the training side (scikit-learn is loaded anyway here)

    trained = pq.read_table(io.BytesIO(runs.read_artefact(loaded.run_dir, runs.TRAINING_IDS, record)))
    seen = np.isin(hash_ids(ids.to_pandas()), trained.column("id_hash").to_numpy())
    count = int(seen.sum())
    if not count:
        return None
    share = count / len(seen)
    message = (
        f"{count:,} of {len(seen):,} rows ({share:.0%}) have a {record.features.id_column} that run "
        f"{record.run_id} was trained on, so these metrics are optimistic; evaluate on customers it has "
        "not seen"
    )
    return Overlap(kind="training ids", rows=count, share=share, message=message)
