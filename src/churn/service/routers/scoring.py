"""Scoring endpoints: `/predict` (JSON customers or a CSV file) and `/invocations` (MLflow's
scoring protocol, as `mlflow models serve` speaks it). Each reads the body within its limits,
parses it, calls the scorer `predict` uses, and formats; large bodies are parsed and scored on
the scoring threads (`churn.service.work`), small ones on the event loop.

Why these routes take the `Request` and answer with orjson instead of pydantic body and response
models (as `/model` and the probes do): the body's model is the served run's own (its features
and training categories, which change when a new run is served; `churn.service.openapi` adds it
to the document), a body may be CSV as well as JSON, it is read as bytes within
`serve.max_body_mb` and its records counted before it is parsed, and validating thousands of
rows through pydantic costs more than scoring them. The rules (contacts, reasons) are the
scoring side's (`churn.scoring.decisions.contact_rule`, `churn.explain.explainers.reason_lists`);
the routes only check the request and format the answer."""

from __future__ import annotations

import difflib
import io
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from churn.config import Config
from churn.explain import explainers
from churn.explain.explainers import Explain
from churn.io import tables
from churn.scoring import core, decisions
from churn.scoring.quality import QualityTally, shorten
from churn.scoring.scorers import Scored
from churn.service import bodies, parsing, schemas
from churn.service.bodies import CSV, JSON
from churn.service.deps import Info, ServedRunDep, State
from churn.service.errors import ClientError, json_response
from churn.service.holder import ServedRun

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
        *(400, 401, 408, 413, 415, 422, 500, 501, 503),
    ),
    openapi_extra=_body(PREDICT_BODY),
)
async def predict(
    request: Request,
    state: State,
    served: ServedRunDep,
    info: Info,
    explain: str | None = Query(
        None,
        description="reason codes per customer (0 to the number of input columns); for a JSON body, "
        'its "explain" key takes precedence',
    ),
    contributions: bool = Query(False, description="CSV only: also contribution_<column> and contribution_base"),
    budget: str | None = Query(
        None,
        description="contacts for a CSV body (expected_saving and contact columns, as predict --budget); for a "
        'JSON body, its "budget" key',
    ),
) -> Response:
    _check_query(request, PREDICT_QUERY)
    kind, body = await bodies.read(request, state.config.serve, state.config.serve.max_rows)
    asked = Asked(explain, contributions, budget)
    if kind == CSV:
        content, warnings = await state.work.run(len(body), _score_csv, state.config, served, body, info, asked)
        headers = {"x-churn-warnings": orjson.dumps(warnings).decode()} if warnings else {}
        return Response(content, media_type=CSV, headers=headers)
    return json_response(await state.work.run(len(body), _predict_json, state.config, served, body, info, asked))


@router.post(
    "/invocations",
    summary="MLflow's scoring protocol: dataframe_split, dataframe_records, instances or inputs, predict_proba out",
    responses=schemas.answers({"model": schemas.InvocationsResponse}, 400, 401, 408, 413, 415, 422, 500, 503),
    openapi_extra=_body(*MLFLOW_BODIES),
)
async def invocations(request: Request, state: State, served: ServedRunDep, info: Info) -> Response:
    kind, body = await bodies.read(request, state.config.serve, state.config.serve.max_rows)
    answer = await state.work.run(len(body), _invocations, state.config, served, kind, body, info)
    return json_response(answer)


def _limits(config: Config) -> parsing.Limits:
    return parsing.Limits(config.serve.max_rows, config.serve.max_value_chars)


@dataclass(frozen=True)
class Asked:
    """What a /predict request's query asks for beyond the scores, as the query sent it."""

    explain: str | None
    contributions: bool
    budget: str | None = None


PREDICT_QUERY = ("explain", "contributions", "budget")
PREDICT_KEYS = ("customers", "explain", "budget", "horizons")  # a JSON body's


def _check_query(request: Request, known: tuple[str, ...]) -> None:
    """422 for a query parameter the endpoint does not take (naming the closest it does), or
    one given twice."""
    given = Counter(key for key, _ in request.query_params.multi_items())
    for key, count in given.items():
        if key not in known:
            raise ClientError(
                422,
                f"unknown query parameter {_name(key)}{_closest(key, known)}; this endpoint takes {', '.join(known)}",
                field=key[:40],
            )
        if count > 1:
            raise ClientError(422, f"query parameter {key} is given {count} times; give it once", field=key)


def _check_keys(payload: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in payload:
        if key not in known:
            hint = "; contributions are in CSV answers only (?contributions=true)" if key == "contributions" else ""
            raise ClientError(
                422,
                f"unknown key {_name(key)} in the body{_closest(key, known)}; the body takes {', '.join(known)}{hint}",
                field=key[:40],
            )


def _name(key: str) -> str:
    return repr(shorten(key))


def _closest(key: str, known: tuple[str, ...]) -> str:
    found = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
    return f" (did you mean {found[0]}?)" if found else ""


def _budget(value: Any, where: str) -> int | None:
    """A budget of contacts: a whole number, at least 1 (a query sends it as text); None: none asked."""
    if value is None:
        return None
    if where.startswith("query") and isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is not int or value < 1:
        shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()[:40]
        raise ClientError(422, f"{where} must be a whole number of contacts, at least 1, got {shown}", field="budget")
    return value


def _require_costs(served: ServedRun) -> None:
    if decisions.Costs.of(served.loaded.record.decision) is None:
        raise ClientError(
            422,
            f"run {served.run_id} has no decision costs: a budget cannot rank customers by "
            "expected saving; retrain with decision costs",
            field="budget",
        )


def _explain(config: Config, served: ServedRun, value: Any, where: str, contributions: bool = False) -> Explain | None:
    """The explanations a request asks for, or None; 501 when the run cannot give them."""
    columns = len(served.loaded.scorer.spec.columns)
    top = parsing.explain_count(value, columns, where)
    if top == 0 and not contributions:
        return None
    if served.explainer is None:
        raise ClientError(501, f"this run cannot explain its predictions: {served.cannot_explain}", field="explain")
    return Explain(top, contributions, config.serve.max_explain_seconds, "serve.max_explain_seconds")


def _predict_json(config: Config, served: ServedRun, body: bytes, info: Info, asked: Asked) -> dict[str, Any]:
    """Every check first (keys, explain, budget, rows), then the scores; the rows count as
    scored (the window, the metrics) only once the answer is whole."""
    payload = parsing.parse_json(body)
    if isinstance(payload, dict):
        _check_keys(payload, PREDICT_KEYS)
    sent = payload.get("explain") if isinstance(payload, dict) else None
    explain = (
        _explain(config, served, sent, '"explain"')
        if sent is not None
        else _explain(config, served, asked.explain, "query parameter explain")
    )
    sent_budget = payload.get("budget") if isinstance(payload, dict) else None
    budget = _budget(sent_budget, '"budget"') if sent_budget is not None else _budget(asked.budget, "query budget")
    if budget is not None:
        _require_costs(served)
    horizons = _horizons(served, payload.get("horizons") if isinstance(payload, dict) else None)
    money = _money_columns(served)
    rows = parsing.customers(payload, served.loaded.scorer.spec, served.id_column, _limits(config), money)
    chunk = _score_chunk(served, rows, decide=True if budget is not None else None, horizons=horizons)
    scored = chunk.scored
    answer = _predict_answer(served, rows, scored, chunk.quality)
    if explain is not None:
        _add_reasons(answer["predictions"], served, scored, explain)
    if chunk.savings is not None:
        _add_contacts(answer["predictions"], chunk.savings, budget)
    _add_horizons(answer["predictions"], chunk.horizons)
    if horizons and explain is not None:
        _add_horizon_reasons(answer["predictions"], served, scored, explain)
    _count(served, info, scored)
    return answer


def _horizons(served: ServedRun, value: Any) -> bool:
    """Whether a request asks for the horizons ("horizons": true); 422 for a run without them."""
    if value is None or value is False:
        return False
    if value is not True:
        shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()[:40]
        raise ClientError(422, f'"horizons" must be true or false, got {shown}', field="horizons")
    if served.loaded.horizons is None:
        raise ClientError(
            422,
            f"run {served.run_id} has no survival model, so no horizons; retrain with survival.duration_column",
            field="horizons",
        )
    return True


def _add_horizons(predictions: list[dict[str, Any]], horizons: Mapping[str, np.ndarray]) -> None:
    """Each prediction's churn within each horizon (null without a tenure), as predict writes them."""
    for name, values in horizons.items():
        for prediction, value in zip(predictions, values.tolist(), strict=True):
            prediction[name] = None if math.isnan(value) else value


def _add_horizon_reasons(
    predictions: list[dict[str, Any]], served: ServedRun, scored: Scored, explain: Explain
) -> None:
    """Each prediction's "horizon_reasons": the horizon_reason_k columns predict writes for that
    row (a logistic hazard model's; none for a tree hazard model)."""
    explainer = core.hazard_explainer(served.loaded.horizons, explain)
    if explainer is None:
        return
    columns = core.horizon_reasons(explainer, scored.cleaned.features, explain.top)
    plain = {name.removeprefix("horizon_"): values for name, values in columns.items()}
    top = min(explain.top, len(explainer.columns))
    for prediction, reasons in zip(predictions, explainers.reason_lists(plain, top), strict=True):
        prediction["horizon_reasons"] = reasons


def _money_columns(served: ServedRun) -> tuple[str, ...]:
    """The columns a run with per-customer costs reads each customer's money from (beside the features)."""
    costs = decisions.Costs.of(served.loaded.record.decision)
    spec = served.loaded.scorer.spec
    return tuple(c for c in costs.columns if c not in spec.columns) if costs is not None else ()


def _add_contacts(predictions: list[dict[str, Any]], savings: np.ndarray, budget: int | None) -> None:
    """Each prediction's expected_saving and contact, by the rule `predict` applies."""
    contact = decisions.contact_rule(savings, budget)
    for prediction, saving, chosen in zip(predictions, savings.tolist(), contact.tolist(), strict=True):
        prediction["expected_saving"], prediction["contact"] = saving, chosen


def _add_reasons(predictions: list[dict[str, Any]], served: ServedRun, scored: Scored, explain: Explain) -> None:
    """Each prediction's "reasons": the reason codes `predict --explain` writes for that row."""
    assert served.explainer is not None
    features = scored.cleaned.features
    try:
        explainers.check_time(served.explainer, features, len(features), explain, "request")
    except explainers.ExplainTooSlowError as error:
        raise ClientError(422, str(error), field="explain") from None
    columns = explainers.explanation_columns(served.explainer, features, explain)
    for prediction, reasons in zip(predictions, explainers.reason_lists(columns, explain.top), strict=True):
        prediction["reasons"] = reasons


def _invocations(config: Config, served: ServedRun, kind: str, body: bytes, info: Info) -> dict[str, Any]:
    """MLflow's answer: [P(stays), P(churns)] per row."""
    if kind == CSV:
        payload: Any = {"dataframe_records": _csv_records(body, config.serve.max_rows)}
    else:
        payload = parsing.parse_json(body, allow_nan=True)  # MLflow's client sends NaN for missing values
    rows = parsing.mlflow_frame(payload, served.loaded.scorer.spec, served.id_column, _limits(config))
    scored = _score_chunk(served, rows, decide=False).scored  # MLflow's answer holds probabilities only
    _count(served, info, scored)
    probabilities = scored.probabilities
    return {"predictions": np.column_stack([1.0 - probabilities, probabilities]).tolist()}


def _score_chunk(
    served: ServedRun, rows: parsing.Rows, decide: bool | None = None, horizons: bool = False
) -> core.ScoredChunk:
    """The request's customers through the scoring core, in one chunk; a value that is not a
    number is refused naming its row (a JSON door's rule: its rows are named one by one), and so
    is a missing or negative value of a per-customer cost."""
    table = tables.ArrowRows(rows.table)
    options = core.ScoreOptions(rows.table.num_rows, decide=decide, horizons=horizons)
    (chunk,) = core.ScoredTable(served.loaded, table, options)
    scored = chunk.scored
    for column, bad in scored.cleaned.unparsed.items():  # one door, one rule: JSON rows are named one by one
        row = int(bad.rows[0])
        value = rows.table.column(column)[row].as_py()
        raise ClientError(422, f"row {row} field {column} must be a number, got {value!r}", row=row, field=column)
    return chunk


def _count(served: ServedRun, info: Info, scored: Scored) -> None:
    """Rows answered: into the monitoring window and the request's count (churn_rows_scored_total)."""
    served.observe(scored.cleaned.features, scored.probabilities)
    info.rows = len(scored.probabilities)


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


def _score_csv(config: Config, served: ServedRun, body: bytes, info: Info, asked: Asked) -> tuple[bytes, list[str]]:
    """The CSV `python main.py predict` writes for this file (`?explain=K`: with `--explain K`;
    `?budget=N`: with `--budget N`), and its warnings. The rows count as scored (the window,
    the metrics) only once the whole body is answered."""
    explain = _explain(config, served, asked.explain, "query parameter explain", asked.contributions)
    budget = _budget(asked.budget, "query budget")
    if budget is not None:
        _require_costs(served)
    options = core.ScoreOptions(
        config.predict.chunk_rows,
        core.UnparsedLimit(config.data.max_unparsed_share, None),
        explain,
        decide=True if budget is not None else None,
    )
    chunks = core.ScoredTable(served.loaded, tables.CsvBytes(body), options)
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # monitored once the whole body is accepted
    out = io.BytesIO()
    try:
        with tables.TableWriter(out) as writer:
            checked = _checked_chunks(chunks, served, config.serve.max_value_chars, pending)
            if budget is not None:
                core.write_contacts(checked, writer, core.ContactPlan(budget))
            else:
                core.write_chunks(checked, writer)
    except explainers.ExplainTooSlowError as error:
        raise ClientError(422, str(error), field="explain") from None
    if served.window is not None:
        for bins, probabilities in pending:
            served.window.add(bins, probabilities)
    info.rows = chunks.rows
    return out.getvalue(), chunks.quality.warnings()


def _checked_chunks(
    chunks: core.ScoredTable, served: ServedRun, max_chars: int, pending: list[tuple[np.ndarray, np.ndarray]]
) -> Iterator[core.ScoredChunk]:
    """The chunks, each refused (422) when a text value is longer than serve.max_value_chars,
    their bins kept aside for the window."""
    categorical = served.loaded.scorer.spec.categorical
    for chunk in chunks:
        _refuse_long_values(chunk.rows, categorical, max_chars, chunk.first_row)
        if (bins := served.binned(chunk.scored.cleaned.features)) is not None:
            pending.append((bins, chunk.probabilities))
        yield chunk


def _refuse_long_values(chunk: pa.Table, columns: tuple[str, ...], max_chars: int, first_row: int) -> None:
    """A 422 naming the first text value longer than serve.max_value_chars in a CSV chunk."""
    for column in columns:
        lengths = pc.utf8_length(chunk.column(column).cast(pa.string()))
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > max_chars:
            row = first_row + int(pc.index(pc.greater(lengths, max_chars), True).as_py())
            raise ClientError(
                422,
                f"data row {row + 1:,} field {column} has {longest:,} characters; at most "
                f"{max_chars:,} (serve.max_value_chars)",
                row=row,
                field=column,
            )


def _csv_records(body: bytes, max_rows: int) -> list[dict[str, Any]]:
    """A CSV body as records, read only as far as serve.max_rows allows."""
    chunks = tables.iter_table(tables.CsvBytes(body), None, chunk_rows=max_rows + 1)
    try:
        chunk = next(chunks)
    finally:
        chunks.close()  # the rest of the body is never parsed
    if chunk.num_rows > max_rows:
        raise ClientError(413, f"more than {max_rows:,} rows in one request (serve.max_rows)")
    return chunk.to_pylist()
