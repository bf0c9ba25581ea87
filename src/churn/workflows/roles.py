"""What each column of a new table is, read off its values as a data scientist reads them.

`init` writes the result as a config whose every choice carries its reason. The rules, in the
order they are tried (the first that holds decides):

1. left out, constant: one value (or none) in the whole column.
2. left out, a leak: named after the outcome (`churn_reason`, `Churn Score`), the target under
   another spelling (each class its own single value), filled for one class only (recorded when
   the customer left), or ranking churners almost perfectly alone (one-column ROC AUC >= 0.98).
3. left out, a date or a period (ISO dates, `2026-11`, `31/12/2025`, date-typed columns): as raw
   values a date is a category that never comes again. One with few distinct values, each held
   by many rows, is the month a row was observed: the config proposes `split.method: time` on it.
4. left out, personal data: names, e-mail addresses, phone numbers, addresses and free text,
   which identify a person and generalise to no one.
5. the id, or left out as a second id or a row counter: nearly every value distinct, as text,
   or as whole numbers named like an id (`CustomerId`, `account_number`) or forming one run of
   consecutive numbers; whole numbers equal to 0..n-1 or 1..n in file order are a row counter.
6. numeric: numbers, allowing the table's own words for "no value" (`Unknown`, `NA`, `-`, `?`),
   which the config lists in `data.missing_values`. A number with two values is a flag (a
   category); whole numbers with a few levels whose churn rates do not rise or fall in order
   are categories, measured by the one-column ROC AUC of both readings.
7. categorical: everything else; with more than HIGH_CARDINALITY values, the rare ones share one
   column (`preprocessing.min_category_count`).

The one-column ROC AUCs are out-of-fold (5 folds, seeded): each column's values, binned into
deciles when numeric, scored by their churn rate on the other folds. The best of them is the
floor of the generated validation gate: a model below it has learned less than one column says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ID_SHARE = 0.95  # distinct values over rows above which a column is an id (or a second one)
HIGH_CARDINALITY = 50  # a category with more values than this groups its rare ones
MIN_CATEGORY_COUNT = 10  # training rows a category needs for a column of its own (measured: bench_init.py)
LEAK_AUC = 0.98  # one column ranking churners this well alone was recorded after the outcome
SNAPSHOT_PERIODS = 36  # at most this many distinct dates, each on many rows: an observation month
LEVELS = 10  # whole numbers with at most this many levels may be categories
LEVELS_GAIN = 0.01  # ... when reading them as levels ranks churners this much better
FOLDS = 5
SEED = 20_261_203  # the folds' seed: any fixed value that no table's own generator is likely to share
SENTINELS = frozenset(
    ["unknown", "na", "n/a", "nan", "none", "null", "nil", "missing", "-", "--", "?", ".", "#n/a", "not available"]
)
ID_WORDS = frozenset(["id", "key", "uuid", "guid"])
NUMBER_WORDS = frozenset(["number", "num", "no", "nr", "code"])
PERSONAL_WORDS = frozenset(
    ["name", "surname", "firstname", "lastname", "fullname", "email", "mail", "phone", "mobile", "telephone"]
    + ["address", "street", "ssn", "iban", "ip"]
)
OUTCOME_WORDS = frozenset(["churn", "churned", "churning"])
_DATE = re.compile(
    r"^(\d{4}-\d{1,2}(-\d{1,2})?([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?"
    r"|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})$"
)
_ISO = re.compile(r"^\d{4}-\d{1,2}(-\d{1,2})?")
_WORD_SPLIT = re.compile(r"[^0-9a-zA-Z]+|(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class Role:
    """One column's role and why, with what was measured on it."""

    column: str
    role: str  # target, id, numeric, categorical or left out
    reason: str
    distinct: int
    missing_share: float
    one_column_auc: float | None = None


@dataclass
class Inferred:
    """The table read as a whole: each column's role, and what the config needs besides."""

    roles: list[Role] = field(default_factory=list)
    positive_label: Any = None
    why_positive: str = ""
    missing_values: tuple[str, ...] = ()
    time_column: Role | None = None  # proposed for split.method: time
    churn_share: float = 0.0
    rows: int = 0

    def named(self, role: str) -> list[str]:
        return [r.column for r in self.roles if r.role == role]

    @property
    def numeric(self) -> list[str]:
        return self.named("numeric")

    @property
    def categorical(self) -> list[str]:
        return self.named("categorical")

    @property
    def id_column(self) -> str | None:
        return next(iter(self.named("id")), None)

    @property
    def left_out(self) -> dict[str, str]:
        return {r.column: r.reason for r in self.roles if r.role == "left out"}

    @property
    def high_cardinality(self) -> list[Role]:
        return [r for r in self.roles if r.role == "categorical" and r.distinct > HIGH_CARDINALITY]

    @property
    def best_column(self) -> Role | None:
        scored = [r for r in self.roles if r.role in ("numeric", "categorical") and r.one_column_auc is not None]
        return max(scored, key=lambda r: r.one_column_auc or 0.0, default=None)


def read_roles(frame: pd.DataFrame, target: str, y: pd.Series) -> Inferred:
    """Each column's role (`y`: 1 for churn, 0 otherwise, aligned with `frame`)."""
    inferred = Inferred(churn_share=float(y.mean()), rows=len(frame))
    sentinels: set[str] = set()
    for column in frame.columns:
        if column == target:
            inferred.roles.append(Role(column, "target", "what the model predicts", 2, 0.0))
            continue
        role, found = _role(column, frame[column], target, y)
        sentinels |= found
        inferred.roles.append(role)
    _one_id(inferred)
    inferred.missing_values = tuple(sorted(sentinels))
    inferred.time_column = next((r for r in inferred.roles if "observed" in r.reason), None)
    return inferred


def _role(column: str, values: pd.Series, target: str, y: pd.Series) -> tuple[Role, set[str]]:
    present = _present(values)
    distinct = int(present.nunique())
    missing = 1.0 - len(present) / max(len(values), 1)

    def role(kind: str, reason: str, auc: float | None = None) -> Role:
        return Role(column, kind, reason, distinct, missing, auc)

    if distinct == 0:
        return role("left out", "empty"), set()
    if (why := _leak(column, values, present, target, y)) is not None:  # first: a note filled for churners only
        return role("left out", why), set()
    if distinct == 1:
        return role("left out", "constant: one value in every row" + (" not blank" if missing else "")), set()
    if (why := _date(values, present, distinct)) is not None:
        return role("left out", why), set()
    if (why := _personal(column, present, distinct)) is not None:
        return role("left out", why), set()
    if (why := _identifier(column, values, present, distinct)) is not None:
        return role("id" if why.startswith("the id") else "left out", why), set()
    numbers, sentinels = _numbers(values, present)
    found = _numeric_role(role, numbers, present, y, sentinels) if numbers is not None else None
    found = found or _categorical_role(role, present, y, distinct)
    if (found.one_column_auc or 0.0) >= LEAK_AUC:
        auc = found.one_column_auc
        why = f"leaks the target: alone it ranks churners almost perfectly (one-column ROC AUC {auc:.3f})"
        return role("left out", f"{why}, so most likely recorded after the outcome"), set()
    return found, sentinels if found.role == "numeric" else set()


def _present(values: pd.Series) -> pd.Series:
    """The non-missing values; text trimmed, blanks dropped."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values.dropna()
    text = values.dropna().astype("str").str.strip()
    return text[text != ""]


def _words(column: str) -> list[str]:
    return [word.lower() for word in _WORD_SPLIT.split(column) if word]


def _leak(column: str, values: pd.Series, present: pd.Series, target: str, y: pd.Series) -> str | None:
    words = set(_words(column))
    if words & (OUTCOME_WORDS | {"".join(_words(target))}):
        return "leaks the target: named after the outcome, so most likely recorded after it"
    if _is_mapping(present, y):
        return "leaks the target: each class has its own single value (the target spelled another way)"
    filled = values.index.isin(present.index)
    for label, name in ((1, "churners"), (0, "customers who stayed")):
        if 0 < filled.sum() < len(filled) and (filled == (y.to_numpy() == label)).mean() >= 0.99:
            return f"leaks the target: filled only for {name}, so recorded after the outcome"
    return None


def _is_mapping(present: pd.Series, y: pd.Series) -> bool:
    pairs = pd.DataFrame({"value": present.astype("str"), "target": y.loc[present.index]})
    per_class = pairs.groupby("target")["value"].nunique()
    per_value = pairs.groupby("value")["target"].nunique()
    return len(per_class) == 2 and bool((per_class == 1).all()) and bool((per_value == 1).all())


def _date(values: pd.Series, present: pd.Series, distinct: int) -> str | None:
    if pd.api.types.is_datetime64_any_dtype(values):
        iso = True
    elif pd.api.types.is_numeric_dtype(values):
        return None
    else:
        sample = present.head(5000)
        if not len(sample) or sample.str.fullmatch(_DATE).mean() < 0.95:
            return None
        iso = bool(sample.str.match(_ISO).mean() >= 0.95)
    example = str(present.iloc[0])[:19]
    if distinct <= SNAPSHOT_PERIODS and len(present) / distinct >= 20 and iso:
        return (
            f"a date or period ({distinct:,} distinct, e.g. {example}) held by many rows each: the time each row "
            "was observed, never a feature; see split"
        )
    return (
        f"a date ({distinct:,} distinct, e.g. {example}): as raw values a category that never recurs, so never a "
        "feature (derive a duration such as months since it in the export if it matters)"
    )


def _personal(column: str, present: pd.Series, distinct: int) -> str | None:
    if pd.api.types.is_numeric_dtype(present):
        return None
    words = set(_words(column)) | {"".join(_words(column))}
    many = distinct >= 50 or distinct >= 0.05 * len(present)
    sample = present.head(5000).astype("str")
    if many and words & PERSONAL_WORDS:
        return f"personal data ({distinct:,} distinct values): identifies a person and generalises to no one"
    if many and sample.str.contains(r"^[^@\s]+@[^@\s]+\.[a-zA-Z]+$").mean() >= 0.9:
        return f"personal data: e-mail addresses ({distinct:,} distinct)"
    if distinct >= 0.3 * len(present) and sample.str.split().str.len().mean() >= 4:
        return f"free text ({distinct:,} distinct values, several words each): not a category"
    return None


def _identifier(column: str, values: pd.Series, present: pd.Series, distinct: int) -> str | None:
    words = _words(column)
    id_named = bool(words) and (words[-1] in ID_WORDS or (len(words) == 1 and words[0].endswith("id")))
    numbered = bool(words) and words[-1] in NUMBER_WORDS
    whole = _whole_numbers(values)
    unique = distinct >= ID_SHARE * len(present)
    if whole is not None and _is_counter(whole):
        if id_named:
            return "the id: consecutive whole numbers named like an id, one per row"
        return "a row counter (0..n-1, 1..n or +1 a row in file order): where the row sits in the file"
    if unique and whole is None and _numbers(values, present)[0] is None:  # text, not numbers
        return f"the id: {distinct:,} distinct values in {len(present):,} rows"
    if unique and whole is not None and (id_named or numbered or _is_run(whole)):
        return f"the id: {distinct:,} distinct whole numbers in {len(present):,} rows"
    if id_named and distinct >= max(50, 0.1 * len(present)):
        return f"an identifier ({distinct:,} distinct values that repeat): never a feature, nor the id"
    return None


def _whole_numbers(values: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(values):
        return None
    numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_numeric_dtype(values) else values
    if numbers.isna().any() or not len(numbers):
        return None
    array = np.asarray(numbers, dtype="float64")
    return array if bool(np.all(array == np.round(array))) else None


def _is_counter(whole: np.ndarray) -> bool:
    steps = np.diff(whole)
    return len(whole) > 2 and bool(np.all(steps == 1))


def _is_run(whole: np.ndarray) -> bool:
    """Consecutive numbers in any order (account numbers handed out one after another)."""
    return bool(whole.max() - whole.min() + 1 <= 1.05 * len(whole))


def _numbers(values: pd.Series, present: pd.Series) -> tuple[pd.Series | None, set[str]]:
    """The column as numbers (missing where blank or a word for no value), and those words; None
    when it is not a numeric column."""
    if pd.api.types.is_bool_dtype(values):
        return None, set()
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64"), set()
    parsed = pd.to_numeric(present, errors="coerce")
    words = {str(word) for word in present[parsed.isna()].unique()}
    if not words:
        return parsed, set()
    if all(word.lower() in SENTINELS for word in words) and parsed.notna().mean() >= 0.5:
        return parsed, words
    return None, set()


def _numeric_role(role: Any, numbers: pd.Series, present: pd.Series, y: pd.Series, sentinels: set[str]) -> Role:
    distinct = int(numbers.nunique())
    as_levels = one_column_auc(_codes(present.astype("str")), y.loc[present.index])
    if distinct == 2:
        return role("categorical", "two values: a flag, so two groups rather than a scale", as_levels)
    as_scale = one_column_auc(_deciles(numbers), y.loc[numbers.index])
    said = f"; {', '.join(map(repr, sorted(sentinels)))} read as missing" if sentinels else ""
    if distinct <= LEVELS and _whole_numbers(numbers.dropna()) is not None and as_levels >= as_scale + LEVELS_GAIN:
        return role(
            "categorical",
            f"{distinct} whole-number levels whose churn rates do not rise or fall in order (one-column ROC AUC "
            f"{as_levels:.3f} as levels, {as_scale:.3f} as a scale)",
            as_levels,
        )
    return role("numeric", f"numbers, {distinct:,} distinct{said}", as_scale)


def _categorical_role(role: Any, present: pd.Series, y: pd.Series, distinct: int) -> Role:
    auc = one_column_auc(_codes(present.astype("str")), y.loc[present.index])
    if distinct > HIGH_CARDINALITY:
        return role(
            "categorical",
            f"{distinct:,} categories: those on fewer than {MIN_CATEGORY_COUNT} training rows share one column "
            "(preprocessing.min_category_count)",
            auc,
        )
    return role("categorical", f"{distinct} categories", auc)


def _codes(values: pd.Series) -> pd.Series:
    return pd.Series(pd.factorize(values)[0], index=values.index)


def _deciles(numbers: pd.Series) -> pd.Series:
    present = numbers.dropna()
    edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9))) if len(present) else np.array([])
    codes = np.where(numbers.isna(), -1, np.searchsorted(edges, numbers.fillna(0.0), side="right"))
    return pd.Series(codes, index=numbers.index)


def one_column_auc(codes: pd.Series, y: pd.Series) -> float:
    """Out-of-fold ROC AUC of one column's levels scored by their churn rate on the other folds
    (smoothed towards the overall rate by 10 rows' weight, so a level seen once says little).

    The AUC is taken within each fold and averaged: pooled over folds, a fold with more churners
    than its share gets lower rates from the others, a shift that hides a weak column's signal."""
    levels = codes.to_numpy() + 1  # -1 (missing) becomes level 0
    labels = y.to_numpy().astype("float64")
    if len(np.unique(labels)) < 2:
        return 0.5
    fold = np.random.default_rng(SEED).permutation(len(levels)) % FOLDS  # equal folds in random order
    size = int(levels.max()) + 1
    found = []
    for k in range(FOLDS):
        train, held = fold != k, fold == k
        if len(np.unique(labels[held])) < 2 or not train.any():
            continue
        prior = labels[train].mean()
        churned = np.bincount(levels[train], weights=labels[train], minlength=size)
        seen = np.bincount(levels[train], minlength=size)
        found.append(roc_auc_score(labels[held], ((churned + 10 * prior) / (seen + 10))[levels[held]]))
    return float(np.mean(found)) if found else 0.5


def _one_id(inferred: Inferred) -> None:
    """Keep one id, preferring one named like an id; any other is left out as a second id."""
    ids = [r for r in inferred.roles if r.role == "id"]
    if len(ids) <= 1:
        return
    named = [r for r in ids if set(_words(r.column)) & ID_WORDS or r.column.lower().endswith("id")]
    keep = (named or ids)[0]
    for position, found in enumerate(inferred.roles):
        if found.role == "id" and found is not keep:
            why = f"a second id ({found.distinct:,} distinct values; {keep.column} is the id): never a feature"
            inferred.roles[position] = Role(found.column, "left out", why, found.distinct, found.missing_share)
