import numpy as np
import pandas as pd
import pytest

from churn.config import DataConfig, PreprocessingConfig
from churn.preprocessing import build_preprocessor


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
