"""Synthetic CRM exports with the traps of real ones, and a known truth: which columns are ids,
names, dates, leaks and features. Used by the init tests and by benchmarks/bench_init.py.

- `bank_table`: shaped like the well-known bank churn table (RowNumber 1..n, integer
  CustomerId, Surname, a few numbers and flags, NumOfProducts whose churn rate is not monotone).
- `telecom_table`: shaped like a carrier's monthly export: an integer account id, three snapshot
  months, signup dates, names, e-mails and phones, a service-area code with hundreds of values,
  a handset price holding "Unknown", blanks, a dozen noise columns, and two leaks (a churn
  reason filled only for churners, a churn score recorded after the outcome).

No real customer is in them: every value is drawn from a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SYLLABLES = ["ab", "ber", "can", "dor", "el", "fen", "gar", "hol", "is", "jan", "kel", "lor", "man", "nor", "ost"]


@dataclass(frozen=True)
class Table:
    """A generated table and what a data scientist who knows it would say about its columns."""

    frame: pd.DataFrame
    target: str
    positive: str | int
    id_column: str
    not_features: tuple[str, ...]  # ids, counters, names, dates and leaks
    high_cardinality: tuple[str, ...] = ()
    sentinels: tuple[str, ...] = ()
    time_column: str | None = None


def _logistic(logit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.random(len(logit)) < 1 / (1 + np.exp(-logit))


def _names(rng: np.random.Generator, rows: int, pool: int) -> np.ndarray:
    words = {
        "".join(rng.choice(SYLLABLES, rng.integers(2, 4))).capitalize() for _ in range(pool * 2)
    }  # distinct made-up names
    return rng.choice(sorted(words)[:pool], rows)


def bank_table(rows: int = 10_000, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(39, 10, rows).round(), 18, 92).astype(int)
    geography = rng.choice(["France", "Spain", "Germany"], rows, p=[0.5, 0.25, 0.25])
    gender = rng.choice(["Female", "Male"], rows, p=[0.45, 0.55])
    products = rng.choice([1, 2, 3, 4], rows, p=[0.5, 0.45, 0.04, 0.01])
    active = rng.integers(0, 2, rows)
    balance = np.where(rng.random(rows) < 0.36, 0.0, rng.normal(120_000, 30_000, rows).round(2))
    logit = (
        -2.2
        + 0.07 * (age - 38)
        + 0.8 * (geography == "Germany")
        + 0.5 * (gender == "Female")
        - 0.9 * active
        + np.select([products == 2, products == 3, products == 4], [-1.3, 2.0, 3.5], 0.0)
        + 0.3 * (balance > 0)
        + 0.03 * (age - 38) * (1 - active)
    )
    frame = pd.DataFrame(
        {
            "RowNumber": np.arange(1, rows + 1),
            "CustomerId": rng.permutation(rows) + 15_565_701,
            "Surname": _names(rng, rows, 2_900),
            "CreditScore": np.clip(rng.normal(650, 96, rows).round(), 350, 850).astype(int),
            "Geography": geography,
            "Gender": gender,
            "Age": age,
            "Tenure": rng.integers(0, 11, rows),
            "Balance": balance,
            "NumOfProducts": products,
            "HasCrCard": rng.choice([0, 1], rows, p=[0.3, 0.7]),
            "IsActiveMember": active,
            "EstimatedSalary": rng.uniform(11.58, 199_992.48, rows).round(2),
            "Exited": _logistic(logit, rng).astype(int),
        }
    )
    return Table(frame, "Exited", 1, "CustomerId", ("RowNumber", "CustomerId", "Surname"))


def telecom_table(rows: int = 30_000, seed: int = 0, noise_columns: int = 12) -> Table:
    rng = np.random.default_rng(seed)
    letters = list("ABCDEFGHKLMNPRSTW")
    areas = np.array(["".join(rng.choice(letters, 3)) + f"{i:03d}" for i in range(400)])
    area_weight = 1 / np.arange(1, 401) ** 0.9
    area = rng.choice(areas, rows, p=area_weight / area_weight.sum())
    area_effect = dict(zip(areas, rng.normal(0, 0.5, 400), strict=True))
    months = rng.integers(6, 61, rows)
    revenue = rng.gamma(4, 14, rows).round(2)
    minutes = rng.gamma(2, 250, rows).round()
    care_calls = rng.poisson(1.2, rows)
    dropped = rng.poisson(3, rows)
    equipment_days = rng.integers(10, 1500, rows)
    price = rng.choice([10, 30, 60, 80, 100, 130, 150, 200], rows)
    retention_calls = rng.poisson(0.1, rows)
    credit = rng.choice(["1-Highest", "2-High", "3-Good", "4-Medium", "5-Low", "6-VeryLow", "7-Lowest"], rows)
    logit = (
        -1.6
        - 0.015 * (months - 30)
        + 0.25 * care_calls
        + 0.06 * dropped
        + 0.8 * (equipment_days > 600)
        - 0.004 * (price - 80)
        + 0.9 * retention_calls
        + 0.004 * (revenue - 56)
        + np.vectorize(area_effect.get)(area)
        + 0.1 * np.char.startswith(credit.astype(str), "6")
    )
    churned = _logistic(logit, rng)
    snapshot = rng.choice(["2026-09", "2026-10", "2026-11"], rows)
    signup = pd.Timestamp("2026-11-01") - pd.to_timedelta(months * 30 + rng.integers(0, 30, rows), unit="D")
    price_text = np.where(rng.random(rows) < 0.3, "Unknown", price.astype(str))
    revenue_text = np.where(rng.random(rows) < 0.01, "", revenue.astype(str))
    score = np.clip(churned * 60 + rng.normal(20, 8, rows), 0, 99).round()
    reasons = rng.choice(["Competitor offer", "Price", "Moved", "Service quality"], rows)
    frame = pd.DataFrame(
        {
            "account_id": rng.permutation(rows) + 100_000,
            "snapshot": snapshot,
            "customer_name": _names(rng, rows, 5_000),
            "email": [f"user{i}@example.org" for i in rng.permutation(rows)],
            "phone": [f"+31 6 {n:08d}" for n in rng.integers(0, 10**8, rows)],
            "signup_date": signup.strftime("%Y-%m-%d"),
            "service_area": area,
            "months_in_service": months,
            "monthly_revenue": revenue_text,
            "monthly_minutes": minutes,
            "customer_care_calls": care_calls,
            "dropped_calls": dropped,
            "current_equipment_days": equipment_days,
            "handset_price": price_text,
            "retention_calls": retention_calls,
            "credit_rating": credit,
            "children_in_hh": rng.choice(["Yes", "No"], rows),
            "marital_status": rng.choice(["Yes", "No", "Unknown"], rows),
            "occupation": rng.choice(["Other", "Professional", "Crafts", "Clerical", "Retired"], rows),
            "income_group": rng.integers(0, 10, rows),
            "churn_reason": np.where(churned, reasons, ""),
            "churn_score": score,
            "churned": np.where(churned, "Yes", "No"),
        }
    )
    for i in range(noise_columns):
        frame[f"usage_{i:02d}"] = rng.normal(0, 1, rows).round(3) if i % 2 else rng.integers(0, 20, rows)
    leaks = ("churn_reason", "churn_score")
    ids = ("account_id", "customer_name", "email", "phone", "signup_date", "snapshot")
    return Table(frame, "churned", "Yes", "account_id", ids + leaks, ("service_area",), ("Unknown",), "snapshot")
