"""The campaign as an experiment: a seeded control group held out of the contacts, the power of
that design, and the statistics that measure the offer's effect afterwards. A leaf module
(numpy only), so `predict --holdout` and `campaign` share one implementation.

The effect is the fall in churn: churn among the held-out customers minus churn among the
contacted ones. Its 95 % interval is Newcombe's hybrid score interval (his method 10, 1998):
Wilson score intervals for each group's churn combined by the square-and-add rule; its coverage
stays near 95 % for proportions near 0 and for small groups, where the Wald interval's does not.
The offer's success rate, the share of would-be churners it keeps, is 1 − (churn contacted /
churn held out), with Katz's log interval of the risk ratio (0.5 added to every cell when a
group has no churner or only churners).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the two-sided 5 % point of the standard normal
Z80 = 0.8416212335729143  # its one-sided 20 % point: 80 % power
DECILES = 10


def holdout_groups(savings: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the customers held out: in each decile of expected saving (by rank, so
    every decile holds a tenth of the customers), a seeded random `share` of them, rounded."""
    held = np.zeros(len(savings), dtype=bool)
    if not len(savings):
        return held
    rng = np.random.default_rng(seed)
    order = np.argsort(-savings, kind="stable")
    decile = saving_deciles(savings)[order]
    for d in range(DECILES):
        members = order[decile == d]  # highest saving first: a seed draws the same customers
        count = int(round(share * len(members)))
        held[rng.choice(members, size=count, replace=False)] = True
    return held


def saving_deciles(savings: np.ndarray) -> np.ndarray:
    """Each customer's decile of expected saving (0: the highest), as `holdout_groups` strata."""
    order = np.argsort(-savings, kind="stable")
    decile = np.empty(len(savings), dtype="int64")
    decile[order] = np.arange(len(order)) * DECILES // max(len(order), 1)
    return decile


def detectable_effect(churn: float, contacted: int, held_out: int) -> float | None:
    """The smallest fall in churn (a share) that a two-sided test at 5 % detects with 80 % power,
    churn starting from `churn` in the held-out group: the normal approximation of the two-sample
    test of proportions (pooled variance under no effect), solved for the effect by bisection.
    None: a group is empty, or no fall down to zero churn is detectable."""
    if contacted < 1 or held_out < 1 or not 0 < churn < 1:
        return None

    def needed(effect: float) -> float:  # > 0 when the design has the power for this effect
        treated = churn - effect
        pooled = (churn * held_out + treated * contacted) / (held_out + contacted)
        null_sd = math.sqrt(pooled * (1 - pooled) * (1 / contacted + 1 / held_out))
        alt_sd = math.sqrt(churn * (1 - churn) / held_out + treated * (1 - treated) / contacted)
        return effect - (Z95 * null_sd + Z80 * alt_sd)

    if needed(churn) <= 0:
        return None
    low, high = 0.0, churn
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if needed(middle) <= 0 else (low, middle)
    return high


def wilson(events: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = events / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


@dataclass(frozen=True)
class Effect:
    """The fall in churn, held out minus contacted, with its 95 % interval."""

    churn_contacted: float
    churn_held_out: float
    fall: float
    low: float
    high: float

    @property
    def distinguishable(self) -> bool:
        """The interval excludes zero: the effect is distinguishable from none at 5 %."""
        return self.low > 0 or self.high < 0


def churn_fall(churned_contacted: int, contacted: int, churned_held_out: int, held_out: int) -> Effect:
    """Newcombe's hybrid score interval for the difference held out − contacted."""
    p1, p2 = churned_held_out / held_out, churned_contacted / contacted
    l1, u1 = wilson(churned_held_out, held_out)
    l2, u2 = wilson(churned_contacted, contacted)
    fall = p1 - p2
    low = fall - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = fall + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Effect(p2, p1, fall, low, high)


def success_rate(
    churned_contacted: int, contacted: int, churned_held_out: int, held_out: int
) -> tuple[float, float, float]:
    """The offer's success rate 1 − RR (RR: churn contacted / churn held out) and its 95 %
    interval from Katz's log interval of RR (0.5 added to each cell if one is 0 or full); the
    bounds are not clipped, so a harmful offer shows as a negative rate."""
    a, n1, c, n2 = float(churned_contacted), float(contacted), float(churned_held_out), float(held_out)
    if min(a, c) == 0 or a == n1 or c == n2:
        a, c, n1, n2 = a + 0.5, c + 0.5, n1 + 1.0, n2 + 1.0
    ratio = (a / n1) / (c / n2)
    spread = Z95 * math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    rate = 1 - (churned_contacted / contacted) / (churned_held_out / held_out) if churned_held_out else 1 - ratio
    return rate, 1 - ratio * math.exp(spread), 1 - ratio * math.exp(-spread)
