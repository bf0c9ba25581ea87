"""The exception family that the CLI turns into one-line messages and exit codes.

Every error that a user can fix (bad config, bad data, a missing model) derives from
`ChurnError` and carries the exit code it maps to; anything else is a bug and keeps
its traceback (exit 1).
"""


class ChurnError(Exception):
    """An error the user can fix; `str(error)` is the whole one-line message."""

    exit_code = 2


class ConfigError(ChurnError):
    """The config file is missing, malformed, or holds a bad key or value."""


class DataError(ChurnError, ValueError):
    """An input file is missing, unreadable, or does not fit the expected schema.

    Also a ValueError, as scikit-learn's own input errors are: the saved model's cleaning
    step raises it inside a notebook's `predict_proba`.
    """


class FormatError(DataError):
    """An input is not a readable table at all (not CSV, not UTF-8, empty, broken rows)."""


class ModelError(ChurnError):
    """A saved model run is missing, incomplete, or changed after training."""
