"""The one check that a table holds the columns a step needs, and its one message.

Every door (training, predict, the service's CSV and JSON bodies, the saved model's cleaning
step) calls `require_columns`, so a missing column reads the same wherever it is found: every
missing column named, likely causes (another delimiter, other spelling) pointed out, and the
remedy that fits the door.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from churn.errors import DataError

# What a caller tells the user to do about a missing column.
TRAINING_REMEDY = "add them to the file or fix the column lists in the config"
SCORING_REMEDY = "the run was trained with them: send them, or retrain the model without them"
_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
_HINTED_HEADERS = 1_000  # close matches are looked for in headers up to this wide (the search is quadratic)


def missing_columns(present: Iterable[str], required: Sequence[str]) -> list[str]:
    """The required columns absent from `present`, in the order required."""
    have = set(present)
    return [column for column in required if column not in have]


def require_columns(present: Sequence[str], required: Sequence[str], source: object, remedy: str) -> None:
    """Raise a DataError naming every required column `present` lacks (and `source`, unless None).

    Raises:
        DataError: one line: the missing columns, any likely cause, then `remedy`.
    """
    missing = missing_columns(present, required)
    if not missing:
        return
    where = "" if source is None else f"{source}: "
    hints = _hints(list(present), missing)
    raise DataError(f"{where}missing required column(s) {', '.join(missing)}{'; ' + hints if hints else ''}; {remedy}")


def _hints(present: list[str], missing: list[str]) -> str:
    """Why the columns may be missing: the header split on another delimiter, or spelt otherwise."""
    if len(present) == 1:
        for delimiter, name in _DELIMITERS.items():
            if delimiter in present[0]:
                return f"the header is one column holding {name}: is the file separated by {name}, not commas?"
    if len(present) > _HINTED_HEADERS:
        return ""
    folded = {column.casefold(): column for column in present}
    guesses = []
    for column in missing:
        match = folded.get(column.casefold()) or next(iter(difflib.get_close_matches(column, present, 1, 0.8)), None)
        if match is not None:
            guesses.append(f"{match!r} for {column}")
    return f"the file has {', '.join(guesses)} (names must match exactly)" if guesses else ""
