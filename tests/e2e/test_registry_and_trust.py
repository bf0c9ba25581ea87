"""The registry and trust, through the real commands: models list/show/promote/prune, and
model files that must never be loaded."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from support import REPO, TELCO_SAMPLE, BoobyTrap, assert_clean_error, run_cli

from churn import pipeline
from churn.config import load_config

# the registry and trust checks train several runs in subprocesses: run apart (pytest -m slow)
pytestmark = pytest.mark.slow


def test_predict_with_a_logistic_regression_run_never_imports_scikit_learn(workspace, tmp_path):
    folder, _ = workspace
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["training"].pop("candidates")
    config["data"]["path"] = str(folder / "data" / "raw" / "telco_customer_churn.csv")
    (tmp_path / "lr.yaml").write_text(yaml.safe_dump(config))
    pipeline.train(load_config(tmp_path / "lr.yaml"))
    argv = ["predict", "-q", "-c", "lr.yaml", "--input", config["data"]["path"], "--output", "p.csv"]
    script = (
        f"import sys; from churn.cli import main; code = main({argv!r}); "
        "print(code, 'sklearn' in sys.modules, 'matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.stdout.split()[-3:] == ["0", "False", "False"], result.stderr


LOAD_WITH_EXTRAS_BLOCKED = """
import importlib.abc, sys
import json, joblib, pandas as pd

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("blocked " + name)

sys.meta_path.insert(0, Block())
model = joblib.load({model!r})
frame = pd.read_csv({data!r})
print(json.dumps(model.predict_proba(frame)[:, 1].tolist()))
"""


def test_the_artefact_loads_without_the_service_tracking_cluster_or_report_packages(workspace, tmp_path):
    """The README's promise: scikit-learn and the churn package, nothing else (not even matplotlib)."""
    folder, _ = workspace
    run = folder / "models" / (folder / "models" / "latest").read_text().strip()
    blocked = {"fastapi", "starlette", "uvicorn", "prometheus_client", "mlflow", "dask", "distributed", "matplotlib"}
    script = LOAD_WITH_EXTRAS_BLOCKED.format(blocked=blocked, model=str(run / "model.joblib"), data=str(TELCO_SAMPLE))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    pipeline.predict(load_config(folder / "config.yaml"), TELCO_SAMPLE, tmp_path / "p.csv")
    cli = pd.read_csv(tmp_path / "p.csv")["churn_probability"].to_numpy()
    assert np.abs(np.array(json.loads(result.stdout)) - cli).max() <= 1e-9


def test_models_commands_take_the_config_after_the_action(workspace, tmp_path):
    folder, _ = workspace
    config = folder / "config.yaml"
    first = (folder / "models" / "latest").read_text().strip()
    pipeline.train(load_config(config))  # a second run, made here
    listed = run_cli("models", "list", "--json", "-c", config, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 2 and rows[1]["run_id"] == first and [row["latest"] for row in rows] == [True, False]
    assert all(row["status"] == "accepted" for row in rows)
    table = run_cli("models", "list", "-c", config, cwd=tmp_path)
    assert "<- latest" in table.stdout and "run id" in table.stdout
    shown = json.loads(run_cli("models", "show", first, "-c", config, cwd=tmp_path).stdout)
    assert shown["run_id"] == first and "roc_auc" in shown["metrics"] and shown["schema_version"] == 2
    promoted = run_cli("models", "promote", first, "-c", config, cwd=tmp_path)
    assert promoted.returncode == 0 and (folder / "models" / "latest").read_text().strip() == first
    assert_clean_error(run_cli("models", "promote", "nope", "-c", config, cwd=tmp_path), "nope: no such run")


@pytest.mark.parametrize("digest", [None, "0" * 64])
def test_a_booby_trapped_model_is_never_unpickled_by_predict_or_evaluate(workspace, digest):
    folder, _ = workspace
    run = folder / "models" / (folder / "models" / "latest").read_text().strip()
    marker = folder / "marker"
    (run / "model.joblib").write_bytes(pickle.dumps(BoobyTrap(marker)))
    (run / "scorer.json").unlink(missing_ok=True)
    artefacts = json.loads((run / "metadata.json").read_text())["artefacts"]
    artefacts = {name: value for name, value in artefacts.items() if name not in ("model.joblib", "scorer.json")}
    artefacts |= {"model.joblib": digest} if digest else {}
    metadata = json.loads((run / "metadata.json").read_text()) | {"artefacts": artefacts}
    (run / "metadata.json").write_text(json.dumps(metadata))
    data = "data/raw/telco_customer_churn.csv"
    expected = "records no sha256 for it" if digest is None else "sha256 differs"
    assert_clean_error(run_cli("predict", "--input", data, "--output", "p.csv", cwd=folder), expected)
    assert_clean_error(run_cli("evaluate", "--input", data, cwd=folder), expected)
    assert not marker.exists() and not (folder / "p.csv").exists()


def test_a_recorded_scorer_that_is_missing_is_refused_not_worked_around(workspace):
    folder, _ = workspace
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["training"].pop("candidates")  # logistic regression alone: a run with scorer.json
    (folder / "lr.yaml").write_text(yaml.safe_dump(config))
    run = pipeline.train(load_config(folder / "lr.yaml")).run_dir
    (run / "scorer.json").unlink()
    result = run_cli("predict", "-c", "lr.yaml", "--input", "data/raw/telco_customer_churn.csv", cwd=folder)
    assert_clean_error(result, "scorer.json: missing, though metadata.json records it")


def test_models_prune_keeps_n_and_the_latest(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["training"].pop("candidates")
    config["training"]["cv_folds"] = 3
    config["data"]["path"] = str(TELCO_SAMPLE)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    for _ in range(3):
        pipeline.train(load_config(tmp_path / "c.yaml"))
    ids = sorted(p.name for p in (tmp_path / "models").iterdir() if p.is_dir())
    assert run_cli("models", "promote", ids[0], "-c", "c.yaml", cwd=tmp_path).returncode == 0
    result = run_cli("models", "prune", "--keep", "1", "-c", "c.yaml", cwd=tmp_path)
    assert result.returncode == 0 and "deleted 1 run(s)" in result.stdout
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if p.is_dir()) == [ids[0], ids[2]]
    assert_clean_error(
        run_cli("models", "prune", "--keep", "0", "-c", "c.yaml", cwd=tmp_path), "--keep must be at least 1"
    )
