"""Path-dependent TreeSHAP (Lundberg et al. 2020) of churn's tree models, over the fitted trees.

Gradient boosting (histogram or classic) grows trees of a few levels. A leaf's part of a
feature's Shapley value depends on a row only through which of its path's conditions the row
meets, so each leaf's parts are computed once for every such pattern (at most 2^k for the k
features on its path; see FastTreeSHAP, Yang 2022) and explaining a row is a table look-up per
leaf: `LeafTables`. Random forests grow trees far too deep for per-leaf tables; they (and
boosting with more features a path than tables are practical for) are explained by one exact
walk of each tree for many rows at a time (`deep_trees`, `churn.explain.pathshap`).

The tables give the contributions of the model's transformed columns (one-hot columns
included), which `churn.explain.explainers` sums per original input column; the walk adds them
into the input columns as it goes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from churn.explain.pathshap import PathShap
from churn.scoring.trees import FORESTS, MAX_TREE_NODES, Tree, boosted_start, boosted_trees, forest_trees

MAX_TABLE_FEATURES = 6  # per-leaf tables of up to 2^6 patterns; trees with more per path are walked
SLICE_BYTES = 64 * 2**20  # rows are explained a slice at a time: its arrays stay about this size


class GroupSums:
    """Sums of a matrix's columns by group, each row on its own: the same numbers for a row
    whatever else is in the batch (a matrix product's blocking would make the last bit of a
    row's sums depend on how many rows it was multiplied with)."""

    def __init__(self, group_of: np.ndarray, groups: int) -> None:
        used = np.flatnonzero(group_of >= 0)
        self.order = used[np.argsort(group_of[used], kind="stable")]
        sorted_groups = group_of[self.order]
        self.targets, self.starts = np.unique(sorted_groups, return_index=True)
        self.groups = groups

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        """The group sums of a rows x items matrix, as rows x groups."""
        out = np.zeros((matrix.shape[0], self.groups))
        if len(self.order):
            out[:, self.targets] = np.add.reduceat(matrix[:, self.order], self.starts, axis=1)
        return out

    def over_items(self, items: np.ndarray) -> np.ndarray:
        """The group sums of an items x rows matrix whose items are already in group order, as
        rows x groups: each row's items of a group added one after the other, in that order."""
        out = np.zeros((items.shape[1], self.groups))
        ends = [*self.starts[1:], len(self.order)]
        for target, start, end in zip(self.targets, self.starts, ends, strict=True):
            out[:, target] = items[start:end].sum(axis=0)
        return out


def features_per_path(trees: Sequence[Tree]) -> int:
    return max(len({int(tree.feature[n]) for n, _ in path}) for tree in trees for _, path in tree.paths())


def leaf_table(value: float, zeros: Sequence[float]) -> np.ndarray:
    """A leaf's part of each of its path's k features' Shapley values, for each of the 2^k
    patterns of the conditions a row meets (bit j set: the row meets every condition on feature j).

    In the path-dependent game a leaf is worth value x prod_d (1 if d is known and met, 0 if known
    and missed, `zeros[d]` (the share of the training cover that goes this way) if unknown);
    feature j's Shapley value is value x (o_j - z_j) x sum over S of w(|S|) x prod_{d in S} o_d x
    prod_{d not in S, d != j} z_d, the sum read off the coefficients of prod_{d != j} (z_d + o_d t)."""
    k = len(zeros)
    weights = [math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)]
    table = np.zeros((1 << k, k))
    for pattern in range(1 << k):
        ones = [(pattern >> j) & 1 for j in range(k)]
        for j in range(k):
            polynomial = np.ones(1)
            for d in range(k):
                if d != j:
                    polynomial = np.convolve(polynomial, [zeros[d], ones[d]])
            table[pattern, j] = value * (ones[j] - zeros[j]) * float(np.dot(weights[: len(polynomial)], polynomial))
    return table


@dataclass(frozen=True)
class Leaf:
    """One leaf of a tree and its path: the conditions (internal node, went left, the slot of the
    condition's feature), the transformed column of each slot, and its table (`leaf_table`)."""

    tree: int
    conditions: tuple[tuple[int, bool, int], ...]
    slot_features: tuple[int, ...]
    table: np.ndarray


def leaves_of(trees: Sequence[Tree]) -> tuple[list[Leaf], float]:
    """Every leaf of the trees with its table, and the trees' expected value over their cover."""
    found, expected = [], 0.0
    for t, tree in enumerate(trees):
        for node, path in tree.paths():
            expected += tree.value[node] * tree.cover[node] / tree.cover[0]
            slots = list(dict.fromkeys(int(tree.feature[n]) for n, _ in path))
            zeros = np.ones(len(slots))
            conditions = []
            for n, went_left in path:
                j = slots.index(int(tree.feature[n]))
                zeros[j] *= tree.cover[tree.left[n] if went_left else tree.right[n]] / tree.cover[n]
                conditions.append((n, went_left, j))
            table = leaf_table(float(tree.value[node]), zeros.tolist())
            found.append(Leaf(t, tuple(conditions), tuple(slots), table))
    return found, expected


class _Conditions:
    """Whether each row goes left at each internal node of the trees, as nodes x rows."""

    def __init__(self, trees: Sequence[Tree], nodes: Sequence[tuple[int, int]]) -> None:
        feature = np.asarray([trees[t].feature[n] for t, n in nodes], dtype="int64")
        self.threshold = np.asarray([trees[t].threshold[n] for t, n in nodes], dtype="float64")
        self.float32 = any(trees[t].float32 for t, _ in nodes)  # one model's trees are all of one kind
        self.nodes = len(nodes)
        # each feature compared with all its nodes' thresholds at once: no copy of values per node
        self.by_feature = [(int(f), np.flatnonzero(feature == f)) for f in np.unique(feature)]

    def goes_left_t(self, matrix_t: np.ndarray) -> np.ndarray:
        """Of the transposed matrix (columns x rows); one more row at the end, never left (padding)."""
        if self.float32:  # scikit-learn's decision trees compare the input cast to float32
            matrix_t = matrix_t.astype("float32").astype("float64")
        left = np.zeros((self.nodes + 1, matrix_t.shape[1]), dtype=bool)
        for feature, nodes in self.by_feature:
            left[nodes] = matrix_t[feature][None, :] <= self.threshold[nodes, None]
        return left


class NodeTables:
    """Exact path-dependent TreeSHAP of small boosted trees (at most 8 internal nodes each, as
    trees of depth 3 are), from per-tree tables.

    Whether a row goes left or right at each of a tree's n internal nodes decides which
    conditions of every leaf's path it meets, so the tree's whole contribution to each input
    column is one of 2^n numbers, summed from its leaves' tables once. Explaining a row is
    then, per tree, its n comparisons packed into a byte and one look-up per input column the
    tree uses; rows run along the last axis throughout, so every gather copies contiguous runs.
    """

    def __init__(self, trees: Sequence[Tree], constant: float, column_of: np.ndarray, columns: int) -> None:
        leaves, expected = leaves_of(trees)
        per_tree = [
            sorted({n for leaf in leaves if leaf.tree == t for n, _, _ in leaf.conditions}) for t in range(len(trees))
        ]
        nodes = [(t, n) for t, own in enumerate(per_tree) for n in own]
        self.conditions = _Conditions(trees, nodes)
        width = max(max(map(len, per_tree)), 1)
        position = {key: i for i, key in enumerate(nodes)}
        self.node_index = np.full((len(trees), width), len(nodes), dtype="int64")  # padding: never left
        for t, own in enumerate(per_tree):
            self.node_index[t, : len(own)] = [position[(t, n)] for n in own]
        tables = self._tree_tables(leaves, per_tree, column_of, columns, width)
        pairs = sorted((column, t) for t, column in zip(*np.nonzero(tables.any(axis=2)), strict=True))  # (input, tree)
        self.pair_tree = np.asarray([t for _, t in pairs], dtype="int64")
        self.pair_tables = np.stack([tables[t, c] for c, t in pairs]) if pairs else np.zeros((0, 1 << width))
        self.pair_offsets = (np.arange(len(pairs)) << width)[:, None]
        self.to_columns = GroupSums(np.asarray([c for c, _ in pairs], dtype="int64"), columns)
        self.base = constant + expected
        self.slice_rows = int(np.clip(SLICE_BYTES // max(len(pairs) * 24 + len(nodes), 1), 16, 8192))

    @staticmethod
    def _tree_tables(
        leaves: list[Leaf], per_tree: list[list[int]], column_of: np.ndarray, columns: int, width: int
    ) -> np.ndarray:
        """trees x input columns x 2^width: each tree's contribution to each input column, for
        each combination of its nodes' outcomes (bit b: the row goes left at its b-th node)."""
        tables = np.zeros((len(per_tree), columns, 1 << width))
        for leaf in leaves:
            own = per_tree[leaf.tree]
            combos = (np.arange(1 << len(own))[:, None] >> np.arange(len(own))) & 1
            pattern = np.full(len(combos), (1 << len(leaf.slot_features)) - 1)
            for n, went_left, j in leaf.conditions:
                pattern &= ~np.where(combos[:, own.index(n)].astype(bool) != went_left, 1 << j, 0)
            parts = leaf.table[pattern]
            for j, feature in enumerate(leaf.slot_features):
                tables[leaf.tree, int(column_of[feature]), : len(combos)] += parts[:, j]
        return tables

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Contributions of each input column to each row's margin (rows x input columns)."""
        return _sliced(self._slice, matrix, self.slice_rows, self.to_columns.groups)

    def _slice(self, matrix: np.ndarray) -> np.ndarray:
        left = self.conditions.goes_left_t(np.ascontiguousarray(matrix.T))  # nodes x rows
        bits = left[self.node_index].view(np.uint8)  # trees x nodes of the tree x rows
        packed = np.zeros(bits[:, 0].shape, dtype=np.uint8)
        for b in range(bits.shape[1]):
            packed |= bits[:, b] << b
        parts = self.pair_tables.ravel()[self.pair_offsets + packed[self.pair_tree]]  # (input, tree) x rows
        return self.to_columns.over_items(parts)


class LeafTables:
    """Exact path-dependent TreeSHAP of boosted trees with more nodes, from per-leaf tables:
    per leaf, which of its path's conditions a row meets picks one of its table's 2^k rows."""

    def __init__(self, trees: Sequence[Tree], constant: float, column_of: np.ndarray, columns: int) -> None:
        leaves, expected = leaves_of(trees)
        self.k = max(max(len(leaf.slot_features) for leaf in leaves), 1)
        depth = max(max(len(leaf.conditions) for leaf in leaves), 1)
        nodes = sorted({(leaf.tree, n) for leaf in leaves for n, _, _ in leaf.conditions})
        position = {key: i for i, key in enumerate(nodes)}
        self.conditions = _Conditions(trees, nodes)
        self.path_nodes = np.zeros((len(leaves), depth), dtype="int64")
        self.path_left = np.ones((len(leaves), depth), dtype=bool)
        self.path_bit = np.zeros((len(leaves), depth), dtype="int64")  # 0: padding, never missed
        tables = np.zeros((len(leaves), 1 << self.k, self.k))
        group_of = np.full((len(leaves), self.k), -1, dtype="int64")  # the input column of each slot
        for i, leaf in enumerate(leaves):
            for c, (n, went_left, j) in enumerate(leaf.conditions):
                self.path_nodes[i, c], self.path_left[i, c] = position[(leaf.tree, n)], went_left
                self.path_bit[i, c] = 1 << j
            size = len(leaf.slot_features)
            group_of[i, :size] = column_of[list(leaf.slot_features)]
            always = (1 << self.k) - (1 << size)  # slots past the path's own are always "met"
            tables[i, np.arange(1 << size) + always, :size] = leaf.table
        self.tables = tables.reshape(len(leaves) << self.k, self.k)
        self.offsets = np.arange(len(leaves)) << self.k
        self.to_columns = GroupSums(group_of.ravel(), columns)
        self.base = constant + expected
        self.slice_rows = int(np.clip(SLICE_BYTES // (len(leaves) * (self.k + depth) * 8), 16, 8192))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Contributions of each input column to each row's margin (rows x input columns)."""
        return _sliced(self._slice, matrix, self.slice_rows, self.to_columns.groups)

    def _slice(self, matrix: np.ndarray) -> np.ndarray:
        goes_left = self.conditions.goes_left_t(np.ascontiguousarray(matrix.T)).T  # rows x nodes
        missed = np.zeros((matrix.shape[0], self.path_nodes.shape[0]), dtype="int64")
        for c in range(self.path_nodes.shape[1]):  # bit j of missed: a condition on slot j failed
            failed = goes_left[:, self.path_nodes[:, c]] != self.path_left[:, c]
            missed |= np.where(failed, self.path_bit[:, c], 0)
        pattern = ((1 << self.k) - 1) & ~missed  # rows x leaves
        parts = self.tables[self.offsets + pattern]  # rows x leaves x slots
        return self.to_columns(parts.reshape(matrix.shape[0], -1))


def _sliced(explain: Any, matrix: np.ndarray, rows: int, columns: int) -> np.ndarray:
    out = np.empty((matrix.shape[0], columns))
    for start in range(0, matrix.shape[0], rows):
        out[start : start + rows] = explain(matrix[start : start + rows])
    return out


def boosted_tables(classifier: Any, column_of: np.ndarray, columns: int) -> NodeTables | LeafTables | None:
    """Exact TreeSHAP tables of a gradient-boosting classifier, or None when its paths hold more
    features than tables are practical for. `column_of` maps each transformed column to its
    input column."""
    trees, _ = boosted_trees(classifier)
    if features_per_path(trees) > MAX_TABLE_FEATURES:
        return None
    constant = boosted_start(classifier, len(column_of))
    small = all(int((~tree.leaf).sum()) <= MAX_TREE_NODES for tree in trees)  # NodeTables' packed byte
    return (NodeTables if small else LeafTables)(trees, constant, column_of, columns)


def deep_trees(classifier: Any, column_of: np.ndarray, columns: int, threads: int = 1) -> PathShap:
    """Exact TreeSHAP of a random forest's trees, or of boosted trees too deep for tables, by the
    quadrature walk of `churn.explain.pathshap`."""
    if type(classifier).__name__ in FORESTS:
        return PathShap(forest_trees(classifier), 0.0, column_of, columns, threads)
    trees, _ = boosted_trees(classifier)
    return PathShap(trees, boosted_start(classifier, len(column_of)), column_of, columns, threads)
