"""The package's import graph and layout: no cycles; the layers in the folder list (scoring,
explain, monitoring, io and store never reach the training side; only the entry points import the
workflows); at most 15 modules at the top; every function of at most 7 parameters; the
architecture page's module list the real one; and no function-local import of the package's own
modules without a comment saying what it defers."""

import ast
import re
from pathlib import Path

import pytest
from support import REPO

PACKAGE = REPO / "src" / "churn"
# What scoring a file or a request goes through; none of it may reach the training side.
SCORING_SIDE = ("churn.workflows.predict", "churn.service.app")
SCORING_LAYERS = ("churn.scoring", "churn.explain", "churn.monitoring", "churn.io", "churn.store")
TRAINING_SIDE = ("churn.training", "churn.data_loader")
# The only importers of the workflows: the entry points.
ENTRY_POINTS = ("churn.pipeline", "churn.cli", "churn.service", "churn.workflows")
# The modules the design card names, and those every saved model pickles by path, stay on top.
TOP_LEVEL = ("pipeline", "data_loader", "preprocessing", "model", "cleaning", "codes")
MAX_TOP_LEVEL, MAX_PARAMETERS = 15, 7
# The saved model's own steps: loaded wherever the model is, they read no file and no config.
MODEL_STEPS = ("churn.preprocessing", "churn.cleaning")
FILE_OR_CONFIG_READERS = ("churn.config", "churn.io.tables", "churn.store.runs", "churn.data_loader")


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
    modules that runs (not those under `if TYPE_CHECKING:`); ancestors of the imported module are
    imported too (Python runs their __init__ first), except those of the importer itself, which
    are always initialised before it."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    local = {id(node) for func in ast.walk(tree) if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(func)}  # fmt: skip
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) == "TYPE_CHECKING" for node in ast.walk(block)}  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in typing_only:  # those never run
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
    GRAPH["churn.errors"].add("churn.store.runs")  # runs imports errors: this closes a loop
    try:
        assert "churn.errors" in reachable("churn.errors")
    finally:
        GRAPH["churn.errors"].discard("churn.store.runs")


def under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


@pytest.mark.parametrize("module", [*SCORING_SIDE, *(m for m in MODULES if under(m, SCORING_LAYERS))])
def test_the_scoring_side_never_imports_the_training_side(module):
    reached = sorted(m for m in reachable(module) if under(m, TRAINING_SIDE))
    assert not reached, f"{module} reaches {reached}"


def test_only_the_entry_points_import_the_workflows():
    found = sorted(f"{name} imports {target}" for name, targets in GRAPH.items() for target in targets
                   if under(target, ("churn.workflows",)) and not under(name, ENTRY_POINTS))  # fmt: skip
    assert not found, found


def test_the_folder_shows_the_layers():
    top = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")
    assert len(top) <= MAX_TOP_LEVEL and set(TOP_LEVEL) <= set(top), top
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert {
        "training",
        "scoring",
        "explain",
        "monitoring",
        "store",
        "io",
        "config",
        "cli",
        "workflows",
        "service",
    } <= packages


def test_no_function_takes_more_than_seven_parameters():
    wide = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = node.args
                names = [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]
                names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
                count = len([n for n in names if n not in ("self", "cls")])
                if count > MAX_PARAMETERS:
                    wide.append(f"{name}.{node.name} ({count})")
    assert not wide, wide


def test_the_architecture_page_lists_every_module_and_no_other():
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^src/churn/(\S+\.py)\b", page, flags=re.M))
    folders = set(re.findall(r"^src/churn/(\w+)/\s", page, flags=re.M))
    real = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}
    described = {module for module in real if module in listed or module.split("/")[0] in folders - DETAILED}
    assert real == described, sorted(real - described)
    assert listed <= real, sorted(listed - real)


# Packages whose every module the page lists one by one; the others are described as one folder.
DETAILED = {"training", "scoring", "explain", "monitoring", "store", "io"}


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


def test_only_the_upgrade_step_knows_older_runs():
    """Messages about runs of earlier churns, and the model's missing training means, live in
    store/upgrade.py: the doors ask a run's gaps instead of branching on its age."""
    found = []
    for name, path in MODULES.items():
        if name == "churn.store.upgrade":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}  # fmt: skip
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if "before churn" in node.value or "training_means_" in node.value:
                    found.append(f"{name}:{node.lineno}")
    assert not found, found


def test_fmt_skip_only_where_a_table_of_literals_reads_better():
    count = sum(path.read_text(encoding="utf-8").count("# fmt: skip") for path in MODULES.values())
    assert count <= 15, count
