"""Monitoring through the other doors: the service's /monitor and PSI gauges equal `monitor` on
the same rows, and the scheduled scoring workflow passes the schema check with its shell steps
running here."""

import json
import math
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from support import REPO, TELCO_SAMPLE, Service, http, run_cli, write_quick_config

from churn import pipeline
from churn.config import load_config
from churn.workflows import monitor

ROWS = pd.read_csv(TELCO_SAMPLE, dtype=str, keep_default_na=False)
SAME_EVERYWHERE = ("columns", "prediction", "estimated", "test", "calibration", "verdict", "reasons", "rows")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("monitored")
    pipeline.train(load_config(write_quick_config(folder, validation={})))
    return folder


@pytest.fixture
def workspace(template, tmp_path):
    shutil.copytree(template, tmp_path / "work")
    return tmp_path / "work" / "config.yaml"


def same(a, b):
    """Equal, floats within 1e-12 (nested dicts and lists of figures)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def post(url, rows):
    body = json.dumps({"customers": rows.to_dict(orient="records")}).encode()
    return http("POST", url + "/predict", body, {"content-type": "application/json"})


def test_the_service_window_equals_monitor_on_the_same_rows(workspace, tmp_path):
    config = load_config(workspace)
    features = ROWS.drop(columns="Churn")
    first, second = features.head(150), features.iloc[150:260]
    with Service(workspace) as service:
        assert http("GET", service.url + "/monitor")[0] == 404  # nothing scored yet
        assert post(service.url, first)[0] == 200
        csv = second.to_csv(index=False).encode()
        assert http("POST", service.url + "/predict", csv, {"content-type": "text/csv"})[0] == 200
        status, _, body = http("GET", service.url + "/monitor")
        metrics = http("GET", service.url + "/metrics")[2].decode()
    assert status == 200
    served = json.loads(body)
    source = tmp_path / "same_rows.csv"
    pd.concat([first, second]).to_csv(source, index=False)
    local = monitor.monitor(config, source, output=tmp_path / "out").report.to_json()
    for key in SAME_EVERYWHERE:
        assert same(served[key], local[key]), key
    assert served["rows"] == 260
    tenure = next(c for c in served["columns"] if c["column"] == "tenure")
    gauges = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines() if line.startswith("churn_")}
    assert gauges['churn_input_psi{column="tenure"}'] == pytest.approx(tenure["psi"])
    assert gauges["churn_prediction_psi"] == pytest.approx(served["prediction"]["psi"])


def test_the_window_keeps_only_the_last_rows(workspace, tmp_path):
    changed = yaml.safe_load(workspace.read_text())
    changed.setdefault("serve", {})["monitor_rows"] = 100
    workspace.write_text(yaml.safe_dump(changed))
    features = ROWS.drop(columns="Churn")
    with Service(workspace) as service:
        for start in (0, 80, 160):
            assert post(service.url, features.iloc[start : start + 80])[0] == 200
        served = json.loads(http("GET", service.url + "/monitor")[2])
    source = tmp_path / "last_100.csv"
    features.iloc[140:240].to_csv(source, index=False)
    local = monitor.monitor(load_config(workspace), source, output=tmp_path / "out").report.to_json()
    assert served["rows"] == 100
    assert same(served["columns"], local["columns"]) and same(served["prediction"], local["prediction"])


def workflow(name):
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


def test_the_scoring_workflow_passes_the_schema_check_and_calls_retrain_on_an_alarm():
    path = REPO / ".github" / "workflows" / "score.yml"
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                              str(path)], capture_output=True, text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    score = workflow("score.yml")
    assert score[True]["workflow_run"]["workflows"] == ["Retrain"] and "schedule" in score[True]
    retrain = score["jobs"]["retrain"]
    assert retrain["uses"] == "./.github/workflows/retrain.yml"
    assert retrain["if"] == "needs.score.outputs.verdict == 'alarm'"
    assert "workflow_call" in workflow("retrain.yml")[True]


def local(command):
    return command.replace("python main.py", f"{sys.executable} {REPO}/main.py").replace(
        "python -c", f"{sys.executable} -c"
    )


@pytest.mark.slow  # the workflow's shell steps, each a CLI call
@pytest.mark.parametrize("month", ["same", "shifted"])
def test_the_scoring_workflow_shell_steps_run_here(template, tmp_path, month):
    """Place a shipped run, score, monitor: an alarm is an output, not a failed step."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(template / "config.yaml", work / "config.yaml")
    run_id = (template / "models" / "latest").read_text().strip()
    shutil.copytree(template / "models" / run_id, work / "shipped")  # what download-artifact leaves
    rows = ROWS.copy()
    if month == "shifted":
        rows["tenure"], rows["Contract"] = "1", "Month-to-month"
    rows.to_csv(work / "2026-12.csv", index=False)
    env = dict(os.environ, INPUT="2026-12.csv", GITHUB_OUTPUT=str(tmp_path / "output"),
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))  # fmt: skip
    steps = {step.get("name"): step for step in workflow("score.yml")["jobs"]["score"]["steps"]}
    for name in ("Make it the run to score with", "Score", "Monitor"):
        subprocess.run(["bash", "-e", "-c", local(steps[name]["run"])], cwd=work, env=env, check=True, timeout=300)
    assert (work / "models" / "latest").read_text().strip() == run_id
    assert len(pd.read_csv(work / "scores" / "2026-12_scores.csv")) == len(rows)
    figures = json.loads((work / "monitoring" / "monitor.json").read_text())
    expected = "alarm" if figures["verdict"] == "alarm" else "ok"
    assert (tmp_path / "output").read_text() == f"verdict={expected}\n"
    assert (month == "shifted") == (expected == "alarm")
    assert "2026-12.csv" in (tmp_path / "summary.md").read_text()


def test_monitor_help_names_the_exit_codes(tmp_path):
    result = run_cli("monitor", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "4 alarm" in result.stdout
