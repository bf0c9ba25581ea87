"""A batch's bins counted against a run's reference profile: `DriftTally` adds them up chunk by
chunk (monitor, predict's drift warnings), `Window` holds the service's last rows, thread-safe."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from churn.monitoring import profiles

if TYPE_CHECKING:
    from churn.scoring.core import ScoredChunk


class DriftTally:
    """A batch's bin counts per column against a reference profile, its probabilities (unless
    `keep_probabilities` is off: predict's warnings need the columns only) and its labels."""

    def __init__(self, reference: profiles.Reference, keep_probabilities: bool = True) -> None:
        self.reference, self.profile = reference, reference.profile
        self.counts = [np.zeros(c.size, dtype="int64") for c in self.profile.columns]
        self.keep_probabilities = keep_probabilities
        self.probabilities: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.horizon_sum, self.horizon_rows = 0.0, 0  # churn within the reference's horizon, rows with one

    def add(self, chunk: ScoredChunk, labels: np.ndarray | None = None) -> None:
        """A scored chunk's rows."""
        self.add_bins(self.profile.bin_rows(chunk.scored.cleaned.features), chunk.probabilities, labels)
        horizon = self.reference.horizon
        if horizon is not None and horizon.column in chunk.horizons:
            values = chunk.horizons[horizon.column]
            self.horizon_sum += float(np.nansum(values))
            self.horizon_rows += int(np.isfinite(values).sum())

    @property
    def horizon_mean(self) -> float | None:
        return self.horizon_sum / self.horizon_rows if self.horizon_rows else None

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
            column.name: profiles.psi(self.reference.shares(column.name), counts)
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

    def __init__(self, reference: profiles.Reference, size: int) -> None:
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
