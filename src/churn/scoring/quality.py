"""Data quality of scored rows against the training schema, as data every door formats.

A `QualityTally` sums, chunk by chunk (or request by request, or part by part on a cluster,
merged), per column the share of missing values, of categories never seen in training, of
numbers outside the range seen in training, and of values that are not numbers. `report()` is
the JSON `predict --report` writes; `warnings()` the lines the CLI logs, the service answers
and the cluster reports: one wording, whichever door the rows came through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from churn.cleaning import CleanedFeatures, UnparsedNumbers, cleaning_warnings
from churn.codes import count_unseen, unseen_values
from churn.store.record import FeatureSchema

EXAMPLES = 3  # unseen values named per column
# The drift line names a column from this many values outside training and this share of its
# values: the shipped test rows hold a value or two above the training split's maximum.
DRIFT_MIN_VALUES, DRIFT_MIN_SHARE = 5, 0.005
EXAMPLE_CHARS = 40  # a value is quoted up to this many characters: a client's string is never echoed whole


def shorten(value: str, limit: int = EXAMPLE_CHARS) -> str:
    """`value` as a warning quotes it: at most `limit` characters, control characters escaped."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


class QualityTally:
    """Data-quality figures of scored rows against the training schema, added up as they come."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self.rows = 0
        self.missing: Counter[str] = Counter()
        self.unseen: Counter[str] = Counter()
        self.below: Counter[str] = Counter()
        self.above: Counter[str] = Counter()
        self.not_numbers: Counter[str] = Counter()
        self.infinite: Counter[str] = Counter()
        self.present_numbers: Counter[str] = Counter()  # non-missing raw values of numeric columns
        self.examples: dict[str, list[str]] = {}  # numeric column -> values that are not numbers
        self.first_unparsed: dict[str, int] = {}  # numeric column -> row (from 0) of its first one
        self.unseen_examples: dict[str, list[str]] = {}  # categorical column -> unseen values, shortened

    def add(self, cleaned: CleanedFeatures) -> None:
        features = cleaned.features
        self.rows += len(features)
        for column, coded in features.coded.items():
            self.missing[column] += int((coded.codes < 0).sum())
            known = self.schema.categories[column]
            unseen = count_unseen(coded, known)
            if unseen:
                self.unseen[column] += unseen
                self._remember(self.unseen_examples, column, map(shorten, unseen_values(coded, known)))
        for column, values in features.numbers.items():
            self.missing[column] += int(np.isnan(values).sum())
            bounds = self.schema.numeric_ranges[column]
            if bounds.min is not None and bounds.max is not None:
                self.below[column] += int((values < bounds.min).sum())
                self.above[column] += int((values > bounds.max).sum())
            bad = cleaned.unparsed.get(column)
            lost = (bad.count if bad else 0) + cleaned.infinite.get(column, 0)
            self.present_numbers[column] += int((~np.isnan(values)).sum()) + lost
            if bad:
                self.not_numbers[column] += bad.count
                self._remember(self.examples, column, map(shorten, bad.examples))
                if len(bad.rows):
                    self.first_unparsed.setdefault(column, self.rows - len(features) + int(bad.rows[0]))
        self.infinite.update(cleaned.infinite)

    def merge(self, other: QualityTally) -> None:
        """Add another tally's figures (the part scored after this one's rows) to this one."""
        offset = self.rows
        self.rows += other.rows
        for mine, theirs in (
            (self.missing, other.missing),
            (self.unseen, other.unseen),
            (self.below, other.below),
            (self.above, other.above),
            (self.not_numbers, other.not_numbers),
            (self.infinite, other.infinite),
            (self.present_numbers, other.present_numbers),
        ):
            mine.update(theirs)
        for column, values in other.examples.items():
            self._remember(self.examples, column, values)
        for column, row in other.first_unparsed.items():  # the other tally's rows follow this one's
            self.first_unparsed.setdefault(column, offset + row)
        for column, values in other.unseen_examples.items():
            self._remember(self.unseen_examples, column, values)

    @staticmethod
    def _remember(store: dict[str, list[str]], column: str, values: Any) -> None:
        known = store.setdefault(column, [])
        for value in values:
            if len(known) >= EXAMPLES:
                return
            if value not in known:
                known.append(value)

    def unparsed(self) -> dict[str, UnparsedNumbers]:
        """Values that are not numbers, per numeric column, over every row so far."""
        return {
            column: UnparsedNumbers(
                count,
                self.present_numbers[column],
                tuple(self.examples[column]),
                np.asarray([self.first_unparsed[column]] if column in self.first_unparsed else []),
            )
            for column, count in self.not_numbers.items()
        }

    def report(self) -> dict[str, Any]:
        """Every figure, per column: the JSON `predict --report` writes."""
        columns: dict[str, Any] = {}
        for column in self.schema.categorical_features:
            present = self.rows - self.missing[column]
            columns[column] = {
                "kind": "categorical",
                "missing_share": _share(self.missing[column], self.rows),
                "unseen_values": self.unseen[column],
                "unseen_share": _share(self.unseen[column], present),
            }
        for column in self.schema.numeric_features:
            present = self.rows - self.missing[column]
            bounds = self.schema.numeric_ranges[column]
            outside = self.below[column] + self.above[column]
            columns[column] = {
                "kind": "numeric",
                "missing_share": _share(self.missing[column], self.rows),
                "training_range": [bounds.min, bounds.max],
                "below_range": self.below[column],
                "above_range": self.above[column],
                "outside_range_share": _share(outside, present),
                "not_numbers": self.not_numbers[column],
                "infinite": self.infinite[column],
            }
        return {"rows": self.rows, "columns": columns}

    def warnings(self) -> list[str]:
        """What a user should hear about these rows, one line each (without the source)."""
        lines = cleaning_warnings(self.unparsed(), self.infinite)
        for column in self.schema.columns:
            if self.rows and self.missing[column] == self.rows:
                lines.append(
                    f"column {column} is missing in every row; scored as missing throughout (check the export)"
                )
        for column, count in self.unseen.items():
            if count:
                shown = ", ".join(map(repr, self.unseen_examples.get(column, [])))
                lines.append(
                    f"column {column} has {count} value(s) never seen in training (e.g. {shown}); scored as no category"
                )
        if (drift := self.drift()) is not None:
            lines.append(f"input drift: {drift}")
        return lines

    def drift(self) -> str | None:
        """One line naming the columns that drift, or None when nothing does: a column counts
        from DRIFT_MIN_VALUES values and DRIFT_MIN_SHARE of its values (one test row above the
        training split's maximum is not drift), and the line says so."""
        outside = {c: self.below[c] + self.above[c] for c in self.schema.numeric_features}
        unseen, shares = self._drifting(self.unseen), self._drifting(outside)
        parts = [f"categories never seen in training in {', '.join(unseen)} of values"] if unseen else []
        parts += [f"numbers outside the training range in {', '.join(shares)} of values"] if shares else []
        if not parts:
            return None
        return "; ".join(parts) + f" (columns with at least {DRIFT_MIN_VALUES} such values and {DRIFT_MIN_SHARE:.1%})"

    def _drifting(self, counts: Mapping[str, int]) -> list[str]:
        found = []
        for column, count in counts.items():
            share = _share(count, self.rows - self.missing[column])
            if count >= DRIFT_MIN_VALUES and share >= DRIFT_MIN_SHARE:
                found.append(f"{column} {share:.2%}")
        return found


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0
