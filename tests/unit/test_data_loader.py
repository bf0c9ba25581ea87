import gzip
import logging

import numpy as np
import pandas as pd
import pytest
from support import TELCO_SAMPLE

from churn.config import DataConfig, SplitConfig
from churn.data_loader import (
    check_columns,
    coerce_numeric,
    count_unseen_categories,
    describe_schema,
    encode_target,
    label_key,
    load_training_data,
    normalise_categories,
    prepare_features,
    read_table,
    split_data,
    write_table,
)
from churn.errors import DataError


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


# read_table


def test_read_table_reads_every_csv_column_as_text(tmp_path):
    frame = read_table(write(tmp_path, "id,n,c\n1,2.5,a\n"))
    assert list(frame.columns) == ["id", "n", "c"]
    assert frame["n"].iloc[0] == "2.5"


def test_read_table_keeps_category_values_that_look_like_na_words(tmp_path):
    frame = read_table(write(tmp_path, "c\nNone\nNo\n"))
    assert frame["c"].tolist() == ["None", "No"]


def test_read_table_strips_a_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,n\n1,2\n".encode())
    assert list(read_table(path).columns) == ["id", "n"]


def test_read_table_reads_gzip_and_parquet(tmp_path):
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(b"id,n\n1,2\n"))
    assert read_table(gz)["n"].tolist() == ["2"]
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1"], "n": [2.0]}).to_parquet(parquet)
    assert read_table(parquet)["n"].tolist() == [2.0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"id,n,c\n", "has a header row but no data rows"),
        (b"\xff\xfe\x00b\x00a\x00d\x00", "is not UTF-8"),
        (b"id,n\n1,2\n3,4,5,6\n", r"is not a valid CSV \(.*line 3"),
    ],
)
def test_read_table_rejects_unreadable_files_naming_them(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"bad\.csv: {message}"):
        read_table(path)


def test_read_table_rejects_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(write(tmp_path, "a\n1\n", name="t.xlsx"))


def test_read_table_rejects_a_corrupt_parquet_file(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="is not a readable Parquet file"):
        read_table(path)


# columns and features


def test_check_columns_lists_every_missing_column(tmp_path):
    with pytest.raises(DataError, match="missing required column\\(s\\) b, d"):
        check_columns(pd.DataFrame(columns=["a", "c"]), ["a", "b", "c", "d"], tmp_path / "x.csv")


def test_coerce_numeric_turns_blank_total_charges_into_nan(tmp_path):
    values = pd.Series(["29.85", " ", "", "108.15"], dtype="str")
    result = coerce_numeric(values, "TotalCharges", tmp_path)
    assert result.dtype == "float64"
    assert result.isna().tolist() == [False, True, True, False]


def test_coerce_numeric_warns_about_text_and_infinity(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = coerce_numeric(pd.Series(["1", "abc", "inf"], dtype="str"), "n", tmp_path)
    assert result.isna().tolist() == [False, True, True]
    assert "column n has 1 non-numeric" in caplog.text
    assert "column n has 1 infinite" in caplog.text


def test_coerce_numeric_accepts_ints_and_floats_alike(tmp_path):
    ints = coerce_numeric(pd.Series([1, 2]), "n", tmp_path)
    floats = coerce_numeric(pd.Series(["1.0", "2.0"], dtype="str"), "n", tmp_path)
    pd.testing.assert_series_equal(ints, floats)


def test_normalise_categories_spells_numeric_codes_one_way():
    assert normalise_categories(pd.Series([1.0, 0.0, np.nan])).tolist()[:2] == ["1", "0"]
    assert normalise_categories(pd.Series(["1", "0"], dtype="str")).tolist() == ["1", "0"]
    assert normalise_categories(pd.Series([" a ", "", None], dtype="str")).isna().tolist() == [False, True, True]


def test_prepare_features_ignores_extra_columns_and_order(tmp_path):
    frame = pd.DataFrame({"extra": ["x"], "c": ["a"], "n": ["3"]})
    X = prepare_features(frame, ("n",), ("c",), tmp_path)
    assert list(X.columns) == ["n", "c"]
    assert X["n"].iloc[0] == 3.0


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
    assert schema["categories"] == {"c": ["a", "b"]}
    assert schema["numeric_ranges"]["n"] == {"min": 1.0, "max": 5.0, "missing": 1}
    new = pd.DataFrame({"c": pd.Series(["a", "z", "z", None], dtype="str")})
    assert count_unseen_categories(new, schema["categories"]) == {"c": 2}


# write_table


def test_write_table_writes_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"id": ["a"], "p": [0.25]})
    write_table(frame, tmp_path / "out" / "p.csv")
    write_table(frame, tmp_path / "p.parquet")
    assert (tmp_path / "out" / "p.csv").read_text() == "id,p\na,0.25\n"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), frame)


def test_write_table_leaves_an_existing_file_alone_when_writing_fails(tmp_path):
    target = tmp_path / "p.csv"
    target.write_text("old\n")

    class Exploding(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_table(Exploding({"a": [1]}), target)
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]
