"""The FastAPI application: endpoints that parse, call the scoring code `predict` uses, and format.

    app = create_app(load_config("config.yaml"))          # follows models/latest
    app = create_app(config, run="20261127T101500123Z-ab12cd")  # pinned: never switches

The served run lives on `app.state.holder` (see `churn.service.holder`). Business logic stays
in the core: `churn.scoring.score` for JSON rows, `churn.pipeline.score_source` for CSV bodies.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from churn import __version__, pipeline, tables
from churn.codes import unseen_values
from churn.config import Config
from churn.errors import ChurnError, DataError, FormatError
from churn.scoring import Scored, score
from churn.service import parsing, schemas
from churn.service.holder import ModelHolder, ServedRun
from churn.service.parsing import ClientError
from churn.service.telemetry import Gatekeeper, Metrics

logger = logging.getLogger("churn.service")

TOKEN_VARIABLE = "CHURN_API_TOKEN"
CSV = "text/csv"
MAX_WARNED_VALUES = 5  # unseen values named per column in one answer
_ERRORS = {
    400: "the body is not JSON, or not CSV",
    401: "a token is required (CHURN_API_TOKEN is set) and was missing or wrong",
    413: "more rows than serve.max_rows, or a body over serve.max_body_mb",
    415: "a content type other than application/json or text/csv",
    422: "a row lacks a feature, or holds a value of the wrong kind (the row and field are named)",
    500: "an internal error; the log line with the traceback carries the same request id",
    503: "no model is loaded yet (see /ready)",
}


def create_app(config: Config, run: str | None = None, token: str | None = None) -> FastAPI:
    """The service for `config`: `run` pins a run (no switching); `token` (default: the
    CHURN_API_TOKEN environment variable) guards every endpoint but /health and /ready."""
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
    metrics = Metrics()
    holder = ModelHolder(
        config, run, on_load=lambda result, served: metrics.loaded(result, served.run_id if served else None)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The run there is now is loaded before the first connection is taken (with several
        # workers, none answers 503 while the others are ready); without one, the service
        # starts anyway, /health answers, and /ready says 503 until the watcher finds a run.
        await run_in_threadpool(holder.refresh)
        holder.start()
        yield
        holder.stop()

    app = FastAPI(
        title="churn",
        version=__version__,
        description="Churn probabilities from the run `python main.py predict` would use, one customer or many.",
        lifespan=lifespan,
        docs_url=None,  # served below, so that the token guards it like any other endpoint
        redoc_url=None,
    )
    app.state.config, app.state.holder, app.state.metrics = config, holder, metrics
    app.state.token = token
    app.state.openapi_cache = {}
    app.add_middleware(Gatekeeper, metrics=metrics, token=token)
    app.add_exception_handler(ClientError, _client_error)  # type: ignore[arg-type]
    app.add_exception_handler(ChurnError, _churn_error)  # type: ignore[arg-type]
    _routes(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _routes(app: FastAPI) -> None:
    errors = {code: {"model": schemas.ErrorResponse, "description": text} for code, text in _ERRORS.items()}

    def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
        return {code: errors[code] for code in codes}

    def answers(ok: dict[str, Any], *codes: int) -> dict[int | str, dict[str, Any]]:
        return {200: ok} | documented(*codes)

    @app.get("/health", response_model=schemas.Health, summary="Liveness: 200 while the process runs")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get(
        "/ready",
        summary="Readiness: 200 once a model is loaded and has scored a probe row",
        responses={200: {"model": schemas.Ready}, 503: {"model": schemas.NotReady, "description": "not ready yet"}},
    )
    async def ready(request: Request) -> Response:
        holder: ModelHolder = request.app.state.holder
        if holder.current is None:
            detail = holder.last_error or "loading the model"
            return _json({"status": "not ready", "detail": detail}, 503)
        return _json({"status": "ready", "run_id": holder.current.run_id})

    @app.get(
        "/model",
        summary="The served run: id, model, threshold, test metrics and input schema",
        responses=answers({"model": schemas.ModelInfo}, 401, 500, 503),
    )
    async def model(request: Request) -> Response:
        return _json(_model_info(_served(request)))

    @app.post(
        "/predict",
        summary="Churn probability and decision per customer: JSON customers, or a CSV file",
        responses=answers(
            {
                "model": schemas.PredictResponse,
                "content": {CSV: {"schema": {"type": "string"}}},
                "description": "JSON predictions; for a CSV body, the CSV `python main.py predict` writes",
            },
            *(400, 401, 413, 415, 422, 500, 503),
        ),
        openapi_extra={"requestBody": {"required": True, "content": {}}},  # filled in from the served run
    )
    async def predict(request: Request) -> Response:
        served = _served(request)
        kind, body = await _read(request)
        if kind == CSV:
            content, warnings = await run_in_threadpool(_score_csv, request.app.state.config, served, body, request)
            headers = {"x-churn-warnings": orjson.dumps(warnings).decode()} if warnings else {}
            return Response(content, media_type=CSV, headers=headers)
        config: Config = request.app.state.config
        rows = parsing.customers(parsing.parse_json(body), served.loaded.scorer.spec, served.id_column,
                                 config.serve.max_rows)  # fmt: skip
        scored = _score_rows(served, rows, request)
        return _json(_predict_answer(served, rows, scored))

    @app.post(
        "/invocations",
        summary="MLflow's scoring protocol: dataframe_split or dataframe_records in, predict_proba out",
        responses=answers({"model": schemas.InvocationsResponse}, 400, 401, 413, 415, 422, 500, 503),
        openapi_extra={"requestBody": {"required": True, "content": {}}},
    )
    async def invocations(request: Request) -> Response:
        served = _served(request)
        kind, body = await _read(request)
        config: Config = request.app.state.config
        if kind == CSV:
            payload: Any = {"dataframe_records": _csv_records(body)}
        else:
            payload = parsing.parse_json(body)
        rows = parsing.mlflow_frame(payload, served.loaded.scorer.spec, served.id_column, config.serve.max_rows)
        probabilities = _score_rows(served, rows, request).probabilities
        return _json({"predictions": np.column_stack([1.0 - probabilities, probabilities]).tolist()})

    metrics_text = {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}

    @app.get("/metrics", summary="Prometheus metrics", responses=answers(metrics_text, 401))
    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title="churn API")


def _served(request: Request) -> ServedRun:
    served: ServedRun | None = request.app.state.holder.current
    if served is None:
        raise ClientError(503, f"no model is loaded yet: {request.app.state.holder.last_error or 'loading'}")
    return served


async def _read(request: Request) -> tuple[str, bytes]:
    """The body's kind (JSON or CSV) and bytes, refusing other types and bodies over the limit."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind not in ("application/json", CSV, "*/*", ""):
        raise ClientError(415, f"content type {kind!r} is not accepted; send application/json or text/csv")
    limit = int(request.app.state.config.serve.max_body_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, f"the body has {int(declared):,} bytes; at most {limit:,} (serve.max_body_mb)")
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise ClientError(413, f"the body exceeds {limit:,} bytes (serve.max_body_mb)")
        parts.append(part)
    return (CSV if kind == CSV else "application/json"), b"".join(parts)


def _score_rows(served: ServedRun, rows: parsing.Rows, request: Request) -> Scored:
    scored = score(served.loaded.scorer, rows.table)
    for column, bad in scored.cleaned.unparsed.items():  # one door, one rule: JSON rows are named one by one
        row = int(bad.rows[0])
        value = rows.table.column(column)[row].as_py()
        raise ClientError(422, f"row {row} field {column} must be a number, got {value!r}", row=row, field=column)
    request.scope["churn"]["rows"] = len(scored.probabilities)
    return scored


def _predict_answer(served: ServedRun, rows: parsing.Rows, scored: Scored) -> dict[str, Any]:
    probabilities, decisions = scored.probabilities.tolist(), scored.predictions.tolist()
    predictions: list[dict[str, Any]] = [
        {"churn_probability": p, "churn_prediction": d} for p, d in zip(probabilities, decisions, strict=True)
    ]
    if rows.ids is not None and served.id_column:
        for prediction, customer_id in zip(predictions, rows.ids, strict=True):
            if customer_id is not None:
                prediction[served.id_column] = customer_id
    return {"run_id": served.run_id, "predictions": predictions, "warnings": _warnings(served, scored)}


def _warnings(served: ServedRun, scored: Scored) -> list[str]:
    warnings = []
    coded = scored.cleaned.features.coded
    for column, categories in served.schema["categories"].items():
        unseen = unseen_values(coded[column], categories)
        if unseen:
            shown = ", ".join(map(repr, unseen[:MAX_WARNED_VALUES])) + (
                " ..." if len(unseen) > MAX_WARNED_VALUES else ""
            )
            warnings.append(f"column {column}: {shown} never seen in training; scored as no category")
    for column, count in scored.cleaned.infinite.items():
        warnings.append(f"column {column}: {count} infinite value(s) treated as missing")
    return warnings


def _score_csv(config: Config, served: ServedRun, body: bytes, request: Request) -> tuple[bytes, list[str]]:
    """The CSV `python main.py predict` writes for this file, and its warnings."""
    out = io.BytesIO()
    source = tables.CsvBytes(body)
    with tables.TableWriter(out) as writer:
        quality, _ = pipeline.score_source(config, served.loaded, source, writer, progress=False)
    request.scope["churn"]["rows"] = writer.rows
    warnings = [f"column {c}: {n} value(s) never seen in training; scored as no category" for c, n in
                quality.unseen.items()]  # fmt: skip
    if (drift := quality.summary()) is not None:
        warnings.append(f"input drift: {drift}")
    return out.getvalue(), warnings


def _csv_records(body: bytes) -> list[dict[str, Any]]:
    frame = tables.read_table(tables.CsvBytes(body))
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _model_info(served: ServedRun) -> dict[str, Any]:
    metadata, schema = served.loaded.metadata, served.schema
    return {
        "run_id": served.run_id,
        "model_name": metadata["model_name"],
        "threshold": served.loaded.scorer.threshold,
        "created": metadata["created"],
        "test_metrics": served.test_metrics,
        "input_schema": {
            "id_column": schema.get("id_column"),
            "numeric_columns": list(schema["numeric_features"]),
            "categorical_columns": {c: list(schema["categories"][c]) for c in schema["categorical_features"]},
        },
    }


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")  # fmt: skip


def _error(request: Request, status: int, detail: str, row: int | None = None, field: str | None = None) -> Response:
    payload: dict[str, Any] = {"detail": detail, "request_id": request.scope["churn"]["request_id"]}
    payload |= {key: value for key, value in (("row", row), ("field", field)) if value is not None}
    return _json(payload, status)


async def _client_error(request: Request, error: ClientError) -> Response:
    return _error(request, error.status, error.detail, error.row, error.field)


async def _churn_error(request: Request, error: ChurnError) -> Response:
    """Core errors while scoring a request: an unreadable CSV is 400, other bad data 422."""
    status = 400 if isinstance(error, FormatError) else 422 if isinstance(error, DataError) else 503
    return _error(request, status, str(error))


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of the served run: its features, types and training categories."""
    served: ServedRun | None = app.state.holder.current
    key = served.run_id if served else None
    if key not in app.state.openapi_cache:
        app.state.openapi_cache = {key: _build_openapi(app, served)}
    return app.state.openapi_cache[key]


def _build_openapi(app: FastAPI, served: ServedRun | None) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    schema = served.schema if served else None
    if schema is not None:
        models = schemas.request_models(schema, app.state.config.serve.max_rows)
        for name, model in models.items():
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[name] = body
        predict_body: dict[str, Any] = {"$ref": "#/components/schemas/PredictRequest"}
        mlflow_body: dict[str, Any] = {"oneOf": [{"$ref": "#/components/schemas/DataframeSplitRequest"},
                                 {"$ref": "#/components/schemas/DataframeRecordsRequest"}]}  # fmt: skip
    else:
        predict_body = mlflow_body = {"type": "object"}
    csv_body = {"type": "string", "description": "a CSV file with a header row, as predict reads it"}
    paths = document["paths"]
    for path, body in (("/predict", predict_body), ("/invocations", mlflow_body)):
        content = {"application/json": {"schema": body}, CSV: {"schema": csv_body}}
        paths[path]["post"]["requestBody"] = {"required": True, "content": content}
    if app.state.token:
        security: dict[str, Any] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["components"]["securitySchemes"] = security
        for path, operations in paths.items():
            if path not in ("/health", "/ready"):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
    return document
