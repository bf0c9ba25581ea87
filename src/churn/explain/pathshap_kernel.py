"""The loops of `churn.explain.pathshap._numpy_block`, element by element, for numba to compile.

Every arithmetic step is the numpy function's, in the same order (products left to right, sums
over the quadrature points from 0.0, one after the other), so both give the same bits (tested):
numba compiles without fast-math, so nothing is reordered or fused. Arrays are indexed in place,
never sliced into views: numba counts a reference for each view, which cost more than the
arithmetic at every (node, point) step (measured: a block of 64 rows 2.6x slower).
"""

# ruff: noqa: N806  (P, T, Sub: the names of the module docstring of churn.explain.pathshap)

from __future__ import annotations

import numpy as np

Nodes = tuple[np.ndarray, ...]  # churn.explain.pathshap's, in its `_arguments` order
Quadrature = tuple[np.ndarray, np.ndarray, np.ndarray]


def walk_block(  # noqa: C901, PLR0912, PLR0915  (one walk; numba compiles a single function best)
    xt: np.ndarray, column_of: np.ndarray, out_t: np.ndarray, nodes: Nodes, quadrature: Quadrature
) -> None:
    depth, feature, threshold, missing_left, is_left, pfeat, zc, zp, value, need_sub, sub_level, starts = nodes
    points, weights, point_start = quadrature
    rows = xt.shape[1]
    levels = 2
    for i in range(len(depth)):
        levels = max(levels, depth[i] + 2)
    most = 1
    for tree in range(len(point_start) - 1):
        most = max(most, point_start[tree + 1] - point_start[tree])
    P = np.zeros((levels, most, rows))
    T = np.zeros((levels, most, rows))
    Sub = np.zeros((levels, most, rows))
    meets = np.ones((xt.shape[0], rows))
    saved = np.ones((levels, rows))
    now = np.ones((levels, rows))
    acc = np.zeros(rows)
    node_at = np.zeros(levels, dtype=np.int64)
    for tree in range(len(starts) - 1):
        first = point_start[tree]
        q_count = point_start[tree + 1] - first
        end = starts[tree + 1]
        top = -1
        for i in range(starts[tree], end + 1):
            d = depth[i] if i < end else 0
            while top >= d and top >= 0:  # close the nodes whose subtrees are done
                m = node_at[top]
                if sub_level[m] >= 0:
                    level = sub_level[m]
                    for q in range(q_count):
                        for r in range(rows):
                            Sub[level, q, r] += T[top, q, r]
                if top > 0:
                    z = zc[m]
                    for r in range(rows):
                        acc[r] = 0.0
                    for q in range(q_count):
                        t, w = points[first + q], weights[first + q]
                        w1 = w * (1.0 - z) / (z + (1.0 - z) * t)
                        w0 = -w / (1.0 - t)
                        dw = w1 - w0
                        if need_sub[m]:
                            for r in range(rows):
                                acc[r] += (T[top, q, r] - Sub[top, q, r]) * (w0 + now[top, r] * dw)
                                T[top - 1, q, r] += T[top, q, r]
                        else:
                            for r in range(rows):
                                acc[r] += T[top, q, r] * (w0 + now[top, r] * dw)
                                T[top - 1, q, r] += T[top, q, r]
                    target, feature_m = column_of[pfeat[m]], pfeat[m]
                    for r in range(rows):
                        out_t[target, r] += acc[r]
                        meets[feature_m, r] = saved[top, r]
                top -= 1
            if i == end:
                break
            if d == 0:
                top = 0
                node_at[0] = i
                for q in range(q_count):
                    for r in range(rows):
                        P[0, q, r] = 1.0
                        T[0, q, r] = 0.0
                continue
            j = pfeat[i]
            z = zc[i]
            previous = zp[i]
            cut, left, missing_goes_left = threshold[i], is_left[i], missing_left[i]
            for r in range(rows):
                x = xt[j, r]
                goes_left = (x <= cut) or (missing_goes_left and np.isnan(x))
                saved[d, r] = meets[j, r]
                now[d, r] = meets[j, r] if goes_left == left else 0.0
            leaf = feature[i] < 0
            if leaf:
                for r in range(rows):
                    acc[r] = 0.0
            for q in range(q_count):
                t = points[first + q]
                f0 = z * (1.0 - t)
                df = z + (1.0 - z) * t - f0
                g0 = 1.0
                dg = 0.0
                if previous > 0:
                    g1 = 1.0 / (previous + (1.0 - previous) * t)
                    g0 = 1.0 / (previous * (1.0 - t))
                    dg = g1 - g0
                if leaf:  # its product, its share to j and to its parent's sum at once
                    v = value[i]
                    f0, df = f0 * v, (z + (1.0 - z) * t) * v - f0 * v
                    w = weights[first + q]
                    w1 = w * (1.0 - z) / (z + (1.0 - z) * t)
                    w0 = -w / (1.0 - t)
                    dw = w1 - w0
                    if previous > 0:
                        for r in range(rows):
                            product = P[d - 1, q, r] * (f0 + now[d, r] * df) * (g0 + saved[d, r] * dg)
                            acc[r] += product * (w0 + now[d, r] * dw)
                            T[d - 1, q, r] += product
                    else:
                        for r in range(rows):
                            product = P[d - 1, q, r] * (f0 + now[d, r] * df)
                            acc[r] += product * (w0 + now[d, r] * dw)
                            T[d - 1, q, r] += product
                else:
                    if previous > 0:
                        for r in range(rows):
                            P[d, q, r] = P[d - 1, q, r] * (f0 + now[d, r] * df) * (g0 + saved[d, r] * dg)
                    else:
                        for r in range(rows):
                            P[d, q, r] = P[d - 1, q, r] * (f0 + now[d, r] * df)
                    for r in range(rows):
                        T[d, q, r] = 0.0
                    if need_sub[i]:
                        for r in range(rows):
                            Sub[d, q, r] = 0.0
            if leaf:
                target = column_of[j]
                for r in range(rows):
                    out_t[target, r] += acc[r]
                continue
            top = d
            node_at[d] = i
            for r in range(rows):
                meets[j, r] = now[d, r]
