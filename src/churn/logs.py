"""Logging set-up for the processes churn starts: the CLI, and each worker of the service."""

from __future__ import annotations

import logging
import os
import sys

# The CLI's log level, for the service's worker processes, which set up their own logging.
LOG_LEVEL_VARIABLE = "CHURN_LOG_LEVEL"


def configure_logging(level_name: str) -> None:
    """Log lines `level: message` on stderr: the package's at `level_name` (debug, info or
    error), other libraries' warnings and errors only."""
    level = logging.getLevelNamesMapping()[level_name.upper()]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowercaseLevelFormatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("churn").setLevel(level)


def relative_paths(text: str) -> str:
    """`text` with every absolute path under the current folder shown relative to it, as the
    user reads paths (the config resolves its paths to absolute ones)."""
    here = os.getcwd().rstrip(os.sep) + os.sep
    return text.replace(here, "") if here != os.sep else text


class _LowercaseLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return relative_paths(super().format(record))
