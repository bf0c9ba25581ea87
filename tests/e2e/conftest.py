"""Shared by the end-to-end tests: a trained template workspace, copied for each test."""

import shutil

import pytest
import yaml
from support import REPO, TELCO_SAMPLE, run_cli


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A folder with a copy of the shipped config, trained once on the sample data: copied, never changed."""
    folder = tmp_path_factory.mktemp("e2e")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["training"]["cv_folds"] = 3
    config["training"]["candidates"] = [
        {"name": "logistic_regression", "params": {"max_iter": 500}},
        {"name": "random_forest", "params": {"n_estimators": 30, "min_samples_leaf": 5}},
    ]
    (folder / "data" / "raw").mkdir(parents=True)
    shutil.copy(TELCO_SAMPLE, folder / "data" / "raw" / "telco_customer_churn.csv")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_cli("train", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, result


@pytest.fixture
def workspace(template, tmp_path):
    """This test's own copy of the trained template: whatever it changes, no other test sees."""
    folder, result = template
    shutil.copytree(folder, tmp_path / "work")
    return tmp_path / "work", result
