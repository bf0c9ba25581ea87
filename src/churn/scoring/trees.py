"""A fitted tree model's trees as arrays, and an exact evaluator of shallow boosted trees.

scikit-learn scores gradient boosting one tree at a time: each of the hundred trees is a call
that walks every row of the wide one-hot matrix. A tree of depth 3 has at most 8 internal nodes,
so where a row ends up is decided by at most 8 comparisons, and a tree's output is one of at
most 2^8 numbers. `ShallowTrees` therefore evaluates each distinct comparison once for a slice
of rows, straight from the cleaned features (a one-hot column's comparison is a test of the
category code: no dense matrix is built), packs each tree's outcomes into a byte, and looks its
output up. The trees' outputs are added in scikit-learn's order, starting from the same
constant, so the margin is the model's to the last bit (tested), and so are the probabilities.
`churn.explain.treeshap` explains the same trees.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from churn.cleaning import FeatureSpec, FeatureTable
from churn.codes import category_codes
from churn.scoring.margins import sigmoid

MAX_TREE_NODES = 8  # one byte of outcomes per tree
# rows a slice: fewer numpy calls per condition than 16,384 (measured: classic boosting, 282
# conditions, predicts a million rows in 1.97 s against 2.40 s; the shipped model unchanged)
SLICE_ROWS = 65536
FEW_ROWS = 8  # up to this many rows, each is walked through the trees in Python (`ShallowTrees._walk`)
BOOSTING = {"HistGradientBoostingClassifier", "GradientBoostingClassifier"}
FORESTS = {"RandomForestClassifier", "ExtraTreesClassifier"}


@dataclass(frozen=True)
class Tree:
    """One fitted tree as arrays: internal nodes send a row left when its value of `feature` is
    at most `threshold` (a missing value: left where `missing_left`, else right); leaves hold
    `value`, in the margin; `cover` is each node's training weight."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    cover: np.ndarray
    float32: bool  # scikit-learn's decision trees compare the input cast to float32
    missing_left: np.ndarray | None = None  # None: a missing value fails every comparison

    def paths(self) -> list[tuple[int, list[tuple[int, bool]]]]:
        """Each leaf with the conditions on its path: (node, went left)."""
        found: list[tuple[int, list[tuple[int, bool]]]] = []
        stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
        while stack:
            node, path = stack.pop()
            if self.leaf[node]:
                found.append((node, path))
            else:
                stack.append((int(self.right[node]), [*path, (node, False)]))
                stack.append((int(self.left[node]), [*path, (node, True)]))
        return found

    def leaf_of(self, row: np.ndarray) -> int:
        node = 0
        while not self.leaf[node]:
            value = row[self.feature[node]]
            value = float(np.float32(value)) if self.float32 else value
            if np.isnan(value):
                goes_left = self.missing_left is not None and bool(self.missing_left[node])
            else:
                goes_left = bool(value <= self.threshold[node])
            node = int(self.left[node] if goes_left else self.right[node])
        return node

    def internal_nodes(self) -> list[int]:
        return [int(n) for n in np.flatnonzero(~self.leaf)]

    def to_dict(self) -> dict[str, Any]:
        """The tree as JSON-ready lists (floats round-trip exactly through JSON)."""
        found = {name: getattr(self, name).tolist() for name in TREE_ARRAYS}
        return found | {
            "float32": self.float32,
            "missing_left": None if self.missing_left is None else self.missing_left.tolist(),
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Tree:
        dtypes: dict[str, Any] = {"feature": "int64", "left": "int64", "right": "int64", "leaf": bool}
        arrays = {name: np.asarray(item[name], dtype=dtypes.get(name, "float64")) for name in TREE_ARRAYS}
        missing = None if item["missing_left"] is None else np.asarray(item["missing_left"], dtype=bool)
        return cls(**arrays, float32=bool(item["float32"]), missing_left=missing)


TREE_ARRAYS = ("feature", "threshold", "left", "right", "leaf", "value", "cover")


def shallow_trees(classifier: Any) -> list[Tree] | None:
    """A binary boosted classifier's trees when every one has at most 8 internal nodes and no
    categorical split, else None."""
    if type(classifier).__name__ not in BOOSTING or getattr(classifier, "n_trees_per_iteration_", 1) != 1:
        return None
    if any(predictors[0].nodes["is_categorical"].any() for predictors in getattr(classifier, "_predictors", [])):
        return None
    trees, _ = boosted_trees(classifier)
    return None if any(len(tree.internal_nodes()) > MAX_TREE_NODES for tree in trees) else trees


def boosted_trees(classifier: Any) -> tuple[list[Tree], float | None]:
    """The trees of a binary gradient-boosting classifier, leaf values in the margin, and the
    margin's constant term (None: classic gradient boosting's, which `boosted_start` reads).

    scikit-learn has no public view of a histogram gradient-boosting model's trees: they are read
    from its predictors (`_predictors`, `_baseline_prediction`), as shap reads them."""
    if type(classifier).__name__ == "HistGradientBoostingClassifier":
        trees = [_hist_tree(predictors[0].nodes) for predictors in classifier._predictors]
        return trees, float(np.ravel(classifier._baseline_prediction)[0])
    rate = classifier.learning_rate
    return [_decision_tree(estimator[0].tree_, rate) for estimator in classifier.estimators_], None


def boosted_start(classifier: Any, columns: int) -> float:
    """The constant a boosted model's margin starts from, exactly as scikit-learn starts it:
    histogram boosting's baseline, classic boosting's initial prediction (`_raw_predict_init`,
    private; scikit-learn is capped below 1.10 for it)."""
    if type(classifier).__name__ == "HistGradientBoostingClassifier":
        return float(np.ravel(classifier._baseline_prediction)[0])
    return float(classifier._raw_predict_init(np.zeros((1, columns), dtype="float32"))[0, 0])


def _hist_tree(nodes: np.ndarray) -> Tree:
    return Tree(
        nodes["feature_idx"].astype("int64"),
        nodes["num_threshold"].astype("float64"),
        nodes["left"].astype("int64"),
        nodes["right"].astype("int64"),
        nodes["is_leaf"].astype(bool),
        nodes["value"].astype("float64"),
        nodes["count"].astype("float64"),
        float32=False,
        missing_left=nodes["missing_go_to_left"].astype(bool),
    )


def _decision_tree(tree: Any, scale: float) -> Tree:
    # scikit-learn adds scale x value, one product a leaf
    return _sklearn_tree(tree, tree.value[:, 0, 0].astype("float64") * scale)


def forest_trees(forest: Any) -> list[Tree]:
    """A binary random forest's (or extra trees') trees, each leaf's value its churn fraction
    divided by the number of trees: the forest's probability is the sum of their outputs."""
    trees = [estimator.tree_ for estimator in forest.estimators_]
    count = len(trees)
    return [_sklearn_tree(tree, churn_fractions(tree) / count, tree.missing_go_to_left.astype(bool)) for tree in trees]


def churn_fractions(tree: Any) -> np.ndarray:
    """Per node of a fitted classification tree, its class fractions normalised as the tree's
    `predict_proba` normalises them: the churn class's."""
    values = tree.value[:, 0, :]
    normaliser = values.sum(axis=1)
    normaliser[normaliser == 0.0] = 1.0
    return np.asarray(values[:, 1] / normaliser, dtype="float64")


def _sklearn_tree(tree: Any, value: np.ndarray, missing_left: np.ndarray | None = None) -> Tree:
    """A scikit-learn tree's arrays with the given node values (its input compared as float32)."""
    return Tree(
        tree.feature.astype("int64"),
        tree.threshold.astype("float64"),
        tree.children_left.astype("int64"),
        tree.children_right.astype("int64"),
        tree.children_left < 0,
        value,
        tree.weighted_n_node_samples.astype("float64"),
        float32=True,
        missing_left=missing_left,
    )


@dataclass(frozen=True)
class _Condition:
    """`column <= threshold` on a preprocessed column (a missing value: `missing_left`)."""

    column: int
    threshold: float
    missing_left: bool


def imputed_and_scaled(values: np.ndarray, fill: float, mean: float | None, scale: float | None) -> np.ndarray:
    """A numeric column as a fitted SimpleImputer + StandardScaler leave it, step for step."""
    values = values.copy()
    values[np.isnan(values)] = fill
    if mean is not None and scale is not None:
        values -= mean  # the same two in-place steps as StandardScaler.transform
        values /= scale
    return values


class _Columns:
    """The preprocessed columns the trees compare, read from cleaned features without building
    the preprocessed matrix. `inputs`, in the order of the preprocessed columns: a numeric input
    {column, fill, mean, scale} is one column; a categorical one {column, categories, fill,
    positions, width} is `width` one-hot columns, `positions` giving each training category's."""

    def __init__(self, inputs: list[dict[str, Any]]) -> None:
        self.inputs = inputs
        self.numeric: dict[int, int] = {}  # preprocessed column -> its input
        self.onehot: dict[int, tuple[int, int]] = {}  # preprocessed column -> (its input, its output there)
        self.positions = [np.asarray(item.get("positions", []), dtype="int64") for item in inputs]
        offset = 0
        for i, item in enumerate(inputs):
            if "categories" in item:
                self.onehot |= {offset + output: (i, output) for output in range(item["width"])}
                offset += item["width"]
            else:
                self.numeric[offset] = i
                offset += 1
        self.width = offset

    def read(self, features: FeatureTable, used: set[int], float32: bool) -> dict[Any, np.ndarray]:
        """For every row: the used numeric columns (by preprocessed column) and, by input, the
        position its category sets among the input's one-hot columns (-1: none)."""
        found: dict[Any, np.ndarray] = {}
        for column in used & set(self.numeric):
            item = self.inputs[self.numeric[column]]
            values = imputed_and_scaled(features.numbers[item["column"]], item["fill"], item["mean"], item["scale"])
            found[column] = values.astype("float32").astype("float64") if float32 else values
        for i in {self.onehot[column][0] for column in used & set(self.onehot)}:
            item = self.inputs[i]
            codes = category_codes(features.coded[item["column"]], item["categories"], item["fill"])
            found[("input", i)] = np.where(codes >= 0, self.positions[i][np.maximum(codes, 0)], -1)
        return found


class ShallowTrees:
    """The margin of boosted trees of at most 8 internal nodes each, from cleaned features."""

    def __init__(self, trees: list[Tree], start: float, inputs: list[dict[str, Any]]) -> None:
        self.start, self.trees = start, trees
        self.columns = _Columns(inputs)
        self.float32 = any(tree.float32 for tree in trees)
        conditions: dict[_Condition, int] = {}
        self.node_condition = np.full((len(trees), MAX_TREE_NODES), -1, dtype="int64")
        self.outputs = np.zeros((len(trees), 1 << MAX_TREE_NODES))
        for t, tree in enumerate(trees):
            nodes = tree.internal_nodes()
            for b, node in enumerate(nodes):
                missing_left = tree.missing_left is not None and bool(tree.missing_left[node])
                key = _Condition(int(tree.feature[node]), float(tree.threshold[node]), missing_left)
                self.node_condition[t, b] = conditions.setdefault(key, len(conditions))
            self.outputs[t] = _outputs_by_outcome(tree, nodes)
        self.conditions = list(conditions)
        self.node_condition[self.node_condition < 0] = len(self.conditions)  # unused bits: a row never met
        self.used = {condition.column for condition in self.conditions}
        self.bits = max(max((len(tree.internal_nodes()) for tree in trees), default=1), 1)
        self._nodes = [  # per tree, as Python lists for `_walk` (a leaf's left child: -1)
            (
                tree.feature.tolist(),
                tree.threshold.tolist(),
                np.where(tree.leaf, -1, tree.left).tolist(),
                tree.right.tolist(),
                tree.value.tolist(),
                (tree.missing_left if tree.missing_left is not None else np.zeros(len(tree.leaf), bool)).tolist(),
            )
            for tree in trees
        ]

    @classmethod
    def of(cls, classifier: Any, inputs: list[dict[str, Any]] | None) -> ShallowTrees | None:
        """The evaluator of a boosted classifier's trees over preprocessing `inputs`, or None: no
        inputs (preprocessing that does not compile), not binary boosting, a categorical split,
        or a tree with more than 8 internal nodes."""
        trees = shallow_trees(classifier) if inputs is not None else None
        if trees is None or inputs is None:
            return None
        return cls(trees, boosted_start(classifier, _Columns(inputs).width), inputs)

    def to_dict(self) -> dict[str, Any]:
        """The evaluator as JSON-ready tables (`from_dict` rebuilds it, numpy only)."""
        return {"start": self.start, "inputs": self.columns.inputs, "trees": [tree.to_dict() for tree in self.trees]}

    @classmethod
    def from_dict(cls, tables: dict[str, Any]) -> ShallowTrees:
        return cls([Tree.from_dict(tree) for tree in tables["trees"]], float(tables["start"]), tables["inputs"])

    def margin(self, features: FeatureTable, threads: int = 1) -> np.ndarray:
        """The model's margin (log-odds of churn) per row, equal to its `decision_function`; rows
        are scored a slice at a time on `threads` threads (the same numbers whatever the count)."""
        columns = self.columns.read(features, self.used, self.float32)
        if len(features) <= FEW_ROWS:
            return np.asarray([self._walk(self._row(columns, row)) for row in range(len(features))], dtype="float64")
        return self.margin_of_columns(columns, len(features), threads)

    def margin_of_columns(self, columns: dict[Any, np.ndarray], rows: int, threads: int = 1) -> np.ndarray:
        """The margin from the used columns as `_Columns.read` gives them (a matrix's own
        columns, for `of_matrix`), a slice of rows at a time."""
        out = np.empty(rows)

        def score_slice(start: int) -> None:
            part = {key: values[start : start + SLICE_ROWS] for key, values in columns.items()}
            out[start : start + SLICE_ROWS] = self._margin(part, len(out[start : start + SLICE_ROWS]))

        in_slices(score_slice, range(0, rows, SLICE_ROWS), threads)
        return out

    @classmethod
    def of_matrix(cls, classifier: Any, width: int) -> ShallowTrees | None:
        """The evaluator of a boosted classifier fitted on a plain matrix of `width` columns, each
        compared as it is (`margin_of_columns` takes them by position), or None as for `of`."""
        return cls.of(classifier, [{"column": c, "fill": 0.0, "mean": None, "scale": None} for c in range(width)])

    def _row(self, columns: dict[Any, np.ndarray], row: int) -> dict[int, float]:
        """One row's used preprocessed columns as Python floats (a one-hot column's 1.0 or 0.0)."""
        found = {column: float(columns[column][row]) for column in self.used if column in self.columns.numeric}
        for column in self.used & set(self.columns.onehot):
            i, output = self.columns.onehot[column]
            found[column] = 1.0 if columns[("input", i)][row] == output else 0.0
        return found

    def _walk(self, row: dict[int, float]) -> float:
        """One row's margin, tree by tree in Python floats: for a request's few rows, where each
        numpy call would cost more than the whole walk. The same comparisons, the same additions
        in the same order, so the same bits as `_margin` (tested)."""
        margin = self.start
        for feature, threshold, left, right, value, missing_left in self._nodes:
            node = 0
            while left[node] >= 0:
                x = row[feature[node]]
                goes_left = x <= threshold[node] or (x != x and missing_left[node])  # x != x: missing
                node = left[node] if goes_left else right[node]
            margin += value[node]
        return margin

    def _margin(self, columns: dict[Any, np.ndarray], rows: int) -> np.ndarray:
        outcomes = self._outcomes(columns, rows).view(np.uint8)  # conditions (+ one never met) x rows (padded)
        packed = outcomes[self.node_condition[:, 0]]  # trees x rows: bit b, the outcome at a tree's b-th node
        bit = np.empty_like(packed)
        # Each byte is 0 or 1, so shifting 8 of them at once as one 64-bit word by b < 8 places
        # moves every byte's bit to bit b of that same byte: eight rows per operation.
        packed_words, bit_words = packed.view(np.uint64), bit.view(np.uint64)
        for b in range(1, self.bits):
            np.take(outcomes, self.node_condition[:, b], axis=0, out=bit)
            bit_words <<= np.uint64(b)
            packed_words |= bit_words
        margin, values = np.full(rows, self.start), np.empty(rows)
        for outputs, outcome in zip(self.outputs, packed[:, :rows], strict=True):
            np.take(outputs, outcome, out=values)
            margin += values  # tree after tree, as scikit-learn adds them
        return margin

    def _outcomes(self, columns: dict[Any, np.ndarray], rows: int) -> np.ndarray:
        """Whether each row meets each condition, as conditions x rows, the rows padded to a
        multiple of 8 with rows that meet none."""
        outcomes = np.zeros((len(self.conditions) + 1, -(-rows // 8) * 8), dtype=bool)
        for u, condition in enumerate(self.conditions):
            row = outcomes[u, :rows]  # each comparison written in place: no temporary per condition
            if condition.column in self.columns.numeric:
                values = columns[condition.column]
                np.less_equal(values, condition.threshold, out=row)
                if condition.missing_left:
                    row |= np.isnan(values)
            else:  # a one-hot column is 1.0 or 0.0, never missing
                i, output = self.columns.onehot[condition.column]
                if_hot, if_not = 1.0 <= condition.threshold, 0.0 <= condition.threshold
                if if_hot == if_not:
                    row[:] = if_hot
                else:
                    (np.equal if if_hot else np.not_equal)(columns[("input", i)], output, out=row)
        return outcomes


class ForestWalk:
    """A random forest's churn probability for a few rows at a time, all trees walked at once.

    scikit-learn's forest calls each tree in turn, some 40 microseconds apiece, which is most of
    the time one row takes through a 300-tree forest. Here one numpy step moves every (tree, row)
    pair one level down, so a row costs about as many steps as the deepest tree. The numbers are
    scikit-learn's to the last bit: inputs compared as float32, each leaf's class fractions
    normalised as the tree's `predict_proba` does, added tree after tree and divided by their
    count as the forest does."""

    def __init__(self, forest: Any) -> None:
        trees = [estimator.tree_ for estimator in forest.estimators_]
        sizes = np.asarray([tree.node_count for tree in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.roots = offsets
        self.feature = np.concatenate([np.maximum(tree.feature, 0) for tree in trees]).astype("intp")
        self.threshold = np.concatenate([tree.threshold for tree in trees])
        self.leaf = np.concatenate([tree.children_left < 0 for tree in trees])
        self.left = np.concatenate(
            [np.where(t.children_left < 0, 0, t.children_left) + o for t, o in zip(trees, offsets, strict=True)]
        )
        self.right = np.concatenate(
            [np.where(t.children_right < 0, 0, t.children_right) + o for t, o in zip(trees, offsets, strict=True)]
        )
        self.left[self.leaf] = np.flatnonzero(self.leaf)  # a leaf stays where it is
        self.right[self.leaf] = np.flatnonzero(self.leaf)
        self.missing_left = np.concatenate([tree.missing_go_to_left.astype(bool) for tree in trees])
        self.churn_fraction = np.concatenate([churn_fractions(tree) for tree in trees])  # per leaf
        self.depth = max(tree.max_depth for tree in trees)

    @classmethod
    def of(cls, classifier: Any) -> ForestWalk | None:
        """The walk of a binary random forest (or extra trees) classifier; None for anything else."""
        if type(classifier).__name__ not in FORESTS or len(getattr(classifier, "classes_", ())) != 2:
            return None
        if getattr(classifier, "n_outputs_", 1) != 1:
            return None
        return cls(classifier)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probability per row of the preprocessed matrix, as `forest.predict_proba(matrix)[:, 1]`."""
        values = matrix.astype("float32").astype("float64")  # the forest compares float32 inputs
        rows = np.arange(len(matrix))[None, :]
        nodes = np.repeat(self.roots[:, None], len(matrix), axis=1)  # trees x rows
        for _ in range(self.depth):
            value = values[rows, self.feature[nodes]]
            goes_left = np.where(np.isnan(value), self.missing_left[nodes], value <= self.threshold[nodes])
            nodes = np.where(goes_left, self.left[nodes], self.right[nodes])
        total = np.zeros(len(matrix))
        for fractions in self.churn_fraction[nodes]:  # tree after tree, as the forest adds them
            total += fractions
        return total / len(self.roots)


class TreeScorer:
    """A boosted-trees run scored from its exported tables (`trees.json`), numpy only: the
    cleaning spec, the threshold and the `ShallowTrees` evaluator. Its margins are the saved
    model's to the last bit; the probability is the logistic function of them (numpy's exp,
    within one unit in the last place of scikit-learn's). `compiled()` loads the saved model
    itself, for what needs it (explanations), once."""

    def __init__(self, tables: dict[str, Any], compiled: Callable[[], Any], threads: int = 1) -> None:
        self.spec = FeatureSpec.from_dict(tables["features"])
        self.threshold = float(tables["threshold"])
        self.trees = ShallowTrees.from_dict(tables)
        self.threads = threads
        self._compiled = compiled
        self._loaded: Any = None

    def score_clean(self, features: FeatureTable) -> np.ndarray:
        return sigmoid(self.trees.margin(features, self.threads))

    def compiled(self) -> Any:
        """The run's saved model as a `churn.scoring.compiling.FastScorer`, loaded on first use."""
        if self._loaded is None:
            self._loaded = self._compiled()
        return self._loaded


def in_slices(score_slice: Callable[[int], None], starts: range, threads: int) -> None:
    """Run `score_slice` for each start, on `threads` threads when there is more than one slice
    (numpy and scikit-learn's tree code release the GIL)."""
    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(score_slice, starts))
    else:
        for start in starts:
            score_slice(start)


def _outputs_by_outcome(tree: Tree, nodes: list[int]) -> np.ndarray:
    """The tree's output for each combination of its internal nodes' outcomes (bit b set: the row
    goes left at nodes[b])."""
    bit_of = {node: b for b, node in enumerate(nodes)}
    outputs = np.zeros(1 << MAX_TREE_NODES)
    for pattern in range(1 << len(nodes)):
        node = 0
        while not tree.leaf[node]:
            went_left = (pattern >> bit_of[node]) & 1
            node = int(tree.left[node] if went_left else tree.right[node])
        outputs[pattern] = tree.value[node]
    # the unused high bits are never set (their condition is the padding row, never met)
    return outputs
