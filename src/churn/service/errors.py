"""Every error answer as JSON: a one-line `detail`, the `request_id` the log line carries, and
where (`row`, `field`) when one row or field is to blame."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from churn.errors import ChurnError, DataError, FormatError
from churn.service.middleware import STATE_KEY


class ClientError(Exception):
    """A request the client must fix: an HTTP status, a one-line reason, and where."""

    def __init__(
        self,
        status: int,
        detail: str,
        row: int | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.row, self.field, self.headers = status, detail, row, field, headers


class ClientGone(Exception):
    """The client closed the connection (or was closed for being too slow) before its body came."""


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer written by orjson (numpy values included): faster than FastAPI's encoder."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(
    request: Request,
    status: int,
    detail: str,
    row: int | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    info = getattr(request.state, STATE_KEY, None)
    payload: dict[str, Any] = {"detail": detail, "request_id": info.request_id if info else "-"}
    payload |= {key: value for key, value in (("row", row), ("field", field)) if value is not None}
    return json_response(payload, status, headers)


async def _client_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ClientError)
    return error_response(request, error.status, error.detail, error.row, error.field, error.headers)


async def _churn_error(request: Request, error: Exception) -> Response:
    """Core errors while scoring a request: an unreadable CSV is 400, other bad data 422."""
    status = 400 if isinstance(error, FormatError) else 422 if isinstance(error, DataError) else 503
    return error_response(request, status, str(error))


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own answers (404 for an unknown path, 405 for a wrong method) in our shape."""
    assert isinstance(error, HTTPException)
    return error_response(request, error.status_code, str(error.detail), headers=dict(error.headers or {}))


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return error_response(request, 422, f"{where}: {first.get('msg')}" if where else str(first.get("msg")))


async def _client_gone(request: Request, error: Exception) -> Response:
    """The body never came: too slow (408, which the connection already answered) or the client left (499,
    nginx's code for it, which reaches nobody but the access log and the metrics)."""
    info = getattr(request.state, STATE_KEY, None)
    return error_response(
        request, 408 if info is not None and info.timed_out else 499, "the request's body did not arrive"
    )


def add_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientError, _client_error)
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(ChurnError, _churn_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
