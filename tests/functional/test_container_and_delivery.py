"""The container image's recipe, and the workflows that test, ship and retrain: checked here,
where GitHub Actions and Docker do not run (scripts/container_smoke.sh builds and runs the
image for real; .ci/run calls it)."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from support import REPO, run_cli, write_quick_config

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def workflow(name):
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text(encoding="utf-8"))


def instructions(text=DOCKERFILE):
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def stages():
    """The Dockerfile's stages: (FROM instruction, its instructions), in order."""
    found: list[tuple[str, list[str]]] = []
    for step in instructions():
        if step.startswith("FROM "):
            found.append((step, []))
        elif found:
            found[-1][1].append(step)
    return found


def test_the_runtime_stage_gets_a_built_environment_on_a_slim_base_a_build_argument_can_change():
    arguments = dict(s.split()[1].split("=", 1) for s in instructions() if s.startswith("ARG ") and "=" in s)
    (builder, _), (runtime, steps) = stages()
    base = runtime.split()[1].strip("${}")
    assert arguments[base].startswith("python:3.11") and arguments[base].endswith("-slim")
    assert builder.split()[1] == runtime.split()[1]  # the same base for both stages
    name = builder.split()[-1]
    copied = [s for s in steps if s.startswith(f"COPY --from={name} ")]
    assert copied and all(s.split()[-1] == s.split()[-2] for s in copied)  # the environment, where it was built


def test_the_image_runs_churn_serving_every_address_on_the_documented_port():
    _, steps = stages()[-1]
    entry = next(json.loads(s.split(" ", 1)[1]) for s in steps if s.startswith("ENTRYPOINT "))
    command = next(json.loads(s.split(" ", 1)[1]) for s in steps if s.startswith("CMD "))
    assert entry == ["churn"] and command[0] == "serve" and command[command.index("--host") + 1] == "0.0.0.0"
    assert any(s.split()[1:] == ["8000"] for s in steps if s.startswith("EXPOSE "))


def test_the_image_runs_as_a_numeric_non_root_user_with_a_python_healthcheck():
    users = [s.split()[1] for s in instructions() if s.startswith("USER ")]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), users  # numeric and not 0
    (check,) = [s for s in instructions() if s.startswith("HEALTHCHECK")]
    assert "python3" in check and "urllib.request" in check and "curl" not in check
    assert "http://127.0.0.1:8000/health" in DOCKERFILE


def test_the_image_installs_the_runtime_lock_and_no_dev_tools_tests_or_models():
    runs = " ".join(s for s in instructions() if s.startswith("RUN"))
    copies = [s for s in instructions() if s.startswith("COPY")]
    assert "-r requirements.lock" in runs and "requirements-dev" not in DOCKERFILE
    for banned in ("pytest", "tests", "models/", "benchmarks"):
        assert not any(banned in copy for copy in copies), banned


def test_dockerignore_keeps_the_build_context_to_what_the_image_needs():
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"  # everything out, then only what is needed back in
    allowed = [line[1:] for line in lines if line.startswith("!")]
    for kept_out in (".git", ".venv", "models", "data/predictions", "benchmarks", "tests"):
        assert not any(path.rstrip("/").startswith(kept_out) for path in allowed), kept_out


def test_compose_serves_on_8000_with_a_models_volume():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    service = compose["services"]["churn"]
    assert service["ports"] == ["8000:8000"] and "models:/app/models" in service["volumes"]
    assert "models" in compose["volumes"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_workflow_validates_against_the_github_workflow_schema(path):
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_container_job_builds_smoke_tests_and_pushes_only_from_main():
    ci = workflow("ci.yml")
    job = ci["jobs"]["container"]
    assert job["needs"] == "test" and job["permissions"]["packages"] == "write"
    steps = job["steps"]
    builds = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action")]
    assert builds[0]["with"]["load"] is True and "cache-from" in builds[0]["with"]
    assert any(s.get("run", "").startswith("bash scripts/container_smoke.sh --engine docker") for s in steps)
    pushing = [s for s in builds if s["with"].get("push")]
    assert len(pushing) == 1 and "${{ github.sha }}" in pushing[0]["with"]["tags"]
    assert ":latest" in pushing[0]["with"]["tags"]
    main_only = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert pushing[0]["if"] == main_only
    login = next(s for s in steps if s.get("uses", "").startswith("docker/login-action"))
    assert login["if"] == main_only and login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert ci[True]["pull_request"] is None  # ("on:" reads as true) pull requests build, smoke-test, push nothing


def test_retrain_runs_monthly_and_by_hand_and_ships_only_an_accepted_model():
    retrain = workflow("retrain.yml")
    assert retrain[True]["schedule"][0]["cron"] == "0 4 1 * *" and "workflow_dispatch" in retrain[True]
    steps = retrain["jobs"]["retrain"]["steps"]
    commands = [s.get("run") for s in steps]
    assert "python main.py train" in commands  # exit 3 fails the job: later steps are skipped
    upload = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload > commands.index("python main.py train") and "if" not in steps[upload]
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "success() || failure()"


@pytest.mark.slow  # the workflow's shell steps, a training among them
def test_the_workflow_shell_steps_run_here(tmp_path):
    """The steps that are plain shell, run with the variables GitHub would set."""
    config = write_quick_config(tmp_path, validation={})
    assert run_cli("train", "-q", "-c", config, cwd=tmp_path).returncode == 0
    env = dict(os.environ, GITHUB_ENV=str(tmp_path / "env"), GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
               GITHUB_REPOSITORY="Example-Org/Churn")  # fmt: skip
    ci_steps = workflow("ci.yml")["jobs"]["container"]["steps"]
    retrain_steps = workflow("retrain.yml")["jobs"]["retrain"]["steps"]
    for step in [ci_steps[1], *[s for s in retrain_steps if s.get("name") == "Name the run folder"]]:
        subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env=env, check=True)
    latest = (tmp_path / "models" / "latest").read_text().strip()
    assert (tmp_path / "env").read_text().splitlines() == [
        "IMAGE=ghcr.io/example-org/churn",
        f"RUN_DIR=models/{latest}",
    ]
    summary_step = next(s for s in retrain_steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    command = summary_step["run"].replace(
        "python scripts/run_summary.py", f"{sys.executable} {REPO}/scripts/run_summary.py"
    )
    subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, check=True)
    text = (tmp_path / "summary.md").read_text()
    assert (
        text.startswith(f"## churn run {latest}: accepted")
        and "| ROC AUC |" in text
        and "| 1 | logistic_regression |" in text
    )


def test_ci_script_runs_the_container_smoke_test_after_the_readme_command():
    script = (REPO / ".ci" / "run").read_text()
    assert script.index("pytest") < script.index("scripts/container_smoke.sh")
