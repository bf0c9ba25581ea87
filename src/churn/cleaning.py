"""Cleaning of raw feature values: the one implementation behind training, the saved model's
first step (`churn.preprocessing.FeatureCleaner`), batch predict, the HTTP service and the
cluster.

- Numbers: numeric text is parsed, blanks and the table's own words for "no value" (its
  `missing_values`, such as "Unknown") become missing, other text that is not a number becomes
  missing and is counted (the caller decides whether that is a warning or an error), ±inf
  becomes missing.
- Categories: text is stripped, blanks become missing, whole numbers are spelled one way
  ("1", whether they arrive as 1, 1.0, "1.0" or True for a 0/1 column), and true/false are
  spelled as training spelled them.

It takes Arrow tables (as predict streams them and the service builds them) and pandas
DataFrames of any column types (numpy, `str`, `category`, Arrow). The work is done with Arrow
and numpy: predict imports neither pandas nor scikit-learn to score a logistic-regression run,
and pandas is used only on pandas input and when a DataFrame is asked for.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churn.codes import Coded
from churn.errors import DataError
from churn.io.columns import require_columns

if TYPE_CHECKING:
    import pandas as pd

_WHOLE_NUMBER_WITH_ZERO_DECIMALS = re.compile(r"^[+-]?[0-9]+\.0+$")
# Numeric text exactly as pyarrow's cast from text to float64 reads it (the tests check it
# against pyarrow and pandas.to_numeric), used to find the values of a column that are not numbers.
_NUMBER_TEXT = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)$"
_NUMBER = re.compile(_NUMBER_TEXT, re.IGNORECASE)
# Up to this many rows, a column's values are cleaned one by one in Python: the same rules on the
# same values, without the fixed cost of a dozen Arrow calls a column (a 1-row request to the
# service cleans in tens of microseconds instead of half a millisecond). The tests check both
# ways agree value for value.
SMALL_ROWS = 64


@dataclass(frozen=True)
class FeatureSpec:
    """What cleaning needs to know: the feature columns, and how training spelled true/false."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    # column -> (training's label for true, for false); only for columns that held booleans
    bool_spelling: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # text a numeric column uses for "no value" ("Unknown", "-"), matched trimmed and in any case
    missing_values: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "bool_spelling": {column: list(pair) for column, pair in self.bool_spelling.items()},
            "missing_values": list(self.missing_values),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> FeatureSpec:
        spelling = {str(column): (str(pair[0]), str(pair[1])) for column, pair in payload["bool_spelling"].items()}
        missing = tuple(str(value) for value in payload["missing_values"])  # older runs: store.upgrade
        return cls(tuple(payload["numeric"]), tuple(payload["categorical"]), spelling, missing)

    @classmethod
    def learn(
        cls,
        numeric: Sequence[str],
        categorical: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        missing_values: Sequence[str] = (),
    ) -> FeatureSpec:
        """The spec for cleaned training data whose categorical columns hold `categories`."""
        spelling = {}
        for column in categorical:
            pair = bool_spelling(categories[column])
            if pair is not None:
                spelling[column] = pair
        return cls(tuple(numeric), tuple(categorical), spelling, tuple(missing_values))


def bool_spelling(categories: Sequence[str]) -> tuple[str, str] | None:
    """How a column's training categories spell true and false: true/false as training wrote
    them (in any case), else "1"/"0" for a 0/1 column; None when they hold neither."""
    folded = {str(label).casefold(): str(label) for label in categories}
    if "true" in folded or "false" in folded:
        return folded.get("true", "true"), folded.get("false", "false")
    if "1" in folded and "0" in folded:
        return "1", "0"
    return None


@dataclass(frozen=True)
class UnparsedNumbers:
    """Values of a numeric column that are not numbers (`45 USD`, `1.234,5`), set to missing."""

    count: int
    present: int  # non-missing values in the column, the denominator of the share
    examples: tuple[str, ...]  # up to three distinct ones, for the message
    rows: np.ndarray  # their row positions in the cleaned frame

    @property
    def share(self) -> float:
        return self.count / self.present if self.present else 0.0


class FeatureTable:
    """Cleaned features: numbers as float64 arrays, categories as codes into their text labels.

    Scoring and the quality tallies read the arrays directly; `frame` builds the pandas
    DataFrame (numbers as float64, categories as Categoricals of text) that scikit-learn's
    steps take, once and only when asked for. `index` is the input DataFrame's index, or None
    for an Arrow table (the frame then gets a RangeIndex).
    """

    def __init__(self, numbers: dict[str, np.ndarray], coded: dict[str, Coded], rows: int, index: Any = None) -> None:
        self.numbers, self.coded, self.rows, self.index = numbers, coded, rows, index

    def __len__(self) -> int:
        return self.rows

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        import pandas as pd  # deferred: the scorers that read the arrays never need pandas (0.2 s)

        index = self.index if self.index is not None else pd.RangeIndex(self.rows)
        columns: dict[str, pd.Series] = {name: pd.Series(values, index=index) for name, values in self.numbers.items()}
        columns |= {name: coded.to_series(index) for name, coded in self.coded.items()}
        return pd.DataFrame(columns, index=index)


@dataclass(frozen=True)
class CleanedFeatures:
    """The cleaned features, with what cleaning had to set to missing."""

    features: FeatureTable
    unparsed: dict[str, UnparsedNumbers]
    infinite: dict[str, int]

    @property
    def X(self) -> pd.DataFrame:
        return self.features.frame


def describe_unparsed(column: str, bad: UnparsedNumbers, limit: float | None = None, key: str | None = "") -> str:
    """One line about a column's values that are not numbers; with `limit`, why they stop the run
    (naming the setting `key` that allows them, or, with `key` None, for a client who cannot
    change it, only the limit)."""
    examples = ", ".join(repr(value) for value in bad.examples)
    first = f"; the first at data row {int(bad.rows[0]) + 1:,}" if len(bad.rows) else ""
    text = (
        f"column {column} has {bad.count:,} value(s) that are not numbers "
        f"({bad.share:.2%} of its {bad.present:,} non-missing values; e.g. {examples}{first})"
    )
    if limit is None:
        return text
    fix = "write numbers with a decimal point and no units or thousands separators"
    if key is None:
        return f"{text}, more than the {limit:.0%} accepted; {fix}"
    return f"{text}, more than {key} allows ({limit:g}); {fix}, or raise {key}"


def check_unparsed(
    unparsed: Mapping[str, UnparsedNumbers], source: object, limit: float, key: str | None = "data.max_unparsed_share"
) -> None:
    """Stop when a numeric column holds more values that are not numbers than `limit` (the
    setting `key`; None when the reader cannot change it) allows: decimal commas or units in a
    whole column must not be silently imputed.

    Raises:
        DataError: naming the file (unless `source` is None), the column, the count, three
            example values and the first one's row.
    """
    for column, bad in unparsed.items():
        if bad.share > limit:
            raise DataError(("" if source is None else f"{source}: ") + describe_unparsed(column, bad, limit, key))


def cleaning_warnings(unparsed: Mapping[str, UnparsedNumbers], infinite: Mapping[str, int]) -> list[str]:
    """One line per column where cleaning set values to missing."""
    lines = [f"{describe_unparsed(column, bad)}; treated as missing" for column, bad in unparsed.items()]
    lines += [
        f"column {column} has {count} infinite value(s); treated as missing" for column, count in infinite.items()
    ]
    return lines


def clean_features(frame: pd.DataFrame | pa.Table, spec: FeatureSpec) -> CleanedFeatures:
    """Select the feature columns (numeric, then categorical) and clean them.

    Extra columns are ignored and column order does not matter. Arrow tables (as predict
    streams them, as the service builds them) are cleaned without converting to pandas.

    Raises:
        DataError: a feature column is missing.
    """
    arrow = isinstance(frame, pa.Table)
    present = frame.column_names if arrow else [str(column) for column in frame.columns]
    require_columns(present, spec.columns, None, "add them to the input")
    numbers: dict[str, np.ndarray] = {}
    unparsed: dict[str, UnparsedNumbers] = {}
    infinite: dict[str, int] = {}
    for name in spec.numeric:
        values, bad = parse_numbers(frame[name], spec.missing_values)
        if bad is not None:
            unparsed[name] = bad
        inf = np.isinf(values)
        if inf.any():
            infinite[name] = int(inf.sum())
            values = np.where(inf, np.nan, values)
        numbers[name] = values
    coded = {name: code_categories(frame[name], spec.bool_spelling.get(name)) for name in spec.categorical}
    return CleanedFeatures(FeatureTable(numbers, coded, len(frame), None if arrow else frame.index), unparsed, infinite)


Column = Any  # a pandas Series, or a pyarrow Array or ChunkedArray


def _is_pandas(values: Column) -> bool:
    # Checked by module rather than isinstance, so that Arrow input never imports pandas.
    return type(values).__module__.startswith("pandas")


def _arrow_text(values: Column) -> pa.Array | pa.ChunkedArray:
    """A pandas column as Arrow text, missing values kept missing (pandas' own text spelling)."""
    text = values if values.dtype == "str" else values.astype("str")
    return pa.array(text, from_pandas=True)


def parse_numbers(values: Column, missing_values: Sequence[str] = ()) -> tuple[np.ndarray, UnparsedNumbers | None]:
    """A column as float64, and the values that are not numbers (None when every value parses).

    Blank text, nulls and the words in `missing_values` (trimmed, any case) are missing, not
    unparsed. Booleans are not numbers.
    """
    missing = frozenset(word.strip().lower() for word in missing_values)
    if _is_pandas(values):
        if getattr(values.dtype, "kind", "O") in "iuf":
            return values.to_numpy(dtype="float64", na_value=np.nan), None
        return _parse_text(_arrow_text(values), missing)
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype="float64"), None
    return _parse_text(values, missing)


def _parse_text(raw: pa.Array | pa.ChunkedArray, missing: frozenset[str]) -> tuple[np.ndarray, UnparsedNumbers | None]:
    if len(raw) <= SMALL_ROWS:
        return _parse_few(raw.to_pylist(), missing)
    text = pc.utf8_trim_whitespace(pc.cast(raw, pa.string()))
    blank = pc.equal(text, "")
    if missing:  # the table's own words for "no value" are missing too, not unparsed
        blank = pc.or_(blank, pc.is_in(pc.utf8_lower(text), value_set=pa.array(sorted(missing), pa.string())))
    text = pc.if_else(blank, pa.scalar(None, pa.string()), text)
    try:
        # pyarrow's cast is ~10x faster than pandas' parser; it fails whole on any non-number.
        return _floats(text), None
    except pa.ArrowInvalid:
        pass
    number = pc.match_substring_regex(text, _NUMBER_TEXT, ignore_case=True)
    bad = np.asarray(pc.fill_null(pc.invert(number), False).to_numpy(zero_copy_only=False), dtype=bool)
    numbers = _floats(pc.if_else(number, text, pa.scalar(None, pa.string())))
    present = np.asarray(pc.is_valid(text).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(bad)
    distinct = pc.unique(pc.take(text, pa.array(rows[:1000]))).to_pylist() if len(rows) else []
    examples = tuple(str(value) for value in distinct[:3])
    return numbers, UnparsedNumbers(len(rows), int(present.sum()), examples, rows)


def _parse_few(values: list[Any], missing: frozenset[str]) -> tuple[np.ndarray, UnparsedNumbers | None]:
    """`_parse_text` for a few values, one by one: text trimmed, blank or a word for "no value"
    missing, numbers as Arrow reads them."""
    numbers = np.full(len(values), np.nan)
    bad_rows: list[int] = []
    examples: list[str] = []
    present = 0
    for row, value in enumerate(values):
        text = None if value is None else str(value).strip()
        if not text or (missing and text.lower() in missing):
            continue
        present += 1
        if _NUMBER.match(text):
            numbers[row] = float(text)
        else:
            bad_rows.append(row)
            if text not in examples and len(examples) < 3:
                examples.append(text)
    if not bad_rows:
        return numbers, None
    return numbers, UnparsedNumbers(len(bad_rows), present, tuple(examples), np.asarray(bad_rows, dtype="int64"))


def _floats(text: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")


def code_categories(values: Column, spelling: tuple[str, str] | None = None) -> Coded:
    """Category labels as codes into cleaned text labels: stripped, blank as missing, "1.0"-style
    whole numbers spelled "1", and true/false spelled as `spelling` (training's) gives them.

    Cleaning runs on the distinct values only (and is remembered across chunks), so it costs
    little however long the column.
    """
    codes, raw = _distinct(values)
    label_codes, categories = _clean_labels(raw, spelling)
    if categories == raw:
        return Coded(codes, raw)  # already clean: the common case, and the cheapest
    return Coded(label_codes[codes], categories)  # code -1 (missing) picks the trailing -1


def _distinct(values: Column) -> tuple[np.ndarray, tuple[str, ...]]:
    """A code per value (-1 for missing) and the distinct raw values as text."""
    if _is_pandas(values) and getattr(values.dtype, "name", "") == "category":
        return values.cat.codes.to_numpy(), tuple(str(value) for value in values.cat.categories)
    if _is_pandas(values):
        values = _arrow_text(values)
    if len(values) <= SMALL_ROWS:
        return _distinct_few(values.to_pylist())
    return _distinct_arrow(values)


def _distinct_arrow(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, tuple[str, ...]]:
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
    if encoded.dictionary.null_count:  # a null inside the dictionary is a missing value too
        encoded = pc.dictionary_encode(encoded.cast(encoded.dictionary.type))
    indices = encoded.indices if not encoded.indices.null_count else pc.fill_null(encoded.indices, -1)
    codes = indices.to_numpy(zero_copy_only=False).astype("int64", copy=False)
    return codes, tuple(str(value) for value in encoded.dictionary.to_pylist())


def _distinct_few(values: list[Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    """`_distinct` for a few values, one by one: codes in order of first appearance, None missing."""
    positions: dict[str, int] = {}
    codes = [-1 if value is None else positions.setdefault(str(value), len(positions)) for value in values]
    return np.asarray(codes, dtype="int64"), tuple(positions)


def _clean_labels(distinct: tuple[str, ...], spelling: tuple[str, str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """For each distinct raw label, the code of its cleaned label (-1 if blank), plus a
    trailing -1 for missing values; and the cleaned labels, in order of first appearance.

    Not cached: the distinct values come from the input (a client of the service chooses them),
    and this costs about a microsecond a value."""
    codes: dict[str, int] = {}
    label_codes = np.empty(len(distinct) + 1, dtype="int64")
    for position, raw in enumerate(distinct):
        label = _clean_label(raw, spelling)
        label_codes[position] = -1 if label is None else codes.setdefault(label, len(codes))
    label_codes[-1] = -1
    return label_codes, tuple(codes)


def _clean_label(raw: str, spelling: tuple[str, str] | None) -> str | None:
    label = raw.strip()
    if not label:
        return None
    if _WHOLE_NUMBER_WITH_ZERO_DECIMALS.match(label):
        label = label.split(".")[0].lstrip("+")
    if spelling is not None:
        folded = label.casefold()
        if folded == "true":
            return spelling[0]
        if folded == "false":
            return spelling[1]
    return label
