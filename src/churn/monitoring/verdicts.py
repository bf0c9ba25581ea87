"""A monitored batch as figures: `report` turns a tally and the batch's probabilities into a typed
`MonitorReport` (what monitor.json holds), against the run's reference profile and test
metrics; `verdict` says stable, warning or alarm, and why; `drift_warnings` are the lines
predict logs. The CLI, the service and its metrics read the report by attribute."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from churn.config import MonitorConfig
from churn.monitoring import profiles
from churn.monitoring.tallies import DriftTally
from churn.scoring.decisions import Costs
from churn.store.record import RunRecord


class _Figures(BaseModel):
    # extra="forbid": a figure added to the report must be added here too
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnDrift(_Figures):
    """One input column: its shares per bin then (training) and now, and their PSI."""

    column: str
    kind: Literal["numeric", "categorical"]
    psi: float
    band: str
    missing_share_then: float
    missing_share_now: float
    bins: list[str]
    shares_then: list[float]
    shares_now: list[float]
    unseen_share_now: float | None = None  # categorical columns only


class PredictionDrift(_Figures):
    """The churn probability: its deciles then (the test rows) and now."""

    psi: float
    band: str
    mean_then: float | None
    mean_now: float | None
    contacted_share_then: float | None
    contacted_share_now: float | None
    edges: list[float]
    shares_then: list[float]
    shares_now: list[float]


class HorizonShare(_Figures):
    """Predicted churn within the last horizon (from each customer's tenure): then and now."""

    column: str
    then: float
    now: float
    change: float
    rows_now: int


class Performance(_Figures):
    """Performance figures: estimated from the probabilities (CBPE), of the test rows, or realised."""

    roc_auc: float | None = None
    precision: float | None = None
    recall: float | None = None
    pr_auc: float | None = None
    brier: float | None = None
    expected_churn_rate: float | None = None
    expected_cost: float | None = None
    expected_cost_per_customer: float | None = None
    rows: int | None = None  # realised: the labelled rows
    note: str | None = None  # realised: why a figure is missing


class Calibration(_Figures):
    expected_calibration_error: float
    max_calibration_error: float
    estimate_trusted: bool
    bins: list[profiles.CalibrationBin]


class MonitorReport(_Figures):
    """Every figure of a monitored batch against its run: monitor.json."""

    run_id: str
    input: str
    input_sha256: str | None
    created: str
    rows: int
    settings: MonitorConfig
    columns: list[ColumnDrift]  # largest PSI first
    prediction: PredictionDrift
    estimated: Performance
    test: Performance
    calibration: Calibration
    realised: Performance | None = None  # when the batch held labels
    horizon: HorizonShare | None = None  # a run with a survival model
    verdict: Literal["stable", "warning", "alarm"]
    reasons: list[str]

    def to_json(self) -> dict[str, Any]:
        """monitor.json: the figures the batch has (none of a kind it lacks)."""
        return self.model_dump(mode="json", exclude_unset=True)


@dataclass(frozen=True)
class Batch:
    """What was monitored: where the rows came from."""

    input: str
    sha256: str | None


def report(
    reference: profiles.Reference,
    record: RunRecord,
    tally: DriftTally,
    settings: MonitorConfig,
    batch: Batch,
    realised: Mapping[str, Any] | None = None,
) -> MonitorReport:
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
    if reference.horizon is not None and (now := tally.horizon_mean) is not None:
        then = reference.horizon.mean
        figures["horizon"] = {"column": reference.horizon.column, "then": then, "now": now, "change": now - then,
                              "rows_now": tally.horizon_rows}  # fmt: skip
    figures["verdict"], figures["reasons"] = verdict(figures, settings)
    return MonitorReport.model_validate(figures)


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
            "band": profiles.psi_band(value, settings.psi_warn, settings.psi_alarm),
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
    reference: profiles.Reference,
    profile: profiles.Profile,
    probabilities: np.ndarray,
    threshold: float,
    settings: MonitorConfig,
) -> dict[str, Any]:
    then = np.asarray(reference.probabilities.shares, dtype="float64")
    counts = profile.probability_counts(probabilities)
    value = profiles.psi(then, counts)
    return {
        "psi": value,
        "band": profiles.psi_band(value, settings.psi_warn, settings.psi_alarm),
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
    confusion = profiles.expected_confusion(probabilities, threshold)
    figures: dict[str, Any] = {"roc_auc": profiles.expected_roc_auc(probabilities)}
    figures |= profiles.rates(confusion)
    figures["expected_churn_rate"] = float(probabilities.mean()) if len(probabilities) else None
    # per-customer costs need each customer's money, which a batch's bins do not keep: no cost then
    if (costs := Costs.of(record.decision)) is not None and not costs.per_customer and len(probabilities):
        contacted = int((probabilities >= threshold).sum())
        churners = confusion["tp"] + confusion["fn"]
        cost = float(costs.cost(contacted, confusion["tp"], churners))
        figures |= {"expected_cost": cost, "expected_cost_per_customer": cost / len(probabilities)}
    return figures


def _test_figures(record: RunRecord) -> dict[str, Any]:
    metrics = record.metrics
    figures: dict[str, Any] = {"roc_auc": metrics.roc_auc, "precision": metrics.precision, "recall": metrics.recall}
    if metrics.costs is not None:
        rows = record.split.test_rows
        figures |= {
            "expected_cost": metrics.costs.expected_cost,
            "expected_cost_per_customer": metrics.costs.expected_cost / rows,
        }
    return figures


def _calibration(reference: profiles.Reference, settings: MonitorConfig) -> dict[str, Any]:
    error = reference.calibration.expected_calibration_error
    return {
        "expected_calibration_error": error,
        "max_calibration_error": settings.max_calibration_error,
        "estimate_trusted": error <= settings.max_calibration_error,
        "bins": [b.model_dump() for b in reference.calibration.bins],
    }


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
        alarms.append(
            f"estimated ROC AUC {estimated:.3f} is below the test ROC AUC {test:.3f} by more than "
            f"monitor.max_auc_drop ({settings.max_auc_drop})"
        )
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


def drift_warnings(tally: DriftTally, settings: MonitorConfig) -> list[str]:
    """One line per input column whose PSI against the training rows reaches monitor.psi_alarm
    (the figure monitor.json gives), largest first."""
    found = sorted(
        ((value, name) for name, value in tally.column_psi().items() if value >= settings.psi_alarm), reverse=True
    )
    return [
        f"column {name} has drifted from the training rows: PSI {value:.2f}, at or above monitor.psi_alarm "
        f"({settings.psi_alarm:g}); check the batch, or run monitor on it"
        for value, name in found
    ]
