"""Loading, cleaning, checking and splitting labelled tables (file formats live in `churn.io.tables`).

This is the data edge of training: every problem with an input file is a `DataError` naming
the file (and the column or rows) and a fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.model_selection import train_test_split

from churn.cleaning import FeatureSpec, check_unparsed, clean_features, cleaning_warnings
from churn.config import DataConfig, Scalar, SplitConfig
from churn.errors import DataError
from churn.io.columns import TRAINING_REMEDY, require_columns
from churn.io.sql import RowDigest, SqlSource
from churn.io.tables import Source, read_table, table_columns
from churn.labels import label_key
from churn.store.files import sha256_file
from churn.store.record import FeatureSchema, NumericRange

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    """A cleaned labelled table: features, 0/1 target, and what cleaning did."""

    X: pd.DataFrame
    y: pd.Series
    rows_read: int
    dropped_missing_target: int
    dropped_duplicate_ids: int
    ids: pd.Series | None = None  # the id column, row for row with X (the report names customers by it)
    times: pd.Series | None = None  # split.time_column as numbers or datetimes, row for row with X
    sha256: str = ""  # of the file, or of the rows read from a database (churn.io.sql.RowDigest)
    money: pd.DataFrame | None = None  # decision.value_column and offer_cost_column as read, row for row with X


def clean_table(frame: pd.DataFrame | pa.Table, spec: FeatureSpec, source: Source, limit: float) -> pd.DataFrame:
    """The cleaned features of a whole table, with what cleaning did reported against the file.

    Raises:
        DataError: a feature column is missing, or a numeric column is mostly not numbers.
    """
    present = frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)
    require_columns(present, spec.columns, source, TRAINING_REMEDY)
    cleaned = clean_features(frame, spec)
    check_unparsed(cleaned.unparsed, source, limit)
    for line in cleaning_warnings(cleaned.unparsed, cleaned.infinite):
        logger.warning("%s: %s", source, line)
    return cleaned.X


def encode_target(values: pd.Series, positive_label: Scalar, name: str, source: Source) -> pd.Series:
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


def load_training_data(
    path: Source, data: DataConfig, time_column: str | None = None, money_columns: tuple[str, ...] = ()
) -> TrainingData:
    """Read a labelled table (a file or a database's rows) and clean it for training (with
    `time_column`, also the times that order its rows, never a feature; with `money_columns`,
    the per-customer costs' columns as read), and its sha256.

    Rows with a missing target are dropped (warned). Duplicate ids keep their first row
    (warned): one customer is one example, and a copy on each side of the split would leak.
    """
    required = list(data.features) + [data.target] + ([data.id_column] if data.id_column else [])
    required += [time_column] if time_column and time_column not in required else []
    required += [column for column in money_columns if column not in required]
    require_columns(table_columns(path), required, path, TRAINING_REMEDY)
    digest = RowDigest() if isinstance(path, SqlSource) else None
    frame = read_table(path, required, categorical=data.categorical_features, digest=digest)
    sha256 = digest.hexdigest() if digest is not None else sha256_file(path) if isinstance(path, Path) else ""
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
    spec = FeatureSpec(data.numeric_features, data.categorical_features, missing_values=data.missing_values)
    X = clean_table(frame, spec, path, data.max_unparsed_share).reset_index(drop=True)
    y = target.astype("int64").reset_index(drop=True).rename(data.target)
    if y.nunique() < 2:
        raise DataError(f"{path}: after cleaning only one class of {data.target} is left; the file needs both")
    ids = frame[data.id_column].reset_index(drop=True) if data.id_column else None
    times = time_values(frame[time_column], time_column, path).reset_index(drop=True) if time_column else None
    money = frame[list(money_columns)].reset_index(drop=True) if money_columns else None
    return TrainingData(X, y, rows_read, dropped_target, dropped_ids, ids, times, sha256, money)


def time_values(values: pd.Series, column: str, source: Source) -> pd.Series:
    """A time column as numbers (a period index) or datetimes (dates, months as 2026-11), sortable.

    Raises:
        DataError: a value is missing, or the column holds neither numbers nor dates.
    """
    missing = int(values.isna().sum() + (values.astype("str").str.strip() == "").sum())
    if missing:
        raise DataError(f"{source}: split.time_column {column} has {missing} row(s) without a time; fill or drop them")
    if pd.api.types.is_datetime64_any_dtype(values):  # a database's timestamp column
        return values.dt.tz_convert(None) if values.dt.tz is not None else values
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return numbers.astype("float64")
    # as naive UTC datetime64: sortable as numbers, whatever zones the text named
    times = pd.to_datetime(values.astype("str").str.strip(), format="ISO8601", utc=True, errors="coerce")
    if times.isna().any():
        example = values[times.isna()].iloc[0]
        raise DataError(
            f"{source}: split.time_column {column} holds {str(example)[:40]!r}, neither a number nor an ISO date "
            "(2026-11, 2026-11-30); fix the column or use split.method: random"
        )
    return times.dt.tz_convert(None)


def split_data(
    X: pd.DataFrame, y: pd.Series, split: SplitConfig, times: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Train/test split set by the config: stratified at random, or (method time) the latest
    rows as the test rows, training rows in time order (what forward-chaining folds need).

    Raises:
        DataError: a class has too few rows to appear on both sides of the split.
    """
    if split.method == "time":
        if times is None:
            raise DataError("split.method time needs the times of the rows; load them with split.time_column")
        X_train, X_test, y_train, y_test = _time_split(X, y, split.test_size, times)
    else:
        X_train, X_test, y_train, y_test = _random_split(X, y, split)
    for part, labels in (("test", y_test), ("training", y_train)):
        if labels.nunique() < 2:  # ROC AUC and the other metrics need both classes
            raise DataError(
                f"the {part} split of {len(labels)} row(s) holds only one class; add rows or change split.test_size"
            )
    return X_train, X_test, y_train, y_test


def _time_split(
    X: pd.DataFrame, y: pd.Series, test_size: float, times: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """The rows from the time where the latest `test_size` share starts are the test rows; a
    period (a month) is never cut in two, so the test share may be a little larger."""
    order = np.argsort(times.to_numpy(), kind="stable")
    in_order = times.to_numpy()[order]
    cut = in_order[min(int(round(len(order) * (1 - test_size))), len(order) - 1)]
    first_test = int(np.searchsorted(in_order, cut, side="left"))
    if first_test == 0:
        raise DataError(
            f"split.time_column: every row is at the latest time {cut}; the time split needs earlier rows to train on"
        )
    train, test = order[:first_test], order[first_test:]
    return X.iloc[train], X.iloc[test], y.iloc[train], y.iloc[test]


def _random_split(
    X: pd.DataFrame, y: pd.Series, split: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=split.test_size, random_state=split.random_state, stratify=y
        )
    except ValueError as exc:
        raise DataError(
            f"cannot make a stratified split of {len(y)} rows ({exc}); add rows or change split.test_size"
        ) from None
    return X_train, X_test, y_train, y_test


def describe_schema(X: pd.DataFrame, data: DataConfig) -> FeatureSchema:
    """The feature schema seen in training, saved with the model and checked at predict time."""
    return FeatureSchema(
        numeric_features=data.numeric_features,
        categorical_features=data.categorical_features,
        id_column=data.id_column,
        target=data.target,
        positive_label=data.positive_label,
        dtypes={column: str(X[column].dtype) for column in X.columns},
        categories={c: tuple(sorted(X[c].dropna().unique().tolist())) for c in data.categorical_features},
        numeric_ranges={
            c: NumericRange(min=_json_number(X[c].min()), max=_json_number(X[c].max()), missing=int(X[c].isna().sum()))
            for c in data.numeric_features
        },
    )


def _json_number(value: float) -> float | None:
    return None if pd.isna(value) else float(value)
