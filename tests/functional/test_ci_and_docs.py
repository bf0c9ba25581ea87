"""CI runs what the README says, the workflow is valid, and the docs document everything the
code accepts: every mode and option, exit code and config key."""

import argparse
import importlib.metadata
import re
import subprocess
import sys

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel
from support import REPO

from churn.cli.parser import build_parser
from churn.config import Config

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = REPO / "docs"


def page(name):
    return (DOCS / name).read_text(encoding="utf-8")


def workflow():
    return yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))


def test_workflow_runs_each_level_as_its_own_step_on_three_pythons():
    job = workflow()["jobs"]["test"]
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    commands = [step.get("run") for step in job["steps"]]
    for level in ("unit", "integration", "functional", "e2e"):
        assert f"pytest -m {level}" in commands


def test_every_workflow_command_is_documented_in_the_deployment_page():
    deployment = page("deployment.md")
    for step in workflow()["jobs"]["test"]["steps"]:
        if "run" in step:
            assert f"`{step['run']}`" in deployment or f"\n{step['run']}\n" in deployment, step["run"]


def test_ci_script_runs_the_readme_test_command_word_for_word_first():
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line and not line.startswith(("#", "set ", "cd ", "export "))]
    # only the machine's prerequisites come before it: PostgreSQL's programs for the database tests
    assert commands[0] == "bash scripts/ensure_postgres.sh"
    commands = commands[1:]
    assert f"\n{commands[0]}\n" in README
    assert commands[0].startswith(
        "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements-dev.txt"
    )
    for step in ("pip check", "ruff check .", "ruff format --check .", "mypy src", "pytest"):
        assert f"&& {step}" in commands[0], step
    # then, as their own steps: the slow checks, the docs, the container
    for step in ("pytest -m slow", "mkdocs build --strict", "bash scripts/container_smoke.sh"):
        assert any(command.startswith(step) for command in commands[1:]), step


def config_keys(model, prefix=""):
    """Every dotted key the config accepts, down to the leaves (predict.dask.workers)."""
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from config_keys(field.annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_the_docs_document_every_exit_code_and_config_key():
    exit_codes = page("exit-codes.md")
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 130 |"):
        assert code in exit_codes
    reference = page("configuration.md")
    keys = list(config_keys(Config))  # every key the code accepts, not only the shipped ones
    assert "predict.dask.scheduler" in keys and "tracking.uri" in keys
    for key in keys:
        assert f"`{key}`" in reference, f"{key} is not documented"


def test_the_configuration_page_is_the_one_the_schema_gives():
    check = [sys.executable, str(REPO / "scripts" / "config_reference.py"), "--check"]
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def modes():
    """(mode, its parser) for every mode and `models` action of the CLI."""
    parser = build_parser()
    (choices,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in choices.choices.items():
        actions = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        yield from (
            ((f"{name} {action}", parser) for action, parser in actions[0].choices.items())
            if actions
            else [(name, sub)]
        )


COMMON = ("--config", "--verbose", "--quiet", "--help")  # every mode takes them: documented once, on the home page


@pytest.mark.parametrize(("mode", "parser"), list(modes()), ids=lambda value: value if isinstance(value, str) else "")
def test_every_mode_and_option_has_its_page(mode, parser):
    text = page(f"modes/{mode.split()[0]}.md")
    assert f"python main.py {mode}" in text
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--") and option not in COMMON:
                assert f"`{option}`" in text or f"{option} " in text, f"{mode}: {option} is not documented"


@pytest.mark.parametrize(("mode", "parser"), list(modes()), ids=lambda value: value if isinstance(value, str) else "")
def test_every_mode_s_usage_line_lists_every_option(mode, parser):
    """The first line of a mode's page names every option its parser takes (the table below it
    explains them)."""
    usage = next(line for line in page(f"modes/{mode.split()[0]}.md").splitlines()
                 if line.startswith(f"python main.py {mode}"))  # fmt: skip
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--") and option not in COMMON:
                assert re.search(rf"{re.escape(option)}\b", usage), f"{mode}: {option} is not in the usage line {usage}"


def fence_problems(text: str) -> list[str]:
    """Code fences that do not pair up as Markdown pairs them: a closing fence is backticks
    alone on their line (text after them leaves the fence open), and every fence closes."""
    problems, open_at = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("```"):
            continue
        if open_at is None:
            open_at = number
        elif stripped.strip("`") == "":
            open_at = None
        else:
            problems.append(f"line {number}: a fence followed by text inside the fence opened on line {open_at}")
    if open_at is not None:
        problems.append(f"the fence opened on line {open_at} never closes")
    return problems


def test_every_page_s_code_fences_pair_up():
    assert fence_problems("```\ncode\n``` text\n") and fence_problems("```\ncode\n")  # the check can fail
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    found = {str(path.relative_to(REPO)): fence_problems(path.read_text()) for path in pages}
    assert not {name: problems for name, problems in found.items() if problems}


def test_the_options_every_mode_takes_are_documented_once():
    home = page("index.md")
    for option in (*COMMON, "--version", "-c", "-v", "-q"):
        assert f"`{option}`" in home, option


def test_the_readme_is_a_front_page_whose_links_resolve():
    assert len(README.splitlines()) <= 250
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert len(links) >= 10 and all((REPO / link).is_file() for link in links)
    assert "python3 -m venv .venv" in README and "python main.py serve" in README


def locked(path):
    """name -> version of every pinned package of a lock file that applies to this platform."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#")[0].strip()
        if not requirement or requirement.startswith("-e "):
            continue
        requirement, _, marker = requirement.partition(";")
        assert "==" in requirement, f"{path.name}: {line!r} is not pinned with =="
        name, version = (part.strip() for part in requirement.split("=="))
        if not marker or Marker(marker).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def test_the_runtime_lock_is_complete_and_agrees_with_the_dev_lock():
    runtime, dev = locked(REPO / "requirements.txt"), locked(REPO / "requirements-dev.txt")
    assert runtime.items() <= dev.items()
    # complete: every package the runtime needs, down the dependency tree, is pinned in it
    needed, queue = set(), ["churn"]
    while queue:
        name = queue.pop()
        for requirement in importlib.metadata.requires(name) or ():
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                dependency = canonicalize_name(parsed.name)
                if dependency not in needed:
                    needed.add(dependency)
                    queue.append(dependency)
    assert needed <= set(runtime), f"missing from requirements.txt: {sorted(needed - set(runtime))}"


@pytest.mark.parametrize("extra", ["explain", "tracking", "dask", "sql"])
def test_every_extra_has_a_lock_that_agrees_with_the_dev_lock_and_holds_the_extra(extra):
    """`pip install -r requirements-<extra>.txt` installs the dev lock's very versions: no package
    moves as `pip install -e ".[extra]"` would move them."""
    lock, dev = locked(REPO / f"requirements-{extra}.txt"), locked(REPO / "requirements-dev.txt")
    assert lock.items() <= dev.items()
    assert locked(REPO / "requirements.txt").items() <= lock.items()  # the whole runtime too
    for requirement in importlib.metadata.requires("churn") or ():
        parsed = Requirement(requirement)
        if parsed.marker is not None and parsed.marker.evaluate({"extra": extra}):
            assert canonicalize_name(parsed.name) in lock, f"{parsed.name} is not in requirements-{extra}.txt"
    assert f"requirements-{extra}.txt" in (REPO / "scripts" / "lock.sh").read_text()
