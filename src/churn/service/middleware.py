"""What every request passes through: a request id, one access log line, its metrics, and a
JSON 500 answer carrying the request id when something breaks.

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it adds no task or stream
per request, which matters for 1-row requests answered in a few milliseconds. It hands the
endpoints a typed `RequestInfo` in the request's state (`churn.service.deps.request_info`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from churn.service.metrics import Metrics

logger = logging.getLogger("churn.service")
access = logging.getLogger("churn.service.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
STATE_KEY = "churn_request"  # where RequestInfo lives in the request's state

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class RequestInfo:
    """What the access log and the metrics need from an endpoint: the id, and the rows it scored."""

    request_id: str
    rows: int = 0
    timed_out: bool = False  # the connection gave up waiting for the body (serve.read_timeout_s)


class RequestLog:
    """ASGI middleware around every HTTP request."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = RequestInfo(_request_id(scope))
        scope.setdefault("state", {})[STATE_KEY] = info
        answer = {"status": 500, "started": False, "recorded": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", info.request_id.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Counted before the last byte leaves: a client that reads /metrics next, from
                # any worker, sees this request already.
                self._record(scope, int(answer["status"]), info, time.perf_counter() - started)
                answer["recorded"] = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:  # the shutdown's time ran out while this request was answered
            if not answer["started"]:
                detail = "the service is shutting down; send the request again"
                with contextlib.suppress(Exception):
                    await send_json(send_with_id, 503, {"detail": detail, "request_id": info.request_id})
            raise
        except Exception:
            logger.exception(
                "internal error answering %s %s, request_id=%s",
                scope["method"],
                printable(scope["path"]),
                info.request_id,
            )
            if not answer["started"]:
                detail = "internal error; report it with this request id"
                await send_json(send_with_id, 500, {"detail": detail, "request_id": info.request_id})
        finally:
            if not answer["recorded"]:  # the client went away, or the answer broke off
                self._record(scope, int(answer["status"]), info, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, info: RequestInfo, seconds: float) -> None:
        self.metrics.record(scope["path"], status, info.rows, seconds)
        client = (scope.get("client") or ("-",))[0]
        line = '%s "%s %s" %d rows=%d %.1f ms request_id=%s'
        args = (client, scope["method"], printable(scope["path"]), status, info.rows, seconds * 1000, info.request_id)
        if status >= 500:
            access.error(line, *args)
        else:
            access.info(line, *args)


def printable(text: str, limit: int = 200) -> str:
    """A client-controlled string as a log line may hold it: control characters escaped, so no
    request can write a line of its own, and at most `limit` characters."""
    shown = text[:limit] + ("…" if len(text) > limit else "")
    return shown if shown.isprintable() else shown.encode("unicode_escape").decode("ascii")


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
