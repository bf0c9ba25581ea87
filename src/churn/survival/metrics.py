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
    weight of its earlier (event) member: Harrell's C with no weights, Uno's with IPCW weights."""
    durations, events, risks = np.asarray(durations, "float64"), np.asarray(events).astype(bool), np.asarray(risks)
    weights = np.ones(len(durations)) if weights is None else np.asarray(weights, "float64")
    numerator = denominator = 0.0
    for i in np.flatnonzero(events & (weights > 0)):
        later = (durations > durations[i]) | ((durations == durations[i]) & ~events)
        if not later.any():
            continue
        others = risks[later]
        ties = np.abs(others - risks[i]) <= TIED_RISK
        concordant = (others < risks[i]) & ~ties
        numerator += weights[i] * (concordant.sum() + 0.5 * ties.sum())
        denominator += weights[i] * later.sum()
    return numerator / denominator if denominator else float("nan")


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
