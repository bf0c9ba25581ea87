"""Scoring with a saved run: the one scorer behind `predict`, `evaluate`, the HTTP service and
the cluster, kept free of scikit-learn imports so that `predict` starts fast.

A scorer cleans raw rows with the run's own `FeatureSpec` (`churn.cleaning`, the code the
saved model's first step runs), scores the clean features, and applies the run's threshold.

A logistic-regression run carries `scorer.json`: its whole fitted model as lookup tables
(cleaning spec, threshold, imputation values, scaling, one coefficient per numeric column and
per training category). `LinearScorer` evaluates them with numpy; importing and unpickling
scikit-learn is skipped, which saves over a second per run, and nothing is unpickled, so no
code runs on load. A boosted-trees run of shallow trees carries `trees.json` the same way
(`churn.scoring.trees.TreeScorer`). Other models load the saved model and score through
`churn.scoring.compiling.FastScorer`. All are tested equal to the saved model's `predict_proba`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from churn.cleaning import CleanedFeatures, FeatureSpec, FeatureTable, clean_features
from churn.scoring.margins import LinearMargin, sigmoid
from churn.scoring.trees import TreeScorer
from churn.store import runs, upgrade
from churn.store.record import FeatureSchema, RunRecord
from churn.survival.horizons import HorizonScorer, load_horizon_scorer

if TYPE_CHECKING:
    import pandas as pd

    from churn.scoring.compiling import FastScorer


class Scorer(Protocol):
    """Churn probabilities of cleaned features, and the run's decision threshold."""

    spec: FeatureSpec
    threshold: float

    def score_clean(self, features: FeatureTable) -> np.ndarray: ...


@dataclass(frozen=True)
class Scored:
    """One batch of rows scored: the cleaning done, probabilities and 0/1 decisions."""

    cleaned: CleanedFeatures
    probabilities: np.ndarray
    predictions: np.ndarray


def predict_labels(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 decisions: 1 where the churn probability reaches the threshold (as the saved model's `predict`)."""
    return (probabilities >= threshold).astype("int8")


def score(scorer: Scorer, frame: pd.DataFrame | pa.Table) -> Scored:
    """Clean raw rows with the run's spec, score them, and apply the run's threshold."""
    cleaned = clean_features(frame, scorer.spec)
    probabilities = scorer.score_clean(cleaned.features)
    return Scored(cleaned, probabilities, predict_labels(probabilities, scorer.threshold))


class LinearScorer(LinearMargin):
    """A logistic regression model evaluated from its exported lookup tables."""

    def __init__(self, tables: dict[str, Any]) -> None:
        super().__init__(tables)
        self.threshold = float(tables["threshold"])

    def score_clean(self, features: FeatureTable) -> np.ndarray:
        return sigmoid(self.margin_clean(features))


def load_scorer(run_dir: Path, record: RunRecord, threads: int = 1) -> Scorer:
    """The fastest faithful scorer of a run: its exported tables, else its saved model.

    `threads`: how many threads a compiled model scores slices of rows on (the numbers are the
    same whatever the count). Fails closed: every artefact is loaded from the very bytes whose
    sha256 was checked
    against the digest the run's record holds, and a missing digest or a missing recorded
    artefact is refused, never worked around.

    Raises:
        ModelError: a digest is missing or differs, or a recorded artefact is missing.
    """
    if runs.SCORER in record.artefacts:
        return LinearScorer(upgrade.upgrade_tables(json.loads(runs.read_artefact(run_dir, runs.SCORER, record))))
    if runs.TREES in record.artefacts:
        tables = json.loads(runs.read_artefact(run_dir, runs.TREES, record))
        return TreeScorer(tables, lambda: load_fast_scorer(run_dir, record, threads), threads)
    return load_fast_scorer(run_dir, record, threads)


def load_fast_scorer(run_dir: Path, record: RunRecord, threads: int) -> FastScorer:
    """The run's saved model, hash-checked, as a compiled scorer."""
    # Deferred: these import scikit-learn (1.5-2.5 s), which a run's exported tables score without.
    from churn.model import load_model
    from churn.scoring.compiling import FastScorer

    return FastScorer(load_model(run_dir, record), threads)


@dataclass(frozen=True)
class LoadedRun:
    """A complete run ready to score: its folder, record, hash-checked scorer, and its hazard
    model's scorer (None: the run has no survival model)."""

    run_dir: Path
    record: RunRecord
    scorer: Scorer
    horizons: HorizonScorer | None = None

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def features(self) -> FeatureSchema:
        return self.record.features


def load_run(models_dir: Path, run: str | Path | None, threads: int = 1) -> LoadedRun:
    """The run folder (default: the one `latest` names), its record, and its hash-checked scorer
    (scoring on `threads` threads).

    Raises:
        ModelError: no such run, or it is incomplete or changed after training.
    """
    run_dir = runs.resolve_run(models_dir, run)
    record = runs.read_record(run_dir)
    return LoadedRun(run_dir, record, load_scorer(run_dir, record, threads), load_horizon_scorer(run_dir, record))
