"""The init workflow: `python main.py init`, a first config for a table of one's own.

Each column's role is read off its values (`churn.workflows.roles`, whose docstring lists the
rules), the way a data scientist would read a new table; the result is a file a person reviews
and commits, with the reason for every choice beside it, and nothing taken from the shipped
table: the validation gate's floors are this table's own one-column baseline and churn share.
`--show` prints the roles as a table and writes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from churn.config import load_config
from churn.errors import ConfigError, DataError
from churn.io.tables import read_table, table_columns
from churn.labels import label_key
from churn.store.files import prepare_output, refuse_overwriting_input, write_text_atomic
from churn.workflows.roles import MIN_CATEGORY_COUNT, Inferred, read_roles

SAMPLE_ROWS = 200_000  # the roles are read off this many rows at most
TEST_SIZE = 0.2  # a fifth of the rows are the test rows
POSITIVE_SPELLINGS = ("yes", "true", "1", "y", "churn", "churned", "left", "lost", "exited")


@dataclass(frozen=True)
class Written:
    """What init found, and where it wrote it (None with --show)."""

    inferred: Inferred
    output: Path | None


def init(data: Path, target: str, output: Path, force: bool = False, show: bool = False) -> Written:
    """Write a config that trains on `data`, predicting `target` (with `show`, only read the roles).

    Raises:
        ConfigError: `output` exists and not `force`, or is a folder.
        DataError: the table cannot be read, lacks the target, the target is not two-valued, or
            `output` is the table itself.
    """
    if not show:
        _check_output(data, output, force)
    if target not in table_columns(data):
        raise DataError(f"{data}: no column {target!r}; --target names the column that says who churned")
    frame = read_table(data, None).head(SAMPLE_ROWS)
    inferred = infer(frame, target)
    if show:
        return Written(inferred, None)
    text = config_text(data, target, inferred, output)
    check_config(text, output)
    write_text_atomic(output, text)
    return Written(inferred, output)


def _check_output(data: Path, output: Path, force: bool) -> None:
    refuse_overwriting_input(data, output)
    if output.is_dir():
        raise ConfigError(f"{output}: is a folder; --output names the config file to write (as {output}/crm.yaml)")
    if output.exists() and not force:
        raise ConfigError(f"{output}: already exists; choose another --output or pass --force to replace it")
    prepare_output(output, "--output")  # its folder created (configs/ on a fresh checkout) and writable


def infer(frame: pd.DataFrame, target: str) -> Inferred:
    """Each column's role; rows without a target are not read."""
    text = frame[target].astype("str").str.strip()
    known = frame[target].notna() & (text != "")
    frame, labels = frame[known], text[known]
    classes = sorted(labels.unique().tolist())
    if len(classes) != 2:
        raise DataError(
            f"target column {target} must hold exactly two values, found {len(classes)}: "
            f"{', '.join(map(repr, classes[:10]))}"
        )
    positive, why = guess_positive(labels, classes)
    y = (labels.map(label_key) == label_key(positive)).astype("int64")
    inferred = read_roles(frame, target, y)
    inferred.positive_label, inferred.why_positive = positive, why
    if not inferred.numeric and not inferred.categorical:
        raise DataError("no column is left to learn from: every one is constant, an id, a date or a leak")
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


def config_text(data: Path, target: str, inferred: Inferred, output: Path) -> str:
    """The config file, every section with its reasons."""
    try:
        path = str(data.resolve().relative_to(output.resolve().parent))
    except ValueError:
        path = str(data.resolve())
    share = f"{inferred.churn_share:.1%}"
    lines = [
        "# yaml-language-server: $schema=config.schema.json",
        f"# Written by `python main.py init` from {data.name} ({inferred.rows:,} rows read, {share} churned).",
        "# Every choice says why; review them, then train with the command init printed.",
    ]
    for section in (_data_lines, _preprocessing_lines, _split_lines, _model_lines):
        lines += section(inferred)
    lines += TRAINING.splitlines() + DECISION.splitlines() + _validation_lines(inferred) + PATHS.splitlines()
    lines[3:3] = _data_head(path, target, inferred)
    return "\n".join(lines) + "\n"


def _data_head(path: str, target: str, inferred: Inferred) -> list[str]:
    id_column = inferred.id_column
    why_id = next((r.reason for r in inferred.roles if r.role == "id"), "no column holds one value per customer")
    return [
        "data:",
        f"  path: {_yaml(path)}",
        f"  target: {_yaml(target)}",
        f"  positive_label: {_yaml(inferred.positive_label)}  # the value that means churn: {inferred.why_positive}",
        f"  id_column: {_yaml(id_column)}  # {why_id}",
    ]


def _data_lines(inferred: Inferred) -> list[str]:
    lines = []
    for key, role in (("numeric_features", "numeric"), ("categorical_features", "categorical")):
        found = [r for r in inferred.roles if r.role == role]
        lines.append(f"  {key}:" + ("" if found else " []"))
        lines += [f"    - {_yaml(r.column)}  # {r.reason}" for r in found]
    left = [r for r in inferred.roles if r.role == "left out"]
    lines.append("  # never features: each with why" if left else "  # nothing left out")
    lines.append("  drop_columns:" + ("" if left else " []"))
    lines += [f"    - {_yaml(r.column)}  # {r.reason}" for r in left]
    if inferred.missing_values:
        lines.append(
            f"  missing_values: {_yaml(list(inferred.missing_values))}  # found among numbers: read as missing there"
        )
    lines.append("  max_unparsed_share: 0.01  # a numeric column with more text that is not a number stops training")
    return lines


def _preprocessing_lines(inferred: Inferred) -> list[str]:
    lines = [
        "",
        "preprocessing:",
        "  numeric_impute: median  # a missing number takes the training rows' median",
        "  scale_numeric: true  # standardised: the linear model needs it, trees ignore it",
    ]
    wide = inferred.high_cardinality
    if wide:
        named = ", ".join(f"{r.column} ({r.distinct:,} values)" for r in wide)
        lines.append(
            f"  min_category_count: {MIN_CATEGORY_COUNT}  # {named}: a category on fewer training rows shares one "
            "column, so a rare code is not learned from a handful of customers"
        )
    return lines


def _split_lines(inferred: Inferred) -> list[str]:
    lines = [
        "",
        "split:",
        "  # A fifth of the customers, drawn at random within each class, are the test rows.",
        "  method: random",
        f"  test_size: {TEST_SIZE}",
        "  random_state: 42  # the seed of the split, the folds and every model",
    ]
    when = inferred.time_column
    if when is not None:
        lines += [
            f"  # {when.column} holds the time each row was observed ({when.distinct} distinct). When the model will",
            "  # score later months, test it as it will be used: on the latest rows, trained on earlier ones",
            "  # (forward-chaining folds). Replace method: random above with these two lines:",
            "  # method: time",
            f"  # time_column: {_yaml(when.column)}",
        ]
    return lines


def _model_lines(inferred: Inferred) -> list[str]:
    return [
        "",
        "model:",
        "  # The single model when training.candidates is absent.",
        "  name: logistic_regression",
        "  params: {max_iter: 1000}",
        "  # auto: chosen on out-of-fold predictions of the training rows; with the decision costs below,",
        "  # the break-even probability, without them the probability that maximises F1.",
        "  threshold: auto",
    ]


TRAINING = """
training:
  # Three model families, each with a few settings, compared by ROC AUC over 5 cross-validation
  # folds of the training rows; the best is refit on all of them and judged once on the test rows.
  cv_folds: 5
  selection_metric: roc_auc  # or pr_auc, f1, expected_cost (with the decision costs)
  selection_rows: 50000  # above this many training rows, the settings are compared on a stratified sample
  candidates:
    - name: logistic_regression  # the linear baseline: fast to score, exact reasons
      params: {max_iter: 1000}
      search: {method: grid, space: {C: [0.1, 0.3, 1.0, 3.0]}}
    - name: random_forest  # at most 1,000 leaves a tree keeps a large table's forest bounded
      params: {n_estimators: 300, max_features: sqrt, max_leaf_nodes: 1000, n_jobs: -1}
      search: {method: grid, space: {min_samples_leaf: [10, 20]}}
    - name: hist_gradient_boosting  # shallow boosted trees: interactions, cheap to score
      params: {early_stopping: false, max_depth: 3}
      search:
        method: random
        n_iter: 6
        space:
          max_iter: [60, 100]
          learning_rate: [0.05, 0.1]
          min_samples_leaf: [40, 80]
          l2_regularization: [0.0, 1.0]"""

DECISION = """
# The retention team's cost model: with it, the threshold is the break-even probability
# offer_cost / (churn_cost x offer_success_rate), the report gives the expected cost, and
# predict --budget N ranks customers by expected saving. Without it, the threshold maximises F1
# and there is no cost figure. Uncomment these five lines and set them from your own figures:
# decision:
#   offer_cost: 50           # what one retention offer costs, paid for every customer contacted
#   churn_cost: 500          # what a lost customer costs, for example a year of revenue
#   offer_success_rate: 0.3  # share of contacted would-be churners the offer keeps: measure it
#   currency: EUR"""


def _validation_lines(inferred: Inferred) -> list[str]:
    best = inferred.best_column
    auc = best.one_column_auc if best is not None and best.one_column_auc is not None else 0.5
    test_rows = max(int(inferred.rows * TEST_SIZE), 2)
    error = auc_standard_error(auc, test_rows, inferred.churn_share)
    said = f"the best single column, {best.column}, ranks churners at {auc:.3f} alone (out-of-fold)" if best else ""
    return [
        "",
        "validation:",
        "  # The gate: a model below a floor is saved as rejected, latest is not moved and train exits 3.",
        "  # Both floors are this table's own, so a first run is judged by what the table allows.",
        f"  # min_roc_auc: {said or 'a model ranking at random scores 0.5'};",
        f"  # the floor is that less two standard errors ({error:.3f}) of a ROC AUC on about {test_rows:,} test",
        "  # rows: a model clearly worse than one column fails, the test rows' noise alone does not.",
        "  # Raise it once you know what this table's models reach.",
        f"  min_roc_auc: {max(_floor(auc - 2 * error), 0.5)}",
        f"  min_pr_auc: {_floor(inferred.churn_share)}  # a model ranking at random scores the churn share, "
        f"{inferred.churn_share:.3f}",
    ]


def auc_standard_error(auc: float, test_rows: int, churn_share: float) -> float:
    """Standard error of a ROC AUC measured on `test_rows` rows (Hanley & McNeil, 1982)."""
    positives = max(test_rows * churn_share, 1.0)
    negatives = max(test_rows - positives, 1.0)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    return math.sqrt(max(variance, 0.0) / (positives * negatives))


PATHS = """
paths:
  models_dir: models  # run folders and the latest pointer, beside this file
  predictions_dir: data/predictions"""


def _floor(value: float) -> float:
    return math.floor(value * 100) / 100


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
