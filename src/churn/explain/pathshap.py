"""Exact path-dependent TreeSHAP of deep trees (random forests; boosting too deep for tables),
by Gauss-Legendre quadrature over each tree once, for many rows at a time.

In the path-dependent game (Lundberg et al. 2020) a leaf l is worth v_l x prod over the features
d on its path of F_d(t), F_d(t) = z_d (1 - t) + o_d t, where z_d is the share of the training
cover that follows the path's conditions on d and o_d is 1 when the row meets all of them, else
0. Feature j's Shapley value is the sum over leaves of

    v_l (o_j - z_j) x integral over [0, 1] of prod_{d != j} F_d(t) dt

(the Shapley weights |S|! (k - |S| - 1)! / k! are the Beta integrals of t^|S| (1 - t)^(k-|S|-1)).
The integrand is a polynomial of degree k - 1 for a path with k features, so Q = ceil(k / 2)
Gauss-Legendre points integrate it exactly. One walk down a tree keeps, per row and point, the
product along the path (`P`); one walk up sums the leaves' products under each node (`T`); the
edge into a node on feature j adds its leaves' share to j, less the leaves under a deeper split
on j (their last condition on j is further down: `Sub`). That is O(nodes x Q) per tree and row,
against TreeSHAP's O(leaves x depth^2), and every (node, point) step is the same arithmetic for
a block of rows, so it runs along contiguous arrays.

One walk for one block of rows is written twice with the same operations in the same order:
numba compiles `churn.explain.pathshap_kernel.walk_block` (the `explain` extra: numba, shap's own
compiler) and `_numpy_block` runs without it, slower but to the same bits (tested). A row's numbers never
depend on the other rows of its block, so a customer's contributions are the same whatever the
batch, the block size or the thread count.
"""

# ruff: noqa: N806  (P, T, Sub: the names of the module docstring)

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from churn.scoring.trees import Tree, in_slices

BLOCK_ROWS = 128  # rows walked down a tree together: long enough runs, a working set in the cache (measured)
NUMPY_BLOCK_ROWS = 4096  # without numba: each node costs numpy calls, paid once for more rows


@dataclass(frozen=True)
class Walk:
    """A tree model's nodes, every tree in preorder, as the walk reads them; per tree, its
    quadrature points and weights. `pfeat` is the feature of the edge into a node (its parent's
    split), `zc` the combined cover share of that feature down to the node, `zp` the share at the
    previous edge on the same feature (-1: none)."""

    depth: np.ndarray
    feature: np.ndarray  # -1 at a leaf
    threshold: np.ndarray  # of the node's parent: the edge's condition
    missing_left: np.ndarray  # of the node's parent
    is_left: np.ndarray
    pfeat: np.ndarray
    zc: np.ndarray
    zp: np.ndarray
    value: np.ndarray
    need_sub: np.ndarray  # the edge has splits on its own feature below it
    sub_level: np.ndarray  # an internal node: the depth of the nearest edge above on its feature, or -1
    starts: np.ndarray  # each tree's first node, and the end
    points: np.ndarray  # each tree's Q points, one after the other
    weights: np.ndarray
    point_start: np.ndarray
    float32: bool

    @property
    def max_depth(self) -> int:
        return int(self.depth.max()) if len(self.depth) else 0


def walk_of(trees: Sequence[Tree]) -> Walk:
    """The walk of trees (their leaves' `value` in the margin explained)."""
    parts = [_preorder(tree) for tree in trees]
    columns = {key: np.concatenate([part[key] for part in parts]) for key in parts[0] if key != "k"}
    sizes = np.asarray([len(part["depth"]) for part in parts])
    quadratures = [_gauss(max(1, math.ceil(part["k"] / 2))) for part in parts]
    point_sizes = np.asarray([len(points) for points, _ in quadratures])
    return Walk(
        **columns,
        starts=np.concatenate([[0], np.cumsum(sizes)]).astype("int64"),
        points=np.concatenate([points for points, _ in quadratures]),
        weights=np.concatenate([weights for _, weights in quadratures]),
        point_start=np.concatenate([[0], np.cumsum(point_sizes)]).astype("int64"),
        float32=any(tree.float32 for tree in trees),
    )


def _gauss(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre points and weights on [0, 1]: exact for polynomials of degree < 2 x points."""
    nodes, weights = np.polynomial.legendre.leggauss(points)
    return (nodes + 1.0) / 2.0, weights / 2.0


def _preorder(tree: Tree) -> dict[str, Any]:
    """One tree's nodes in preorder (left child first), with each edge's cover shares."""
    rows: list[tuple[Any, ...]] = []
    most_features = 0
    stack: list[tuple[int, int, int, bool, dict[int, float]]] = [(0, 0, -1, False, {})]
    while stack:
        node, depth, parent, is_left, shares = stack.pop()
        previous, combined = -1.0, 1.0
        if parent >= 0:
            feature = int(tree.feature[parent])
            previous = shares.get(feature, -1.0)
            combined = float(tree.cover[node] / tree.cover[parent]) * (previous if previous > 0 else 1.0)
            shares = {**shares, feature: combined}
        leaf = bool(tree.leaf[node])
        rows.append((depth, -1 if leaf else int(tree.feature[node]), parent, is_left, combined, previous,
                     float(tree.value[node]) if leaf else 0.0))  # fmt: skip
        if leaf:
            most_features = max(most_features, len(shares))
        else:
            stack.append((int(tree.right[node]), depth + 1, node, False, shares))
            stack.append((int(tree.left[node]), depth + 1, node, True, shares))
    names = ("depth", "feature", "parent", "is_left", "zc", "zp", "value")
    table: dict[str, np.ndarray] = {name: np.asarray(c) for name, c in zip(names, zip(*rows, strict=True), strict=True)}
    has_parent = table["parent"] >= 0
    parents = np.where(has_parent, table["parent"], 0)
    missing = tree.missing_left[parents] if tree.missing_left is not None else np.zeros(len(rows), dtype=bool)
    found: dict[str, Any] = {
        "depth": table["depth"].astype("int64"),
        "feature": table["feature"].astype("int64"),
        "threshold": np.where(has_parent, tree.threshold[parents], 0.0).astype("float64"),
        "missing_left": (missing & has_parent).astype(bool),
        "is_left": table["is_left"].astype(bool),
        "pfeat": np.where(has_parent, tree.feature[parents], -1).astype("int64"),
        "zc": table["zc"].astype("float64"),
        "zp": table["zp"].astype("float64"),
        "value": table["value"].astype("float64"),
        "k": most_features,
    }
    found["sub_level"], found["need_sub"] = _subtractions(found["depth"], found["feature"], found["pfeat"])
    return found


def _subtractions(depth: np.ndarray, feature: np.ndarray, pfeat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per internal node, the depth of the nearest edge above it on its own feature (-1: none):
    its leaves leave that edge's share; per edge, whether any node below hands it such leaves."""
    sub_level = np.full(len(depth), -1, dtype="int64")
    need_sub = np.zeros(len(depth), dtype=bool)
    path: list[int] = []  # the node at each depth on the way to the current one
    for node in range(len(depth)):
        del path[depth[node] :]
        path.append(node)
        if feature[node] < 0:
            continue
        for level in range(depth[node], 0, -1):
            if pfeat[path[level]] == feature[node]:
                sub_level[node] = level
                need_sub[path[level]] = True
                break
    return sub_level, need_sub


Nodes = tuple[np.ndarray, ...]  # a Walk's node arrays, in `_arguments`' order
Quadrature = tuple[np.ndarray, np.ndarray, np.ndarray]  # points, weights, each tree's first point


def _arguments(walk: Walk) -> tuple[Nodes, Quadrature]:
    nodes = (walk.depth, walk.feature, walk.threshold, walk.missing_left, walk.is_left, walk.pfeat, walk.zc, walk.zp,
             walk.value, walk.need_sub, walk.sub_level, walk.starts)  # fmt: skip
    return nodes, (walk.points, walk.weights, walk.point_start)


def _numpy_block(
    xt: np.ndarray, column_of: np.ndarray, out_t: np.ndarray, nodes: Nodes, quadrature: Quadrature
) -> None:
    """One walk of every tree for a block of rows (`xt`: columns x rows), adding each input
    column's contributions into `out_t` (input columns x rows). `pathshap_kernel.walk_block` is this
    function's loops written out element by element: the same operations in the same order."""
    depth, feature, threshold, missing_left, is_left, pfeat, zc, zp, value, need_sub, sub_level, starts = nodes
    points, weights, point_start = quadrature
    rows = xt.shape[1]
    levels = int(depth.max()) + 2 if len(depth) else 2
    most = int(np.diff(point_start).max()) if len(point_start) > 1 else 1
    P, T, Sub = (np.zeros((levels, most, rows)) for _ in range(3))
    meets = np.ones((xt.shape[0], rows))
    saved, now = np.ones((levels, rows)), np.ones((levels, rows))
    node_at = np.zeros(levels, dtype="int64")
    for tree in range(len(starts) - 1):
        t = points[point_start[tree] : point_start[tree + 1]][:, None]
        w = weights[point_start[tree] : point_start[tree + 1]][:, None]
        q = len(t)
        top = -1
        for i in range(starts[tree], starts[tree + 1] + 1):
            d = depth[i] if i < starts[tree + 1] else 0
            while top >= d and top >= 0:  # close the nodes whose subtrees are done
                m = node_at[top]
                if sub_level[m] >= 0:
                    Sub[sub_level[m], :q] += T[top, :q]
                if top > 0:
                    z, on = zc[m], now[top]
                    w1 = w * (1.0 - z) / (z + (1.0 - z) * t)
                    w0 = -w / (1.0 - t)
                    share = T[top, :q] - Sub[top, :q] if need_sub[m] else T[top, :q]
                    out_t[column_of[pfeat[m]]] += _sum_points(share * (w0 + on * (w1 - w0)), rows)
                    T[top - 1, :q] += T[top, :q]
                    meets[pfeat[m]] = saved[top]
                top -= 1
            if i == starts[tree + 1]:
                break
            if d == 0:
                top, node_at[0] = 0, i
                P[0, :q], T[0, :q] = 1.0, 0.0
                continue
            j, z, previous = pfeat[i], zc[i], zp[i]
            x = xt[j]
            goes_left = (x <= threshold[i]) | (np.isnan(x) & missing_left[i])
            saved[d] = meets[j]
            now[d] = np.where(goes_left == is_left[i], meets[j], 0.0)
            f0 = z * (1.0 - t)
            df = z + (1.0 - z) * t - f0
            g0 = g1 = None
            if previous > 0:
                g1 = 1.0 / (previous + (1.0 - previous) * t)
                g0 = 1.0 / (previous * (1.0 - t))
            if feature[i] < 0:  # a leaf: its product, its share to j and to its parent's sum at once
                v = value[i]
                f0, df = f0 * v, (z + (1.0 - z) * t) * v - f0 * v
                product = P[d - 1, :q] * (f0 + now[d] * df)
                if g0 is not None and g1 is not None:
                    product = product * (g0 + saved[d] * (g1 - g0))
                w1 = w * (1.0 - z) / (z + (1.0 - z) * t)
                w0 = -w / (1.0 - t)
                out_t[column_of[j]] += _sum_points(product * (w0 + now[d] * (w1 - w0)), rows)
                T[d - 1, :q] += product
                continue
            top, node_at[d] = d, i
            meets[j] = now[d]
            product = P[d - 1, :q] * (f0 + now[d] * df)
            if g0 is not None and g1 is not None:
                product = product * (g0 + saved[d] * (g1 - g0))
            P[d, :q], T[d, :q] = product, 0.0
            if need_sub[i]:
                Sub[d, :q] = 0.0


def _sum_points(parts: np.ndarray, rows: int) -> np.ndarray:
    """Per row, the sum over the points, added one after the other from 0.0 (as the loops do)."""
    total = np.zeros(rows)
    for part in parts:
        total += part
    return total


@functools.cache
def _compiled_block() -> Callable[..., None] | None:
    """`_numpy_block` compiled by numba (once a process; cached on disk where numba can write),
    or None without numba (the `explain` extra)."""
    try:
        import numba  # deferred: the optional explain extra (llvmlite; a second to import)
    except ImportError:
        return None
    from churn.explain import pathshap_kernel  # numba's loops: only imported with numba

    try:
        return numba.njit(pathshap_kernel.walk_block, cache=True, nogil=True, error_model="numpy", boundscheck=False)
    except RuntimeError:  # nowhere to keep the compiled code (a read-only install): compile each process
        return numba.njit(pathshap_kernel.walk_block, nogil=True, error_model="numpy", boundscheck=False)


class PathShap:
    """Exact path-dependent TreeSHAP of a tree model's trees, summed per input column.

    `base` is the model's expected margin: its `constant` plus each tree's expected leaf value
    over its cover. Rows are explained a block at a time, on `threads` threads when there are
    several blocks (the compiled walk releases the GIL)."""

    def __init__(self, trees: Sequence[Tree], constant: float, column_of: np.ndarray, columns: int,
                 threads: int = 1, compiled: bool = True) -> None:  # fmt: skip
        self.walk = walk_of(trees)
        self.column_of = np.asarray(column_of, dtype="int64")
        self.columns = columns
        self.threads = threads
        self.base = constant + sum(_expected(tree) for tree in trees)
        block = _compiled_block() if compiled else None
        self.compiled = block is not None
        self.block: Callable[..., None] = block if block is not None else _numpy_block
        if self.compiled:  # compiled (or read from numba's cache) now, not in the first request
            self.contributions(np.zeros((1, len(self.column_of))))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Contributions of each input column to each row's margin (rows x input columns), for
        the model's transformed matrix."""
        values = matrix.astype("float32").astype("float64") if self.walk.float32 else matrix
        out = np.zeros((len(values), self.columns))
        bounds = _blocks(len(values), BLOCK_ROWS if self.compiled else NUMPY_BLOCK_ROWS)

        def explain_block(index: int) -> None:
            start, end = bounds[index], bounds[index + 1]
            out_t = np.zeros((self.columns, end - start))
            xt = np.ascontiguousarray(values[start:end].T, dtype="float64")
            self.block(xt, self.column_of, out_t, *_arguments(self.walk))
            out[start:end] = out_t.T

        in_slices(explain_block, range(len(bounds) - 1), self.threads)
        return out


def _blocks(rows: int, most: int) -> np.ndarray:
    """Bounds of about equal blocks of at most `most` rows (no short last block to pay for)."""
    count = max(1, math.ceil(rows / most))
    return np.linspace(0, rows, count + 1).round().astype("int64")


def _expected(tree: Tree) -> float:
    """The tree's mean output over its training cover."""
    return float(np.dot(tree.value[tree.leaf], tree.cover[tree.leaf]) / tree.cover[0])
