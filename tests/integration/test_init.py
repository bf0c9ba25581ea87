"""`python main.py init`: a first config for a table of one's own, inferred from its values,
which validates and trains; it explains its choices and never replaces a file unasked."""

import numpy as np
import pytest
import yaml
from support import TELCO, make_subscriptions, run_cli

from churn import pipeline
from churn.config import load_config


def test_init_on_the_shipped_table_gives_the_shipped_columns(tmp_path):
    result = run_cli("init", "--data", TELCO, "--target", "Churn", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = load_config(tmp_path / "config.yaml")
    shipped = load_config(TELCO.parents[2] / "config.yaml")
    assert written.data.numeric_features == shipped.data.numeric_features
    assert written.data.categorical_features == shipped.data.categorical_features
    assert written.data.id_column == "customerID" and written.data.positive_label == "Yes"
    assert "positive label 'Yes' ('Yes' reads as yes)" in result.stdout


@pytest.mark.slow  # init's own comparison trained on a generated table
def test_init_leaves_out_constant_leaking_and_personal_columns_and_the_config_trains(tmp_path):
    frame = make_subscriptions(400, label="text")
    frame["country"] = "NL"  # constant
    frame["churn_label"] = np.where(frame["churned"] == "yes", "Left", "Stayed")  # a copy of the target
    frame["email"] = [f"user{i}@example.org" for i in range(len(frame))]  # personal, never a feature
    frame["monthly_fee"] = frame["monthly_fee"].astype(str)
    frame.loc[::7, "monthly_fee"] = ""  # numbers with blanks are still numeric
    frame.to_csv(tmp_path / "subscriptions.csv", index=False)
    result = run_cli("init", "--data", "subscriptions.csv", "--target", "churned", "--output", "sub.yaml",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = load_config(tmp_path / "sub.yaml")
    assert config.data.id_column == "account"
    assert config.data.numeric_features == ("months_active", "monthly_fee", "support_calls")
    assert config.data.categorical_features == ("plan", "autopay", "region")  # autopay: a 0/1 flag
    assert config.data.drop_columns == ("country", "churn_label", "email")
    assert config.data.positive_label == "yes"
    text = (tmp_path / "sub.yaml").read_text()
    assert "- churn_label  # leaks the target" in text and "- country  # constant" in text
    assert "- email  # personal data" in text
    assert "left out churn_label: leaks the target" in result.stdout
    assert yaml.safe_load(text)["data"]["path"] == "subscriptions.csv"  # relative to the config's folder
    run = pipeline.train(config.model_copy(update={"training": config.training.model_copy(update={"cv_folds": 3})}))
    assert run.record.metrics.roc_auc > 0.7


def test_init_guesses_the_rarer_class_when_no_value_reads_as_yes_and_says_so(tmp_path):
    frame = make_subscriptions(300)
    frame["churned"] = np.where(frame["churned"] == 1, "gone", "active")
    frame.to_csv(tmp_path / "t.csv", index=False)
    result = run_cli("init", "--data", "t.csv", "--target", "churned", cwd=tmp_path)
    rarer = frame["churned"].value_counts().idxmin()
    assert result.returncode == 0 and load_config(tmp_path / "config.yaml").data.positive_label == rarer
    assert "is the rarer class" in result.stdout and "check it" in result.stdout


@pytest.mark.slow  # init on the shipped file three times
def test_init_never_replaces_a_file_unasked_and_names_a_missing_target(tmp_path):
    (tmp_path / "config.yaml").write_text("mine\n")
    refused = run_cli("init", "--data", TELCO, "--target", "Churn", cwd=tmp_path)
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert (tmp_path / "config.yaml").read_text() == "mine\n"
    assert run_cli("init", "--data", TELCO, "--target", "Churn", "--force", cwd=tmp_path).returncode == 0
    missing = run_cli("init", "--data", TELCO, "--target", "churn", "--output", "x.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "no column 'churn'" in missing.stderr and not (tmp_path / "x.yaml").exists()
