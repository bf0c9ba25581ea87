"""The app factory: the same runs and the same scorer as `predict`, behind a FastAPI service.

    app = create_app(load_config("config.yaml"))                # follows models/latest
    app = create_app(config, run="20261127T101500123Z-ab12cd")  # pinned: never switches

Laid out as FastAPI documents bigger applications: one router per concern
(`churn.service.routers.scoring`, `.ops`), what endpoints share as dependencies
(`churn.service.deps`), the served run in a holder that switches runs live
(`churn.service.holder`), and one middleware for request ids, the access log and metrics.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from churn import __version__
from churn.config import Config
from churn.service.deps import TOKEN_VARIABLE, ServiceState, require_token
from churn.service.errors import add_handlers
from churn.service.holder import ModelHolder
from churn.service.metrics import Metrics
from churn.service.middleware import RequestLog
from churn.service.routers import ops, scoring
from churn.service.work import Work


def create_app(config: Config, run: str | None = None, token: str | None = None) -> FastAPI:
    """The service for `config`: `run` pins a run (no switching); `token` (default: the
    CHURN_API_TOKEN environment variable) guards every endpoint but /health and /ready."""
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
    metrics = Metrics()
    holder = ModelHolder(
        config, run, on_load=lambda result, served: metrics.loaded(result, served.run_id if served else None)
    )
    work = Work(config.serve.threads, config.serve.max_queue)
    state = ServiceState(config, holder, metrics, work, token.encode() if token else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The run there is now is loaded before the first connection is taken (with several
        # workers, none answers 503 while the others are ready); without one, the service
        # starts anyway, /health answers, and /ready says 503 until the watcher finds a run.
        await run_in_threadpool(holder.refresh)
        holder.start()
        yield
        holder.stop()
        work.close()

    app = FastAPI(
        title="churn",
        version=__version__,
        description="Churn probabilities from the run `python main.py predict` would use, one customer or many.",
        lifespan=lifespan,
        openapi_url=None,  # /openapi.json and /docs are the ops router's, guarded like any other endpoint
        docs_url=None,
        redoc_url=None,
    )
    app.state.churn = state
    guarded = [Depends(require_token)] if token else []
    app.include_router(ops.probes)
    app.include_router(ops.router, dependencies=guarded)
    app.include_router(scoring.router, dependencies=guarded)
    add_handlers(app)
    app.add_middleware(RequestLog, metrics=metrics)
    return app
