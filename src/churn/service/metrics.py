"""The service's Prometheus metrics: requests, latency, rows scored and model loads."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from churn.monitoring.verdicts import MonitorReport

# The endpoints counted by name; any other path is counted as "other" (no label per client path).
ENDPOINTS = frozenset(
    {"/health", "/ready", "/model", "/predict", "/invocations", "/metrics", "/monitor", "/docs", "/openapi.json"}
)
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per application).

    With several worker processes (PROMETHEUS_MULTIPROC_DIR set), each writes its values to
    shared files and /metrics adds them up across workers.
    """

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "churn_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=registry
        )
        self.latency = Histogram(
            "churn_request_duration_seconds",
            "request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rows = Counter("churn_rows_scored", "customers scored", registry=registry)
        self.reloads = Counter("churn_model_reloads", "model loads by result", ["result"], registry=registry)
        self.model = Gauge(
            "churn_model_info", "1 for the run being served", ["run_id"], registry=registry, multiprocess_mode="liveall"
        )
        self.psi = Gauge(
            "churn_input_psi",
            "PSI of each input column over the monitoring window",
            ["column"],
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.prediction_psi = Gauge(
            "churn_prediction_psi",
            "PSI of the churn probability over the monitoring window",
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.estimated_auc = Gauge(
            "churn_estimated_roc_auc",
            "ROC AUC estimated without labels (CBPE), window",
            registry=registry,
            multiprocess_mode="liveall",
        )
        self._served: str | None = None

    def loaded(self, result: str, run_id: str | None) -> None:
        self.reloads.labels(result).inc()
        if run_id is not None:
            if self._served is not None:
                self.model.labels(self._served).set(0)
            self.model.labels(run_id).set(1)
            self._served = run_id

    def drifted(self, report: MonitorReport) -> None:
        """The monitoring window's figures (its monitor.json), as gauges."""
        for column in report.columns:
            self.psi.labels(column.column).set(column.psi)
        self.prediction_psi.set(report.prediction.psi)
        if report.estimated.roc_auc is not None:
            self.estimated_auc.set(report.estimated.roc_auc)

    def exposition(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined)
        return generate_latest(combined)

    def record(self, path: str, status: int, rows: int, seconds: float) -> None:
        """One answered request."""
        endpoint = path if path in ENDPOINTS else "other"
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if rows:
            self.rows.inc(rows)
