"""What every request passes through: a request id, the bearer token, one access log line,
Prometheus metrics, and a 500 answer carrying the request id when something breaks.

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it adds no task or stream
per request, which matters for 1-row requests answered in a few milliseconds.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger("churn.service")
access = logging.getLogger("churn.service.access")

OPEN_PATHS = frozenset({"/health", "/ready"})  # answered without the token: probes must reach them
ENDPOINTS = frozenset({"/health", "/ready", "/model", "/predict", "/invocations", "/metrics", "/docs", "/openapi.json"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


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
        self._served: str | None = None

    def loaded(self, result: str, run_id: str | None) -> None:
        self.reloads.labels(result).inc()
        if run_id is not None:
            if self._served is not None:
                self.model.labels(self._served).set(0)
            self.model.labels(run_id).set(1)
            self._served = run_id

    def exposition(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined)
        return generate_latest(combined)


class Gatekeeper:
    """ASGI middleware around every HTTP request."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], metrics: Metrics, token: str | None):
        self.app, self.metrics = app, metrics
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope["churn"] = info = {"request_id": request_id, "rows": 0}
        answer = {"status": 500, "started": False, "recorded": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Counted before the last byte leaves: a client that reads /metrics next, from
                # any worker, sees this request already.
                self._record(scope, int(answer["status"]), info, time.perf_counter() - started)
                answer["recorded"] = True
            await send(message)

        try:
            if self.token is not None and scope["path"] not in OPEN_PATHS and not self._authorised(scope):
                detail = "send Authorization: Bearer <token> (the value of CHURN_API_TOKEN on the server)"
                await send_json(send_with_id, 401, {"detail": detail, "request_id": request_id},
                                [(b"www-authenticate", b"Bearer")])  # fmt: skip
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "internal error answering %s %s, request_id=%s", scope["method"], scope["path"], request_id
            )
            if not answer["started"]:
                detail = "internal error; report it with this request id"
                await send_json(send_with_id, 500, {"detail": detail, "request_id": request_id})
        finally:
            if not answer["recorded"]:  # the client went away, or the answer broke off
                self._record(scope, int(answer["status"]), info, time.perf_counter() - started)

    def _authorised(self, scope: Scope) -> bool:
        assert self.token is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)
        return False

    def _record(self, scope: Scope, status: int, info: dict[str, Any], seconds: float) -> None:
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(seconds)
        if info["rows"]:
            self.metrics.rows.inc(info["rows"])
        client = (scope.get("client") or ("-",))[0]
        line = '%s "%s %s" %d rows=%d %.1f ms request_id=%s'
        args = (client, scope["method"], scope["path"], status, info["rows"], seconds * 1000, info["request_id"])
        if status >= 500:
            access.error(line, *args)
        else:
            access.info(line, *args)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
    return uuid.uuid4().hex


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps(payload)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
