"""The quadrature walk of deep trees (`churn.explain.pathshap`): against Shapley values by the
definition on seeded random trees (features used again down a path, missing values sent either
way), against shap's TreeExplainer on fitted forests (the shipped settings' leaf sizes and
1,000-leaf trees), numba's compiled loops against the numpy path bit for bit, and a row's
numbers the same whatever the block, batch or thread count."""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from support import brute_force_shapley

from churn.explain import explainers, pathshap
from churn.explain.pathshap import PathShap
from churn.scoring.trees import Tree, forest_trees

pytest.importorskip("numba")  # in the dev lock: the compiled walk is what these compare


def random_tree(rng, features, depth):
    """A full-ish random tree on `features` columns, a feature reused down paths by chance,
    covers that split each node's weight, some nodes sending missing values left."""
    feature, threshold, left, right, leaf, value, cover, missing = [], [], [], [], [], [], [], []

    def grow(level, weight):
        node = len(feature)
        for column in (feature, threshold, left, right, leaf, value, cover, missing):
            column.append(0)
        cover[node] = weight
        if level == depth or weight < 2 or rng.random() < 0.15:
            feature[node], leaf[node], value[node], left[node], right[node] = -1, True, rng.normal(), -1, -1
            return node
        share = rng.uniform(0.1, 0.9)
        feature[node], threshold[node], missing[node] = rng.integers(features), rng.uniform(-1, 1), rng.random() < 0.5
        left[node] = grow(level + 1, weight * share)
        right[node] = grow(level + 1, weight * (1 - share))
        return node

    grow(0, 100.0)
    arrays = [np.asarray(c) for c in (feature, threshold, left, right, leaf, value, cover)]
    return Tree(*[a.astype(t) for a, t in zip(arrays, ["int64", "float64", "int64", "int64", bool, "float64",
                                                        "float64"], strict=True)],
                float32=False, missing_left=np.asarray(missing, dtype=bool))  # fmt: skip


def random_rows(rng, count, features):
    rows = rng.uniform(-1.2, 1.2, size=(count, features))
    rows[rng.random(rows.shape) < 0.15] = np.nan
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_random_deep_trees_equal_shapley_values_by_the_definition(seed):
    rng = np.random.default_rng(seed)
    features = 5
    trees = [random_tree(rng, features, depth=7) for _ in range(3)]
    rows = random_rows(rng, 12, features)
    walk = PathShap(trees, 0.5, np.arange(features), features)
    found = walk.contributions(rows)
    expected = np.stack([sum(brute_force_shapley(tree, row, features) for tree in trees) for row in rows])
    assert np.abs(found - expected).max() < 1e-12
    leaves = np.asarray([[tree.value[tree.leaf_of(row)] for tree in trees] for row in rows]).sum(axis=1)
    assert np.abs(walk.base + found.sum(axis=1) - (0.5 + leaves)).max() < 1e-12


def test_contributions_land_on_their_input_columns():
    rng = np.random.default_rng(7)
    trees = [random_tree(rng, 4, depth=6) for _ in range(2)]
    rows = random_rows(rng, 9, 4)
    by_column = PathShap(trees, 0.0, np.arange(4), 4).contributions(rows)
    grouped = PathShap(trees, 0.0, np.array([0, 1, 1, 0]), 2).contributions(rows)
    assert np.abs(grouped - np.stack([by_column[:, [0, 3]].sum(1), by_column[:, [1, 2]].sum(1)], axis=1)).max() < 1e-14


@pytest.fixture(scope="module")
def forests():
    """Forests on a seeded table with numeric and one-hot-like columns: leaves of at least 20
    (the shipped grid's larger leaf) and trees grown to 1,000 leaves."""
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(3)
    rows = 6000
    numbers = rng.normal(size=(rows, 6))
    onehot = (rng.integers(0, 3, size=(rows, 1)) == np.arange(3)).astype(float)
    X = np.hstack([numbers, onehot])
    logit = numbers[:, 0] - 0.8 * numbers[:, 1] * numbers[:, 2] + onehot[:, 0] + rng.normal(scale=1.5, size=rows)
    y = (logit > 0).astype(int)
    small = RandomForestClassifier(30, min_samples_leaf=20, max_features="sqrt", random_state=0).fit(X, y)
    large = RandomForestClassifier(4, max_leaf_nodes=1000, max_features="sqrt", random_state=0).fit(X, y)
    assert max(tree.tree_.n_leaves for tree in large.estimators_) == 1000
    return shap, X, {"leaves of 20": small, "1,000 leaves": large}


@pytest.mark.parametrize("name", ["leaves of 20", "1,000 leaves"])
def test_a_fitted_forest_equals_shaps_tree_explainer(forests, name):
    shap, X, fitted = forests
    forest = fitted[name]
    rows = X[:300]
    walk = PathShap(forest_trees(forest), 0.0, np.arange(X.shape[1]), X.shape[1])
    reference = shap.TreeExplainer(forest, feature_perturbation="tree_path_dependent")
    expected = np.asarray(reference.shap_values(rows, check_additivity=False))[..., 1]
    found = walk.contributions(rows)
    assert np.abs(found - expected).max() < 1e-9
    assert walk.base == pytest.approx(float(np.ravel(reference.expected_value)[-1]), abs=1e-12)
    assert np.abs(walk.base + found.sum(axis=1) - forest.predict_proba(rows)[:, 1]).max() < 1e-12


def test_numbas_loops_and_the_numpy_path_give_the_same_bits(forests):
    _, X, fitted = forests
    trees = forest_trees(fitted["leaves of 20"])
    compiled = PathShap(trees, 0.0, np.arange(X.shape[1]), X.shape[1])
    plain = PathShap(trees, 0.0, np.arange(X.shape[1]), X.shape[1], compiled=False)
    assert compiled.compiled and not plain.compiled
    rows = X[:40].copy()
    rows[::7, 2] = np.nan  # a missing value goes where each split sends it
    assert np.array_equal(compiled.contributions(rows), plain.contributions(rows))


def test_a_rows_numbers_do_not_depend_on_its_batch_block_or_threads(forests, monkeypatch):
    _, X, fitted = forests
    trees = forest_trees(fitted["1,000 leaves"])
    rows = X[:700]
    batch = PathShap(trees, 0.0, np.arange(X.shape[1]), X.shape[1]).contributions(rows)
    threaded = PathShap(trees, 0.0, np.arange(X.shape[1]), X.shape[1], threads=2).contributions(rows)
    alone = np.vstack([PathShap(trees, 0.0, np.arange(X.shape[1]), X.shape[1]).contributions(row[None]) for row in
                       rows[[0, 333, 699]]])  # fmt: skip
    monkeypatch.setattr(pathshap, "BLOCK_ROWS", 17)
    small_blocks = PathShap(trees, 0.0, np.arange(X.shape[1]), X.shape[1]).contributions(rows)
    assert np.array_equal(batch, threaded)
    assert np.array_equal(batch, small_blocks)
    assert np.array_equal(batch[[0, 333, 699]], alone)


def test_blocks_are_about_equal_and_cover_every_row():
    bounds = pathshap._blocks(300, 256)
    assert bounds.tolist() == [0, 150, 300]
    assert pathshap._blocks(0, 256).tolist() == [0, 0]
    assert pathshap._blocks(1, 256).tolist() == [0, 1]


def test_the_quadrature_integrates_the_degree_it_promises():
    points, weights = pathshap._gauss(4)  # exact through degree 7
    for degree in range(8):
        assert float(np.dot(weights, points**degree)) == pytest.approx(1 / (degree + 1), abs=1e-15)
    assert float(np.dot(weights, points**8)) != pytest.approx(1 / 9, abs=1e-12)


def test_the_time_probe_is_one_block_of_the_walk():
    assert explainers.PROBE_ROWS == pathshap.BLOCK_ROWS  # timed on one thread, estimated over the threads
