"""Progress on stderr, so a long job never looks stuck: rows per second while scoring, and the
time each step of a workflow took."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


class RowProgress:
    """A log line of rows done and rows per second every few seconds, and one at the end."""

    def __init__(self, task: str, every_seconds: float = 5.0, quiet: bool = False) -> None:
        self.task, self.every = task, every_seconds if not quiet else float("inf")
        self.quiet = quiet
        self.rows = 0
        self.started = self.last = time.perf_counter()

    def update(self, rows: int) -> None:
        self.rows += rows
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            logger.info("%s: %s rows done, %s rows/s", self.task, f"{self.rows:,}", f"{self.rate():,.0f}")

    def rate(self) -> float:
        return self.rows / max(time.perf_counter() - self.started, 1e-9)

    def finish(self) -> None:
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.started
        logger.info("%s: %s rows in %.1f s, %s rows/s", self.task, f"{self.rows:,}", elapsed, f"{self.rate():,.0f}")


class Steps:
    """The time each named step of a workflow took, logged as it ends (a step that fails logs
    nothing: its error says enough)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        tick = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - tick, 3)
        logger.info("%s: %.1f s", name, self.seconds[name])

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)
