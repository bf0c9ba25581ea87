"""The evaluate workflow: `python main.py evaluate`, a saved run's metrics on a labelled table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churn.config import Config, DataConfig
from churn.data_loader import load_training_data
from churn.evaluation import compute_metrics, cost_summary
from churn.scoring import score
from churn.workflows.predict import load_run


def evaluate(config: Config, input_path: Path, run: str | Path | None = None) -> dict[str, Any]:
    """Score a labelled file with a saved run and compute the training metrics on it."""
    loaded = load_run(config, run)
    features = loaded.features
    data_config = DataConfig(  # the run's own columns and label; ids are not needed to evaluate
        path=input_path,
        target=features.target,
        positive_label=features.positive_label,
        numeric_features=features.numeric_features,
        categorical_features=features.categorical_features,
        max_unparsed_share=config.data.max_unparsed_share,
    )
    data = load_training_data(input_path, data_config)
    probabilities = score(loaded.scorer, data.X).probabilities
    threshold = loaded.record.threshold.value
    metrics = compute_metrics(data.y, probabilities, threshold)
    decision = loaded.record.decision  # the run's own, as trained
    if decision.has_costs:
        metrics |= cost_summary(data.y, probabilities, threshold, decision)
    return {"run_id": loaded.run_id, "input": str(input_path)} | metrics
