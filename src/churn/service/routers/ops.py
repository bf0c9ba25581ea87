"""Operations endpoints: liveness, readiness (also as MLflow's `/ping` and `/version`), the
served model, metrics, and the API's documents."""

from __future__ import annotations

import importlib.resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from churn import __version__
from churn.explain import explainers
from churn.monitoring import tallies, verdicts
from churn.service import openapi, schemas
from churn.service.deps import ServedRunDep, ServiceState, State
from churn.service.errors import ClientError, json_response
from churn.service.holder import ServedRun
from churn.store import upgrade
from churn.store.record import SurvivalRecord
from churn.survival.horizons import horizon_names

# Swagger UI's own files, from the fastapi-offline package: /docs needs no CDN.
SWAGGER_FILES = importlib.resources.files("fastapi_offline") / "static"
SWAGGER_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}

# Answered without the token: probes must reach them, and the documentation page holds no data
# (it asks for the token, then fetches /openapi.json with it).
probes = APIRouter(tags=["operations"])
# Guarded by the token when one is set (the app factory adds the dependency).
router = APIRouter(tags=["operations"])


@probes.get("/health", response_model=schemas.Health, summary="Liveness: 200 while the process runs")
async def health() -> schemas.Health:
    return schemas.Health(status="ok")


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


@probes.get("/ping", response_model=schemas.Health, summary="MLflow's liveness probe: 200 while the process runs")
async def ping() -> schemas.Health:
    return schemas.Health(status="ok")


@probes.get(
    "/version",
    summary="MLflow's version probe: the service's version, as text",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "the version"}},
    response_class=Response,
)
async def version() -> Response:
    return Response(__version__, media_type="text/plain")


@router.get(
    "/model",
    response_model=schemas.ModelInfo,
    summary="The served run: id, model, threshold, test metrics, input schema and what its reasons measure",
    responses=schemas.answers(None, 401, 500, 503),
)
async def model(served: ServedRunDep) -> schemas.ModelInfo:
    return schemas.ModelInfo.model_validate(model_info(served))


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
        "explanations": explanations_info(served),
        "survival": survival_info(record.survival),
    }


def survival_info(survival: SurvivalRecord | None) -> dict[str, Any] | None:
    if survival is None:
        return None
    return {
        "duration_column": survival.duration_column,
        "horizons": list(survival.horizons),
        "columns": horizon_names(survival.horizons),
        "model": survival.model,
        "harrell_c": survival.metrics.harrell_c,
        "ibs": survival.metrics.ibs,
        "kaplan_meier_ibs": survival.metrics.kaplan_meier_ibs,
    }


def explanations_info(served: ServedRun) -> dict[str, Any]:
    explainer = served.explainer
    if explainer is None:
        margin = explainers.margin_of(served.loaded.scorer)
        return {"available": False, "margin": margin, "base": None, "detail": served.cannot_explain}
    return {"available": True, "margin": explainer.margin, "base": explainer.base, "detail": None}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    responses=schemas.answers(
        {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}, 401
    ),
)
async def metrics(state: State) -> Response:
    served = state.holder.current
    if served is not None and served.reference is not None and served.window is not None:
        tally = served.window.tally()
        if len(tally.all_probabilities):
            state.metrics.drifted(window_report(state, served, tally))
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/monitor",
    summary="Drift and estimated performance over the last serve.monitor_rows customers scored: monitor.json",
    responses=schemas.answers(
        {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "what `python main.py monitor` writes to monitor.json, for the window's rows",
        },
        401,
        404,
        501,
        503,
    ),
)
async def monitor(state: State, served: ServedRunDep) -> Response:
    if served.reference is None or served.window is None:
        raise ClientError(501, f"run {served.run_id} {upgrade.gaps_of(served.loaded.record).reference}")
    tally = served.window.tally()
    if not len(tally.all_probabilities):
        raise ClientError(404, f"no customer has been scored by run {served.run_id} since it was loaded")
    return json_response(window_report(state, served, tally).to_json())


def window_report(state: ServiceState, served: ServedRun, tally: tallies.DriftTally) -> verdicts.MonitorReport:
    """The window's monitor.json, by the code `monitor` uses."""
    assert served.reference is not None
    rows = len(tally.all_probabilities)
    batch = verdicts.Batch(f"the last {rows:,} rows scored by this worker (serve.monitor_rows)", None)
    return verdicts.report(served.reference, served.loaded.record, tally, state.config.monitor, batch)


@router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request, state: State) -> Response:
    return json_response(openapi.document(request.app, state))


@probes.get("/docs", include_in_schema=False)
async def docs(state: State) -> HTMLResponse:
    return HTMLResponse(_DOCS_PAGE.replace("TOKEN_REQUIRED", "true" if state.token else "false"))


@probes.get("/docs/{name}", include_in_schema=False)
async def docs_asset(name: str) -> Response:
    if name not in SWAGGER_ASSETS:
        raise ClientError(404, f"no such file of the documentation page: {name!r}")
    path = SWAGGER_FILES / name
    return FileResponse(str(path), media_type=SWAGGER_ASSETS[name], headers={"cache-control": "max-age=3600"})


# Swagger UI from this server; when the service has a token, the page asks for it once (kept for
# the browser tab's session) and sends it with every request, /openapi.json included.
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>churn API</title>
<link rel="icon" href="/docs/favicon.png"><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div><script src="/docs/swagger-ui-bundle.js"></script><script>
const required = TOKEN_REQUIRED;
let token = sessionStorage.getItem("churn-token");
if (required && !token) { token = window.prompt("Bearer token (CHURN_API_TOKEN on the server)") || ""; }
if (token) { sessionStorage.setItem("churn-token", token); }
SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", requestInterceptor: (request) => {
  if (token) { request.headers["Authorization"] = "Bearer " + token; }
  return request;
}});
</script></body></html>
"""
