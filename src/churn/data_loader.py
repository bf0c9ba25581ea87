"""Loading, cleaning, checking and splitting tables (file formats live in `churn.tables`).

This is the data edge of the package: every problem with an input file is a `DataError`
naming the file (and the column or rows) and a fix.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


def check_columns(columns: Iterable[str], required: Iterable[str], source: Path) -> None:
    """Raise a DataError listing every required column the table lacks."""
    present = set(columns)
    missing = [column for column in required if column not in present]
    if missing:
        raise DataError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            "add them to the file or fix the column lists in the config"
        )


def prepare_features(
    frame: pd.DataFrame | pa.Table, numeric: tuple[str, ...], categorical: tuple[str, ...], source: Path
) -> pd.DataFrame:
    """Select the feature columns in a fixed order: numbers as float64, categories as pandas
    Categoricals of cleaned text (what the model's encoder consumes without re-hashing).

    Takes a pandas DataFrame or an Arrow table (as predict streams them: numbers are then
    parsed in Arrow, never converted to Python strings). Extra columns are ignored and column
    order in the file does not matter.
    """
    arrow = isinstance(frame, pa.Table)
    check_columns(frame.column_names if arrow else frame.columns, list(numeric) + list(categorical), source)
    columns = {name: coerce_numeric(frame[name], name, source) for name in numeric}
    columns |= {name: normalise_categories(frame[name].to_pandas() if arrow else frame[name]) for name in categorical}
    index = pd.RangeIndex(frame.num_rows) if arrow else frame.index
    return pd.DataFrame({name: pd.Series(values, index=index) for name, values in columns.items()}, index=index)


def coerce_numeric(values: pd.Series | pa.ChunkedArray, name: str, source: Path) -> np.ndarray:
    """Parse a column as float64: blanks and text become missing (text counted in a warning),
    as does ±inf."""
    if isinstance(values, pd.Series) and pd.api.types.is_numeric_dtype(values) and values.dtype != bool:
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    elif isinstance(values, pa.ChunkedArray) and pa.types.is_floating(values.type) | pa.types.is_integer(values.type):
        numbers = values.to_numpy().astype("float64")
    else:
        numbers = _parse_numbers(values, name, source)
    infinite = np.isinf(numbers)
    if infinite.any():
        logger.warning("%s: column %s has %d infinite value(s); treated as missing", source, name, int(infinite.sum()))
        numbers = np.where(infinite, np.nan, numbers)
    return numbers


def _parse_numbers(values: pd.Series | pa.ChunkedArray, name: str, source: Path) -> np.ndarray:
    raw = values if isinstance(values, pa.ChunkedArray) else pa.array(values.astype("str"), from_pandas=True)
    text = pc.utf8_trim_whitespace(pc.cast(raw, pa.string()))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)  # blank is missing
    try:
        # pyarrow's cast is ~10x faster than pandas' parser; it fails whole on any non-number.
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False).astype("float64", copy=False)
    except pa.ArrowInvalid:
        numbers = pd.to_numeric(pd.Series(text.to_pandas()), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    unparsable = int((np.isnan(numbers) & ~text.is_null().to_numpy(zero_copy_only=False)).sum())
    logger.warning("%s: column %s has %d non-numeric value(s); treated as missing", source, name, unparsable)
    return numbers


_WHOLE_NUMBER_WITH_ZERO_DECIMALS = r"^[+-]?\d+\.0+$"


def normalise_categories(values: pd.Series) -> pd.Series:
    """Category labels as a pandas Categorical: stripped, blank as missing, and "1.0"-style
    whole numbers spelled "1" (0/1 flags arrive as ints in one file and floats in another).

    Cleaning runs on the distinct values only (and is remembered across chunks), so it costs
    little however long the column.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):  # e.g. dictionary-encoded while reading
        codes, distinct = values.cat.codes.to_numpy(), values.cat.categories
    else:
        codes, distinct = pd.factorize(values.astype("str") if values.dtype != "str" else values)
    raw = tuple(str(value) for value in distinct)
    label_codes, categories = _clean_labels(raw)
    if isinstance(values.dtype, pd.CategoricalDtype) and categories == raw:
        return values  # already clean: the common case, and the cheapest
    merged = label_codes[codes]  # code -1 (missing) picks the trailing -1
    categorical = pd.Categorical.from_codes(merged, categories=pd.Index(categories, dtype="str"), validate=False)
    return pd.Series(categorical, index=values.index, name=values.name)


@functools.lru_cache(maxsize=512)
def _clean_labels(distinct: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """For each distinct raw label, the code of its cleaned label (-1 if blank), plus a
    trailing -1 for missing values; and the cleaned labels."""
    labels = pd.Series(list(distinct), dtype="str").str.strip()
    labels = labels.mask(labels == "")
    whole = labels.str.match(_WHOLE_NUMBER_WITH_ZERO_DECIMALS, na=False)
    if whole.any():
        labels = labels.mask(whole, labels[whole].str.split(".").str[0].str.lstrip("+"))
    label_codes, categories = pd.factorize(labels)  # merges labels that cleaned to the same text
    return np.append(label_codes, -1), tuple(categories)


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
    X = prepare_features(frame, data.numeric_features, data.categorical_features, path).reset_index(drop=True)
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


def count_unseen_categories(X: pd.DataFrame, categories: dict[str, list[str]]) -> dict[str, int]:
    """Per categorical column, how many non-missing values were never seen in training."""
    counts = {}
    for column, known in categories.items():
        values = X[column]
        if isinstance(values.dtype, pd.CategoricalDtype):  # compare the few categories, then count codes
            unseen_category = _unseen_mask(tuple(known), tuple(values.cat.categories))
            unseen = int(unseen_category[values.cat.codes.to_numpy()].sum())
        else:
            unseen = int((values.notna() & ~values.isin(known)).sum())
        if unseen:
            counts[column] = unseen
    return counts


@functools.lru_cache(maxsize=1024)
def _unseen_mask(known: tuple[str, ...], categories: tuple[str, ...]) -> np.ndarray:
    """True for each category not in `known`, then False for missing values (code -1)."""
    return np.append(~pd.Index(categories).isin(known), False)


class QualityTally:
    """Data-quality figures of a scored input against the training schema, chunk by chunk:
    per column the share of missing values, of categories never seen in training, and of
    numbers outside the range seen in training, so a drifting input gets noticed."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.rows = 0
        self.missing: Counter[str] = Counter()
        self.unseen: Counter[str] = Counter()
        self.below: Counter[str] = Counter()
        self.above: Counter[str] = Counter()

    def add(self, X: pd.DataFrame) -> None:
        self.rows += len(X)
        self.unseen.update(count_unseen_categories(X, self.schema["categories"]))
        for column in X.columns:
            values = X[column]
            is_coded = isinstance(values.dtype, pd.CategoricalDtype)
            missing = (values.cat.codes.to_numpy() < 0) if is_coded else np.isnan(values.to_numpy(dtype="float64"))
            self.missing[column] += int(missing.sum())
        for column, bounds in self.schema["numeric_ranges"].items():
            values = X[column].to_numpy(dtype="float64", na_value=np.nan)
            if bounds["min"] is not None:
                self.below[column] += int((values < bounds["min"]).sum())
                self.above[column] += int((values > bounds["max"]).sum())

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
