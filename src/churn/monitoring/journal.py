"""The history of monitored batches (`monitor_history.jsonl` in the models folder): one typed
line per batch, read line by line so that one bad line costs only itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from churn.monitoring.verdicts import MonitorReport
from churn.store.files import write_text_atomic

logger = logging.getLogger(__name__)

HISTORY = "monitor_history.jsonl"  # in the models folder: one line per monitored batch


def history_line(report: MonitorReport) -> dict[str, Any]:
    """The headline figures of a batch, as its history keeps them."""
    return {
        "run_id": report.run_id,
        "input": report.input,
        "input_sha256": report.input_sha256,
        "created": report.created,
        "rows": report.rows,
        "verdict": report.verdict,
        "top_psi": {column.column: round(column.psi, 6) for column in report.columns[:5]},
        "prediction_psi": report.prediction.psi,
        "estimated_roc_auc": report.estimated.roc_auc,
        "contacted_share": report.prediction.contacted_share_now,
        "realised_roc_auc": report.realised.roc_auc if report.realised is not None else None,
    }


def append_history(models_dir: Path, line: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Add a batch's line (`history_line`) to the history, atomically: the whole file rewritten
    beside and renamed, so a kill mid-write leaves the history as it was (lines that could not
    be read are left out, each named once by read_history). Returns the history with it."""
    lines = read_history(models_dir) + [dict(line)]
    write_text_atomic(models_dir / HISTORY, "".join(json.dumps(line) + "\n" for line in lines))
    return lines


class HistoryLine(BaseModel):
    """One monitored batch as the history keeps it (history_line's keys and kinds)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    run_id: str
    input: str
    input_sha256: str | None = None
    created: str
    rows: int
    verdict: Literal["stable", "warning", "alarm"]
    top_psi: dict[str, float]
    prediction_psi: float
    estimated_roc_auc: float | None
    contacted_share: float | None
    realised_roc_auc: float | None = None


def read_history(models_dir: Path) -> list[dict[str, Any]]:
    """The history's batches, oldest first. A line that is not a batch (garbage, a truncated
    write, bytes that are not UTF-8, a record missing a key) is skipped with one warning naming
    its line number; the others are kept."""
    path = models_dir / HISTORY
    if not path.is_file():
        return []
    found = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        line = _history_line(raw)
        if line is None:
            logger.warning(
                "%s: line %d is not a monitored batch; skipped (it is dropped when the next batch is added)",
                path,
                number,
            )
        else:
            found.append(line)
    return found


def _history_line(raw: bytes) -> dict[str, Any] | None:
    try:
        return HistoryLine.model_validate_json(raw).model_dump()
    except (ValidationError, ValueError, RecursionError):
        return None
