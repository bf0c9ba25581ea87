"""Read `config.yaml` once, with `yaml.safe_load`, and validate it into a `Config`.

Every problem becomes one `ConfigError` that names the file and the dotted key and says what
would be accepted (`churn.config.messages`), so a typo is never silently ignored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from churn.config.messages import describe
from churn.config.schema import Config
from churn.errors import ConfigError


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Relative paths inside it resolve against the config file's own folder.

    Raises:
        ConfigError: the file is missing or not YAML, or any key is unknown or invalid.
    """
    source = Path(path)
    raw = _read_yaml(source)
    try:
        config = Config.model_validate(raw, context={"base": source.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc.errors()[0])}") from None
    config._source = source  # set once, at construction: where the config came from
    return config


def _read_yaml(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found; pass an existing file with -c/--config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the config file ({exc}); check it is a UTF-8 text file") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{source}: is not valid YAML{line}; fix the syntax there") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must hold a YAML mapping with a `data:` section, got {type(raw).__name__}")
    return raw


def json_schema() -> dict[str, Any]:
    """The JSON Schema of config.yaml, for editors (yaml-language-server), review and the docs."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def write_schema(stream: TextIO = sys.stdout) -> None:
    stream.write(json.dumps(json_schema(), indent=2) + "\n")
