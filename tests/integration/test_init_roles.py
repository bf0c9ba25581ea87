"""`init` on CRM exports that are not Telco (tests/crm_tables.py): integer ids, row counters,
names, dates and snapshot months, sentinels among numbers, a code with hundreds of values and
leaks, each read as a data scientist would; the generated config trains, passes its own gate and
scores through predict."""

import numpy as np
import pandas as pd
import pytest
import yaml
from crm_tables import bank_table, telecom_table
from support import run_cli

from churn import pipeline
from churn.config import load_config


def _features(config):
    return set(config.data.numeric_features) | set(config.data.categorical_features)


def _init(tmp_path, frame, target, name="crm.csv", output="configs/crm.yaml"):
    data = tmp_path / name
    frame.to_parquet(data) if name.endswith(".parquet") else frame.to_csv(data, index=False)
    result = run_cli("init", "--data", data, "--target", target, "--output", output, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / output
    return load_config(path), path.read_text(encoding="utf-8"), result.stdout


@pytest.fixture(scope="module")
def telecom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("telecom")
    table = telecom_table(3_000, noise_columns=2)
    return (folder, table, *_init(folder, table.frame, table.target))


@pytest.mark.slow  # init and a training on a generated bank table
def test_bank_ids_row_counter_and_surnames_are_never_features(tmp_path):
    table = bank_table(2_000)
    frame = table.frame.assign(Branch_No=np.arange(len(table.frame)) + 7)  # a second counter: +1 a row from 7
    config, text, stdout = _init(tmp_path, frame, "Exited")
    assert config.data.id_column == "CustomerId" and config.data.positive_label == 1
    assert {"RowNumber", "Surname", "Branch_No"} <= set(config.data.drop_columns)
    assert not _features(config) & {"RowNumber", "CustomerId", "Surname", "Branch_No"}
    assert "- RowNumber  # a row counter" in text and "- Surname  # personal data" in text
    assert "CustomerId  # the id: 2,000 distinct whole numbers" in text
    assert "NumOfProducts" in config.data.categorical_features  # churn rates 1 < 2 > 3 > 4: levels, not a scale
    assert "- NumOfProducts  # 4 whole-number levels whose churn rates do not rise or fall in order" in text
    assert {"Age", "CreditScore", "Balance"} <= set(config.data.numeric_features)
    assert "IsActiveMember" in config.data.categorical_features  # a 0/1 flag
    assert "left out Surname: personal data" in stdout


@pytest.mark.slow  # init and a training on a generated table
def test_an_integer_id_named_like_one_that_repeats_a_little_is_still_the_id(tmp_path):
    frame = bank_table(600).frame.drop(columns=["RowNumber", "CustomerId"])
    frame.insert(0, "member_number", np.r_[np.arange(590) + 5_000, np.arange(10) + 5_000])  # a few rows twice
    config, _, _ = _init(tmp_path, frame, "Exited")
    assert config.data.id_column == "member_number" and "member_number" not in _features(config)


def test_dates_and_a_snapshot_month_are_left_out_and_a_time_split_is_proposed(telecom):
    _, table, config, text, _ = telecom
    assert {"signup_date", "snapshot"} <= set(config.data.drop_columns)
    assert "- signup_date  # a date (" in text and "never a feature" in text
    assert "- snapshot  # a date or period (3 distinct, e.g. 2026-" in text
    assert config.split.method == "random"  # proposed, not imposed: commented
    assert "  # method: time\n  # time_column: snapshot" in text
    time_split = text.replace("  method: random\n  test_size", "  test_size")
    time_split = time_split.replace("  # method: time", "  method: time").replace("  # time_column:", "  time_column:")
    proposed = yaml.safe_load(time_split)
    assert proposed["split"] == {"method": "time", "time_column": "snapshot", "test_size": 0.2, "random_state": 42}


def test_a_date_typed_parquet_column_is_never_a_feature(tmp_path):
    frame = bank_table(500).frame
    frame["opened"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(frame)) % 300, unit="D")
    config, text, _ = _init(tmp_path, frame, "Exited", name="crm.parquet")
    assert "opened" in config.data.drop_columns and "- opened  # a date (300 distinct" in text


def test_numbers_with_sentinels_are_numeric_with_the_sentinels_missing(telecom):
    _, table, config, text, _ = telecom
    assert "handset_price" in config.data.numeric_features
    assert config.data.missing_values == ("Unknown",)
    assert "- handset_price  # numbers, 8 distinct; 'Unknown' read as missing" in text
    assert "monthly_revenue" in config.data.numeric_features  # blanks are missing too, as always


def test_a_code_with_hundreds_of_values_shares_rare_values_and_leaks_are_left_out(telecom):
    _, table, config, text, _ = telecom
    assert "service_area" in config.data.categorical_features
    assert config.preprocessing.min_category_count == 10
    assert "- service_area  # 369 categories: those on fewer than 10 training rows share one column" in text
    assert {"churn_reason", "churn_score"} <= set(config.data.drop_columns)
    assert not _features(config) & set(table.not_features)


def test_leaks_are_found_by_their_values_whatever_their_names(tmp_path):
    table = bank_table(1_000)
    churned = table.frame["Exited"] == 1
    frame = table.frame.assign(
        closing_note=np.where(churned, "moved abroad", ""),  # filled only for churners
        status=np.where(churned, "closed", "open"),  # the target under a mapping
        risk=np.where(churned, 70.0, 10.0) + np.random.default_rng(1).normal(0, 5, len(churned)),  # ranks ~perfectly
    )
    config, text, _ = _init(tmp_path, frame, "Exited")
    assert {"closing_note", "status", "risk"} <= set(config.data.drop_columns)
    assert "- closing_note  # leaks the target: filled only for churners" in text
    assert "- status  # leaks the target: each class has its own single value" in text
    assert "- risk  # leaks the target: alone it ranks churners almost perfectly" in text


def test_show_prints_the_roles_and_writes_nothing(tmp_path):
    bank_table(500).frame.to_csv(tmp_path / "bank.csv", index=False)
    result = run_cli("init", "--data", "bank.csv", "--target", "Exited", "--show", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:6] == ["column", "role", "distinct", "missing", "1-col", "AUC"]
    assert any(line.split()[:2] == ["RowNumber", "left"] and "row counter" in line for line in rows)
    assert any(line.split()[:3] == ["CustomerId", "id", "500"] for line in rows)
    assert "nothing written" in rows[-1] and sorted(p.name for p in tmp_path.iterdir()) == ["bank.csv"]


@pytest.mark.slow  # a full comparison on a generated bank table
def test_the_generated_gate_is_the_tables_own_and_the_first_run_passes_it(tmp_path):
    config, text, stdout = _init(tmp_path, bank_table(2_000).frame, "Exited", output="bank.yaml")
    assert "min_roc_auc: 0.8" not in text and "min_pr_auc: 0.55" not in text  # no Telco figures
    assert "# min_roc_auc: the best single column, NumOfProducts, ranks churners at" in text
    assert config.validation.min_pr_auc == pytest.approx(0.14)  # the churn share, 14.6 %, rounded down
    assert "\n# decision:\n#   offer_cost:" in text and "the threshold maximises F1" in text
    assert stdout.splitlines()[-2] == "next: python main.py train -c bank.yaml"
    assert stdout.splitlines()[-1].startswith("check first: the positive label")
    quick = config.model_copy(update={"training": config.training.model_copy(update={"candidates": None})})
    run = pipeline.train(quick)
    assert run.record.status == "accepted" and run.record.metrics.roc_auc >= config.validation.min_roc_auc
    assert {"RowNumber", "CustomerId", "Surname"}.isdisjoint(run.record.features.columns)


@pytest.mark.slow  # the generated telecom table trained
def test_the_telecom_config_trains_and_predicts_rows_with_sentinels_and_unseen_areas(telecom):
    folder, table, config, _, _ = telecom
    quick = config.model_copy(update={"training": config.training.model_copy(update={"candidates": None})})
    run = pipeline.train(quick)
    assert run.record.status == "accepted"
    new = table.frame.head(50).drop(columns=[table.target])
    new.loc[:9, "handset_price"] = ["Unknown", "unknown ", "NA", "30", "", "80", "Unknown", "60", "10", "200"][:10]
    new.loc[:4, "service_area"] = "ZZZ999"  # never seen in training: the rare-values column
    new.to_csv(folder / "new.csv", index=False)
    result = run_cli("predict", "-c", folder / "configs" / "crm.yaml", "--input", folder / "new.csv",
                     "--output", folder / "scored.csv", "--explain", "2", cwd=folder)  # fmt: skip
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(folder / "scored.csv")
    assert len(scored) == 50 and scored["churn_probability"].between(0, 1).all()
    reasons = set(scored["reason_1"]) | set(scored["reason_2"])  # per input column, never a dummy or "infrequent"
    assert reasons <= _features(config) and len(reasons) > 2
