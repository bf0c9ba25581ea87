"""The real commands in a subprocess, each in a temporary folder with its own config and models."""

import json
import shutil

import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from support import REPO, TELCO_SAMPLE, assert_clean_error, run_cli, without_horizons

from churn import pipeline
from churn.config import load_config

HORIZONS = "churn_within_3m,churn_within_6m,churn_within_12m,expected_months_12m"


def test_train_with_default_paths_prints_a_summary_and_saves_a_run(workspace):
    folder, result = workspace
    assert "ROC AUC" in result.stdout and "rows used 400 (train 320, test 80)" in result.stdout
    run_id = (folder / "models" / "latest").read_text().strip()
    assert f"saved run {run_id} to models/{run_id} (now latest)" in result.stdout  # relative to where it ran
    assert "trained on data/raw/telco_customer_churn.csv" in result.stdout
    files = {p.name for p in (folder / "models" / run_id).iterdir()}
    assert {"model.joblib", "metrics.json", "metadata.json", "report.md", "leaderboard.csv", "roc.png"} <= files
    assert "leaderboard (3-fold CV on the training rows, best first)" in result.stdout
    assert "logistic_regression" in result.stdout and "random_forest" in result.stdout
    assert "break-even probability" in result.stdout and "saving" in result.stdout
    assert "fold 3/3" in result.stderr  # progress per candidate and fold


@pytest.mark.slow  # a whole CLI training for its stderr
def test_quiet_train_logs_nothing_on_stderr(workspace, tmp_path):
    folder, _ = workspace
    result = run_cli("train", "-q", "-c", folder / "config.yaml", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""


@pytest.mark.slow  # a CLI training on the shipped data (the gate in-process: test_selection_and_report)
def test_train_missing_the_gate_exits_3_and_leaves_latest(workspace, tmp_path):
    folder, _ = workspace
    before = (folder / "models" / "latest").read_text()
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["validation"] = {"min_roc_auc": 0.99, "min_recall": 0.999}
    config["data"]["path"] = str(folder / "data" / "raw" / "telco_customer_churn.csv")
    config["paths"] = {"models_dir": str(folder / "models")}
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("train", "-c", tmp_path / "strict.yaml", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "validation.min_roc_auc: roc_auc" in error[0] and "validation.min_recall" in error[0]
    assert "Traceback" not in result.stderr
    assert (folder / "models" / "latest").read_text() == before
    assert "as rejected; latest not moved" in result.stdout


@pytest.mark.slow  # a CLI training, then the report redrawn
def test_report_mode_rebuilds_the_latest_report(workspace):
    folder, _ = workspace
    run_dir = folder / "models" / (folder / "models" / "latest").read_text().strip()
    (run_dir / "report.md").unlink()
    result = run_cli("report", cwd=folder)
    assert result.returncode == 0 and result.stdout == f"wrote models/{run_dir.name}/report.md\n"
    assert (run_dir / "report.md").is_file()


def test_predict_with_default_output_path(workspace):
    folder, _ = workspace
    result = run_cli("predict", "--input", "data/raw/telco_customer_churn.csv", cwd=folder)
    assert result.returncode == 0, result.stderr
    out = folder / "data" / "predictions" / "telco_customer_churn_predictions.csv"
    assert "wrote 400 predictions" in result.stdout
    assert " to data/predictions/telco_customer_churn_predictions.csv\n" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("expected churners among 400 customers with a tenure: ")
    assert len(pd.read_csv(out)) == 400


def test_predict_to_stdout(workspace):
    folder, _ = workspace
    result = run_cli("predict", "--input", "data/raw/telco_customer_churn.csv", "--output", "-", "-q", cwd=folder)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "customerID,churn_probability,churn_prediction," + HORIZONS and len(lines) == 401
    assert result.stderr == ""


@pytest.mark.slow  # evaluate in a subprocess twice (in-process: test_pipeline_chain)
def test_evaluate_reports_the_metrics_of_the_predictions_it_makes(workspace):
    folder, _ = workspace
    data = "data/raw/telco_customer_churn.csv"
    as_json = run_cli("evaluate", "--input", data, "--json", cwd=folder)
    assert as_json.returncode == 0, as_json.stderr
    metrics = json.loads(as_json.stdout)
    assert run_cli("predict", "-q", "--input", data, "--output", "p.csv", cwd=folder).returncode == 0
    predicted = pd.read_csv(folder / "p.csv")
    truth = (pd.read_csv(folder / data)["Churn"] == "Yes").astype(int)
    metrics = metrics["metrics"]  # the run, the input and the threshold beside them
    assert metrics["rows"] == 400
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(truth, predicted["churn_probability"]), abs=1e-12)
    decided = predicted["churn_prediction"]
    assert metrics["confusion_matrix"]["tp"] == int(((decided == 1) & (truth == 1)).sum())
    assert metrics["confusion_matrix"]["fp"] == int(((decided == 1) & (truth == 0)).sum())
    # offer 50 per contact, 300 per churner lost, the offer keeps 30 % of the churners it reaches
    contacted, kept_from = int(decided.sum()), int(((decided == 1) & (truth == 1)).sum())
    lost = truth.sum() - kept_from + 0.7 * kept_from
    assert metrics["costs"]["expected_cost"] == pytest.approx(50 * contacted + 300 * lost)
    table = run_cli("evaluate", "--input", data, cwd=folder)
    assert table.returncode == 0 and f"{metrics['roc_auc']:.4f}" in table.stdout
    cost = metrics["costs"]["expected_cost"]
    assert f"expected cost on these rows {cost:,.0f} vs " in table.stdout  # as the docs say


@pytest.mark.slow  # a second CLI training, without costs
def test_evaluate_after_training_without_costs(workspace):
    folder, _ = workspace
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["decision"] = {"offer_cost": None, "churn_cost": None, "offer_success_rate": None}
    (folder / "nocost.yaml").write_text(yaml.safe_dump(config))
    trained = pipeline.train(load_config(folder / "nocost.yaml"))
    assert trained.record.threshold.objective == "max_f1"
    result = run_cli(
        "evaluate", "-c", "nocost.yaml", "--input", "data/raw/telco_customer_churn.csv", "--json", cwd=folder
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["costs"] is None


def test_help_on_every_mode_shows_examples():
    for mode in ("train", "predict", "evaluate", "report", "serve"):
        result = run_cli(mode, "--help", cwd=REPO)
        assert result.returncode == 0 and "examples:" in result.stdout and "--config" in result.stdout


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"", ("bad.csv", "is empty")),
        (TELCO_SAMPLE.read_bytes().splitlines(keepends=True)[0], ("bad.csv", "no data rows")),
        (b"\xff\xfe\x00\x01garbage", ("bad.csv", "not UTF-8")),
        (b"customerID,tenure\nA,1\n", ("bad.csv", "missing required column(s)", "MonthlyCharges", "PaymentMethod")),
    ],
)
def test_bad_predict_input_exits_2_with_one_line_and_no_output(workspace, content, fragments):
    folder, _ = workspace
    (folder / "bad.csv").write_bytes(content)
    result = run_cli("predict", "--input", "bad.csv", "--output", "out.csv", cwd=folder)
    assert_clean_error(result, *fragments)
    assert not (folder / "out.csv").exists()


def test_failed_predict_keeps_an_existing_output_file(workspace):
    folder, _ = workspace
    (folder / "keep.csv").write_text("precious\n")
    (folder / "bad.csv").write_text("customerID\nA\n")
    assert_clean_error(run_cli("predict", "--input", "bad.csv", "--output", "keep.csv", cwd=folder), "missing")
    assert (folder / "keep.csv").read_text() == "precious\n"


def test_predict_refuses_to_overwrite_its_input(workspace):
    folder, _ = workspace
    shutil.copy(TELCO_SAMPLE, folder / "same.csv")
    result = run_cli("predict", "--input", "same.csv", "--output", "same.csv", cwd=folder)
    assert_clean_error(result, "--output is the input file")


@pytest.mark.slow  # trainings on bad configs and data, one after another
def test_train_bad_config_and_bad_data(workspace, tmp_path):
    folder, _ = workspace
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["training"]["candidates"][1]["params"] = {"max_iterations": 5}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert_clean_error(
        run_cli("train", "-c", tmp_path / "c.yaml", cwd=tmp_path), "candidates[1].params: max_iterations"
    )
    assert not (tmp_path / "models").exists()
    assert_clean_error(run_cli("train", "--data", "missing.csv", cwd=folder), "missing.csv", "file not found")
    (tmp_path / "one_class.csv").write_text(TELCO_SAMPLE.read_text().replace(",Yes\n", ",No\n"))
    assert_clean_error(
        run_cli("train", "--data", tmp_path / "one_class.csv", cwd=folder), "exactly two distinct values"
    )


def test_predict_without_a_trained_model(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(TELCO_SAMPLE, tmp_path / "in.csv")
    assert_clean_error(
        run_cli("predict", "--input", "in.csv", cwd=tmp_path), "no trained model", "python main.py train"
    )


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["predict"], "the following arguments are required: --input"),
        (["predict", "--input", "x.csv", "--frobnicate"], "unknown option --frobnicate"),
        (["serve", "--port", "http"], "argument --port: 'http' is not a whole number"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_usage_is_one_error_line_and_a_hint(argv, fragment, tmp_path):
    result = run_cli(*argv, cwd=tmp_path)
    assert_clean_error(result, fragment, "--help")


@pytest.mark.slow  # a CLI predict into /dev/null
def test_predict_writes_to_a_device_such_as_dev_null(workspace, tmp_path):
    folder, _ = workspace
    result = run_cli("predict", "-c", folder / "config.yaml", "--input", TELCO_SAMPLE, "--output", "/dev/null",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrote 400 predictions" in result.stdout and "to /dev/null" in result.stdout


@pytest.mark.slow  # several CLI runs, a training among them
def test_errors_and_log_lines_show_paths_under_the_current_folder_relative_to_it(workspace, tmp_path):
    folder, _ = workspace
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["data"]["path"] = "data/not_here.csv"  # resolved against the config's folder: absolute inside churn
    (folder / "moved.yaml").write_text(yaml.safe_dump(config))
    missing = run_cli("train", "-c", "moved.yaml", cwd=folder)
    assert_clean_error(missing, "data/not_here.csv: file not found")
    assert str(folder) not in missing.stderr
    trained = run_cli("train", "-c", "config.yaml", cwd=folder)
    assert trained.returncode == 0 and "info: loading " in trained.stderr and str(folder) not in trained.stderr


def test_predict_budget_writes_expected_saving_and_contacts_at_most_n(workspace, tmp_path):
    folder, _ = workspace
    result = run_cli("predict", "-c", folder / "config.yaml", "--input", TELCO_SAMPLE, "--budget", "7", "--output",
                     tmp_path / "b.csv", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(tmp_path / "b.csv")
    assert list(without_horizons(scored).columns)[-2:] == ["expected_saving", "contact"]
    assert scored["contact"].sum() == min(7, scored["churn_prediction"].sum())
    assert (scored["churn_prediction"] >= scored["contact"]).all()  # one rule: a contact is a predicted churner
    dask = run_cli("predict", "-c", folder / "config.yaml", "--input", TELCO_SAMPLE, "--budget", "7", "--engine",
                   "dask", "--output", tmp_path / "parts", cwd=tmp_path)  # fmt: skip
    assert_clean_error(dask, "--budget is not available with --engine dask")
