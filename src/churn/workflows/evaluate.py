"""The evaluate workflow: `python main.py evaluate`, a saved run's metrics on a labelled table."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from churn.config import Config, DataConfig
from churn.data_loader import TrainingData, load_training_data
from churn.io.tables import Source, table_columns
from churn.scoring.scorers import LoadedRun, score
from churn.store import runs
from churn.training.evaluation import compute_metrics, cost_summary
from churn.workflows.predict import load_run

logger = logging.getLogger(__name__)


def evaluate(config: Config, input_path: Source, run: str | Path | None = None) -> dict[str, Any]:
    """Score a labelled file with a saved run and compute the training metrics on it, warning
    when the file holds rows the run was trained on (its metrics are then optimistic)."""
    loaded = load_run(config, run)
    features = loaded.features
    data_config = DataConfig(  # the run's own columns and label (the table is input_path)
        path=Path("."),
        target=features.target,
        positive_label=features.positive_label,
        numeric_features=features.numeric_features,
        categorical_features=features.categorical_features,
        # the ids, when the file has them, find rows the run trained on
        id_column=features.id_column if features.id_column in table_columns(input_path) else None,
        max_unparsed_share=config.data.max_unparsed_share,
    )
    data = load_training_data(input_path, data_config)
    overlap = training_overlap(loaded, data)
    if overlap is not None:
        logger.warning("%s: %s", input_path, overlap["message"])
    probabilities = score(loaded.scorer, data.X).probabilities
    threshold = loaded.record.threshold.value
    metrics = compute_metrics(data.y, probabilities, threshold)
    decision = loaded.record.decision  # the run's own, as trained
    if decision.has_costs:
        metrics |= cost_summary(data.y, probabilities, threshold, decision)
    return {"run_id": loaded.run_id, "input": str(input_path)} | metrics | {"training_overlap": overlap}


def training_overlap(loaded: LoadedRun, data: TrainingData) -> dict[str, Any] | None:
    """How much of a labelled table the run trained on: all of it when it is the training table
    (same sha256), else the rows whose ids were in the training split. None: no overlap found."""
    record = loaded.record
    if data.sha256 == record.data.sha256:
        share = record.split.train_rows / max(record.data.rows_used, 1)
        message = (
            f"this is the file run {record.run_id} was trained on: {share:.0%} of its rows were training "
            "rows, so these metrics are optimistic; the run's own test metrics are in its report"
        )
        return {"kind": "training file", "rows": record.split.train_rows, "share": share, "message": message}
    if data.ids is None or runs.TRAINING_IDS not in record.artefacts:
        return None
    from churn.training.stages import (
        hash_ids,  # deferred: the training side (scikit-learn is loaded anyway here)
    )

    trained = pq.read_table(io.BytesIO(runs.read_artefact(loaded.run_dir, runs.TRAINING_IDS, record)))
    seen = np.isin(hash_ids(data.ids), trained.column("id_hash").to_numpy())
    count = int(seen.sum())
    if not count:
        return None
    share = count / len(seen)
    message = (
        f"{count:,} of {len(seen):,} rows ({share:.0%}) have a {data.ids.name} that run {record.run_id} "
        "was trained on, so these metrics are optimistic; evaluate on customers it has not seen"
    )
    return {"kind": "training ids", "rows": count, "share": share, "message": message}
