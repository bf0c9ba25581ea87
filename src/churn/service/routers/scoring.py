"""Scoring endpoints: `/predict` (JSON customers or a CSV file) and `/invocations` (MLflow's
scoring protocol). Each parses, calls the scorer `predict` uses, and formats."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from churn import batch, tables
from churn.config import Config, ServeConfig
from churn.quality import QualityTally
from churn.scoring import Scored, score
from churn.service import parsing, schemas
from churn.service.deps import Info, ServedRunDep, State
from churn.service.errors import ClientError, json_response
from churn.service.holder import ServedRun

CSV = "text/csv"
JSON = "application/json"
# The request bodies are the served run's own models (its features and categories), which the
# OpenAPI document adds as components under these names (churn.service.openapi).
PREDICT_BODY = "PredictRequest"
MLFLOW_BODIES = ("DataframeSplitRequest", "DataframeRecordsRequest")
_CSV_BODY = {"type": "string", "description": "a CSV file with a header row, as predict reads it"}

router = APIRouter(tags=["scoring"])


def _body(*models: str) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in models]
    json_schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    content = {JSON: {"schema": json_schema}, CSV: {"schema": _CSV_BODY}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/predict",
    summary="Churn probability and decision per customer: JSON customers, or a CSV file",
    responses=schemas.answers(
        {
            "model": schemas.PredictResponse,
            "content": {CSV: {"schema": {"type": "string"}}},
            "description": "JSON predictions; for a CSV body, the CSV `python main.py predict` writes",
        },
        *(400, 401, 413, 415, 422, 500, 503),
    ),
    openapi_extra=_body(PREDICT_BODY),
)
async def predict(request: Request, state: State, served: ServedRunDep, info: Info) -> Response:
    kind, body = await _read(request, state.config.serve)
    if kind == CSV:
        content, warnings = await run_in_threadpool(_score_csv, state.config, served, body, info)
        headers = {"x-churn-warnings": orjson.dumps(warnings).decode()} if warnings else {}
        return Response(content, media_type=CSV, headers=headers)
    rows = parsing.customers(parsing.parse_json(body), served.loaded.scorer.spec, served.id_column,
                             state.config.serve.max_rows)  # fmt: skip
    scored, quality = _score_rows(served, rows, info)
    return json_response(_predict_answer(served, rows, scored, quality))


@router.post(
    "/invocations",
    summary="MLflow's scoring protocol: dataframe_split or dataframe_records in, predict_proba out",
    responses=schemas.answers({"model": schemas.InvocationsResponse}, 400, 401, 413, 415, 422, 500, 503),
    openapi_extra=_body(*MLFLOW_BODIES),
)
async def invocations(request: Request, state: State, served: ServedRunDep, info: Info) -> Response:
    kind, body = await _read(request, state.config.serve)
    payload: Any = {"dataframe_records": _csv_records(body)} if kind == CSV else parsing.parse_json(body)
    rows = parsing.mlflow_frame(payload, served.loaded.scorer.spec, served.id_column, state.config.serve.max_rows)
    probabilities = _score_rows(served, rows, info)[0].probabilities
    return json_response({"predictions": np.column_stack([1.0 - probabilities, probabilities]).tolist()})


async def _read(request: Request, limits: ServeConfig) -> tuple[str, bytes]:
    """The body's kind (JSON or CSV) and bytes, refusing other types and bodies over the limit."""
    kind = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if kind not in (JSON, CSV, "*/*", ""):
        raise ClientError(415, f"content type {kind!r} is not accepted; send application/json or text/csv")
    limit = int(limits.max_body_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClientError(413, f"the body has {int(declared):,} bytes; at most {limit:,} (serve.max_body_mb)")
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise ClientError(413, f"the body exceeds {limit:,} bytes (serve.max_body_mb)")
        parts.append(part)
    return (CSV if kind == CSV else JSON), b"".join(parts)


def _score_rows(served: ServedRun, rows: parsing.Rows, info: Info) -> tuple[Scored, QualityTally]:
    scored = score(served.loaded.scorer, rows.table)
    for column, bad in scored.cleaned.unparsed.items():  # one door, one rule: JSON rows are named one by one
        row = int(bad.rows[0])
        value = rows.table.column(column)[row].as_py()
        raise ClientError(422, f"row {row} field {column} must be a number, got {value!r}", row=row, field=column)
    quality = QualityTally(served.features)
    quality.add(scored.cleaned)
    info.rows = len(scored.probabilities)
    return scored, quality


def _predict_answer(served: ServedRun, rows: parsing.Rows, scored: Scored, quality: QualityTally) -> dict[str, Any]:
    probabilities, decisions = scored.probabilities.tolist(), scored.predictions.tolist()
    predictions: list[dict[str, Any]] = [
        {"churn_probability": p, "churn_prediction": d} for p, d in zip(probabilities, decisions, strict=True)
    ]
    id_column = served.id_column
    if rows.ids is not None and id_column:
        for prediction, customer_id in zip(predictions, rows.ids, strict=True):
            if customer_id is not None:
                prediction[id_column] = customer_id
    return {"run_id": served.run_id, "predictions": predictions, "warnings": quality.warnings()}


def _score_csv(config: Config, served: ServedRun, body: bytes, info: Info) -> tuple[bytes, list[str]]:
    """The CSV `python main.py predict` writes for this file, and its warnings."""
    out = io.BytesIO()
    with tables.TableWriter(out) as writer:
        result = batch.score_table(served.loaded, tables.CsvBytes(body), writer, config.predict.chunk_rows,
                                   config.data.max_unparsed_share)  # fmt: skip
    info.rows = result.rows
    return out.getvalue(), result.quality.warnings()


def _csv_records(body: bytes) -> list[dict[str, Any]]:
    frame = tables.read_table(tables.CsvBytes(body))
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
