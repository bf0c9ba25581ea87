"""The init workflow: `python main.py init`, a first config for a table of one's own.

The column kinds are read off the values, the way PyCaret's `setup()` infers them, but the
result is a file a person reviews and commits, with a comment on every choice:

- numeric: every non-blank value is a number and there are more than two distinct ones (a 0/1
  flag is a category: its two values are two groups, not a scale);
- id: text whose values are (nearly) all distinct, like a customer number; only the first such
  column, any other is left out as high-cardinality text;
- left out, and listed: constant columns, and columns that leak the target (each class has
  its own single value, like a "Churn Label" beside "Churn");
- categorical: everything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from churn.config import load_config
from churn.errors import ConfigError, DataError
from churn.io.tables import read_table, table_columns
from churn.labels import label_key
from churn.store.files import prepare_output, refuse_overwriting_input, write_text_atomic

SAMPLE_ROWS = 200_000  # the kinds are read off this many rows at most
ID_SHARE = 0.95  # distinct values over rows above which a text column is an id
POSITIVE_SPELLINGS = ("yes", "true", "1", "y", "churn", "churned", "left", "lost")
TEMPLATE = Path(__file__).resolve().parents[3] / "config.yaml"


@dataclass
class Inferred:
    """The data section's choices, and why."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    id_column: str | None = None
    positive_label: Any = None
    left_out: dict[str, str] = field(default_factory=dict)  # column -> why
    why_positive: str = ""


def init(data: Path, target: str, output: Path, force: bool = False) -> Inferred:
    """Write a config that trains on `data`, predicting `target`.

    Raises:
        ConfigError: `output` exists and not `force`.
        DataError: the table cannot be read, lacks the target, or the target is not two-valued.
    """
    refuse_overwriting_input(data, output)
    if output.is_dir():
        raise ConfigError(f"{output}: is a folder; --output names the config file to write (as {output}/crm.yaml)")
    if output.exists() and not force:
        raise ConfigError(f"{output}: already exists; choose another --output or pass --force to replace it")
    prepare_output(output, "--output")  # its folder created (configs/ on a fresh checkout) and writable
    if target not in table_columns(data):
        raise DataError(f"{data}: no column {target!r}; --target names the column that says who churned")
    frame = read_table(data, None).head(SAMPLE_ROWS)
    inferred = infer(frame, target)
    text = config_text(data, target, inferred, output)
    check_config(text, output)
    write_text_atomic(output, text)
    return inferred


def infer(frame: pd.DataFrame, target: str) -> Inferred:
    labels = frame[target].astype("str").str.strip().replace("", pd.NA).dropna()
    classes = sorted(labels.unique().tolist())
    if len(classes) != 2:
        raise DataError(
            f"target column {target} must hold exactly two values, found {len(classes)}: "
            f"{', '.join(map(repr, classes[:10]))}"
        )
    inferred = Inferred()
    inferred.positive_label, inferred.why_positive = guess_positive(labels, classes)
    for column in frame.columns:
        if column != target:
            _place(inferred, column, frame[column], frame[target])
    if not inferred.numeric and not inferred.categorical:
        raise DataError("no column is left to learn from: every one is constant, an id or a copy of the target")
    return inferred


def guess_positive(labels: pd.Series, classes: list[str]) -> tuple[Any, str]:
    """The value that means churn: a usual spelling of yes, else the rarer class."""
    for value in classes:
        if label_key(value) in POSITIVE_SPELLINGS:
            return _scalar(value), f"{value!r} reads as yes"
    counts = labels.value_counts()
    rarer = str(counts.idxmin())
    return _scalar(rarer), f"{rarer!r} is the rarer class ({counts.min():,} of {counts.sum():,} rows); check it"


def _scalar(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def _place(inferred: Inferred, column: str, values: pd.Series, target: pd.Series) -> None:
    text = values.astype("str").str.strip()
    present = text[(text != "") & values.notna()]
    distinct = present.nunique()
    if distinct <= 1:
        inferred.left_out[column] = "constant"
    elif _leaks(present, target):
        inferred.left_out[column] = "leaks the target: each class has its own single value"
    elif _is_numeric(present) and distinct > 2:
        inferred.numeric.append(column)
    elif distinct >= ID_SHARE * len(present) and not _is_numeric(present):
        if inferred.id_column is None:
            inferred.id_column = column
        else:
            inferred.left_out[column] = "high-cardinality text (nearly every value distinct)"
    else:
        inferred.categorical.append(column)


def _is_numeric(present: pd.Series) -> bool:
    return bool(len(present)) and bool(pd.to_numeric(present, errors="coerce").notna().all())


def _leaks(present: pd.Series, target: pd.Series) -> bool:
    pairs = pd.DataFrame({"value": present, "target": target.loc[present.index].astype("str")})
    per_class = pairs.groupby("target")["value"].nunique()
    per_value = pairs.groupby("value")["target"].nunique()
    return len(per_class) == 2 and bool((per_class == 1).all()) and bool((per_value == 1).all())


def config_text(data: Path, target: str, inferred: Inferred, output: Path) -> str:
    """The config file: the data section written out with its reasons, the other sections the
    shipped config's (the model comparison, the split, the gate)."""
    try:
        path = str(data.resolve().relative_to(output.resolve().parent))
    except ValueError:
        path = str(data.resolve())
    lines = [
        "# yaml-language-server: $schema=config.schema.json",
        f"# Written by `python main.py init` from {data.name}: review every choice below, then",
        "# python main.py train -c THIS_FILE. Column kinds were read off the values.",
        "data:",
        f"  path: {_yaml(path)}",
        f"  id_column: {_yaml(inferred.id_column)}"
        + ("          # nearly every value distinct: an id, never a feature" if inferred.id_column else ""),
        f"  target: {_yaml(target)}",
        f"  positive_label: {_yaml(inferred.positive_label)}          # the value that means churn: "
        f"{inferred.why_positive}",
        "  # numbers (blanks allowed), more than two distinct values",
        f"  numeric_features: {_yaml(inferred.numeric)}",
        "  # text, and numbers with two values (flags)",
        f"  categorical_features: {_yaml(inferred.categorical)}",
    ]
    if inferred.left_out:
        lines.append("  # left out:")
        lines += [f"  #   {column}: {why}" for column, why in inferred.left_out.items()]
    lines.append(f"  drop_columns: {_yaml(list(inferred.left_out))}")
    shipped = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8")) if TEMPLATE.is_file() else {}
    rest = {key: shipped[key] for key in ("split", "training", "model", "validation") if key in shipped}
    rest["preprocessing"] = {"numeric_impute": "median", "scale_numeric": True}
    lines.append("# the shipped config's model comparison, split and gate; see docs/configuration.md")
    lines.append(yaml.safe_dump(rest, sort_keys=False).rstrip())
    return "\n".join(lines) + "\n"


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip().removesuffix("...").strip()


def check_config(text: str, output: Path) -> None:
    """The written config must load: checked on a copy beside the output before it is written."""
    probe = output.with_name(f".{output.name}.init.tmp")
    probe.write_text(text, encoding="utf-8")
    try:
        load_config(probe)
    finally:
        probe.unlink(missing_ok=True)
