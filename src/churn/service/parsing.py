"""Request bodies into the tables the scorer takes, and bad bodies into clear client errors.

Only transport happens here: JSON values become Arrow columns (numbers as numbers, text as
text), and values of a kind no feature can take are refused. Parsing numeric text, spelling
categories and everything else that cleaning does is left to `churn.cleaning`, the code that
`predict` runs, so a customer is cleaned the same way whichever door it comes through.
"""

from __future__ import annotations

import json
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
_ID_TYPES: frozenset[type] = frozenset({str, int, type(None)})
# MLflow's scoring protocol: exactly one of these keys (and optionally "params").
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclass(frozen=True)
class Limits:
    """What one request may hold."""

    max_rows: int
    max_value_chars: int


@dataclass(frozen=True)
class Rows:
    """The customers of one request as a table of raw feature columns, and their ids as sent."""

    table: pa.Table
    ids: list[Any] | None  # one per row (None where a row sent none), or None when no row sent one


def parse_json(body: bytes, allow_nan: bool = False) -> Any:
    """The JSON body. `allow_nan`: also the NaN and Infinity literals, as MLflow's client sends
    them for missing values (Python's json reads them; orjson, tried first, does not)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if allow_nan:
            try:
                return json.loads(body)
            except (ValueError, RecursionError):
                pass
        raise ClientError(400, f"the body is not valid JSON ({error})") from None


def customers(
    payload: Any, spec: FeatureSpec, id_column: str | None, limits: Limits, money: tuple[str, ...] = ()
) -> Rows:
    """`{"customers": [{...}, ...]}` as rows; `money`: numeric columns each row must send beside
    the features (a run's per-customer costs)."""
    rows = payload.get("customers") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise ClientError(422, 'the body must be a JSON object {"customers": [{...}, ...]}', field="customers")
    return records(rows, spec, id_column, limits, money)


def mlflow_frame(payload: Any, spec: FeatureSpec, id_column: str | None, limits: Limits) -> Rows:
    """MLflow's scoring protocol, as `mlflow models serve` reads it: exactly one of
    `dataframe_split`, `dataframe_records`, `instances` (records) and `inputs` (records, or
    columns of values)."""
    formats = [key for key in MLFLOW_FORMATS if isinstance(payload, dict) and key in payload]
    if len(formats) != 1:
        found = f"found {', '.join(formats)}" if formats else "found none"
        raise ClientError(400, f"the body must hold exactly one of {', '.join(MLFLOW_FORMATS)} ({found})")
    return records(_as_records(formats[0], payload[formats[0]]), spec, id_column, limits)


def _as_records(key: str, value: Any) -> list[Any]:
    if key == "dataframe_split":
        return _split_records(value)
    if key == "inputs" and isinstance(value, dict):
        return _column_records(value)
    if not isinstance(value, list):
        raise ClientError(422, f"{key} must be a list of records", field=key)
    return value


def _split_records(split: Any) -> list[Any]:
    columns, data = (split.get("columns"), split.get("data")) if isinstance(split, dict) else (None, None)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ClientError(422, "dataframe_split.columns must be a list of column names", field="columns")
    if not isinstance(data, list) or not all(isinstance(row, list) and len(row) == len(columns) for row in data):
        raise ClientError(
            422, "dataframe_split.data must be a list of rows, each with one value per column", field="data"
        )
    return [dict(zip(columns, row, strict=True)) for row in data]


def _column_records(columns: dict[str, Any]) -> list[Any]:
    lengths = {len(values) if isinstance(values, list) else -1 for values in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise ClientError(
            422, "inputs as columns must map each column to a list of values, all as long", field="inputs"
        )
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def records(
    rows: list[Any], spec: FeatureSpec, id_column: str | None, limits: Limits, money: tuple[str, ...] = ()
) -> Rows:
    """A list of JSON objects as rows; every feature (and `money` column) must be present (null
    is a missing value)."""
    if not rows:
        raise ClientError(422, "send at least one customer")
    if len(rows) > limits.max_rows:
        raise ClientError(413, f"{len(rows):,} rows in one request; at most {limits.max_rows:,} (serve.max_rows)")
    _check_rows(rows, spec, money)
    columns = {name: _numbers(rows, name, limits) for name in (*spec.numeric, *money)}
    columns |= {name: _categories(rows, name, limits) for name in spec.categorical}
    return Rows(pa.table(columns), _ids(rows, id_column))


def _check_rows(rows: list[Any], spec: FeatureSpec, money: tuple[str, ...]) -> None:
    required = set(spec.columns) | set(money)
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise ClientError(422, f"row {index} must be a JSON object of feature values", row=index)
        if not required <= row.keys():
            missing = [column for column in (*spec.columns, *money) if column not in row]
            detail = f"row {index} lacks feature(s) {', '.join(missing)}; send every feature the model was trained"
            raise ClientError(422, detail + " with (null for a missing value)", row=index, field=missing[0])


def _ids(rows: list[dict[str, Any]], id_column: str | None) -> list[Any] | None:
    if not id_column or not any(id_column in row for row in rows):
        return None
    ids = [row.get(id_column) for row in rows]
    _refuse(ids, id_column, _ID_TYPES, "text, a whole number or null", 64)
    return ids


def _numbers(rows: list[dict[str, Any]], name: str, limits: Limits) -> pa.Array:
    values = [row[name] for row in rows]
    kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES:
        if int in kinds:  # pyarrow refuses ints beyond 2**53 as float64; round them as a CSV read does
            values = [float(value) if type(value) is int else value for value in values]
        return pa.array(values, type=pa.float64())
    _refuse(values, name, _NUMBER_TYPES | _TEXT_TYPES, "a number, numeric text or null", limits.max_value_chars)
    return pa.array([value if value is None or type(value) is str else repr(value) for value in values], pa.string())


def _categories(rows: list[dict[str, Any]], name: str, limits: Limits) -> pa.Array:
    values = [row[name] for row in rows]
    kinds = set(map(type, values))
    _refuse(values, name, _SCALAR_TYPES, "text, a number, true/false or null", limits.max_value_chars)
    if kinds <= _TEXT_TYPES:
        return pa.array(values, type=pa.string())
    return pa.array([value if value is None or type(value) is str else str(value) for value in values], pa.string())


def _refuse(values: Sequence[Any], name: str, allowed: frozenset[type], expected: str, max_chars: int) -> None:
    """A 422 naming the first value of a kind the field cannot take, or longer than `max_chars`."""
    for index, value in enumerate(values):
        if type(value) not in allowed:
            shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()[:60]
            raise ClientError(422, f"row {index} field {name} must be {expected}, got {shown}", row=index, field=name)
        if type(value) is str and len(value) > max_chars:
            raise ClientError(
                422,
                f"row {index} field {name} has {len(value):,} characters; at most {max_chars:,} "
                "(serve.max_value_chars)",
                row=index,
                field=name,
            )


def explain_count(value: Any, columns: int, where: str) -> int:
    """Reason codes asked for per customer: a whole number from 0 to the run's input columns
    (None: 0). `where` names it in the error: '"explain"' in a JSON body (where "3" is text, not
    a number), or the query parameter (text, always)."""
    if value is None:
        return 0
    if where.startswith("query") and isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is not int or not 0 <= value <= columns:
        shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()[:40]
        raise ClientError(
            422,
            f"{where} must be a whole number from 0 to {columns} (reason codes per customer), got {shown}",
            field="explain",
        )
    return value
