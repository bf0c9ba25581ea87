"""The package's import graph: no cycles, the scoring side apart from the training side, and no
function-local import of the package's own modules without a comment saying what it defers."""

import ast
from pathlib import Path

import pytest
from support import REPO

PACKAGE = REPO / "src" / "churn"
# What scoring a file or a request goes through; none of it may reach the training side.
SCORING_SIDE = ("churn.workflows.predict", "churn.batch", "churn.service.app", "churn.distributed")
TRAINING_SIDE = ("churn.training", "churn.selection", "churn.evaluation", "churn.report", "churn.data_loader")
# The saved model's own steps: loaded wherever the model is, they read no file and no config.
MODEL_STEPS = ("churn.preprocessing", "churn.cleaning")
FILE_OR_CONFIG_READERS = ("churn.config", "churn.tables", "churn.runs", "churn.data_loader")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def resolve(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package's modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("churn")]
    if node.module is None or not node.module.startswith("churn"):
        return []
    found = [node.module]
    found += [f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES]
    return found


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def imports(name: str) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, statement, whether inside a function) for every import of the package's
    modules; ancestors of the imported module are imported too (Python runs their __init__ first),
    except those of the importer itself, which are always initialised before it."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    local = {id(node) for func in ast.walk(tree) if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(func)}  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in resolve(node):
                for module in [*ancestors(target), target]:
                    if module in MODULES and module != name and module not in ancestors(name):
                        found.append((module, node, id(node) in local))
    return found


GRAPH = {name: {target for target, _, _ in imports(name)} for name in MODULES}


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_import_graph_has_no_cycle():
    cycles = sorted(name for name in GRAPH if name in reachable(name))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_a_cycle_would_be_found():
    GRAPH["churn.errors"].add("churn.runs")  # runs imports errors: this closes a loop
    try:
        assert "churn.errors" in reachable("churn.errors")
    finally:
        GRAPH["churn.errors"].discard("churn.runs")


@pytest.mark.parametrize("module", SCORING_SIDE)
def test_the_scoring_side_never_imports_the_training_side(module):
    assert not reachable(module) & set(TRAINING_SIDE), sorted(reachable(module) & set(TRAINING_SIDE))


@pytest.mark.parametrize("module", MODEL_STEPS)
def test_the_saved_models_steps_import_nothing_that_reads_files_or_the_config(module):
    assert not reachable(module) & set(FILE_OR_CONFIG_READERS)


def test_every_function_local_import_of_the_package_says_what_it_defers():
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for _, node, local in imports(name):
            around = " ".join(lines[max(node.lineno - 4, 0) : node.end_lineno or node.lineno]).lower()
            if local and "defer" not in around:
                silent.append(f"{name}:{node.lineno}")
    assert not silent, f"function-local imports without a comment on what they defer: {sorted(set(silent))}"
