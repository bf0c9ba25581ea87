"""Monitoring: how this month's customers and scores compare with the ones the run learned from,
and the run's performance estimated without labels. One implementation behind `monitor`, the
reference profile training saves, and the service's rolling window.

- **Reference profile** (`reference.json` in every run folder): per input column, its bins over
  the training rows (deciles of a numeric column; each training category of a categorical one,
  plus unseen) and the missing share; the test rows' churn probabilities in deciles; their
  calibration (reliability table and expected calibration error).
- **Bins**: each row's bin per column, as small integers (`Profile.bin_rows`); a batch's
  counts are their bincounts, so a file streamed in chunks and the service's window of the last
  rows are counted by the same code.
- **PSI**, the population stability index: Σ (now − then) · ln(now / then) over a column's bins,
  with empty bins floored at `SHARE_FLOOR` so that it stays finite.
- **CBPE**, confidence-based performance estimation: with calibrated probabilities p, a row
  churns with probability p, so the confusion matrix at the threshold, precision, recall, the
  expected cost and the ROC curve all have expected values computable from p alone. It cannot
  see concept drift: when the relation between features and churn changes, the probabilities
  are no longer calibrated and the estimate is wrong without saying so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from churn.cleaning import FeatureTable
from churn.codes import Coded
from churn.errors import ModelError
from churn.store import runs
from churn.store.record import RunRecord

SCHEMA_VERSION = 1
DECILES = np.linspace(0.1, 0.9, 9)
SHARE_FLOOR = 1e-4  # an empty bin's share in PSI: ln(0) is infinite; 1e-4 is the usual floor
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ColumnBins:
    """How one input column's values fall into bins: `labels` name the bins in order; the last
    two are always unseen (categorical only; never used for numbers) and missing."""

    name: str
    kind: str  # "numeric" or "categorical"
    edges: tuple[float, ...] = ()  # numeric: interior edges, bins [e_i, e_i+1): searchsorted(edges, v, "right")
    categories: tuple[str, ...] = ()  # categorical: the training categories, one bin each

    @property
    def size(self) -> int:
        return (len(self.edges) + 1 if self.kind == "numeric" else len(self.categories)) + 2

    @property
    def labels(self) -> list[str]:
        if self.kind == "categorical":
            return [*self.categories, "(unseen)", "(missing)"]
        bounds = ["-inf", *(_number(e) for e in self.edges), "inf"]
        labels = [f"[{low}, {high})" for low, high in zip(bounds, bounds[1:], strict=False)]
        return ["(" + labels[0][1:], *labels[1:], "(unseen)", "(missing)"]

    def bins_of(self, values: np.ndarray | Coded) -> np.ndarray:
        """Each row's bin, as int16 (the service keeps a window of them)."""
        if isinstance(values, Coded):
            positions = {category: i for i, category in enumerate(self.categories)}
            unseen = len(self.categories)
            lookup = [positions.get(category, unseen) for category in values.categories] + [unseen + 1]
            return np.asarray(lookup, dtype="int16")[values.codes]  # code -1 (missing) picks the last
        bins = np.searchsorted(np.asarray(self.edges, dtype="float64"), values, side="right").astype("int16")
        bins[np.isnan(values)] = self.size - 1
        return bins


def _number(value: float) -> str:
    return f"{value:.6g}"


def column_bins(name: str, values: np.ndarray | Coded, categories: Sequence[str] = ()) -> ColumnBins:
    """A column's bins from its training values: deciles for numbers (ties merged, so a column
    of a few distinct values gets a bin per value), the training categories for text."""
    if isinstance(values, Coded):
        return ColumnBins(name, "categorical", categories=tuple(categories))
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, DECILES, method="lower")) if len(present) else np.array([])
    # "lower" quantiles are training values, so a value that many rows share (0 months, a
    # bottom tier's price) starts a bin of its own rather than straddling two
    return ColumnBins(name, "numeric", edges=tuple(float(e) for e in edges))


@dataclass(frozen=True)
class Profile:
    """The bins of every input column and of the churn probability, with the reference shares."""

    columns: tuple[ColumnBins, ...]
    probability_edges: tuple[float, ...]

    def bin_rows(self, features: FeatureTable) -> np.ndarray:
        """rows x columns: each row's bin in each input column."""
        out = np.empty((len(features), len(self.columns)), dtype="int16")
        for j, column in enumerate(self.columns):
            source = features.coded[column.name] if column.kind == "categorical" else features.numbers[column.name]
            out[:, j] = column.bins_of(source)
        return out

    def column_counts(self, bins: np.ndarray) -> list[np.ndarray]:
        return [np.bincount(bins[:, j], minlength=c.size) for j, c in enumerate(self.columns)]

    def probability_bins(self, probabilities: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.probability_edges), probabilities, side="right")

    def probability_counts(self, probabilities: np.ndarray) -> np.ndarray:
        return np.bincount(self.probability_bins(probabilities), minlength=len(self.probability_edges) + 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of the shares `actual` against `expected` (each summing to 1,
    or counts, normalised here); bins empty on either side count as SHARE_FLOOR."""
    then, now = _shares(expected), _shares(actual)
    then, now = np.maximum(then, SHARE_FLOOR), np.maximum(now, SHARE_FLOOR)
    return float(np.sum((now - then) * np.log(now / then)))


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype="float64")
    total = counts.sum()
    return counts / total if total else counts


def calibration_table(labels: np.ndarray, probabilities: np.ndarray) -> tuple[list[dict[str, float]], float]:
    """Reliability table over equal-width probability bins, and the expected calibration error
    (the row-weighted mean gap between mean probability and churn rate)."""
    bins = np.minimum((probabilities * CALIBRATION_BINS).astype("int64"), CALIBRATION_BINS - 1)
    table, error = [], 0.0
    for b in range(CALIBRATION_BINS):
        inside = bins == b
        rows = int(inside.sum())
        if not rows:
            continue
        mean, rate = float(probabilities[inside].mean()), float(labels[inside].mean())
        table.append(
            {
                "lower": b / CALIBRATION_BINS,
                "upper": (b + 1) / CALIBRATION_BINS,
                "rows": rows,
                "mean_probability": mean,
                "churn_rate": rate,
            }
        )
        error += rows * abs(mean - rate)
    return table, error / max(len(probabilities), 1)


def expected_roc_auc(probabilities: np.ndarray) -> float | None:
    """The ROC AUC expected when each row churns with its probability (CBPE): the ROC curve of
    expected true and false positives, thresholded at every distinct score. None when the
    probabilities expect no churner or no stayer."""
    p = np.sort(np.asarray(probabilities, dtype="float64"))[::-1]
    tp, fp = np.cumsum(p), np.cumsum(1.0 - p)
    if not len(p) or tp[-1] <= 0 or fp[-1] <= 0:
        return None
    last_of_tie = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tpr = np.r_[0.0, tp[last_of_tie] / tp[-1]]
    fpr = np.r_[0.0, fp[last_of_tie] / fp[-1]]
    return float(np.trapezoid(tpr, fpr))


def expected_confusion(probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    """Expected tp, fp, fn, tn at the threshold when each row churns with its probability."""
    p = np.asarray(probabilities, dtype="float64")
    contact = p >= threshold  # as predict decides
    return {
        "tp": float(p[contact].sum()),
        "fp": float((1 - p[contact]).sum()),
        "fn": float(p[~contact].sum()),
        "tn": float((1 - p[~contact]).sum()),
    }


def rates(confusion: Mapping[str, float]) -> dict[str, float | None]:
    tp, fp, fn = confusion["tp"], confusion["fp"], confusion["fn"]
    return {
        "precision": tp / (tp + fp) if tp + fp > 0 else None,
        "recall": tp / (tp + fn) if tp + fn > 0 else None,
    }


def psi_band(value: float, warn: float, alarm: float) -> str:
    return "major shift" if value >= alarm else "moderate shift" if value >= warn else "stable"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnReference(_Part):
    """One input column's bins and their shares over the training rows."""

    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    labels: tuple[str, ...]
    shares: tuple[float, ...]
    missing_share: float

    @model_validator(mode="after")
    def _bins_fit(self) -> ColumnReference:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must increase")
        bins = ColumnBins("", self.kind, self.edges, self.categories)
        if len(self.shares) != bins.size or len(self.labels) != bins.size:
            raise ValueError(f"{bins.size} bins, but {len(self.shares)} shares and {len(self.labels)} labels")
        if any(share < 0 for share in self.shares) or abs(sum(self.shares) - 1) > 1e-6:
            raise ValueError("shares must be at least 0 and add up to 1")
        return self


class ProbabilityReference(_Part):
    """The test rows' churn probabilities: decile edges, shares, mean and share contacted."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    mean: float | None
    contacted_share: float | None = None
    test_rows: int

    @model_validator(mode="after")
    def _bins_fit(self) -> ProbabilityReference:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must increase")
        if len(self.shares) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges) + 1} bins, but {len(self.shares)} shares")
        return self


class CalibrationBin(_Part):
    lower: float
    upper: float
    rows: int
    mean_probability: float
    churn_rate: float


class CalibrationReference(_Part):
    bins: tuple[CalibrationBin, ...]
    expected_calibration_error: float


class HorizonReference(_Part):
    """The test rows' mean churn within the last horizon, as predict scores them (from their tenure)."""

    column: str
    mean: float
    rows: int


class Reference(_Part):
    """A run's reference profile (`reference.json`): what monitoring compares a batch with."""

    schema_version: Literal[1]
    training_rows: int
    columns: dict[str, ColumnReference]
    probabilities: ProbabilityReference
    calibration: CalibrationReference
    horizon: HorizonReference | None = None  # a run with a survival model

    def shares(self, name: str) -> np.ndarray:
        return np.asarray(self.columns[name].shares, dtype="float64")

    @property
    def profile(self) -> Profile:
        """The bins this profile was counted in."""
        columns = tuple(ColumnBins(name, c.kind, c.edges, c.categories) for name, c in self.columns.items())
        return Profile(columns, self.probabilities.edges)


def parse_reference(text: str | bytes, where: object) -> Reference:
    """A saved reference profile, checked whole.

    Raises:
        ModelError: naming `where` and the first problem: the run must be retrained.
    """
    try:
        return Reference.model_validate_json(text)
    except ValidationError as error:
        problem = error.errors()[0]
        at = ".".join(str(part) for part in problem["loc"]) or "the file"
        raise ModelError(
            f"{where}: not a reference profile churn can read ({at}: {problem['msg']}); retrain the run"
        ) from None


def build_reference(
    features: FeatureTable,
    categories: Mapping[str, Sequence[str]],
    test_labels: np.ndarray,
    test_probabilities: np.ndarray,
    threshold: float,
    horizon: tuple[str, np.ndarray] | None = None,
) -> Reference:
    """The reference profile of a run: its training rows' columns, its test rows' probabilities
    (their deciles, the share at or above the threshold, their calibration) and, with a survival
    model, their churn within the last horizon (`horizon`: the column and its values)."""
    columns = [column_bins(n, v) for n, v in features.numbers.items()]
    columns += [column_bins(n, c, categories[n]) for n, c in features.coded.items()]
    edges = np.unique(np.quantile(test_probabilities, DECILES)) if len(test_probabilities) else np.array([])
    profile = Profile(tuple(columns), tuple(float(e) for e in edges))
    counts = profile.column_counts(profile.bin_rows(features))
    table, ece = calibration_table(np.asarray(test_labels, dtype="float64"), test_probabilities)
    return Reference.model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "training_rows": len(features),
            "columns": {c.name: _column_reference(c, n) for c, n in zip(profile.columns, counts, strict=True)},
            "probabilities": {
                "edges": list(profile.probability_edges),
                "shares": _shares(profile.probability_counts(test_probabilities)).tolist(),
                "mean": float(np.mean(test_probabilities)) if len(test_probabilities) else None,
                "contacted_share": float(np.mean(test_probabilities >= threshold)) if len(test_probabilities) else None,
                "test_rows": len(test_probabilities),
            },
            "calibration": {"bins": table, "expected_calibration_error": ece},
            "horizon": _horizon_reference(horizon),
        }
    )


def _horizon_reference(horizon: tuple[str, np.ndarray] | None) -> dict[str, Any] | None:
    if horizon is None or not np.isfinite(horizon[1]).any():
        return None
    column, values = horizon
    return {"column": column, "mean": float(np.nanmean(values)), "rows": int(np.isfinite(values).sum())}


def _column_reference(column: ColumnBins, counts: np.ndarray) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": column.kind}
    if column.kind == "numeric":
        spec["edges"] = list(column.edges)
    else:
        spec["categories"] = list(column.categories)
    shares = _shares(counts)
    return spec | {"labels": column.labels, "shares": shares.tolist(), "missing_share": float(shares[-1])}


def read_reference(run_dir: Path, record: RunRecord) -> Reference | None:
    """A run's reference profile, hash-checked and validated (None: trained before churn saved one).

    Raises:
        ModelError: it differs from its digest, or is not a profile churn can read.
    """
    if runs.REFERENCE not in record.artefacts:
        return None
    return parse_reference(runs.read_artefact(run_dir, runs.REFERENCE, record), run_dir / runs.REFERENCE)
