import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from churn.config import DataConfig, PreprocessingConfig
from churn.errors import DataError
from churn.preprocessing import FeatureCleaner, build_preprocessor


def data_config(tmp_path):
    return DataConfig(
        path=tmp_path,
        target="y",
        positive_label=1,
        numeric_features=("tenure", "total"),
        categorical_features=("plan",),
    )


def columns(tmp_path):
    data = data_config(tmp_path)
    return data.numeric_features, data.categorical_features


def frame():
    return pd.DataFrame(
        {
            "tenure": [0.0, 10.0, 20.0, np.nan],
            "total": [np.nan, 100.0, 300.0, 200.0],
            "plan": pd.Series(["a", "b", None, "a"], dtype="str"),
        }
    )


def test_build_preprocessor_fills_configured_columns_with_their_constant(tmp_path):
    options = PreprocessingConfig(fill_values={"total": 0.0}, scale_numeric=False)
    out = build_preprocessor(*columns(tmp_path), **options.model_dump()).fit_transform(frame())
    # columns: tenure (median-imputed), total (0-filled), plan_a, plan_b
    assert out[3, 0] == 10.0
    assert out[0, 1] == 0.0


def test_build_preprocessor_imputes_median_and_scales(tmp_path):
    out = build_preprocessor(*columns(tmp_path)).fit_transform(frame())
    assert not np.isnan(out).any()
    assert out[:, :2].mean(axis=0) == pytest.approx([0.0, 0.0])


def test_build_preprocessor_one_hot_encodes_and_ignores_unseen_categories(tmp_path):
    pre = build_preprocessor(*columns(tmp_path)).fit(frame())
    names = list(pre.get_feature_names_out())
    assert names[-2:] == ["categorical__plan_a", "categorical__plan_b"]
    unseen = frame().assign(plan=pd.Series(["zzz"] * 4, dtype="str"))
    assert pre.transform(unseen)[:, -2:].sum() == 0


def test_build_preprocessor_learns_only_from_the_rows_it_is_fitted_on(tmp_path):
    pre = build_preprocessor(*columns(tmp_path), scale_numeric=False).fit(frame().iloc[:2])
    # tenure median of the first two rows is 5; the later rows (20, NaN) must not move it
    assert pre.transform(frame().iloc[[3]])[0, 0] == 5.0


# FeatureCleaner: the saved model's first step


@parametrize_with_checks([FeatureCleaner()])
def test_feature_cleaner_passes_scikit_learns_estimator_checks(estimator, check):
    # All of them pass, none is expected to fail: on unnamed arrays the cleaner infers numeric
    # columns from their dtype and works positionally, as scikit-learn's own transformers do.
    check(estimator)


def raw_frame():
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "total": [" ", "10.5", "20", "n/a"],
            "flag": [0, 1, 1, 0],
            "plan": ["x ", "y", "", "x"],
            "paperless": ["true", "false", "true", "true"],
        }
    )


def cleaner():
    return FeatureCleaner(("total",), ("flag", "plan", "paperless"), max_unparsed_share=0.5)


def test_feature_cleaner_learns_categories_and_spellings_from_raw_columns():
    fitted = cleaner().fit(raw_frame())
    assert fitted.categories_ == {"flag": ["0", "1"], "plan": ["x", "y"], "paperless": ["false", "true"]}
    assert dict(fitted.spec_.bool_spelling) == {"flag": ("1", "0"), "paperless": ("true", "false")}
    assert list(fitted.feature_names_in_) == ["total", "flag", "plan", "paperless"]
    assert list(fitted.get_feature_names_out()) == ["total", "flag", "plan", "paperless"]


def test_feature_cleaner_takes_any_column_types_order_and_extra_columns():
    fitted = cleaner().fit(raw_frame())
    expected = fitted.transform(raw_frame())
    records = pd.DataFrame(
        {
            "paperless": [True, False, True, True],
            "plan": ["x", "y", None, "x"],
            "flag": [0.0, 1.0, 1.0, 0.0],
            "total": [None, 10.5, "20", None],
            "Churn": ["No"] * 4,
        }
    )
    pd.testing.assert_frame_equal(fitted.transform(records), expected)
    pd.testing.assert_frame_equal(fitted.transform(pa.Table.from_pandas(raw_frame())), expected)


def test_feature_cleaner_refuses_a_column_of_text_over_the_share_and_warns_below(caplog):
    fitted = cleaner().fit(raw_frame())
    with caplog.at_level(logging.WARNING):
        fitted.transform(raw_frame())  # one 'n/a' in three non-missing values: under 0.5
    assert "column total has 1 value(s) that are not numbers" in caplog.text
    with pytest.raises(DataError, match="column total has 3 value\\(s\\) .* more than max_unparsed_share allows"):
        fitted.transform(raw_frame().assign(total=["45 USD", "1", "x", "3,5"]))


def test_feature_cleaner_names_a_missing_column_and_needs_fitting():
    with pytest.raises(NotFittedError):
        cleaner().transform(raw_frame())
    with pytest.raises(DataError, match="missing required column\\(s\\) plan"):
        cleaner().fit(raw_frame()).transform(raw_frame().drop(columns="plan"))
    assert clone(cleaner()).get_params()["numeric_features"] == ("total",)
