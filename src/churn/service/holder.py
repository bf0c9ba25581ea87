"""The run the service scores with, and switching to a new one without a restart.

A watcher thread follows `models/latest` (every half second, or at once when woken by
SIGHUP): a new run is loaded, hash-checked and made to score a probe row before it takes
traffic; then one reference is swapped. A request holds the run it started with, so requests
in flight finish on the old model. A run that fails to load is refused with an error log and
not retried until `latest` names another; the old run keeps serving.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from churn.cleaning import FeatureTable
from churn.config import Config
from churn.errors import ChurnError, ModelError
from churn.explain import explainers
from churn.monitoring import profiles, tallies
from churn.scoring.scorers import LoadedRun, load_run, score
from churn.store import runs
from churn.store.record import FeatureSchema
from churn.survival.horizons import ModelHazardScorer

logger = logging.getLogger(__name__)

WATCH_SECONDS = 0.5


@dataclass(frozen=True)
class ServedRun:
    """A loaded, verified and probed run: what every request is scored with."""

    loaded: LoadedRun
    digest: str | None  # of its metadata.json when it was loaded: a rewritten run is a new run
    explainer: explainers.Explainer | None = None
    cannot_explain: str | None = None  # why explainer is None: shap missing, or a run to retrain
    reference: profiles.Reference | None = None  # its reference profile (None: trained before monitoring)
    window: tallies.Window | None = None  # the last serve.monitor_rows rows it scored, binned

    def observe(self, features: FeatureTable, probabilities: np.ndarray) -> None:
        """Add scored rows to the monitoring window."""
        if self.window is not None:
            self.window.add(self.window.profile.bin_rows(features), probabilities)

    def binned(self, features: FeatureTable) -> np.ndarray | None:
        """Scored rows' bins, to add to the window once the whole request is answered."""
        return self.window.profile.bin_rows(features) if self.window is not None else None

    @property
    def run_id(self) -> str:
        return self.loaded.run_id

    @property
    def features(self) -> FeatureSchema:
        return self.loaded.features

    @property
    def id_column(self) -> str | None:
        return self.loaded.features.id_column


def probe_row(features: FeatureSchema) -> dict[str, Any]:
    """One plausible customer from the training schema: the smallest number seen and the first
    category of each column."""
    row: dict[str, Any] = {c: features.numeric_ranges[c].min for c in features.numeric_features}
    row |= {c: (features.categories[c] or (None,))[0] for c in features.categorical_features}
    return row


def load_served_run(config: Config, run: str | None) -> ServedRun:
    """Load and hash-check a run, then make it score a probe row.

    Raises:
        ChurnError: the run is missing, incomplete, changed after training, or scores nonsense.
    """
    loaded = load_run(config.paths.models_dir, run, config.serve.threads)
    probe = probe_row(loaded.features)
    table = pa.table(
        {c: pa.array([probe[c]], pa.float64()) for c in loaded.features.numeric_features}
        | {c: pa.array([probe[c]], pa.string()) for c in loaded.features.categorical_features}
    )
    probability = float(score(loaded.scorer, table).probabilities[0])
    if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
        raise ModelError(f"{loaded.run_dir}: the probe row scored {probability}, not a probability; retrain")
    if isinstance(loaded.horizons, ModelHazardScorer):
        _ = loaded.horizons.model  # unpickled now, not in the first request that asks for horizons
    try:  # built here, so that the first request that asks for reasons does not wait for it
        explainer, cannot_explain = explainers.explainer_for(loaded.scorer), None
    except ChurnError as error:
        explainer, cannot_explain = None, str(error)
        logger.warning("run %s serves without explanations: %s", loaded.run_id, error)
    reference = profiles.read_reference(loaded.run_dir, loaded.record)
    window = tallies.Window(reference, config.serve.monitor_rows) if reference is not None else None
    digest = runs.record_digest(loaded.run_dir)
    return ServedRun(loaded, digest, explainer, cannot_explain, reference, window)


class ModelHolder:
    """Holds the served run and, unless a run is pinned, follows `models/latest`."""

    def __init__(
        self, config: Config, pinned: str | None = None, on_load: Callable[[str, ServedRun | None], None] | None = None
    ) -> None:
        self.config = config
        self.pinned = pinned
        self.current: ServedRun | None = None
        self.last_error: str | None = None
        self._refused: tuple[str, str | None] | None = None  # (what, digest) that failed; retried once it changes
        self._on_load = on_load or (lambda result, served: None)
        self._wanted: str | None = None  # what `latest` (or the pin) named when the current run loaded
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="churn-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wake(self) -> None:
        """Check for a new run now (SIGHUP)."""
        self._wake.set()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            if self.pinned is not None and self.current is not None:
                return  # a pinned run never switches
            self._wake.wait(WATCH_SECONDS)
            self._wake.clear()

    def refresh(self) -> None:
        """Load the run `latest` names (or the pinned one) if its id or its record changed; keep the
        old one on failure, and log a failure once, not on every check."""
        models_dir = self.config.paths.models_dir
        try:
            wanted = self.pinned or runs.read_latest(models_dir)
            if wanted is None:
                self.last_error = f"{models_dir}: no trained model yet; run `python main.py train`"
                return
            seen = (wanted, runs.record_digest(runs.resolve_run(models_dir, wanted)))
        except ModelError as error:
            self._refuse((str(self.pinned or runs.LATEST), runs.record_digest(models_dir / runs.LATEST)), error)
            return
        if (self.current is not None and seen == (self._wanted, self.current.digest)) or seen == self._refused:
            return
        try:
            served = load_served_run(self.config, wanted)
        except Exception as error:  # noqa: BLE001 - any failure refuses the run; the old one keeps serving
            self._refuse(seen, error)
            return
        previous, self.current, self._refused, self.last_error = self.current, served, None, None
        self._wanted = wanted
        logger.info("serving run %s%s", served.run_id, f" (was {previous.run_id})" if previous else "")
        self._on_load("success", served)

    def _refuse(self, seen: tuple[str, str | None], error: Exception) -> None:
        if seen == self._refused:
            return
        self._refused, self.last_error = seen, str(error)
        still = f"; still serving {self.current.run_id}" if self.current else "; no model is served yet"
        logger.error("refused run %s: %s%s", seen[0], error, still)
        self._on_load("failure", None)
