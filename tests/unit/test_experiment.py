"""The campaign's statistics, tested as statistics are: hand-worked values from the literature,
then 400 seeded simulated campaigns with a known effect for the interval's coverage and the
test's false alarms, and the holdout's reproducibility and balance."""

import math

import numpy as np
import pytest

from churn.scoring import experiment

CAMPAIGNS = 400


def test_wilson_by_hand():
    low, high = experiment.wilson(0, 10)  # no event: the upper bound is z² / (n + z²)
    assert low == 0.0 and high == pytest.approx(experiment.Z95**2 / (10 + experiment.Z95**2))
    low, high = experiment.wilson(5, 10)  # symmetric around one half
    assert low + high == pytest.approx(1.0)


def test_newcombe_hybrid_interval_matches_his_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II: 56/70 - 48/80, method 10
    effect = experiment.churn_fall(48, 80, 56, 70)  # contacted 48/80, held out 56/70
    assert effect.fall == pytest.approx(0.2)
    assert (round(effect.low, 4), round(effect.high, 4)) == (0.0524, 0.3339)
    assert effect.distinguishable


def test_the_power_of_the_issue_example():
    # about 1,140 customers per group to see churn fall 5 points from 26.5 % (5 %, 80 %)
    assert experiment.detectable_effect(0.265, 1140, 1140) == pytest.approx(0.05, abs=0.0005)
    assert experiment.detectable_effect(0.265, 4560, 1140) < 0.05  # more contacts, a smaller effect
    assert experiment.detectable_effect(0.265, 0, 100) is None
    assert experiment.detectable_effect(0.02, 5, 5) is None  # no fall down to zero churn is detectable


def test_the_success_rate_is_one_less_the_risk_ratio():
    rate, low, high = experiment.success_rate(70, 1000, 100, 1000)  # churn 7 % contacted vs 10 % held out
    assert rate == pytest.approx(0.3)
    log_spread = experiment.Z95 * math.sqrt(1 / 70 - 1 / 1000 + 1 / 100 - 1 / 1000)
    assert (low, high) == pytest.approx((1 - 0.7 * math.exp(log_spread), 1 - 0.7 * math.exp(-log_spread)))
    assert low < rate < high
    assert experiment.success_rate(0, 50, 0, 50)[1] < 0 < experiment.success_rate(0, 50, 0, 50)[2]  # no churner


def simulate(effects, seed):
    """CAMPAIGNS campaigns: group sizes 200-20,000 (log-uniform; the contact group 1 or 4 times
    the holdout), churn 5-40 % among those held out, a fall in churn drawn from `effects`."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(CAMPAIGNS):
        held = int(np.exp(rng.uniform(np.log(200), np.log(20_000))))
        contacted = min(held * int(rng.choice([1, 4])), 20_000)
        churn = rng.uniform(0.05, 0.40)
        fall = min(float(rng.choice(effects)), churn - 0.01)
        x_h, x_c = rng.binomial(held, churn), rng.binomial(contacted, churn - fall)
        rows.append((fall, 1 - (churn - fall) / churn, experiment.churn_fall(x_c, contacted, x_h, held),
                     experiment.success_rate(x_c, contacted, x_h, held)))  # fmt: skip
    return rows


def test_the_interval_covers_the_true_effect_in_93_to_97_percent_of_simulated_campaigns():
    rows = simulate([0.01, 0.03, 0.05, 0.10], seed=20_261_203)
    covered = np.mean([effect.low <= fall <= effect.high for fall, _, effect, _ in rows])
    rate_covered = np.mean([low <= truth <= high for _, truth, _, (_, low, high) in rows])
    print(
        f"coverage of the fall in churn: {covered:.1%}; of the success rate: {rate_covered:.1%} ({CAMPAIGNS} campaigns)"
    )
    assert 0.93 <= covered <= 0.97
    assert 0.92 <= rate_covered <= 0.98


def test_with_no_effect_distinguishable_in_at_most_6_percent_of_simulated_campaigns():
    rows = simulate([0.0], seed=20_261_204)
    alarms = np.mean([effect.distinguishable for _, _, effect, _ in rows])
    print(f"no effect, distinguishable in {alarms:.1%} of {CAMPAIGNS} campaigns")
    assert alarms <= 0.06


def test_the_holdout_is_reproducible_by_seed_and_balanced_by_saving_decile():
    savings = np.random.default_rng(3).gamma(2.0, 40.0, 5_000)
    held = experiment.holdout_groups(savings, 0.2, seed=7)
    assert (held == experiment.holdout_groups(savings, 0.2, seed=7)).all()
    assert (held != experiment.holdout_groups(savings, 0.2, seed=8)).any()
    deciles = experiment.saving_deciles(savings)
    shares = [held[deciles == d].mean() for d in range(experiment.DECILES)]
    assert max(abs(share - 0.2) for share in shares) <= 0.02
    assert held.mean() == pytest.approx(0.2, abs=0.001)
