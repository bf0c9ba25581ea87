"""Operations endpoints: liveness, readiness, the served model, metrics and the API's documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from churn.service import openapi, schemas
from churn.service.deps import ServedRunDep, State
from churn.service.errors import json_response
from churn.service.holder import ServedRun

# Answered without the token: probes must reach them.
probes = APIRouter(tags=["operations"])
# Guarded by the token when one is set (the app factory adds the dependency).
router = APIRouter(tags=["operations"])


@probes.get("/health", response_model=schemas.Health, summary="Liveness: 200 while the process runs")
async def health() -> Response:
    return json_response({"status": "ok"})


@probes.get(
    "/ready",
    summary="Readiness: 200 once a model is loaded and has scored a probe row",
    responses={200: {"model": schemas.Ready}, 503: {"model": schemas.NotReady, "description": "not ready yet"}},
)
async def ready(state: State) -> Response:
    served = state.holder.current
    if served is None:
        return json_response({"status": "not ready", "detail": state.holder.last_error or "loading the model"}, 503)
    return json_response({"status": "ready", "run_id": served.run_id})


@router.get(
    "/model",
    summary="The served run: id, model, threshold, test metrics and input schema",
    responses=schemas.answers({"model": schemas.ModelInfo}, 401, 500, 503),
)
async def model(served: ServedRunDep) -> Response:
    return json_response(model_info(served))


def model_info(served: ServedRun) -> dict[str, Any]:
    record, features = served.loaded.record, served.features
    return {
        "run_id": served.run_id,
        "model_name": record.model.name,
        "threshold": record.threshold.value,
        "created": record.created,
        "test_metrics": record.metrics.model_dump(mode="json"),
        "input_schema": {
            "id_column": features.id_column,
            "numeric_columns": list(features.numeric_features),
            "categorical_columns": {c: list(features.categories[c]) for c in features.categorical_features},
        },
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    responses=schemas.answers(
        {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}, 401
    ),
)
async def metrics(state: State) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request, state: State) -> Response:
    return json_response(openapi.document(request.app, state))


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="churn API")
