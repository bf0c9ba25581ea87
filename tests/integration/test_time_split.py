"""Validation that respects time: split.method time tests on the latest months with
forward-chaining folds, never uses the time column as a feature, and says so in the record and
report; evaluate warns when a labelled file overlaps the run's training rows."""

import numpy as np
import pandas as pd
import pytest
import yaml
from support import TELCO, make_subscriptions, run_cli, subscriptions_config, write_telco_config

from churn import pipeline
from churn.config import load_config
from churn.errors import ConfigError, DataError
from churn.store import runs
from churn.training.selection import fold_splits

MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]


def monthly_table(rows_per_month=120):
    """Twelve snapshot months of the subscriptions table, the customer mix drifting: later months
    have newer customers on the basic plan."""
    months = []
    for number, month in enumerate(MONTHS):
        frame = make_subscriptions(rows_per_month, seed=number)
        frame["account"] = [f"{month}-{i}" for i in range(len(frame))]
        frame["months_active"] = (frame["months_active"] * (1 - number / 15)).round().astype(int)
        frame["snapshot"] = month
        months.append(frame)
    return pd.concat(months, ignore_index=True).sample(frac=1.0, random_state=0)  # rows not in time order


def write_time_config(folder, **split):
    path = folder / "monthly.csv"
    monthly_table().to_csv(path, index=False)
    config = subscriptions_config(path) | {"split": {"method": "time", "time_column": "snapshot", **split}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder / "config.yaml"


def test_the_time_split_tests_on_the_latest_months_and_records_the_periods(tmp_path):
    config = load_config(write_time_config(tmp_path, test_size=0.25))
    result = pipeline.train(config)
    split = result.record.split
    assert split.method == "time" and split.time_column == "snapshot"
    assert split.test_rows == 3 * 120 and split.train_rows == 9 * 120  # whole months: the last quarter
    assert split.train_period == ("2026-01-01T00:00:00", "2026-09-01T00:00:00")
    assert split.test_period == ("2026-10-01T00:00:00", "2026-12-01T00:00:00")
    assert "snapshot" not in result.record.features.columns
    report = (result.run_dir / runs.REPORT).read_text()
    assert "by time on `snapshot`" in report and "forward-chaining folds" in report


def test_a_month_is_never_cut_in_two(tmp_path):
    config = load_config(write_time_config(tmp_path, test_size=0.2))  # 0.2 of 12 months falls inside month 10
    result = pipeline.train(config)
    assert result.record.split.test_rows == 3 * 120
    assert result.record.split.test_period[0].startswith("2026-10")


def test_forward_chaining_folds_validate_only_on_later_rows():
    y = pd.Series(np.tile([0, 1, 0, 0, 1], 60))
    splits = fold_splits(y, 4, seed=0, time_ordered=True)
    assert len(splits) == 4
    for fit_rows, validate_rows in splits:
        assert fit_rows.max() < validate_rows.min()
    assert [len(v) for _, v in splits] == [60] * 4


def test_folds_of_one_class_are_refused_naming_the_setting():
    y = pd.Series([0] * 50 + [1] * 50)
    with pytest.raises(DataError, match="lower training.cv_folds"):
        fold_splits(y, 3, seed=0, time_ordered=True)


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ({"method": "time"}, "needs split.time_column"),
        ({"time_column": "snapshot"}, "used by method time only"),
        ({"method": "time", "time_column": "plan"}, "split.time_column 'plan' is a feature"),
    ],
)
def test_bad_time_settings_name_the_key(tmp_path, split, message):
    config = subscriptions_config(tmp_path / "x.csv") | {"split": split}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "config.yaml")


@pytest.mark.slow  # a training refused after loading
def test_a_time_column_of_text_is_one_clear_error(tmp_path):
    config_path = write_time_config(tmp_path)
    frame = pd.read_csv(tmp_path / "monthly.csv")
    frame.loc[5, "snapshot"] = "last spring"
    frame.to_csv(tmp_path / "monthly.csv", index=False)
    result = run_cli("train", "-c", config_path, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "split.time_column snapshot holds 'last spring'" in result.stderr


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shipped")
    config = load_config(write_telco_config(folder, comparison=False, survival=False))
    return folder, config, pipeline.train(config)


def test_evaluate_warns_that_the_training_file_is_optimistic(shipped_run, tmp_path):
    folder, _, result = shipped_run
    answer = run_cli("evaluate", "-c", folder / "config.yaml", "--input", TELCO, cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert f"this is the file run {result.run_id} was trained on: 80% of its rows were training rows" in answer.stderr


def test_evaluate_warns_of_rows_whose_ids_were_trained_on(shipped_run, tmp_path):
    folder, config, result = shipped_run
    raw = pd.read_csv(TELCO, dtype=str, keep_default_na=False)
    some = raw.sample(500, random_state=3)
    some.to_csv(tmp_path / "some.csv", index=False)  # another file: not the training file's sha256
    overlap = pipeline.evaluate(config, tmp_path / "some.csv").training_overlap
    assert overlap is not None and overlap.kind == "training ids"
    assert 0.7 < overlap.share < 0.9  # about the 80 % of rows in the training split
    ids = pd.read_parquet(result.run_dir / runs.TRAINING_IDS)
    assert list(ids.columns) == ["id_hash"] and len(ids) == result.record.split.train_rows
    assert not ids["id_hash"].astype(str).isin(raw["customerID"]).any()  # hashes, not the ids


def test_evaluate_on_unseen_customers_has_no_warning(shipped_run, tmp_path):
    _, config, _ = shipped_run
    raw = pd.read_csv(TELCO, dtype=str, keep_default_na=False).head(300)
    raw["customerID"] = "NEW-" + raw["customerID"]
    raw.to_csv(tmp_path / "new.csv", index=False)
    assert pipeline.evaluate(config, tmp_path / "new.csv").training_overlap is None
