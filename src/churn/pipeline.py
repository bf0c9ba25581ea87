"""The workflows' public face, for the CLI, notebooks and scripts:

    from churn import pipeline
    result = pipeline.train(config)               # a reported, gated, saved run
    pipeline.predict(config, Path("customers.csv"))

`python main.py MODE` parses the mode and calls one of these; each workflow (`churn.workflows`)
chains the data loader, preprocessing and model stages with the config. Scoring starts fast:
importing this module loads the scoring side only, and `train`, `evaluate` and
`rebuild_report` load the training side when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from churn.config import Config
from churn.io.tables import Source
from churn.workflows.predict import Output, PredictResult, default_output_path, load_run, predict, score_frames

if TYPE_CHECKING:
    from churn.workflows.evaluate import Evaluation
    from churn.workflows.train import TrainResult

__all__ = [
    "Output",
    "PredictResult",
    "Source",
    "default_output_path",
    "evaluate",
    "load_run",
    "predict",
    "rebuild_report",
    "score_frames",
    "train",
]


def train(config: Config, data_path: Source | None = None) -> TrainResult:
    """See `churn.workflows.train.train`."""
    # Deferred, as in evaluate and rebuild_report: the training side imports scikit-learn and
    # matplotlib (about 1 s) that predict with a logistic-regression run does without.
    from churn.workflows.train import train as train_workflow

    return train_workflow(config, data_path)


def evaluate(config: Config, input_path: Source, run: str | Path | None = None) -> Evaluation:
    """See `churn.workflows.evaluate.evaluate`."""
    from churn.workflows.evaluate import evaluate as evaluate_workflow  # deferred: scikit-learn's metrics

    return evaluate_workflow(config, input_path, run)


def rebuild_report(config: Config, run: str | Path | None) -> Path:
    """See `churn.workflows.report.rebuild_report`."""
    from churn.workflows.report import rebuild_report as report_workflow  # deferred: matplotlib

    return report_workflow(config, run)
