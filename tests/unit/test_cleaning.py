"""The one cleaning implementation: numbers, categories, and what it sets to missing."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn import cleaning
from churn.cleaning import (
    FeatureSpec,
    bool_spelling,
    clean_features,
    code_categories,
    describe_unparsed,
    parse_numbers,
)
from churn.errors import DataError
from churn.store import upgrade

SPEC = FeatureSpec(("n",), ("c",))


def normalise_categories(values, spelling=None):
    """The cleaned categories of a pandas column, as a Categorical of text (what cleaning codes)."""
    return code_categories(values, spelling).to_series(values.index).rename(values.name)


def numbers(values):
    return clean_features(pd.DataFrame({"n": values, "c": ["a"] * len(values)}), SPEC)


def test_blank_total_charges_become_missing_without_counting_as_text():
    cleaned = numbers(pd.Series(["29.85", " ", "", "108.15"], dtype="str"))
    assert cleaned.X["n"].dtype == "float64"
    assert np.isnan(cleaned.X["n"]).tolist() == [False, True, True, False]
    assert cleaned.unparsed == {} and cleaned.infinite == {}


def test_text_and_infinity_become_missing_and_are_reported():
    cleaned = numbers(pd.Series(["1", "abc", "inf", "45 USD", "abc"], dtype="str"))
    assert np.isnan(cleaned.X["n"]).tolist() == [False, True, True, True, True]
    bad = cleaned.unparsed["n"]
    assert (bad.count, bad.present, bad.examples, bad.rows.tolist()) == (3, 5, ("abc", "45 USD"), [1, 3, 4])
    assert bad.share == pytest.approx(0.6)
    assert cleaned.infinite == {"n": 1}


def test_describe_unparsed_names_column_count_examples_and_the_fix():
    bad = numbers(pd.Series(["1.234,5", "2", "3,1", "4", "x"], dtype="str")).unparsed["n"]
    assert describe_unparsed("n", bad) == (
        "column n has 3 value(s) that are not numbers (60.00% of its 5 non-missing values; e.g. '1.234,5', '3,1', "
        "'x'; the first at data row 1)"
    )
    for_a_client = describe_unparsed("n", bad, 0.01, None)
    assert "more than the 1% accepted" in for_a_client and "max_unparsed_share" not in for_a_client
    message = describe_unparsed("n", bad, 0.01, "data.max_unparsed_share")
    assert "more than data.max_unparsed_share allows (0.01)" in message and "decimal point" in message


def test_ints_floats_numeric_text_and_mixed_objects_give_the_same_numbers():
    expected = numbers(pd.Series([1.0, 2.0])).X["n"].to_numpy()
    for values in ([1, 2], ["1.0", "2"], pd.Series([1, "2.0"], dtype=object), pd.array([1, 2], dtype="Int64")):
        np.testing.assert_array_equal(numbers(values).X["n"].to_numpy(), expected)


def test_booleans_are_not_numbers():
    cleaned = numbers(pd.Series([True, False]))
    assert cleaned.X["n"].isna().all() and cleaned.unparsed["n"].count == 2


@pytest.mark.parametrize(
    "values",
    [["1", " 2.5 ", "", None, "-3e2"], ["1", "x", "inf", "  ", "4"], ["1,5", "2", "nan", "NaN", "0x1"]],
)
def test_parse_numbers_agrees_with_pandas_to_numeric_for_pandas_and_arrow(values):
    series = pd.Series(values, dtype="str")
    expected = pd.to_numeric(series.str.strip().replace("", None), errors="coerce").astype("float64").to_numpy()
    np.testing.assert_array_equal(parse_numbers(series)[0], expected)
    np.testing.assert_array_equal(parse_numbers(pa.chunked_array([pa.array(values, type=pa.string())]))[0], expected)


def test_nan_text_is_missing_not_unparsed():
    values, bad = parse_numbers(pd.Series(["nan", "x", "1"], dtype="str"))
    assert np.isnan(values[:2]).all() and values[2] == 1.0
    assert bad is not None and bad.count == 1 and bad.examples == ("x",)


@pytest.mark.parametrize("rows", [7, 700])  # one by one, and with Arrow
def test_a_tables_own_words_for_no_value_are_missing_not_unparsed(rows):
    values = (["30", " Unknown ", "80", "-", "?", "unknown", "x"] * rows)[:rows]
    for column in (pd.Series(values, dtype="str"), pa.chunked_array([pa.array(values, type=pa.string())])):
        parsed, bad = parse_numbers(column, ("Unknown", "-", "?"))
        expected = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
        np.testing.assert_array_equal(parsed, expected)
        assert bad is not None and set(bad.examples) == {"x"}  # only the stray word is counted
        assert bad.count == values.count("x")
    spec = FeatureSpec(("n",), (), missing_values=("Unknown",))
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    older = {"features": {"numeric": ["n"], "categorical": [], "bool_spelling": {}}}  # before missing_values
    assert FeatureSpec.from_dict(upgrade.upgrade_tables(older)["features"]).missing_values == ()


def test_categories_spell_numeric_codes_one_way():
    assert normalise_categories(pd.Series([1.0, 0.0, np.nan])).tolist()[:2] == ["1", "0"]
    assert normalise_categories(pd.Series(["1", "0", "+1.00", "-2.0"], dtype="str")).tolist() == ["1", "0", "1", "-2"]
    assert normalise_categories(pd.Series([" a ", "", None], dtype="str")).isna().tolist() == [False, True, True]


def test_categories_keep_other_text_and_leading_zeros():
    values = pd.Series(["007", "1.5", "Yes", "Yes ", "2.0x"], dtype="str")
    assert normalise_categories(values).tolist() == ["007", "1.5", "Yes", "Yes", "2.0x"]


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([0, 1, 1]),
        pd.Series([0.0, 1.0, 1.0]),
        pd.Series(["0", "1", "1.0"], dtype="str"),
        pd.Series([0, "1", 1.0], dtype=object),
        pd.Series([0, 1, 1], dtype="category"),
        pd.Series(pd.array([0, 1, 1], dtype="int64[pyarrow]")),
        pd.Series(pd.array(["0", "1", "1"], dtype="string[pyarrow]")),
        pd.Series([False, True, True]),
    ],
)
def test_categories_arrive_as_any_type_and_come_out_spelled_as_training_did(values):
    result = normalise_categories(values, bool_spelling(["0", "1"]))
    assert result.cat.categories.dtype == "str"  # text, as training learned it, never ints
    assert result.tolist() == ["0", "1", "1"]


def test_true_and_false_take_trainings_spelling_in_any_type_or_case():
    spelling = bool_spelling(["False", "True"])
    assert spelling == ("True", "False")
    for values in ([True, False], ["true", "FALSE"], pd.Series([True, False], dtype="boolean")):
        assert normalise_categories(pd.Series(values), spelling).astype("str").tolist() == ["True", "False"]
    assert bool_spelling(["Yes", "No"]) is None


def test_categories_of_an_all_missing_chunk():
    result = normalise_categories(pd.Series([None, " "], dtype="str"))
    assert result.isna().all() and isinstance(result.dtype, pd.CategoricalDtype)


def test_categories_are_categoricals_whatever_the_chunk():
    first = normalise_categories(pd.Series(["b", "a", "b"], dtype="str"))
    second = normalise_categories(pd.Series(["a", "c"], dtype="str"))
    assert isinstance(first.dtype, pd.CategoricalDtype)
    assert first.astype("str").tolist() == ["b", "a", "b"] and second.astype("str").tolist() == ["a", "c"]


def test_clean_features_takes_an_arrow_table_with_dictionary_categories():
    table = pa.table({"n": pa.array([" 1", "", "2.5"]), "c": pa.array(["a", None, " b"]).dictionary_encode()})
    X = clean_features(table, SPEC).X
    assert X["n"].tolist()[0] == 1.0 and np.isnan(X["n"].iloc[1])
    assert isinstance(X["c"].dtype, pd.CategoricalDtype) and X["c"].astype("str").tolist()[2] == "b"


def test_clean_features_ignores_extra_columns_and_order_and_names_missing_ones():
    X = clean_features(pd.DataFrame({"extra": ["x"], "c": ["a"], "n": ["3"]}), SPEC).X
    assert list(X.columns) == ["n", "c"] and X["n"].iloc[0] == 3.0
    with pytest.raises(DataError, match="missing required column\\(s\\) c"):
        clean_features(pd.DataFrame({"n": [1]}), SPEC)


def test_feature_spec_round_trips_through_json():
    spec = FeatureSpec.learn(("n",), ("c", "d"), {"c": ["0", "1"], "d": ["x"]})
    assert spec.bool_spelling == {"c": ("1", "0")}
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


# The few-rows way (values one by one) and the Arrow way give the same cleaning, value for value.

NUMBER_TEXTS = ["1", "-1", "+1", "1.5", ".5", "5.", "1e5", "1E5", "1e+5", "-1.5e-3", "inf", "-inf", "Infinity",
                "nan", "NaN", "+nan", "1_000", "1,000", "0x10", " 1 ", "1.2.3", "١٢", "1e", "e5", "--1", "0.0",
                "00012", "1e400", "", "  ", "45 USD", "½", "1\u00a0"]  # fmt: skip


def cleaned_both_ways(frame, spec):
    """clean_features on the rows as they are (few) and repeated past SMALL_ROWS (the Arrow way)."""
    repeats = cleaning.SMALL_ROWS // len(frame) + 1
    large = pa.concat_tables([frame] * repeats)
    return clean_features(frame, spec), clean_features(large, spec), repeats


def test_numbers_are_parsed_alike_one_by_one_and_by_arrow_and_as_pandas_reads_them():
    frame = pa.table({"n": pa.array(NUMBER_TEXTS)})
    few, many, repeats = cleaned_both_ways(frame, FeatureSpec(("n",), ()))
    np.testing.assert_array_equal(np.tile(few.features.numbers["n"], repeats), many.features.numbers["n"])
    assert few.unparsed["n"].examples == many.unparsed["n"].examples
    assert few.unparsed["n"].count * repeats == many.unparsed["n"].count
    as_pandas = pd.to_numeric(pd.Series(NUMBER_TEXTS).str.strip(), errors="coerce").to_numpy(dtype="float64").copy()
    as_pandas[np.isinf(as_pandas)] = np.nan  # cleaning sets infinities to missing (and counts them)
    np.testing.assert_array_equal(np.abs(few.features.numbers["n"]), np.abs(as_pandas))  # pandas reads "-0" as 0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8), st.sampled_from(NUMBER_TEXTS)), min_size=1, max_size=20))
def test_any_text_cleans_alike_one_by_one_and_by_arrow(values):
    frame = pa.table({"n": pa.array(values, pa.string()), "c": pa.array(values, pa.string())})
    few, many, repeats = cleaned_both_ways(frame, FeatureSpec(("n",), ("c",), {"c": ("Yes", "No")}))
    np.testing.assert_array_equal(np.tile(few.features.numbers["n"], repeats), many.features.numbers["n"])
    assert ("n" in few.unparsed) == ("n" in many.unparsed)
    few_labels = few.features.frame["c"].astype(object).tolist()
    assert few_labels * repeats == many.features.frame["c"].astype(object).tolist()
