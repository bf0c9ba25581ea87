import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder

from churn.config import DataConfig, PreprocessingConfig
from churn.preprocessing import CategoryCodeEncoder, build_preprocessor


def data_config(tmp_path):
    return DataConfig(
        path=tmp_path,
        target="y",
        positive_label=1,
        numeric_features=("tenure", "total"),
        categorical_features=("plan",),
    )


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
    out = build_preprocessor(data_config(tmp_path), options).fit_transform(frame())
    # columns: tenure (median-imputed), total (0-filled), plan_a, plan_b
    assert out[3, 0] == 10.0
    assert out[0, 1] == 0.0


def test_build_preprocessor_imputes_median_and_scales(tmp_path):
    out = build_preprocessor(data_config(tmp_path), PreprocessingConfig()).fit_transform(frame())
    assert not np.isnan(out).any()
    assert out[:, :2].mean(axis=0) == pytest.approx([0.0, 0.0])


def test_build_preprocessor_one_hot_encodes_and_ignores_unseen_categories(tmp_path):
    pre = build_preprocessor(data_config(tmp_path), PreprocessingConfig()).fit(frame())
    names = list(pre.get_feature_names_out())
    assert names[-2:] == ["categorical__plan_a", "categorical__plan_b"]
    unseen = frame().assign(plan=pd.Series(["zzz"] * 4, dtype="str"))
    assert pre.transform(unseen)[:, -2:].sum() == 0


def test_build_preprocessor_learns_only_from_the_rows_it_is_fitted_on(tmp_path):
    pre = build_preprocessor(data_config(tmp_path), PreprocessingConfig(scale_numeric=False)).fit(frame().iloc[:2])
    # tenure median of the first two rows is 5; the later rows (20, NaN) must not move it
    assert pre.transform(frame().iloc[[3]])[0, 0] == 5.0


# CategoryCodeEncoder against the scikit-learn pair it replaces


def reference_pair():
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    )


def categories_frame(values_a, values_b):
    return pd.DataFrame({"a": pd.Series(values_a, dtype="str"), "b": pd.Series(values_b, dtype="str")})


TRAIN = categories_frame(["x", "y", "y", None, "z", "x"], ["p", "q", "q", "p", None, "r"])
SCORE = categories_frame(["y", None, "new", "x", "z", None], ["r", "unseen", None, "p", "q", "q"])


def test_category_code_encoder_fits_and_transforms_like_imputer_plus_one_hot():
    from sklearn.base import clone

    reference = reference_pair().fit(TRAIN)
    encoder = CategoryCodeEncoder()
    assert encoder.fit(TRAIN) is encoder
    for mine, theirs in zip(encoder.categories_, reference[-1].categories_, strict=True):
        assert list(mine) == list(theirs)
    assert encoder.most_frequent_ == list(reference[0].statistics_)  # ties -> smallest, as SimpleImputer
    np.testing.assert_array_equal(encoder.transform(SCORE), reference.transform(SCORE))
    np.testing.assert_array_equal(clone(encoder).fit(TRAIN).transform(TRAIN), reference.transform(TRAIN))
    assert list(encoder.get_feature_names_out()) == ["a_x", "a_y", "a_z", "b_p", "b_q", "b_r"]


def test_category_code_encoder_adopts_a_fitted_pair_and_accepts_categoricals():
    reference = reference_pair().fit(TRAIN)
    encoder = CategoryCodeEncoder.from_fitted(reference[0], reference[1])
    as_categoricals = SCORE.astype("category")
    np.testing.assert_array_equal(encoder.transform(as_categoricals), reference.transform(SCORE))


def test_category_code_encoder_follows_the_estimator_contract():
    from sklearn.exceptions import NotFittedError

    encoder = CategoryCodeEncoder()
    assert encoder.get_params() == {}
    with pytest.raises(NotFittedError):
        encoder.transform(TRAIN)
    with pytest.raises(ValueError, match="column 'a' has no values"):
        CategoryCodeEncoder().fit(categories_frame([None, None], ["p", "q"]))
