"""CI runs what the README says, and the workflow file is valid."""

import importlib.metadata

import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel
from support import REPO

from churn.config import Config

README = (REPO / "README.md").read_text(encoding="utf-8")


def workflow():
    return yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))


def test_workflow_runs_each_level_as_its_own_step_on_three_pythons():
    job = workflow()["jobs"]["test"]
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    commands = [step.get("run") for step in job["steps"]]
    for level in ("unit", "integration", "functional", "e2e"):
        assert f"pytest -m {level}" in commands


def test_every_workflow_command_is_documented_in_the_readme():
    for step in workflow()["jobs"]["test"]["steps"]:
        if "run" in step:
            assert f"`{step['run']}`" in README or f"\n{step['run']}\n" in README, step["run"]


def test_ci_script_runs_the_readme_test_command_word_for_word_first():
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert f"\n{commands[0]}\n" in README
    assert commands[0].startswith(
        "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements-dev.txt"
    )
    for step in ("ruff check .", "ruff format --check .", "mypy src", "pytest"):
        assert f"&& {step}" in commands[0], step


def config_keys(model, prefix=""):
    """Every dotted key the config accepts, down to the leaves (predict.dask.workers)."""
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from config_keys(field.annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_readme_documents_every_exit_code_and_config_key():
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in README
    keys = list(config_keys(Config))  # every key the code accepts, not only the shipped ones
    assert "predict.dask.scheduler" in keys and "tracking.uri" in keys
    for key in keys:
        assert f"`{key}`" in README, f"{key} is not documented"


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


def test_the_installed_environment_is_the_dev_lock():
    pins = locked(REPO / "requirements-dev.txt")
    assert len(pins) > 100
    installed = {name: importlib.metadata.version(name) for name in pins}
    assert installed == pins, "reinstall: pip install -r requirements-dev.txt"


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
