import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

from churn.cleaning import FeatureSpec, clean_features
from churn.config import DataConfig, PreprocessingConfig
from churn.errors import ModelError
from churn.model import build_pipeline, unwrap, with_threshold
from churn.preprocessing import FeatureCleaner, build_preprocessor
from churn.scoring.compiling import FastScorer, _CategoricalBlock, export_linear_tables
from churn.scoring.scorers import LinearScorer


def raw(rows=300, seed=0, c1_values=("a", "b", "c", "")):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "n1": rng.normal(size=rows).round(3).astype(str),
            "n2": np.where(rng.random(rows) < 0.1, " ", rng.integers(0, 50, rows).astype(str)),
            "c1": rng.choice(list(c1_values), rows),
            "c2": rng.choice(["0", "1", "1.0"], rows),
        }
    )
    return frame, (rng.random(rows) < 0.3).astype(int)


def config(tmp_path, **options):
    data = DataConfig(
        path=tmp_path, target="y", positive_label=1, numeric_features=("n1", "n2"), categorical_features=("c1", "c2")
    )
    return data, PreprocessingConfig(**options)


def fitted_model(tmp_path, **options):
    data, preprocessing = config(tmp_path, **options)
    cleaner = FeatureCleaner(data.numeric_features, data.categorical_features)
    preprocessor = build_preprocessor(data.numeric_features, data.categorical_features, **preprocessing.model_dump())
    pipeline = build_pipeline(cleaner, preprocessor, LogisticRegression())
    X, y = raw()
    return with_threshold(pipeline.fit(X, y), 0.3)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"scale_numeric": False},
        {"fill_values": {"n2": 0.0}},
        {"numeric_impute": "mean"},
        {"min_category_count": 90},
    ],
)
def test_fast_and_linear_scorers_equal_the_saved_model(tmp_path, options):
    model = fitted_model(tmp_path, **options)
    scorer = FastScorer(model)
    assert scorer.compiled and scorer.threshold == 0.3
    X_new, _ = raw(rows=50, seed=1, c1_values=("a", "zzz", "", "c"))  # unseen and missing
    clean = clean_features(X_new, scorer.spec).features
    pipeline = unwrap(model)
    np.testing.assert_array_equal(scorer.transform(clean), pipeline[:-1].transform(X_new))
    expected = model.predict_proba(X_new)[:, 1]
    np.testing.assert_allclose(scorer.score_clean(clean), expected, rtol=0, atol=1e-12)
    linear = LinearScorer(export_linear_tables(model))
    assert linear.spec == scorer.spec and linear.threshold == 0.3
    np.testing.assert_allclose(linear.score_clean(clean), expected, rtol=0, atol=1e-12)


def test_fast_scorer_falls_back_to_the_pipeline_for_unknown_steps(tmp_path):
    X, y = raw()
    preprocess = ColumnTransformer([("minmax", MinMaxScaler(), ["n1"])])
    steps = [("clean", FeatureCleaner(("n1",), ())), ("preprocess", preprocess), ("classifier", LogisticRegression())]
    model = with_threshold(Pipeline(steps).fit(X, y), 0.5)
    scorer = FastScorer(model)
    assert not scorer.compiled and export_linear_tables(model) is None
    clean = clean_features(X, scorer.spec).features
    np.testing.assert_array_equal(scorer.score_clean(clean), model.predict_proba(X)[:, 1])


def test_fast_scorer_falls_back_when_a_training_column_was_all_missing(tmp_path):
    X, y = raw()
    X["n1"] = ""
    data, preprocessing = config(tmp_path)
    cleaner = FeatureCleaner(data.numeric_features, data.categorical_features)
    preprocessor = build_preprocessor(data.numeric_features, data.categorical_features, **preprocessing.model_dump())
    pipeline = build_pipeline(cleaner, preprocessor, LogisticRegression())
    with pytest.warns(UserWarning, match="Skipping features without any observed values"):
        model = with_threshold(pipeline.fit(X, y), 0.5)
    scorer = FastScorer(model)
    assert not scorer.compiled
    with pytest.warns(UserWarning, match="Skipping features"):
        clean = clean_features(X, scorer.spec).features
        np.testing.assert_array_equal(scorer.score_clean(clean), model.predict_proba(X)[:, 1])


def test_unwrap_refuses_a_bare_pipeline_from_an_earlier_version(tmp_path):
    pipeline = unwrap(fitted_model(tmp_path))
    with pytest.raises(ModelError, match="earlier version of churn"):
        unwrap(pipeline)
    with pytest.raises(ModelError, match="earlier version of churn"):
        unwrap(with_threshold(pipeline[1:], 0.5))  # no cleaning step


# the compiled categorical block against the scikit-learn pair it replays


def categories_frame(values_a, values_b):
    return pd.DataFrame({"a": pd.Series(values_a, dtype="str"), "b": pd.Series(values_b, dtype="str")})


TRAIN = categories_frame(["x", "y", "y", None, "z", "x"], ["p", "q", "q", "p", None, "r"])
SCORE = categories_frame(["y", None, "new", "x", "z", None], ["r", "unseen", None, "p", "q", "q"])


def reference_pair():
    return make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    ).fit(TRAIN)


@pytest.mark.parametrize("as_categoricals", [False, True])
def test_categorical_block_replays_imputer_plus_one_hot(as_categoricals):
    reference = reference_pair()
    block = _CategoricalBlock.from_fitted(reference[0], reference[1])
    assert block.most_frequent == ["x", "p"]  # ties -> smallest, as SimpleImputer
    frame = SCORE.astype("category") if as_categoricals else SCORE
    features = clean_features(frame, FeatureSpec((), ("a", "b"))).features
    out = np.zeros((len(SCORE), block.width))
    assert block.write_into(features, out, 0) == 6
    np.testing.assert_array_equal(out, reference.transform(SCORE))


def test_categorical_block_refuses_encoders_it_does_not_replay():
    imputer = SimpleImputer(strategy="most_frequent").fit(TRAIN)
    dropping = OneHotEncoder(drop="first", sparse_output=False).fit(imputer.transform(TRAIN))
    assert _CategoricalBlock.from_fitted(imputer, dropping) is None


def test_rare_categories_share_one_column_in_every_scorer_and_explainer(tmp_path):
    """min_category_count: the compiled block, the lookup tables and both explainers replay the
    encoder's "infrequent" column (two of c1's four categories fall below 90 rows here)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from churn.explain.explainers import LinearExplainer, TreeExplainer

    model = fitted_model(tmp_path, min_category_count=90)
    encoder = unwrap(model).named_steps["preprocess"].named_transformers_["categorical"].named_steps["encode"]
    assert any(len(rare) for rare in encoder.infrequent_categories_ if rare is not None)
    X_new, _ = raw(rows=80, seed=2, c1_values=("a", "b", "c", "new", ""))
    linear = LinearScorer(export_linear_tables(model))
    clean = clean_features(X_new, linear.spec).features
    margin = np.log(linear.score_clean(clean) / (1 - linear.score_clean(clean)))
    explainer = LinearExplainer(linear)
    np.testing.assert_allclose(explainer.contributions(clean).sum(axis=1) + explainer.base, margin, atol=1e-9)
    data, preprocessing = config(tmp_path, min_category_count=90)
    preprocessor = build_preprocessor(data.numeric_features, data.categorical_features, **preprocessing.model_dump())
    cleaner = FeatureCleaner(data.numeric_features, data.categorical_features)
    X, y = raw()
    trees = build_pipeline(cleaner, preprocessor, HistGradientBoostingClassifier(max_iter=20, max_depth=3))
    tree_model = with_threshold(trees.fit(X, y), 0.5)
    scorer = FastScorer(tree_model)
    np.testing.assert_array_equal(scorer.transform(clean), unwrap(tree_model)[:-1].transform(X_new))
    explained = TreeExplainer(scorer)
    decision = unwrap(tree_model).decision_function(X_new)
    np.testing.assert_allclose(explained.contributions(clean).sum(axis=1) + explained.base, decision, atol=1e-9)
