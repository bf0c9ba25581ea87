"""The workflows' public face, for the CLI, notebooks and scripts:

    from churn import pipeline
    result = pipeline.train(config)               # a reported, gated, saved run
    pipeline.predict(config, Path("customers.csv"))

`python main.py MODE` parses the mode and calls one of these, for every mode; each workflow
(`churn.workflows`) chains the stages with the config. Scoring starts fast: importing this
module loads the scoring side only, and `train`, `evaluate`, `monitor`, `init` and
`rebuild_report` load what they need when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from churn.config import Config
from churn.io.tables import Source
from churn.workflows.models import compare_runs, list_runs, promote, prune, run_details
from churn.workflows.predict import (
    Output,
    PredictResult,
    decide_frame,
    default_output_path,
    horizons_frame,
    load_run,
    predict,
    score_frames,
)

if TYPE_CHECKING:
    from churn.workflows.campaign import CampaignResult
    from churn.workflows.evaluate import Evaluation
    from churn.workflows.init import Written
    from churn.workflows.monitor import MonitorResult
    from churn.workflows.train import TrainResult

__all__ = [
    "Output",
    "PredictResult",
    "Source",
    "campaign",
    "compare_runs",
    "decide_frame",
    "horizons_frame",
    "default_output_path",
    "evaluate",
    "init",
    "list_runs",
    "load_run",
    "monitor",
    "monitor_history",
    "predict",
    "promote",
    "prune",
    "rebuild_report",
    "run_details",
    "score_frames",
    "serve",
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


def monitor(
    config: Config, input_path: Source, run: str | Path | None = None, output: Path | None = None
) -> MonitorResult:
    """See `churn.workflows.monitor.monitor`."""
    from churn.workflows.monitor import monitor as monitor_workflow  # deferred: matplotlib, for the page

    return monitor_workflow(config, input_path, run, output)


def campaign(config: Config, contacts: Source, outcomes: Source, output: Path | None = None) -> CampaignResult:
    """See `churn.workflows.campaign.campaign`."""
    from churn.workflows.campaign import campaign as campaign_workflow  # deferred: pandas, to join the files

    return campaign_workflow(config, contacts, outcomes, output)


def monitor_history(config: Config) -> list[dict[str, Any]]:
    """See `churn.workflows.monitor.history`."""
    from churn.workflows.monitor import history  # deferred: matplotlib, for the page

    return history(config)


def init(data: Path, target: str, output: Path, force: bool = False, show: bool = False) -> Written:
    """See `churn.workflows.init.init` (it reads no config: it writes one)."""
    from churn.workflows.init import init as init_workflow  # deferred: pandas, to read the table

    return init_workflow(data, target, output, force, show)


def serve(config: Config, host: str, port: int, workers: int, run: str | None = None) -> None:
    """See `churn.service.server.serve`."""
    from churn.service.server import serve as serve_workflow  # deferred: FastAPI and uvicorn

    serve_workflow(config, host, port, workers, run)
