"""pydantic's validation errors as one line a user can act on: `dotted.key problem`.

The accepted ranges and keys quoted in a message are read from the config's own JSON Schema
(`Config.model_json_schema()`, pydantic's public description of the models), so a message can
never disagree with what the schema accepts.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from churn.config.schema import Config, KeyProblem

_KINDS = {
    "float_type": "must be a number",
    "int_type": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "mapping_type": "must be a mapping of keys",
}
_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def describe(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as `dotted.key problem`."""
    loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    if kind == "value_error":
        cause = error["ctx"]["error"]
        if isinstance(cause, KeyProblem):  # raised by a section about one of its keys
            return f"{dotted(loc + (cause.key,))} {cause.problem}"
        return f"{dotted(loc)} {cause}"
    return f"{dotted(loc)} {_problem(kind, value, error.get('ctx') or {}, loc)}"


def _problem(kind: str, value: Any, ctx: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    shown = repr(value)[:80]
    if kind == "extra_forbidden":
        return f"is not a known key; expected one of: {', '.join(allowed_keys(loc[:-1]))}"
    if kind == "missing" or (value is None and kind in _KINDS):
        return "is missing; it is required" if len(loc) > 1 else "is missing; add this section to the config"
    if kind == "literal_error":
        options = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"must be one of {options}, got {shown}"
    if kind in _BOUNDS:
        return f"must be {_interval(_field_schema(loc))}, got {shown}"
    if kind in _KINDS:
        return f"{_KINDS[kind]}, got {shown}"
    return f"is invalid ({kind}), got {shown}"


_LOW = {"exclusiveMinimum": ("(", "greater than"), "minimum": ("[", "at least")}
_HIGH = {"exclusiveMaximum": (")", "less than"), "maximum": ("]", "at most")}


def _interval(field: Mapping[str, Any]) -> str:
    """The range a number must lie in, in words, from its JSON Schema bounds."""
    bounds = next((option for option in _options(field) if _has_bounds(option)), {})
    low, high = _bound(bounds, _LOW), _bound(bounds, _HIGH)
    if low and high:
        return f"in {low[1]}{low[0]}, {high[0]}{high[1]}"
    value, _, words = low or high or (None, "", "within its bounds")
    return f"{words} {value}"


def _bound(bounds: Mapping[str, Any], kinds: Mapping[str, tuple[str, str]]) -> tuple[Any, str, str] | None:
    """The first of `kinds` the bounds hold: (value, bracket, words)."""
    for key, (bracket, words) in kinds.items():
        if key in bounds:
            return bounds[key], bracket, words
    return None


def _has_bounds(schema: Mapping[str, Any]) -> bool:
    return any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))


def dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the section at `loc` accepts."""
    section = next((option for option in _options(_field_schema(loc)) if "properties" in option), {})
    return list(section.get("properties", {}))


@functools.cache
def _document() -> dict[str, Any]:
    return Config.model_json_schema(mode="validation")


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = schema.get("$ref")
    if reference is None:
        return schema
    return _document()["$defs"][reference.rsplit("/", 1)[-1]]


def _options(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A schema and, for `anyOf` (optional values), each of its alternatives, references resolved."""
    schema = _resolve(schema)
    return [schema, *(_resolve(option) for option in schema.get("anyOf", ()))]


def _field_schema(loc: tuple[Any, ...]) -> Mapping[str, Any]:
    """The JSON Schema of the value at `loc`: properties for keys, items for list positions."""
    node: Mapping[str, Any] = _document()
    for part in loc:
        key = "items" if isinstance(part, int) else "properties"
        holder = next((option for option in _options(node) if key in option), None)
        if holder is None:
            return {}
        node = holder[key] if isinstance(part, int) else holder[key].get(part, {})
    return node
