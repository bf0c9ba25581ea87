"""Request bodies into the tables the scorer takes, and bad bodies into clear client errors.

Only transport happens here: JSON values become Arrow columns (numbers as numbers, text as
text), and values of a kind no feature can take are refused. Parsing numeric text, spelling
categories and everything else that cleaning does is left to `churn.cleaning`, the code that
`predict` runs, so a customer is cleaned the same way whichever door it comes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from churn.cleaning import FeatureSpec
from churn.service.errors import ClientError

_NUMBER_TYPES: frozenset[type] = frozenset({int, float, type(None)})
_TEXT_TYPES: frozenset[type] = frozenset({str, type(None)})
_SCALAR_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True)
class Rows:
    """The customers of one request as a table of raw feature columns, and their ids as sent."""

    table: pa.Table
    ids: list[Any] | None  # one per row (None where a row sent none), or None when no row sent one


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ClientError(400, f"the body is not valid JSON ({error})") from None


def customers(payload: Any, spec: FeatureSpec, id_column: str | None, max_rows: int) -> Rows:
    """`{"customers": [{...}, ...]}` as rows."""
    rows = payload.get("customers") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise ClientError(422, 'the body must be a JSON object {"customers": [{...}, ...]}', field="customers")
    return records(rows, spec, id_column, max_rows)


def mlflow_frame(payload: Any, spec: FeatureSpec, id_column: str | None, max_rows: int) -> Rows:
    """MLflow's scoring protocol: `dataframe_split` or `dataframe_records`."""
    if isinstance(payload, dict) and "dataframe_records" in payload:
        rows = payload["dataframe_records"]
        if not isinstance(rows, list):
            raise ClientError(422, "dataframe_records must be a list of records", field="dataframe_records")
        return records(rows, spec, id_column, max_rows)
    split = payload.get("dataframe_split") if isinstance(payload, dict) else None
    if not isinstance(split, dict):
        raise ClientError(
            422, "the body must hold dataframe_split or dataframe_records (MLflow's pandas input formats)"
        )
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ClientError(422, "dataframe_split.columns must be a list of column names", field="columns")
    if not isinstance(data, list) or not all(isinstance(row, list) and len(row) == len(columns) for row in data):
        raise ClientError(
            422, "dataframe_split.data must be a list of rows, each with one value per column", field="data"
        )
    return records([dict(zip(columns, row, strict=True)) for row in data], spec, id_column, max_rows)


def records(rows: list[Any], spec: FeatureSpec, id_column: str | None, max_rows: int) -> Rows:
    """A list of JSON objects as rows; every feature must be present (null is a missing value)."""
    if not rows:
        raise ClientError(422, "send at least one customer")
    if len(rows) > max_rows:
        raise ClientError(413, f"{len(rows):,} rows in one request; at most {max_rows:,} (serve.max_rows)")
    required = set(spec.columns)
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise ClientError(422, f"row {index} must be a JSON object of feature values", row=index)
        if not required <= row.keys():
            missing = sorted(required - row.keys())
            raise ClientError(422, f"row {index} lacks feature {missing[0]}", row=index, field=missing[0])
    columns = {name: _numbers(rows, name) for name in spec.numeric}
    columns |= {name: _categories(rows, name) for name in spec.categorical}
    ids = [row.get(id_column) for row in rows] if id_column and any(id_column in row for row in rows) else None
    return Rows(pa.table(columns), ids)


def _numbers(rows: list[dict[str, Any]], name: str) -> pa.Array:
    values = [row[name] for row in rows]
    kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES:
        if int in kinds:  # pyarrow refuses ints beyond 2**53 as float64; round them as a CSV read does
            values = [float(value) if type(value) is int else value for value in values]
        return pa.array(values, type=pa.float64())
    _refuse(values, name, _NUMBER_TYPES | _TEXT_TYPES, "a number, numeric text or null")
    return pa.array([value if value is None or type(value) is str else repr(value) for value in values], pa.string())


def _categories(rows: list[dict[str, Any]], name: str) -> pa.Array:
    values = [row[name] for row in rows]
    kinds = set(map(type, values))
    if kinds <= _TEXT_TYPES:
        return pa.array(values, type=pa.string())
    _refuse(values, name, _SCALAR_TYPES, "text, a number, true/false or null")
    return pa.array([value if value is None or type(value) is str else str(value) for value in values], pa.string())


def _refuse(values: Sequence[Any], name: str, allowed: frozenset[type], expected: str) -> None:
    for index, value in enumerate(values):
        if type(value) not in allowed:
            shown = orjson.dumps(value).decode()[:60]
            raise ClientError(422, f"row {index} field {name} must be {expected}, got {shown}", row=index, field=name)
