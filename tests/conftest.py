"""Shared fixtures; each test folder is one level, marked by folder (see pyproject's markers)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO, TELCO_SAMPLE

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


@pytest.fixture(scope="session")
def default_config_dict() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def write_config(tmp_path: Path, default_config_dict: dict[str, Any]) -> Callable[..., Path]:
    """Write a config into tmp_path: the repository's default, changed by `changes` (dotted keys).

    Paths default to the sample data and to models/predictions folders inside tmp_path, and the
    candidate comparison is left out (the single `model` section trains) to keep tests fast.
    """

    def write(changes: dict[str, Any] | None = None, name: str = "config.yaml", **sections: Any) -> Path:
        config = copy.deepcopy(default_config_dict)
        config["data"]["path"] = str(TELCO_SAMPLE)
        config["paths"] = {"models_dir": "models", "predictions_dir": "predictions"}
        config["training"]["cv_folds"] = 3
        config["training"].pop("candidates")
        config.update(sections)
        for dotted, value in (changes or {}).items():
            *parents, leaf = dotted.split(".")
            node = config
            for key in parents:
                node = node.setdefault(key, {})
            if value is _DELETE:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    return write


_DELETE = object()


@pytest.fixture
def delete() -> object:
    """Marker value for write_config: remove this key."""
    return _DELETE
