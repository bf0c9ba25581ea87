"""A monitored batch, as figures: `monitor.json`, its verdict, and the history of batches.

`DriftTally` adds up a batch's bins chunk by chunk (or a service's window at once); `report`
turns the counts and the batch's probabilities into every figure `monitor` writes, against the
run's reference profile and test metrics; `verdict` says stable, warning or alarm, and why.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from churn import monitoring
from churn.config import MonitorConfig
from churn.costs import decision_cost
from churn.files import write_text_atomic
from churn.record import RunRecord

if TYPE_CHECKING:
    from churn.batch import ScoredChunk

logger = logging.getLogger(__name__)

HISTORY = "monitor_history.jsonl"  # in the models folder: one line per monitored batch


class DriftTally:
    """A batch's bin counts per column against a reference profile, its probabilities (unless
    `keep_probabilities` is off: predict's warnings need the columns only) and its labels."""

    def __init__(self, reference: monitoring.Reference, keep_probabilities: bool = True) -> None:
        self.reference, self.profile = reference, reference.profile
        self.counts = [np.zeros(c.size, dtype="int64") for c in self.profile.columns]
        self.keep_probabilities = keep_probabilities
        self.probabilities: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def add(self, chunk: ScoredChunk, labels: np.ndarray | None = None) -> None:
        """A scored chunk's rows."""
        self.add_bins(self.profile.bin_rows(chunk.scored.cleaned.features), chunk.probabilities, labels)

    def add_bins(self, bins: np.ndarray, probabilities: np.ndarray, labels: np.ndarray | None = None) -> None:
        for total, counts in zip(self.counts, self.profile.column_counts(bins), strict=True):
            total += counts
        if self.keep_probabilities:
            self.probabilities.append(np.asarray(probabilities, dtype="float64"))
        if labels is not None:
            self.labels.append(np.asarray(labels, dtype="float64"))

    def column_psi(self) -> dict[str, float]:
        """Each input column's PSI against the training rows, as monitor.json gives it."""
        return {
            column.name: monitoring.psi(self.reference.shares(column.name), counts)
            for column, counts in zip(self.profile.columns, self.counts, strict=True)
        }

    @property
    def all_probabilities(self) -> np.ndarray:
        return np.concatenate(self.probabilities) if self.probabilities else np.zeros(0)

    @property
    def all_labels(self) -> np.ndarray | None:
        """0/1 per row (NaN where the label is missing), or None when the batch had none."""
        return np.concatenate(self.labels) if self.labels else None


class Window:
    """The bins and probabilities of the last `size` rows scored (the service's), thread-safe:
    requests add to it on several threads while /monitor and /metrics read it."""

    def __init__(self, reference: monitoring.Reference, size: int) -> None:
        self.reference, self.profile, self.size = reference, reference.profile, size
        self._bins = np.zeros((size, len(self.profile.columns)), dtype="int16")
        self._probabilities = np.zeros(size)
        self._next, self._filled = 0, 0
        self._lock = threading.Lock()

    def add(self, bins: np.ndarray, probabilities: np.ndarray) -> None:
        bins, probabilities = bins[-self.size :], probabilities[-self.size :]
        with self._lock:  # the positions too: two requests adding at once must not take the same slots
            positions = (self._next + np.arange(len(probabilities))) % self.size
            self._bins[positions], self._probabilities[positions] = bins, probabilities
            self._next = int((self._next + len(probabilities)) % self.size)
            self._filled = min(self._filled + len(probabilities), self.size)

    def tally(self) -> DriftTally:
        with self._lock:
            bins, probabilities = self._bins[: self._filled].copy(), self._probabilities[: self._filled].copy()
        tally = DriftTally(self.reference)
        tally.add_bins(bins, probabilities)
        return tally


@dataclass(frozen=True)
class Batch:
    """What was monitored: where the rows came from."""

    input: str
    sha256: str | None


def report(
    reference: monitoring.Reference,
    record: RunRecord,
    tally: DriftTally,
    settings: MonitorConfig,
    batch: Batch,
    realised: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of a monitored batch against the run (the contents of monitor.json);
    `realised`: the metrics on the batch's labels, when it had them."""
    probabilities = tally.all_probabilities
    threshold = record.threshold.value
    columns = sorted(_column_figures(tally, settings), key=lambda c: -c["psi"])
    figures: dict[str, Any] = {
        "run_id": record.run_id,
        "input": batch.input,
        "input_sha256": batch.sha256,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": len(probabilities),
        "settings": settings.model_dump(mode="json"),
        "columns": columns,
        "prediction": _prediction_figures(reference, tally.profile, probabilities, threshold, settings),
        "estimated": estimated_performance(probabilities, threshold, record),
        "test": _test_figures(record),
        "calibration": _calibration(reference, settings),
    }
    if realised is not None:
        figures["realised"] = dict(realised)
    figures["verdict"], figures["reasons"] = verdict(figures, settings)
    return figures


def _column_figures(tally: DriftTally, settings: MonitorConfig) -> list[dict[str, Any]]:
    out, psi = [], tally.column_psi()
    for column, counts in zip(tally.profile.columns, tally.counts, strict=True):
        then = tally.reference.shares(column.name)
        now = counts / counts.sum() if counts.sum() else counts.astype("float64")
        value = psi[column.name]
        figures = {
            "column": column.name,
            "kind": column.kind,
            "psi": value,
            "band": monitoring.psi_band(value, settings.psi_warn, settings.psi_alarm),
            "missing_share_then": float(then[-1]),
            "missing_share_now": float(now[-1]),
            "bins": column.labels,
            "shares_then": then.tolist(),
            "shares_now": now.tolist(),
        }
        if column.kind == "categorical":
            present = counts.sum() - counts[-1]
            figures["unseen_share_now"] = float(counts[-2] / present) if present else 0.0
        out.append(figures)
    return out


def _prediction_figures(
    reference: monitoring.Reference,
    profile: monitoring.Profile,
    probabilities: np.ndarray,
    threshold: float,
    settings: MonitorConfig,
) -> dict[str, Any]:
    then = np.asarray(reference.probabilities.shares, dtype="float64")
    counts = profile.probability_counts(probabilities)
    value = monitoring.psi(then, counts)
    return {
        "psi": value,
        "band": monitoring.psi_band(value, settings.psi_warn, settings.psi_alarm),
        "mean_then": reference.probabilities.mean,
        "mean_now": float(probabilities.mean()) if len(probabilities) else None,
        "contacted_share_then": reference.probabilities.contacted_share,
        "contacted_share_now": float((probabilities >= threshold).mean()) if len(probabilities) else None,
        "edges": list(profile.probability_edges),
        "shares_then": then.tolist(),
        "shares_now": (counts / max(counts.sum(), 1)).tolist(),
    }


def estimated_performance(probabilities: np.ndarray, threshold: float, record: RunRecord) -> dict[str, Any]:
    """CBPE: the run's performance on these rows expected from their probabilities alone."""
    confusion = monitoring.expected_confusion(probabilities, threshold)
    figures: dict[str, Any] = {"roc_auc": monitoring.expected_roc_auc(probabilities)}
    figures |= monitoring.rates(confusion)
    figures["expected_churn_rate"] = float(probabilities.mean()) if len(probabilities) else None
    if record.decision.has_costs and len(probabilities):
        contacted = int((probabilities >= threshold).sum())
        churners = confusion["tp"] + confusion["fn"]
        cost = float(decision_cost(contacted, confusion["tp"], churners, record.decision))  # type: ignore[arg-type]
        figures |= {"expected_cost": cost, "expected_cost_per_customer": cost / len(probabilities)}
    return figures


def _test_figures(record: RunRecord) -> dict[str, Any]:
    metrics = record.metrics
    figures: dict[str, Any] = {"roc_auc": metrics.roc_auc, "precision": metrics.precision, "recall": metrics.recall}
    if metrics.costs is not None:
        rows = record.split.test_rows
        figures |= {"expected_cost": metrics.costs.expected_cost,
                    "expected_cost_per_customer": metrics.costs.expected_cost / rows}  # fmt: skip
    return figures


def _calibration(reference: monitoring.Reference, settings: MonitorConfig) -> dict[str, Any]:
    error = reference.calibration.expected_calibration_error
    return {"expected_calibration_error": error, "max_calibration_error": settings.max_calibration_error,
            "estimate_trusted": error <= settings.max_calibration_error,
            "bins": [b.model_dump() for b in reference.calibration.bins]}  # fmt: skip


def verdict(figures: Mapping[str, Any], settings: MonitorConfig) -> tuple[str, list[str]]:
    """alarm: a column or the predictions at or above psi_alarm, or the estimated ROC AUC below
    the test one by more than max_auc_drop; warning: a shift at or above psi_warn, or a run too
    poorly calibrated for its estimate to mean much; otherwise stable."""
    alarms, warnings = [], []
    for column in figures["columns"]:
        line = f"{column['column']}: PSI {column['psi']:.3f} ({column['band']})"
        if column["psi"] >= settings.psi_alarm:
            alarms.append(line)
        elif column["psi"] >= settings.psi_warn:
            warnings.append(line)
    prediction = figures["prediction"]
    line = f"churn probability: PSI {prediction['psi']:.3f} ({prediction['band']})"
    if prediction["psi"] >= settings.psi_alarm:
        alarms.append(line)
    elif prediction["psi"] >= settings.psi_warn:
        warnings.append(line)
    estimated, test = figures["estimated"]["roc_auc"], figures["test"]["roc_auc"]
    if estimated is not None and estimated < test - settings.max_auc_drop:
        alarms.append(f"estimated ROC AUC {estimated:.3f} is below the test ROC AUC {test:.3f} by more than "
                      f"monitor.max_auc_drop ({settings.max_auc_drop})")  # fmt: skip
    calibration = figures["calibration"]
    if not calibration["estimate_trusted"]:
        error, most = calibration["expected_calibration_error"], settings.max_calibration_error
        warnings.append(
            f"the run's calibration error {error:.3f} is over monitor.max_calibration_error ({most}): "
            "the estimates mean little"
        )
    if alarms:
        return "alarm", alarms + warnings
    return ("warning", warnings) if warnings else ("stable", [])


def history_line(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The headline figures of a batch, as its history keeps them."""
    top = {c["column"]: round(c["psi"], 6) for c in figures["columns"][:5]}
    return {
        "run_id": figures["run_id"], "input": figures["input"], "input_sha256": figures["input_sha256"],
        "created": figures["created"], "rows": figures["rows"], "verdict": figures["verdict"],
        "top_psi": top, "prediction_psi": figures["prediction"]["psi"],
        "estimated_roc_auc": figures["estimated"]["roc_auc"],
        "contacted_share": figures["prediction"]["contacted_share_now"],
        "realised_roc_auc": figures.get("realised", {}).get("roc_auc"),
    }  # fmt: skip


def drift_warnings(tally: DriftTally, settings: MonitorConfig) -> list[str]:
    """One line per input column whose PSI against the training rows reaches monitor.psi_alarm
    (the figure monitor.json gives), largest first."""
    found = sorted(((value, name) for name, value in tally.column_psi().items() if value >= settings.psi_alarm),
                   reverse=True)  # fmt: skip
    return [f"column {name} has drifted from the training rows: PSI {value:.2f}, at or above monitor.psi_alarm "
            f"({settings.psi_alarm:g}); check the batch, or run monitor on it" for value, name in found]  # fmt: skip


def append_history(models_dir: Path, figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Add the batch to the history, atomically: the whole file rewritten beside and renamed,
    so a kill mid-write leaves the history as it was (lines that could not be read are left
    out, each named once by read_history). Returns the history with it."""
    lines = read_history(models_dir) + [history_line(figures)]
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
            logger.warning("%s: line %d is not a monitored batch; skipped (it is dropped when the next batch is added)",
                           path, number)  # fmt: skip
        else:
            found.append(line)
    return found


def _history_line(raw: bytes) -> dict[str, Any] | None:
    try:
        return HistoryLine.model_validate_json(raw).model_dump()
    except (ValidationError, ValueError, RecursionError):
        return None
