"""Loading, cleaning, checking and splitting tables (file formats live in `churn.tables`).

This is the data edge of the package: every problem with an input file is a `DataError`
naming the file (and the column or rows) and a fix.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churn.cleaning import (
    CleanedFeatures,
    FeatureSpec,
    FeatureTable,
    UnparsedNumbers,
    clean_features,
    describe_unparsed,
)
from churn.codes import count_unseen
from churn.config import DataConfig, Scalar, SplitConfig
from churn.errors import DataError
from churn.tables import read_table, table_columns

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """A cleaned labelled table: features, 0/1 target, and what cleaning did."""

    X: pd.DataFrame
    y: pd.Series
    rows_read: int
    dropped_missing_target: int
    dropped_duplicate_ids: int


def check_columns(columns: Iterable[str], required: Iterable[str], source: object) -> None:
    """Raise a DataError listing every required column the table lacks."""
    present = set(columns)
    missing = [column for column in required if column not in present]
    if missing:
        raise DataError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            "add them to the file or fix the column lists in the config"
        )


def check_unparsed(
    unparsed: Mapping[str, UnparsedNumbers], source: object, limit: float, key: str = "data.max_unparsed_share"
) -> None:
    """Stop when a numeric column holds more values that are not numbers than `limit` (the
    setting `key`) allows: decimal commas or units in a whole column must not be silently imputed.

    Raises:
        DataError: naming the file (unless `source` is None), the column, the count and three
            example values.
    """
    for column, bad in unparsed.items():
        if bad.share > limit:
            raise DataError(_from(source) + describe_unparsed(column, bad, limit, key))


def warn_cleaning(unparsed: Mapping[str, UnparsedNumbers], infinite: Mapping[str, int], source: object) -> None:
    """One warning per column where cleaning set values to missing (naming `source` unless None)."""
    for column, bad in unparsed.items():
        logger.warning("%s%s; treated as missing", _from(source), describe_unparsed(column, bad))
    for column, count in infinite.items():
        logger.warning("%scolumn %s has %d infinite value(s); treated as missing", _from(source), column, count)


def _from(source: object) -> str:
    return "" if source is None else f"{source}: "


def clean_table(frame: pd.DataFrame | pa.Table, spec: FeatureSpec, source: Path, limit: float) -> pd.DataFrame:
    """The cleaned features of a whole table, with what cleaning did reported against the file.

    Raises:
        DataError: a feature column is missing, or a numeric column is mostly not numbers.
    """
    check_columns(frame.column_names if isinstance(frame, pa.Table) else frame.columns, spec.columns, source)
    cleaned = clean_features(frame, spec)
    check_unparsed(cleaned.unparsed, source, limit)
    warn_cleaning(cleaned.unparsed, cleaned.infinite, source)
    return cleaned.X


def label_key(value: object) -> str:
    """Comparable spelling of a target value: "Yes", "yes" and " YES " match, as do 1, "1" and "1.0"."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text.casefold()
    return str(int(number)) if number.is_integer() else text


def encode_target(values: pd.Series, positive_label: Scalar, name: str, source: Path) -> pd.Series:
    """Map a two-valued target column to 1 (the positive label) and 0; missing stays missing.

    Raises:
        DataError: the column does not hold exactly two distinct values, or lacks the positive label.
    """
    present = values.dropna()
    keys = present.map(label_key)
    found = sorted(set(keys))
    shown = ", ".join(repr(v) for v in sorted(set(present.astype("str")))[:10])
    if len(found) != 2:
        raise DataError(
            f"{source}: target column {name} must hold exactly two distinct values, found {len(found)}: {shown}; "
            "fix data.target or the file"
        )
    positive = label_key(positive_label)
    if positive not in found:
        raise DataError(
            f"{source}: data.positive_label {positive_label!r} is not among the values of {name} ({shown}); "
            "set data.positive_label to the value that means churn"
        )
    encoded = pd.Series(np.nan, index=values.index, dtype="float64")
    encoded[keys.index] = (keys == positive).astype("float64")
    return encoded


def load_training_data(path: Path, data: DataConfig) -> TrainingData:
    """Read a labelled table and clean it for training.

    Rows with a missing target are dropped (warned). Duplicate ids keep their first row
    (warned): one customer is one example, and a copy on each side of the split would leak.
    """
    required = list(data.features) + [data.target] + ([data.id_column] if data.id_column else [])
    check_columns(table_columns(path), required, path)
    frame = read_table(path, required, categorical=data.categorical_features)
    rows_read = len(frame)
    target = encode_target(frame[data.target], data.positive_label, data.target, path)
    keep = target.notna()
    dropped_target = int((~keep).sum())
    if dropped_target:
        logger.warning("%s: dropped %d row(s) whose target %s is missing", path, dropped_target, data.target)
    frame, target = frame[keep], target[keep]
    dropped_ids = 0
    if data.id_column:
        duplicated = frame[data.id_column].duplicated(keep="first") & frame[data.id_column].notna()
        dropped_ids = int(duplicated.sum())
        if dropped_ids:
            logger.warning("%s: dropped %d row(s) repeating an earlier %s", path, dropped_ids, data.id_column)
        frame, target = frame[~duplicated], target[~duplicated]
    spec = FeatureSpec(data.numeric_features, data.categorical_features)
    X = clean_table(frame, spec, path, data.max_unparsed_share).reset_index(drop=True)
    y = target.astype("int64").reset_index(drop=True).rename(data.target)
    if y.nunique() < 2:
        raise DataError(f"{path}: after cleaning only one class of {data.target} is left; the file needs both")
    return TrainingData(X, y, rows_read, dropped_target, dropped_ids)


def split_data(
    X: pd.DataFrame, y: pd.Series, split: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Stratified train/test split set by the config.

    Raises:
        DataError: a class has too few rows to appear on both sides of the split.
    """
    from sklearn.model_selection import train_test_split  # not needed, so not imported, by predict

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=split.test_size, random_state=split.random_state, stratify=y
        )
    except ValueError as exc:
        raise DataError(
            f"cannot make a stratified split of {len(y)} rows ({exc}); add rows or change split.test_size"
        ) from None
    for part, labels in (("test", y_test), ("training", y_train)):
        if labels.nunique() < 2:  # ROC AUC and the other metrics need both classes
            raise DataError(
                f"the {part} split of {len(labels)} row(s) holds only one class; add rows or change split.test_size"
            )
    return X_train, X_test, y_train, y_test


def describe_schema(X: pd.DataFrame, data: DataConfig) -> dict[str, object]:
    """The feature schema seen in training, saved with the model and checked at predict time."""
    return {
        "numeric_features": list(data.numeric_features),
        "categorical_features": list(data.categorical_features),
        "id_column": data.id_column,
        "target": data.target,
        "dtypes": {column: str(X[column].dtype) for column in X.columns},
        "categories": {c: sorted(X[c].dropna().unique().tolist()) for c in data.categorical_features},
        "numeric_ranges": {
            c: {"min": _json_number(X[c].min()), "max": _json_number(X[c].max()), "missing": int(X[c].isna().sum())}
            for c in data.numeric_features
        },
    }


def _json_number(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def count_unseen_categories(features: FeatureTable, categories: dict[str, list[str]]) -> dict[str, int]:
    """Per categorical column, how many non-missing values were never seen in training."""
    counts = {column: count_unseen(features.coded[column], known) for column, known in categories.items()}
    return {column: count for column, count in counts.items() if count}


class QualityTally:
    """Data-quality figures of a scored input against the training schema, chunk by chunk:
    per column the share of missing values, of categories never seen in training, of numbers
    outside the range seen in training, and of values that are not numbers, so a drifting or
    broken input gets noticed."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.rows = 0
        self.missing: Counter[str] = Counter()
        self.unseen: Counter[str] = Counter()
        self.below: Counter[str] = Counter()
        self.above: Counter[str] = Counter()
        self.not_numbers: Counter[str] = Counter()
        self.infinite: Counter[str] = Counter()
        self.present_numbers: Counter[str] = Counter()  # non-missing raw values of numeric columns
        self.examples: dict[str, list[str]] = {}

    def add(self, cleaned: CleanedFeatures) -> None:
        features = cleaned.features
        self.rows += len(features)
        self.unseen.update(count_unseen_categories(features, self.schema["categories"]))
        for column, coded in features.coded.items():
            self.missing[column] += int((coded.codes < 0).sum())
        for column, values in features.numbers.items():
            self.missing[column] += int(np.isnan(values).sum())
        for column, bounds in self.schema["numeric_ranges"].items():
            values = features.numbers[column]
            if bounds["min"] is not None:
                self.below[column] += int((values < bounds["min"]).sum())
                self.above[column] += int((values > bounds["max"]).sum())
            bad = cleaned.unparsed.get(column)
            lost = (bad.count if bad else 0) + cleaned.infinite.get(column, 0)
            self.present_numbers[column] += int((~np.isnan(values)).sum()) + lost
            if bad:
                self.not_numbers[column] += bad.count
                known = self.examples.setdefault(column, [])
                known.extend(value for value in bad.examples if value not in known and len(known) < 3)
        self.infinite.update(cleaned.infinite)

    def unparsed(self) -> dict[str, UnparsedNumbers]:
        """Values that are not numbers, per numeric column, over every chunk so far."""
        return {
            column: UnparsedNumbers(count, self.present_numbers[column], tuple(self.examples[column]), np.empty(0))
            for column, count in self.not_numbers.items()
        }

    def report(self) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        for column in self.schema["categorical_features"]:
            present = self.rows - self.missing[column]
            columns[column] = {
                "kind": "categorical",
                "missing_share": self._share(self.missing[column], self.rows),
                "unseen_values": self.unseen[column],
                "unseen_share": self._share(self.unseen[column], present),
            }
        for column in self.schema["numeric_features"]:
            present = self.rows - self.missing[column]
            bounds = self.schema["numeric_ranges"][column]
            outside = self.below[column] + self.above[column]
            columns[column] = {
                "kind": "numeric",
                "missing_share": self._share(self.missing[column], self.rows),
                "training_range": [bounds["min"], bounds["max"]],
                "below_range": self.below[column],
                "above_range": self.above[column],
                "outside_range_share": self._share(outside, present),
                "not_numbers": self.not_numbers[column],
                "infinite": self.infinite[column],
            }
        return {"rows": self.rows, "columns": columns}

    def summary(self) -> str | None:
        """One line naming the columns that drift, or None when nothing does."""
        report = self.report()["columns"]
        unseen = [f"{c} {v['unseen_share']:.2%}" for c, v in report.items() if v.get("unseen_values")]
        outside = [f"{c} {v['outside_range_share']:.2%}" for c, v in report.items() if v.get("outside_range_share")]
        parts = []
        if unseen:
            parts.append(f"categories never seen in training in {', '.join(unseen)} of values")
        if outside:
            parts.append(f"numbers outside the training range in {', '.join(outside)} of values")
        return "; ".join(parts) if parts else None

    @staticmethod
    def _share(count: int, total: int) -> float:
        return count / total if total else 0.0
