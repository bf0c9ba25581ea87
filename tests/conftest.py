"""Shared fixtures; each test folder is one level, marked by folder (see pyproject's markers)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import DELETE, write_quick_config

LEVELS = ("unit", "integration", "functional", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        level = Path(item.fspath).parent.name
        if level in LEVELS:
            item.add_marker(getattr(pytest.mark, level))


@pytest.fixture(autouse=True)
def isolated_logging() -> Iterator[None]:
    """Each test starts with the logging set-up the last left: the CLI's main() configures it
    (-q raises the package's level to errors), so in-process calls are undone after each test."""
    root, package = logging.getLogger(), logging.getLogger("churn")
    levels, handlers, propagate = (
        (root.level, package.level),
        (root.handlers[:], package.handlers[:]),
        package.propagate,
    )
    yield
    root.handlers[:], package.handlers[:] = handlers
    package.propagate = propagate
    root.setLevel(levels[0])  # setLevel, not the attribute: it also clears logging's cache of levels
    package.setLevel(levels[1])


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """support.write_quick_config into this test's tmp_path."""
    return functools.partial(write_quick_config, tmp_path)


@pytest.fixture
def delete() -> object:
    """Marker value for write_config: remove this key."""
    return DELETE
