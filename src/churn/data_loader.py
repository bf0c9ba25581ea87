"""Reading, cleaning, checking and splitting tables, and writing predictions.

This is the I/O edge of the package: files come in here and go out here. Every problem
with an input file is a `DataError` naming the file (and the column or line) and a fix.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from churn.config import DataConfig, Scalar, SplitConfig
from churn.errors import DataError
from churn.files import atomic_path

logger = logging.getLogger(__name__)

# pandas' default NA list also swallows real category values such as "None"; keep it narrow.
NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "#N/A"]
SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet")


@dataclass(frozen=True)
class TrainingData:
    """A cleaned labelled table: features, 0/1 target, and what cleaning did."""

    X: pd.DataFrame
    y: pd.Series
    rows_read: int
    dropped_missing_target: int
    dropped_duplicate_ids: int


def table_format(path: Path) -> str:
    """Return "csv" or "parquet" from the file name; anything else is a DataError."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise DataError(f"{path}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def read_table(path: Path) -> pd.DataFrame:
    """Read a whole CSV (every column as text) or Parquet file.

    Raises:
        DataError: the file is missing, empty, header-only, not UTF-8 or not parseable.
    """
    fmt = table_format(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path (data.path in the config, or --data/--input)")
    frame = _read_parquet(path) if fmt == "parquet" else _read_csv(path)
    if len(frame.columns) == 0:
        raise DataError(f"{path}: has no columns; expected a header row naming the columns")
    if len(frame) == 0:
        raise DataError(f"{path}: has a header row but no data rows; pass a file with at least one row")
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            dtype=str,
            encoding="utf-8-sig",  # tolerate the byte-order mark that spreadsheet exports add
            keep_default_na=False,
            na_values=NA_VALUES,
            compression="infer",
        )
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text; re-save it as UTF-8 CSV") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: is empty; expected a CSV file with a header row and data rows") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path}: is not a valid CSV ({detail}); fix that line or re-export the file") from None
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc}); check the file is a CSV table") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file; all mean the same to a user
        raise DataError(f"{path}: is not a readable Parquet file ({type(exc).__name__}); re-export it") from None


def check_columns(frame: pd.DataFrame, required: list[str] | tuple[str, ...], source: Path) -> None:
    """Raise a DataError listing every required column the table lacks."""
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            "add them to the file or fix the column lists in the config"
        )


def prepare_features(
    frame: pd.DataFrame, numeric: tuple[str, ...], categorical: tuple[str, ...], source: Path
) -> pd.DataFrame:
    """Select the feature columns in a fixed order, numbers as float64 and categories as text.

    Extra columns are ignored and column order in the file does not matter.
    """
    check_columns(frame, list(numeric) + list(categorical), source)
    columns = {name: coerce_numeric(frame[name], name, source) for name in numeric}
    columns |= {name: normalise_categories(frame[name]) for name in categorical}
    return pd.DataFrame(columns, index=frame.index)[list(numeric) + list(categorical)]


def coerce_numeric(values: pd.Series, name: str, source: Path) -> pd.Series:
    """Parse a column as float64: blanks and text become missing (counted in a warning), as does ±inf."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
    else:
        text = values.astype("str").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        unparsable = int((numbers.isna() & text.notna() & (text != "")).sum())
        if unparsable:
            logger.warning("%s: column %s has %d non-numeric value(s); treated as missing", source, name, unparsable)
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        logger.warning("%s: column %s has %d infinite value(s); treated as missing", source, name, int(infinite.sum()))
        numbers = numbers.mask(infinite)
    return numbers


def normalise_categories(values: pd.Series) -> pd.Series:
    """Text categories with blanks as missing; numeric codes spelled one way ("1", never "1.0")."""
    text = values.astype("str").str.strip()
    text = text.mask(text == "")
    numbers = pd.to_numeric(text, errors="coerce")
    if text.notna().any() and numbers.notna().sum() == text.notna().sum():
        # 0/1 flags arrive as ints in one file and floats in another; one spelling keeps categories stable.
        integral = numbers.notna() & (numbers == np.floor(numbers))
        text = text.mask(integral, numbers[integral].astype("int64").astype("str"))
    return text


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
    frame = read_table(path)
    rows_read = len(frame)
    required = list(data.features) + [data.target] + ([data.id_column] if data.id_column else [])
    check_columns(frame, required, path)
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
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=split.test_size, random_state=split.random_state, stratify=y
        )
    except ValueError as exc:
        raise DataError(
            f"cannot make a stratified split of {len(y)} rows ({exc}); add rows or change split.test_size"
        ) from None
    return X_train, X_test, y_train, y_test


def write_table(frame: pd.DataFrame, destination: str | Path) -> None:
    """Write a table atomically as CSV or Parquet by file name; "-" writes CSV to stdout."""
    if str(destination) == "-":
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
        return
    path = Path(destination)
    fmt = table_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(
                tmp, index=False, lineterminator="\n", compression="gzip" if path.name.endswith(".gz") else None
            )


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
        unseen = int((values.notna() & ~values.isin(known)).sum())
        if unseen:
            counts[column] = unseen
    return counts
