"""MLflow tracking on a temporary SQLite store, read back with MlflowClient."""

import json
import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from support import TELCO_SAMPLE, run_cli, write_quick_config

from churn import pipeline
from churn.cli import main
from churn.config import load_config
from churn.errors import ConfigError
from churn.store import runs, tracking
from churn.training import insights

# MLflow tracking on a real store: trainings logged, registered and promoted; run apart (pytest -m slow)
pytestmark = pytest.mark.slow

CANDIDATES = [
    {
        "name": "logistic_regression",
        "params": {"max_iter": 500},
        "search": {"method": "grid", "space": {"C": [0.3, 1.0]}},
    },
    {"name": "random_forest", "params": {"n_estimators": 20, "min_samples_leaf": 5}},
]


def tracked_config(folder, **sections):
    paths = {"models_dir": str(folder / "models"), "predictions_dir": str(folder / "predictions")}
    tracking_section = {"enabled": True, "uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": "churn-test"}
    sections = {"paths": paths, "tracking": tracking_section, "validation": {"min_roc_auc": 0.6}} | sections
    path = write_quick_config(folder, **sections)
    text = path.read_text()
    config = load_config(path)
    return config, text


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tracked")
    config, _ = tracked_config(folder, training={"cv_folds": 3, "candidates": CANDIDATES})
    result = pipeline.train(config)
    mlflow.set_tracking_uri(tracking.tracking_uri(config))
    client = MlflowClient(tracking.tracking_uri(config))
    experiment = client.get_experiment_by_name("churn-test")
    found = client.search_runs([experiment.experiment_id], filter_string=f"tags.`churn.run_id` = '{result.run_id}'")
    return config, result, client, experiment, found[0]


def test_one_mlflow_run_per_train_named_by_the_run_id_with_its_tags(tracked):
    config, result, _, _, run = tracked
    assert run.info.run_name == result.run_id and run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["churn.status"] == "accepted" and tags["churn.gate_misses"] == "none"
    assert tags["churn.training_data_sha256"] == result.record.data.sha256
    assert tags["churn.git_commit"] == (result.record.environment.git_commit or "unknown")


def test_params_are_the_flattened_config_and_the_selected_models_parameters(tracked):
    config, result, _, _, run = tracked
    params = run.data.params
    assert params["data.target"] == "Churn" and params["split.random_state"] == "42"
    assert params["decision.offer_cost"] == "50.0" and params["tracking.experiment"] == "churn-test"
    assert params["selected_model.name"] == result.record.model.name
    for key, value in result.record.model.params.items():
        assert params[f"selected_model.{key}"] == str(value)


def test_metrics_equal_the_records(tracked):
    _, result, _, _, run = tracked
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved == result.metrics.model_dump(mode="json")
    logged = run.data.metrics
    for key, value in saved.items():
        if isinstance(value, (int, float)):
            assert logged[key] == pytest.approx(value), key
    assert logged["cv_roc_auc_mean"] == pytest.approx(saved["cv_roc_auc_mean"])
    assert logged["expected_cost"] == pytest.approx(saved["costs"]["expected_cost"])
    assert logged["confusion_tp"] == saved["confusion_matrix"]["tp"]
    assert logged["threshold"] == result.record.threshold.value


def test_one_nested_run_per_setting_tried_with_its_fold_metrics(tracked):
    _, result, client, experiment, run = tracked
    nested = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert sorted(child.info.run_name for child in nested) == [
        "logistic_regression [1/2]",
        "logistic_regression [2/2]",
        "random_forest [1/1]",
    ]
    for child in nested:
        history = client.get_metric_history(child.info.run_id, "fold_roc_auc")
        assert [point.step for point in history] == [1, 2, 3]
        assert child.data.metrics["cv_roc_auc_mean"] == pytest.approx(np.mean([p.value for p in history]))
    assert sum(child.data.tags["churn.selected"] == "true" for child in nested) == 1


def test_the_report_tables_metrics_and_metadata_are_artefacts(tracked):
    _, _, client, _, run = tracked
    names = {item.path.split("/")[-1] for item in client.list_artifacts(run.info.run_id, "churn_run")}
    assert {"report.md", "leaderboard.csv", "metrics.json", "metadata.json", "roc.png", "gains.png"} <= names
    assert "model.joblib" not in names


def test_the_global_contributions_are_logged_as_the_report_computes_them(tracked, tmp_path):
    _, result, client, _, run = tracked
    explained = insights.read_explanations(result.run_dir / runs.TEST_EXPLANATIONS)
    table = insights.global_contributions(explained, set(result.record.features.numeric_features))
    for column, value in zip(table["column"], table["mean_abs_contribution"], strict=True):
        assert run.data.metrics[f"mean_abs_contribution.{column}"] == pytest.approx(value)
    path = client.download_artifacts(run.info.run_id, "churn_run/global_contributions.json", str(tmp_path))
    logged = json.loads(open(path).read())
    assert logged["margin"] == result.record.explanations.margin and logged["rows"] == len(explained)
    assert [row["column"] for row in logged["columns"]] == list(table["column"])
    assert "test_explanations.csv" in {
        item.path.split("/")[-1] for item in client.list_artifacts(run.info.run_id, "churn_run")
    }


def test_the_model_is_registered_as_champion_and_pyfunc_equals_cli_predict(tracked, tmp_path):
    config, result, client, _, _ = tracked
    champion = client.get_model_version_by_alias("churn", "champion")
    assert champion.tags["churn.run_id"] == result.run_id
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    frame = pd.read_csv(TELCO_SAMPLE)
    probabilities = np.asarray(model.predict(frame))[:, 1]
    done = run_cli("predict", "-q", "-c", config.source, "--input", TELCO_SAMPLE, "--output", tmp_path / "cli.csv",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli = pd.read_csv(tmp_path / "cli.csv")["churn_probability"].to_numpy()
    assert np.abs(probabilities - cli).max() <= 1e-9


def test_a_rejected_run_is_registered_but_champion_stays_and_promote_moves_it(tmp_path):
    config, text = tracked_config(tmp_path)
    first = pipeline.train(config)
    strict_path = tmp_path / "strict.yaml"
    strict_path.write_text(text.replace("min_roc_auc: 0.6", "min_roc_auc: 0.999"))
    rejected = pipeline.train(load_config(strict_path))
    assert rejected.gate_missed
    client = MlflowClient(tracking.tracking_uri(config))
    versions = {v.tags["churn.run_id"]: v.version for v in client.search_model_versions("name = 'churn'")}
    assert set(versions) == {first.run_id, rejected.run_id}
    assert client.get_model_version_by_alias("churn", "champion").version == versions[first.run_id]
    second = pipeline.train(config)
    assert client.get_model_version_by_alias("churn", "champion").tags["churn.run_id"] == second.run_id
    done = run_cli("models", "promote", first.run_id, "-c", config.source, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert client.get_model_version_by_alias("churn", "champion").version == versions[first.run_id]
    # from a notebook the same way: latest and the champion move together
    assert pipeline.promote(config, second.run_id) is True
    assert client.get_model_version_by_alias("churn", "champion").tags["churn.run_id"] == second.run_id
    assert runs.read_latest(config.paths.models_dir) == second.run_id


def test_a_failing_store_leaves_the_local_run_and_one_warning(tmp_path, caplog):
    config, _ = tracked_config(tmp_path, tracking={"enabled": True, "uri": "http://127.0.0.1:9/nothing-listens"})
    with caplog.at_level(logging.WARNING, logger="churn"):
        result = pipeline.train(config)
    assert runs.is_complete(result.run_dir) and runs.read_latest(config.paths.models_dir) == result.run_id
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "tracking" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"tracking: run {result.run_id} not logged to http://127.0.0.1:9/nothing-listens (")
    assert warnings[0].endswith("; it is saved locally")


def test_tracking_without_mlflow_installed_is_a_config_error_giving_the_install_command(tmp_path, monkeypatch):
    config, _ = tracked_config(tmp_path)
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    with pytest.raises(
        ConfigError,
        match=r"tracking\.enabled is true but MLflow is not installed; install it with pip install -r "
        r"requirements-tracking\.txt",
    ):
        pipeline.train(config)
    assert not (tmp_path / "models").exists()  # refused before any training


def test_track_and_no_track_override_the_config(tmp_path, capfd):
    config, _ = tracked_config(tmp_path)
    assert main(["train", "-q", "--no-track", "-c", str(config.source)]) == 0
    assert not (tmp_path / "mlflow.db").exists()
    capfd.readouterr()
    assert main(["train", "-q", "--track", "-c", str(config.source)]) == 0
    assert (tmp_path / "mlflow.db").exists()
    assert capfd.readouterr().err == ""  # -q: MLflow's own notices are kept quiet too


def test_promote_moves_the_champion_of_runs_tracked_with_the_flag_whatever_the_config_says(tmp_path):
    config, text = tracked_config(tmp_path)
    untracked = tmp_path / "untracked.yaml"  # the same store in tracking.uri, but tracking.enabled false
    untracked.write_text(text.replace("enabled: true", "enabled: false"))
    assert main(["train", "-q", "--track", "-c", str(untracked)]) == 0
    first = runs.read_latest(config.paths.models_dir)
    assert main(["train", "-q", "--track", "-c", str(untracked)]) == 0
    where = runs.read_tracking(config.paths.models_dir / first)
    assert where["uri"] == tracking.tracking_uri(config) and where["registered_model"] == "churn"
    client = MlflowClient(tracking.tracking_uri(config))
    assert client.get_model_version_by_alias("churn", "champion").tags["churn.run_id"] != first
    assert main(["models", "promote", first, "-c", str(untracked)]) == 0
    assert client.get_model_version_by_alias("churn", "champion").tags["churn.run_id"] == first
