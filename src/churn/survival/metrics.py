"""Survival metrics written out, numpy only: Kaplan-Meier, Harrell's and Uno's concordance, and
the integrated Brier score with inverse-probability-of-censoring weights.

Each follows the definition scikit-survival implements (and is tested against it where the dev
environment has it): the same comparable pairs and ties, the same censoring weights.

- Durations are numbers (months of tenure), events 1 where the stay ended (churn) and 0 where
  it was censored (the customer is still active).
- Harrell's C: over pairs (i, j) with an event at T_i and T_j > T_i (or T_j = T_i censored), the
  share where the model ranks i riskier (a tie in risk, within 1e-8, counts one half).
- Uno's C: the same pairs, each weighted by 1 / G(T_i)^2 and only T_i < tau, where G is the
  Kaplan-Meier estimate of *staying uncensored* fitted on the training rows: it undoes the
  weight that censoring gives short durations.
- Brier score at t (Graf et al. 1999): (0 - S(t|x))^2 / G(T_i) for events by t, (1 - S(t|x))^2 /
  G(t) for those still there at t; censored before t: weight 0. The integrated score is its
  trapezoidal integral over the times, divided by their span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TIED_RISK = 1e-8


@dataclass(frozen=True)
class StepFunction:
    """A right-continuous step function: `values[k]` from `times[k]` until the next time, 1
    before the first (a survival curve)."""

    times: np.ndarray
    values: np.ndarray

    def __call__(self, at: np.ndarray | float) -> np.ndarray:
        index = np.searchsorted(self.times, np.asarray(at, dtype="float64"), side="right") - 1
        return np.where(index >= 0, self.values[np.clip(index, 0, None)], 1.0)


def kaplan_meier(durations: np.ndarray, events: np.ndarray) -> StepFunction:
    """The Kaplan-Meier estimate of survival: S(t) = product over event times t_k <= t of
    (1 - events at t_k / at risk at t_k)."""
    durations, events = np.asarray(durations, "float64"), np.asarray(events).astype(bool)
    times, inverse = np.unique(durations, return_inverse=True)
    died = np.bincount(inverse, weights=events, minlength=len(times))
    left = np.bincount(inverse, minlength=len(times))
    at_risk = len(durations) - np.concatenate([[0], np.cumsum(left)[:-1]])
    return StepFunction(times, np.cumprod(1.0 - died / at_risk))


def censoring_survival(durations: np.ndarray, events: np.ndarray) -> StepFunction:
    """G: the Kaplan-Meier estimate of remaining uncensored (censorings as the events). At a time
    where churn and a censoring coincide, the churn comes first: the customers who churned then
    are no longer at risk of being censored then (scikit-survival's `reverse=True`)."""
    durations, events = np.asarray(durations, "float64"), np.asarray(events).astype(bool)
    times, inverse = np.unique(durations, return_inverse=True)
    churned = np.bincount(inverse, weights=events, minlength=len(times))
    censored = np.bincount(inverse, weights=~events, minlength=len(times))
    left = np.bincount(inverse, minlength=len(times))
    at_risk = len(durations) - np.concatenate([[0], np.cumsum(left)[:-1]]) - churned
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - censored / at_risk, 1.0)
    return StepFunction(times, np.cumprod(factor))


def concordance(
    durations: np.ndarray, events: np.ndarray, risks: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Concordance of `risks` with the durations over comparable pairs, each pair weighted by the
    weight of its earlier (event) member: Harrell's C with no weights, Uno's with IPCW weights.

    Each event's pairs are counted at once, O(n log n) in all: its later customers (T_j > T_i, or
    T_j = T_i censored) are a prefix of the customers ordered by duration, longest first,
    censored before events; the riskier and tied among them are counted over ranks of risk with
    a Fenwick tree. Sums run over the events in row order, as pair-by-pair counting adds them."""
    durations, events, risks = np.asarray(durations, "float64"), np.asarray(events).astype(bool), np.asarray(risks)
    weights = np.ones(len(durations)) if weights is None else np.asarray(weights, "float64")
    chosen = np.flatnonzero(events & (weights > 0))
    if not len(chosen):
        return float("nan")
    by_time = np.lexsort((events, -durations))  # longest first; at one duration, censored first
    prefix = _later_counts(durations, events, durations[chosen])  # later(i): the first prefix[i] of that order
    ordered = np.sort(risks)
    below = _ranks_where(ordered, risks[chosen], lambda s, r: s - r < -TIED_RISK)  # concordant: lower risk
    within = _ranks_where(ordered, risks[chosen], lambda s, r: s - r <= TIED_RISK)  # lower or tied
    rank = np.empty(len(risks), dtype="int64")
    rank[np.argsort(risks, kind="stable")] = np.arange(len(risks))
    lower, lower_or_tied = _prefix_counts(rank[by_time], prefix, below, within)
    concordant, ties = lower, lower_or_tied - lower
    numerator = np.add.accumulate(weights[chosen] * (concordant + 0.5 * ties))[-1]
    denominator = np.add.accumulate(weights[chosen] * prefix)[-1]
    return float(numerator / denominator) if denominator else float("nan")


def _later_counts(durations: np.ndarray, events: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each duration in `at`, how many customers are later: a longer duration, or censored
    at the same one."""
    longer = len(durations) - np.searchsorted(np.sort(durations), at, side="right")
    censored = np.sort(durations[~events])
    same = np.searchsorted(censored, at, side="right") - np.searchsorted(censored, at, side="left")
    return longer + same


def _ranks_where(ordered: np.ndarray, values: np.ndarray, holds: Any) -> np.ndarray:
    """Per value v, how many of the sorted numbers s satisfy holds(s, v), a predicate that holds
    for a prefix of them (it is monotone in s): found by bisection on the predicate itself, so
    that rounding puts each number on the same side as the pair-by-pair comparison."""
    low = np.zeros(len(values), dtype="int64")
    high = np.full(len(values), len(ordered), dtype="int64")
    while np.any(active := low < high):
        middle = (low + high) // 2
        inside = holds(ordered[np.minimum(middle, len(ordered) - 1)], values)
        low = np.where(active & inside, middle + 1, low)
        high = np.where(active & ~inside, middle, high)
    return low


def _prefix_counts(
    rank_in_time: np.ndarray, prefix: np.ndarray, below: np.ndarray, within: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each query q, among the first prefix[q] customers in time order, how many have a risk
    rank below below[q], and below within[q] (a Fenwick tree over the ranks)."""
    size = len(rank_in_time)
    tree = [0] * (size + 1)
    lower, lower_or_tied = np.zeros(len(prefix), dtype="int64"), np.zeros(len(prefix), dtype="int64")
    added = 0
    for q in np.argsort(prefix, kind="stable").tolist():
        while added < prefix[q]:
            position = int(rank_in_time[added]) + 1
            while position <= size:
                tree[position] += 1
                position += position & -position
            added += 1
        lower[q], lower_or_tied[q] = _fenwick_sum(tree, int(below[q])), _fenwick_sum(tree, int(within[q]))
    return lower, lower_or_tied


def _fenwick_sum(tree: list[int], count: int) -> int:
    """How many added ranks are below `count`."""
    total = 0
    while count > 0:
        total += tree[count]
        count -= count & -count
    return total


def uno_concordance(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], risks: np.ndarray, tau: float
) -> float:
    """Uno's C at `tau`: pairs weighted by 1 / G(T_i)^2, G from the training rows, T_i < tau."""
    durations, events = np.asarray(test[0], "float64"), np.asarray(test[1]).astype(bool)
    g = censoring_survival(*train)(durations)
    with np.errstate(divide="ignore"):
        weights = np.where(events & (durations < tau) & (g > 0), 1.0 / np.square(g), 0.0)
    return concordance(durations, events, risks, weights)


def brier_scores(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], survival: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """The IPCW Brier score at each of `times`; `survival[i, k]` is customer i's predicted S(times[k])."""
    durations, events = np.asarray(test[0], "float64"), np.asarray(test[1]).astype(bool)
    g = censoring_survival(*train)
    g_own, g_at = g(durations), g(np.asarray(times, "float64"))
    scores = np.empty(len(times))
    for k, t in enumerate(times):
        ended = (durations <= t) & events
        still = durations > t
        with np.errstate(divide="ignore", invalid="ignore"):
            part = np.where(ended, np.square(survival[:, k]) / g_own, 0.0)
            part += np.where(still, np.square(1.0 - survival[:, k]) / g_at[k], 0.0)
        scores[k] = part.mean()
    return scores


def integrated_brier(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], survival: np.ndarray, times: np.ndarray
) -> float:
    """The integrated Brier score over `times`: the trapezoidal integral of the Brier score over
    the span of the times."""
    scores = brier_scores(train, test, survival, times)
    times = np.asarray(times, "float64")
    return float(np.trapezoid(scores, times) / (times[-1] - times[0]))
