"""The boosted trees' own evaluator (`churn.scoring.trees`): the saved model's margins to the
last bit, from cleaned features, through the compiled scorer and through `trees.json`."""

import json

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from test_compiling import config, raw

from churn.cleaning import clean_features
from churn.model import build_pipeline, unwrap, with_threshold
from churn.preprocessing import FeatureCleaner, build_preprocessor
from churn.scoring import trees as tree_scoring
from churn.scoring.compiling import FastScorer, export_tree_tables
from churn.scoring.scorers import predict_labels
from churn.scoring.trees import FEW_ROWS, MAX_TREE_NODES, ShallowTrees, Tree, TreeScorer

BOOSTED = {
    "hist, depth 3": lambda: HistGradientBoostingClassifier(max_iter=40, max_depth=3, random_state=0),
    "hist, 8 leaves": lambda: HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=8, random_state=0),
    "classic, depth 3": lambda: GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0),
    "classic, stumps": lambda: GradientBoostingClassifier(n_estimators=20, max_depth=1, random_state=0),
}


def tree_model(tmp_path, classifier, rows=600, **options):
    data, preprocessing = config(tmp_path, **options)
    preprocessor = build_preprocessor(data.numeric_features, data.categorical_features, **preprocessing.model_dump())
    cleaner = FeatureCleaner(data.numeric_features, data.categorical_features)
    X, y = raw(rows=rows)
    return with_threshold(build_pipeline(cleaner, preprocessor, classifier).fit(X, y), 0.35)


@pytest.mark.parametrize("options", [{}, {"min_category_count": 120}, {"scale_numeric": False}])
@pytest.mark.parametrize("kind", list(BOOSTED))
def test_shallow_trees_give_the_models_margin_to_the_last_bit(tmp_path, kind, options):
    model = tree_model(tmp_path, BOOSTED[kind](), **options)
    scorer = FastScorer(model)
    assert scorer.trees is not None
    X_new, _ = raw(rows=3000, seed=5, c1_values=("a", "b", "c", "never seen", ""))  # unseen and missing values
    clean = clean_features(X_new, scorer.spec).features
    pipeline = unwrap(model)
    np.testing.assert_array_equal(scorer.trees.margin(clean), pipeline.decision_function(X_new))
    np.testing.assert_array_equal(scorer.trees.margin(clean, threads=2), pipeline.decision_function(X_new))
    np.testing.assert_array_equal(scorer.score_clean(clean), model.predict_proba(X_new)[:, 1])
    for rows in (1, 3, FEW_ROWS, FEW_ROWS + 1):  # a request's few rows are walked in Python: the same bits
        few = clean_features(X_new.head(rows), scorer.spec).features
        np.testing.assert_array_equal(scorer.trees.margin(few), pipeline.decision_function(X_new.head(rows)))


@pytest.mark.parametrize("kind", list(BOOSTED))
def test_the_exported_tables_score_without_scikit_learn_as_the_saved_model(tmp_path, kind):
    """trees.json through JSON and back: the same margins; probabilities within one unit in the
    last place (numpy's exp, not scipy's), the same decisions."""
    model = tree_model(tmp_path, BOOSTED[kind]())
    tables = json.loads(json.dumps(export_tree_tables(model)))
    loaded = []
    scorer = TreeScorer(tables, lambda: loaded.append(1) or FastScorer(model))
    X_new, _ = raw(rows=2000, seed=6)
    clean = clean_features(X_new, scorer.spec).features
    np.testing.assert_array_equal(scorer.trees.margin(clean), unwrap(model).decision_function(X_new))
    expected = model.predict_proba(X_new)[:, 1]
    np.testing.assert_allclose(scorer.score_clean(clean), expected, rtol=0, atol=4e-16)
    np.testing.assert_array_equal(predict_labels(scorer.score_clean(clean), scorer.threshold), model.predict(X_new))
    assert scorer.threshold == 0.35 and not loaded  # the saved model is loaded only when asked for
    assert scorer.compiled() is scorer.compiled() and loaded == [1]


def test_models_the_evaluator_does_not_take_score_as_before(tmp_path):
    """Deeper trees and forests: no tables, scikit-learn's own predictor on the compiled matrix."""
    for classifier in (
        HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=MAX_TREE_NODES + 2),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ):
        model = tree_model(tmp_path, classifier)
        assert export_tree_tables(model) is None
        scorer = FastScorer(model)
        assert scorer.trees is None
        X_new, _ = raw(rows=500, seed=7)
        found = scorer.score_clean(clean_features(X_new, scorer.spec).features)
        np.testing.assert_array_equal(found, model.predict_proba(X_new)[:, 1])


@pytest.mark.parametrize("few_rows", [0, FEW_ROWS])  # the vectorised evaluation, and the walk of a few rows
def test_a_missing_value_goes_where_the_tree_sends_it(monkeypatch, few_rows):
    monkeypatch.setattr(tree_scoring, "FEW_ROWS", few_rows)
    """A stump x0 <= 0.5 whose missing values go left: the evaluator's rule for a missing value."""
    tree = Tree(
        feature=np.array([0, -1, -1]), threshold=np.array([0.5, 0.0, 0.0]), left=np.array([1, -1, -1]),
        right=np.array([2, -1, -1]), leaf=np.array([False, True, True]), value=np.array([0.0, -1.0, 2.0]),
        cover=np.array([4.0, 3.0, 1.0]), float32=False, missing_left=np.array([True, False, False]),
    )  # fmt: skip
    inputs = [{"column": "x", "fill": np.nan, "mean": None, "scale": None}]
    trees = ShallowTrees([tree], 0.25, inputs)

    class Features:  # a numeric column the (never imputing) fill leaves missing
        numbers = {"x": np.array([0.0, 1.0, np.nan])}

        def __len__(self):
            return 3

    np.testing.assert_array_equal(trees.margin(Features()), [0.25 - 1.0, 0.25 + 2.0, 0.25 - 1.0])
    assert [tree.leaf_of(np.array([value])) for value in (0.0, 1.0, np.nan)] == [1, 2, 1]
    again = ShallowTrees.from_dict(json.loads(json.dumps(trees.to_dict())))
    np.testing.assert_array_equal(again.margin(Features()), trees.margin(Features()))
