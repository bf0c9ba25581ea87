import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from churn.compiling import FastScorer
from churn.config import DataConfig, PreprocessingConfig
from churn.data_loader import prepare_features
from churn.model import build_pipeline
from churn.preprocessing import build_preprocessor


def data(tmp_path, rows=300, seed=0, c1_values=("a", "b", "c", "")):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "n1": rng.normal(size=rows).round(3).astype(str),
            "n2": np.where(rng.random(rows) < 0.1, " ", rng.integers(0, 50, rows).astype(str)),
            "c1": rng.choice(list(c1_values), rows),
            "c2": rng.choice(["0", "1", "1.0"], rows),
        }
    )
    y = (rng.random(rows) < 0.3).astype(int)
    X = prepare_features(frame, ("n1", "n2"), ("c1", "c2"), tmp_path)
    return X, y


def config(tmp_path, **options):
    return (
        DataConfig(
            path=tmp_path,
            target="y",
            positive_label=1,
            numeric_features=("n1", "n2"),
            categorical_features=("c1", "c2"),
        ),
        PreprocessingConfig(**options),
    )


@pytest.mark.parametrize(
    "options", [{}, {"scale_numeric": False}, {"fill_values": {"n2": 0.0}}, {"numeric_impute": "mean"}]
)
def test_fast_scorer_equals_the_pipeline(tmp_path, options):
    X, y = data(tmp_path)
    model = build_pipeline(build_preprocessor(*config(tmp_path, **options)), LogisticRegression()).fit(X, y)
    scorer = FastScorer(model)
    assert scorer.compiled
    X_new, _ = data(tmp_path, rows=50, seed=1, c1_values=("a", "zzz", "", "c"))  # unseen and missing
    np.testing.assert_array_equal(scorer.transform(X_new), model.named_steps["preprocess"].transform(X_new))
    np.testing.assert_allclose(scorer.predict_proba(X_new), model.predict_proba(X_new)[:, 1], rtol=0, atol=1e-12)


def test_fast_scorer_falls_back_to_the_pipeline_for_unknown_steps(tmp_path):
    X, y = data(tmp_path)
    preprocess = ColumnTransformer([("minmax", MinMaxScaler(), ["n1"])])
    X = X[["n1"]].fillna(0)
    model = Pipeline([("preprocess", preprocess), ("classifier", LogisticRegression())]).fit(X, y)
    scorer = FastScorer(model)
    assert not scorer.compiled
    np.testing.assert_array_equal(scorer.predict_proba(X), model.predict_proba(X)[:, 1])


def test_fast_scorer_falls_back_when_a_training_column_was_all_missing(tmp_path):
    X, y = data(tmp_path)
    X["n1"] = np.nan
    pipeline = build_pipeline(build_preprocessor(*config(tmp_path)), LogisticRegression())
    with pytest.warns(UserWarning, match="Skipping features without any observed values"):
        model = pipeline.fit(X, y)
    scorer = FastScorer(model)
    assert not scorer.compiled
    with pytest.warns(UserWarning, match="Skipping features"):
        np.testing.assert_array_equal(scorer.predict_proba(X), model.predict_proba(X)[:, 1])
