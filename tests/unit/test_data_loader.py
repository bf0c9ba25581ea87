import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE

from churn.cleaning import FeatureSpec, clean_features
from churn.config import DataConfig, SplitConfig
from churn.data_loader import (
    describe_schema,
    encode_target,
    label_key,
    load_training_data,
    split_data,
)
from churn.errors import DataError
from churn.scoring.quality import QualityTally


def small_data_config(path, **overrides):
    settings = dict(
        path=path,
        target="y",
        positive_label="Yes",
        numeric_features=("n",),
        categorical_features=("c",),
        id_column="id",
    )
    settings.update(overrides)
    return DataConfig(**settings)


def write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# target


@pytest.mark.parametrize(
    ("values", "label", "expected"),
    [
        (["Yes", "No", "Yes"], "Yes", [1, 0, 1]),
        (["yes", "no", "YES"], "Yes", [1, 0, 1]),
        (["1", "0", "1.0"], 1, [1, 0, 1]),
        (["True", "False", "true"], True, [1, 0, 1]),
        ([0, 1, 1], 0, [1, 0, 0]),
    ],
)
def test_encode_target_matches_labels_of_any_type(tmp_path, values, label, expected):
    assert encode_target(pd.Series(values), label, "y", tmp_path).tolist() == expected


def test_encode_target_keeps_missing_values_missing(tmp_path):
    result = encode_target(pd.Series(["Yes", None, "No"]), "Yes", "y", tmp_path)
    assert np.isnan(result.iloc[1])


@pytest.mark.parametrize("values", [["Yes", "Yes"], ["Yes", "No", "Maybe"]])
def test_encode_target_requires_exactly_two_values_and_names_them(tmp_path, values):
    with pytest.raises(DataError, match="exactly two distinct values.*'Yes'"):
        encode_target(pd.Series(values), "Yes", "y", tmp_path)


def test_encode_target_requires_the_positive_label_present(tmp_path):
    with pytest.raises(DataError, match="positive_label 'Churned' is not among the values of y"):
        encode_target(pd.Series(["Yes", "No"]), "Churned", "y", tmp_path)


def test_label_key_folds_case_and_number_spelling():
    assert label_key(" Yes ") == label_key("yes")
    assert label_key(1) == label_key("1.0") == "1"
    assert label_key(True) == label_key("TRUE")


# load_training_data


def test_load_training_data_drops_missing_targets_and_duplicate_ids(tmp_path, caplog):
    path = write(tmp_path, "id,n,c,y\n1,1,a,Yes\n2,2,b,\n1,3,a,No\n3,4,b,No\n4,5,a,Yes\n")
    with caplog.at_level(logging.WARNING):
        data = load_training_data(path, small_data_config(path))
    assert data.rows_read == 5
    assert data.dropped_missing_target == 1
    assert data.dropped_duplicate_ids == 1
    assert data.y.tolist() == [1, 0, 1]
    assert "dropped 1 row(s) whose target y is missing" in caplog.text
    assert "dropped 1 row(s) repeating an earlier id" in caplog.text


def test_load_training_data_requires_the_configured_id_column(tmp_path):
    path = write(tmp_path, "n,c,y\n1,a,Yes\n2,b,No\n")
    with pytest.raises(DataError, match="missing required column\\(s\\) id"):
        load_training_data(path, small_data_config(path))


def test_load_training_data_without_id_column(tmp_path):
    path = write(tmp_path, "n,c,y\n1,a,Yes\n2,b,No\n")
    assert len(load_training_data(path, small_data_config(path, id_column=None)).y) == 2


def test_load_training_data_on_the_sample_turns_blank_total_charges_into_nan():
    config = DataConfig(
        path=TELCO_SAMPLE,
        target="Churn",
        positive_label="Yes",
        numeric_features=("tenure", "TotalCharges"),
        categorical_features=("Contract", "SeniorCitizen"),
        id_column="customerID",
    )
    data = load_training_data(TELCO_SAMPLE, config)
    assert data.X["TotalCharges"].isna().sum() == 4
    assert set(data.X["SeniorCitizen"].unique()) == {"0", "1"}
    assert set(data.y.unique()) == {0, 1}


def test_split_data_is_stratified_and_repeatable():
    X = pd.DataFrame({"n": range(100)})
    y = pd.Series([1] * 20 + [0] * 80)
    first = split_data(X, y, SplitConfig(test_size=0.25, random_state=3))
    second = split_data(X, y, SplitConfig(test_size=0.25, random_state=3))
    assert first[3].mean() == pytest.approx(0.2)
    assert first[1].index.tolist() == second[1].index.tolist()


def test_split_data_too_few_rows_is_a_data_error():
    with pytest.raises(DataError, match="cannot make a stratified split"):
        split_data(pd.DataFrame({"n": [1, 2, 3]}), pd.Series([1, 0, 0]), SplitConfig(test_size=0.2))


# schema


def test_describe_schema_and_count_unseen(tmp_path):
    X = pd.DataFrame({"n": [1.0, 5.0, np.nan], "c": pd.Series(["a", "b", None], dtype="str")})
    schema = describe_schema(X, small_data_config(tmp_path))
    assert schema.categories == {"c": ("a", "b")}
    assert schema.numeric_ranges["n"].model_dump() == {"min": 1.0, "max": 5.0, "missing": 1}
    assert schema.positive_label == "Yes" and schema.target == "y" and schema.id_column == "id"
    new = pd.DataFrame({"n": [1.0] * 4, "c": pd.Series(["a", "z", "z", None], dtype="str")})
    tally = QualityTally(schema)
    tally.add(clean_features(new, FeatureSpec(("n",), ("c",))))
    assert tally.unseen == {"c": 2} and tally.unseen_examples == {"c": ["z"]}


def test_split_data_refuses_a_test_split_with_one_class():
    X = pd.DataFrame({"n": range(20)})
    y = pd.Series([1] * 2 + [0] * 18)  # 10 % of 20 rows: the 2 test rows are both negatives
    with pytest.raises(DataError, match="the test split of 2 row\\(s\\) holds only one class"):
        split_data(X, y, SplitConfig(test_size=0.1, random_state=0))


def test_a_database_timestamp_column_orders_rows_as_its_text_would():
    from churn.data_loader import time_values

    stamps = pd.Series(pd.to_datetime(["2026-11-30T23:00:00+01:00", "2026-10-01T00:00:00Z"], utc=True))
    as_text = pd.Series(["2026-11-30T23:00:00+01:00", "2026-10-01T00:00:00Z"])
    assert time_values(stamps, "t", Path("x")).tolist() == time_values(as_text, "t", Path("x")).tolist()
    assert time_values(stamps, "t", Path("x")).dt.tz is None
