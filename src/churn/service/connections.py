"""Connections as a hostile network sends them: uvicorn's httptools protocol, bounded.

uvicorn times out only idle keep-alive connections. `GuardedProtocol` adds what a service on an
open network needs, at the level where it can be done before the application runs:

- a client must send a request's headers within `serve.read_timeout_s` (from its first byte,
  or from the connection when nothing comes), and then its body within as long again; past
  that it gets a JSON 408 and the connection is closed (a slow client holds no worker);
- (the bound of `serve.max_connections` connections is uvicorn's own public `limit_concurrency`,
  set in `churn.service.server`: past it, uvicorn answers 503 in plain text);
- a request that is not valid HTTP (a bad `Content-Length`, say) gets a JSON 400, not
  uvicorn's plain text;
- on shutdown, every connection gets a moment for a request already on its way (its bytes sent,
  not yet read); a request that arrives whole in that moment is answered, with
  `Connection: close`; one still arriving after it is a slow client's, and gets a JSON 503.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from churn.config import ServeConfig
from churn.service.middleware import STATE_KEY

# How long a connection with nothing received yet waits at shutdown for a request already sent.
SHUTDOWN_GRACE_SECONDS = 0.25


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with read timeouts, a connection bound and JSON errors."""

    read_timeout: ClassVar[float] = 10.0

    @classmethod
    def configure(cls, serve: ServeConfig) -> None:
        """Take the limits of this process's service (set before the server starts)."""
        cls.read_timeout = serve.read_timeout_s

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading = False  # between a request's first byte and its last
        self._closing = False  # shutdown began: answer what arrives, then close

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # the first request's headers must come in time, even if nothing comes

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        self._arm()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._closing and self.cycle is not None:
            self.cycle.keep_alive = False
        self._arm()  # the body's turn

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._disarm()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self._answer(400, "the request is not valid HTTP (a bad Content-Length, a malformed header or line)")

    def shutdown(self) -> None:
        self._closing = True
        if self._busy():  # a whole request being answered: finish it, then close
            super().shutdown()
            return
        # Idle (before its first request, or between two on a kept-alive connection) or a request
        # arriving: a request the client has sent may still be in the socket, unread; closing now
        # would reset it. It gets a moment to arrive whole.
        self._disarm()
        self.loop.call_later(SHUTDOWN_GRACE_SECONDS, self._after_grace)

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete and not self._reading

    def _after_grace(self) -> None:
        if self._reading:  # still arriving: a slow client's request, which never became one
            self._answer(503, "the service is shutting down; send the request again")
        elif self._busy():
            super().shutdown()
        else:
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        part = "body" if self.cycle is not None and not self.cycle.response_complete else "headers"
        detail = f"the request's {part} did not arrive within {self.read_timeout:g} s (serve.read_timeout_s)"
        if self.cycle is not None:
            info = self.scope.get("state", {}).get(STATE_KEY)
            if info is not None:
                info.timed_out = True
            self.cycle.disconnected = True  # the application waiting for the body stops waiting
            self.cycle.message_event.set()
        self._answer(408, detail)

    def _answer(self, status: int, detail: str, headers: dict[bytes, bytes] | None = None) -> None:
        """A JSON error answer written straight to the connection, which is then closed."""
        if self.transport.is_closing():
            return
        body = orjson.dumps({"detail": detail, "request_id": self._request_id()})
        head = [STATUS_LINE[status], b"content-type: application/json\r\n"]
        for name, value in (headers or {}).items():
            head.append(name + b": " + value + b"\r\n")
        head += [b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _request_id(self) -> str:
        """The id the middleware gave this request, when the request got that far."""
        state = (self.scope or {}).get("state", {}) if self.cycle is not None else {}
        info = state.get(STATE_KEY)
        return info.request_id if info is not None else uuid.uuid4().hex
