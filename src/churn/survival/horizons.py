"""Churn within each horizon from a run's hazard model: the one computation every door uses.

Kept free of scikit-learn, as `churn.scoring.scorers` is: a logistic hazard model carries
`survival.json`, its feature part as lookup tables plus a baseline per month, evaluated with
numpy; a tree hazard model is the saved `survival.joblib` (`churn.survival.hazard.HazardModel`).
Both are tested equal to the saved model's `predict_horizons`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from churn.cleaning import FeatureTable
from churn.errors import ModelError
from churn.scoring.margins import LinearMargin, sigmoid
from churn.store import runs
from churn.store.record import RunRecord

if TYPE_CHECKING:
    from churn.survival.hazard import HazardModel

SURVIVAL_TABLES = "survival.json"
SURVIVAL_MODEL = "survival.joblib"


def horizon_names(horizons: Sequence[int]) -> list[str]:
    """The output columns for these horizons: churn_within_<h>m each, expected_months_<last>m."""
    return [f"churn_within_{h}m" for h in horizons] + [f"expected_months_{horizons[-1]}m"]


def horizon_columns(hazards: np.ndarray, horizons: Sequence[int]) -> dict[str, np.ndarray]:
    """From each customer's hazards in months t + 1 ... t + H (rows x H, NaN for a customer with
    no present tenure): churn within each horizon, and the months expected within the last."""
    kept = np.cumprod(1.0 - hazards, axis=1)
    columns = {f"churn_within_{h}m": 1.0 - kept[:, h - 1] for h in horizons}
    columns[f"expected_months_{horizons[-1]}m"] = kept[:, : horizons[-1]].sum(axis=1)
    return columns


def months_ahead(tenure: np.ndarray, ahead: int, max_month: int) -> tuple[np.ndarray, np.ndarray]:
    """The months t + 1 ... t + ahead of customers at tenure t (whole months, capped at
    max_month), rows x ahead, and which customers have a usable tenure (a number of at least 0)."""
    known = np.isfinite(tenure) & (tenure >= 0)
    stayed = np.minimum(np.floor(np.where(known, tenure, 0.0)), max_month).astype("int64")  # no overflow
    months = np.minimum(stayed[:, None] + np.arange(1, ahead + 1)[None, :], max_month)
    return months, known


class HorizonScorer(Protocol):
    """Churn within each horizon of cleaned features (the classifier's cleaning: the duration
    is one of its numeric features)."""

    duration_column: str
    horizons: tuple[int, ...]

    def horizons_clean(self, features: FeatureTable) -> dict[str, np.ndarray]: ...


class LinearHazardScorer:
    """A logistic hazard model from its lookup tables: margin = features' part + baseline[month]."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self.margin = LinearMargin(tables)
        self.baseline = np.asarray(tables["baseline"], dtype="float64")
        self.duration_column = str(tables["duration_column"])
        self.horizons = tuple(int(h) for h in tables["horizons"])

    def horizons_clean(self, features: FeatureTable) -> dict[str, np.ndarray]:
        months, known = months_ahead(features.numbers[self.duration_column], self.horizons[-1], len(self.baseline))
        hazards = self.baseline[months - 1]
        hazards += self.margin.margin_clean(features)[:, None]
        hazards = sigmoid(hazards, out=hazards)
        hazards[~known] = np.nan
        return horizon_columns(hazards, self.horizons)


class ModelHazardScorer:
    """A tree hazard model through the saved HazardModel itself, unpickled on first use: its
    bytes are read (and their digest checked) when the run loads, but scikit-learn, which the
    pickle needs, is imported only when horizons are asked for (not by `predict --no-horizons`)."""

    def __init__(self, payload: bytes, duration_column: str, horizons: tuple[int, ...]) -> None:
        self.payload = payload
        self.duration_column = duration_column
        self.horizons = horizons
        self._model: HazardModel | None = None

    @property
    def model(self) -> HazardModel:
        if self._model is None:
            self._model = _unpickled(self.payload)
        return self._model

    def horizons_clean(self, features: FeatureTable) -> dict[str, np.ndarray]:
        frame = self.model.predict_horizons(features.frame)
        return {name: frame[name].to_numpy("float64") for name in frame.columns}


def load_horizon_scorer(run_dir: Path, record: RunRecord) -> HorizonScorer | None:
    """The run's hazard model as a scorer (its tables, else its saved model), or None when the
    run has none; loaded from the very bytes whose sha256 the record holds.

    Raises:
        ModelError: a digest is missing or differs.
    """
    if SURVIVAL_TABLES in record.artefacts:
        return LinearHazardScorer(json.loads(runs.read_artefact(run_dir, SURVIVAL_TABLES, record)))
    if SURVIVAL_MODEL in record.artefacts and record.survival is not None:
        payload = runs.read_artefact(run_dir, SURVIVAL_MODEL, record)
        return ModelHazardScorer(payload, record.survival.duration_column, tuple(record.survival.horizons))
    return None


def load_hazard_model(run_dir: Path, record: RunRecord) -> HazardModel:
    """A run's `survival.joblib`, from the bytes whose sha256 matched the record's.

    Raises:
        ModelError: no survival model is recorded, or the file changed after training.
    """
    if SURVIVAL_MODEL not in record.artefacts:
        raise ModelError(f"run {record.run_id} has no survival model; train it with survival.duration_column set")
    return _unpickled(runs.read_artefact(run_dir, SURVIVAL_MODEL, record))


def _unpickled(payload: bytes) -> HazardModel:
    import joblib  # deferred: joblib and scikit-learn load only for a saved model

    return joblib.load(io.BytesIO(payload))
