"""What endpoints depend on, as FastAPI dependencies: the service's state, the served run, the
request's own record, and the bearer token.

    async def model(served: ServedRunDep) -> Response: ...

The state is one typed object on `app.state`, read here and nowhere else. The dependencies are
`async` although none awaits: FastAPI runs a plain `def` dependency in a worker thread, a hop
that cost more than scoring a customer.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from churn.config import Config
from churn.service.errors import ClientError
from churn.service.holder import ModelHolder, ServedRun
from churn.service.metrics import Metrics
from churn.service.middleware import STATE_KEY, RequestInfo
from churn.service.work import Work

TOKEN_VARIABLE = "CHURN_API_TOKEN"


@dataclass
class ServiceState:
    """Everything the endpoints share, created once by the app factory."""

    config: Config
    holder: ModelHolder
    metrics: Metrics
    work: Work  # where large requests are parsed and scored
    token: bytes | None  # the bearer token every guarded endpoint requires, or None (open)
    openapi_cache: dict[str | None, dict[str, Any]] = field(default_factory=dict)  # run id -> document


async def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.churn
    return state


State = Annotated[ServiceState, Depends(service_state)]


async def served_run(state: State) -> ServedRun:
    """The run requests are scored with now; a request keeps it to the end, whatever switches."""
    served = state.holder.current
    if served is None:
        raise ClientError(503, f"no model is loaded yet: {state.holder.last_error or 'loading'}")
    return served


ServedRunDep = Annotated[ServedRun, Depends(served_run)]


async def request_info(request: Request) -> RequestInfo:
    info: RequestInfo = getattr(request.state, STATE_KEY)
    return info


Info = Annotated[RequestInfo, Depends(request_info)]

bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description=f"the value of {TOKEN_VARIABLE} on the server")


async def require_token(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Refuse a request without the right bearer token (compared in constant time)."""
    if state.token is None:
        return
    given = credentials.credentials.encode() if credentials is not None else b""
    if credentials is None or not hmac.compare_digest(given, state.token):
        detail = f"send Authorization: Bearer <token> (the value of {TOKEN_VARIABLE} on the server)"
        raise ClientError(401, detail, headers={"www-authenticate": "Bearer"})
