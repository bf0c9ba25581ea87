"""The run's global view of why customers churn, built from the per-customer contributions that
`predict --explain` gives (`churn.explain.explainers`), on the test rows.

Training explains up to `EXPLAINED_ROWS` test rows (the ten riskiest among them) into the run
folder's `test_explanations.csv`: each row's cleaned values, contributions and reason codes.
The report and MLflow read their figures from that file: the mean |contribution| of each input
column with the direction of its effect, and the reason codes of the riskiest customers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churn.cleaning import clean_features
from churn.errors import ChurnError
from churn.explain import explainers
from churn.store.record import ExplanationsRecord

logger = logging.getLogger(__name__)

EXPLAINED_ROWS = 1000
RISKIEST = 10
TOP_REASONS = 3
SLOW_BUDGET_SECONDS = 20.0  # a forest explains fewer test rows, so that training is not held up
DIRECTION_MIN_CORRELATION = 0.2  # weaker than this, a number's effect has no single direction


def explain_test_rows(
    model: Any, X_test: pd.DataFrame, probabilities: np.ndarray, ids: pd.Series | None, seed: int
) -> tuple[pd.DataFrame | None, ExplanationsRecord]:
    """The test rows' explanations (None when the model cannot be explained here) and their
    record; `ids` (indexed as X_test's rows are) names the customers."""
    scorer = explainers.scorer_of(model)
    try:
        explainer = explainers.explainer_for(scorer)
    except ChurnError as error:
        logger.warning("the report has no explanations: %s", error)
        return None, ExplanationsRecord(margin=_margin_of(model), base=None, rows=0, unavailable=str(error))
    chosen = _rows_to_explain(probabilities, _budget_rows(explainer, scorer, X_test), seed)
    rows = X_test.iloc[chosen]
    features = clean_features(rows, scorer.spec).features
    started = time.perf_counter()
    columns = explainers.explanation_columns(explainer, features, explainers.Explain(TOP_REASONS, True))
    logger.info("explained %d test rows in %.1f s", len(chosen), time.perf_counter() - started)
    frame = pd.DataFrame({"test_row": chosen, "churn_probability": probabilities[chosen]})
    if ids is not None:
        frame.insert(0, str(ids.name), ids.loc[rows.index].to_numpy())
    values = {f"value_{c}": explainers.value_text(features, c) for c in explainer.columns}
    frame = pd.concat([frame, pa.table(values | columns).to_pandas()], axis=1)
    return frame, ExplanationsRecord(margin=explainer.margin, base=explainer.base, rows=len(chosen))


def _margin_of(model: Any) -> str:
    from churn.model import unwrap  # deferred: scikit-learn, loaded already by whoever trained the model

    return "log-odds" if hasattr(unwrap(model).named_steps["classifier"], "decision_function") else "probability"


def _budget_rows(explainer: explainers.Explainer, scorer: Any, X_test: pd.DataFrame) -> int:
    """EXPLAINED_ROWS, or fewer for a slow explainer: as many as SLOW_BUDGET_SECONDS allow."""
    if not explainer.slow:
        return EXPLAINED_ROWS
    probe = clean_features(X_test.head(explainers.PROBE_ROWS), scorer.spec).features
    started = time.perf_counter()
    explainer.contributions(probe)
    per_row = (time.perf_counter() - started) / max(len(probe), 1)
    return int(np.clip(SLOW_BUDGET_SECONDS / max(per_row, 1e-9), RISKIEST, EXPLAINED_ROWS))


def _rows_to_explain(probabilities: np.ndarray, count: int, seed: int) -> np.ndarray:
    """The RISKIEST highest-probability test rows and a seeded sample of the others, `count` in
    all, in test-row order."""
    riskiest = np.argsort(-probabilities, kind="stable")[:RISKIEST]
    others = np.setdiff1d(np.arange(len(probabilities)), riskiest)
    rng = np.random.default_rng(seed)
    sample = rng.choice(others, size=min(max(count - len(riskiest), 0), len(others)), replace=False)
    return np.sort(np.concatenate([riskiest, sample]))


def read_explanations(path: Any) -> pd.DataFrame:
    """test_explanations.csv with its values and reason codes as text, as they were written."""
    header = pd.read_csv(path, nrows=0).columns
    text = [c for c in header if c.startswith("value_") or (c.startswith("reason_") and not c.endswith("_effect"))]
    return pd.read_csv(
        path, dtype=dict.fromkeys(text, "str"), keep_default_na=False, na_values={c: [""] for c in header}
    )


def global_contributions(explained: pd.DataFrame, numeric: set[str]) -> pd.DataFrame:
    """Per input column, largest first: the mean |contribution| over the explained rows, the
    mean contribution, and the direction of its effect in words (`numeric`: the numeric columns)."""
    columns = [
        c.removeprefix("contribution_")
        for c in explained.columns
        if c.startswith("contribution_") and c != "contribution_base"
    ]
    rows = []
    for column in columns:
        effect = explained[f"contribution_{column}"].to_numpy(dtype="float64")
        rows.append(
            {
                "column": column,
                "mean_abs_contribution": float(np.abs(effect).mean()),
                "mean_contribution": float(effect.mean()),
                "direction": direction(explained[f"value_{column}"], effect, column in numeric),
            }
        )
    table = pd.DataFrame(rows, columns=["column", "mean_abs_contribution", "mean_contribution", "direction"])
    return table.sort_values("mean_abs_contribution", ascending=False, kind="stable").reset_index(drop=True)


def direction(values: pd.Series, effect: np.ndarray, numeric: bool) -> str:
    """Which values raise churn: for a number, higher or lower ones (by the correlation of value
    and contribution); for categories, those whose mean contribution is highest, and lowest."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64") if numeric else np.array([])
    known = ~np.isnan(numbers)
    if numeric and known.sum() >= 2 and np.ptp(numbers[known]) > 0:
        if np.ptp(effect[known]) == 0:
            return "no effect on these rows"
        correlation = float(np.corrcoef(numbers[known], effect[known])[0, 1])
        if abs(correlation) < DIRECTION_MIN_CORRELATION:
            return f"no single direction (correlation {correlation:+.2f})"
        return f"{'higher' if correlation > 0 else 'lower'} values raise churn (correlation {correlation:+.2f})"
    means = pd.Series(effect).groupby(values.fillna("(missing)").to_numpy()).mean().sort_values(ascending=False)
    raising = [f"{label} ({mean:+.2f})" for label, mean in means.items() if mean > 0][:3]
    lowering = [f"{label} ({mean:+.2f})" for label, mean in means[::-1].items() if mean < 0][:2]
    parts = [f"raise: {', '.join(raising)}"] if raising else []
    parts += [f"lower: {', '.join(lowering)}"] if lowering else []
    return "; ".join(parts) or "no effect on these rows"


def riskiest_reasons(explained: pd.DataFrame, id_column: str | None, count: int = RISKIEST) -> pd.DataFrame:
    """The reason codes of the `count` highest-risk explained customers, as
    `Contract = Month-to-month (+0.92)`."""
    top = explained.sort_values("churn_probability", ascending=False, kind="stable").head(count)
    table = pd.DataFrame(index=top.index)
    table["customer"] = top[id_column] if id_column and id_column in top else top["test_row"].map("test row {}".format)
    table["churn probability"] = top["churn_probability"].map("{:.3f}".format)
    k = 1
    while f"reason_{k}" in top:
        table[f"reason {k}"] = [
            "" if pd.isna(name) else f"{name} = {'(missing)' if pd.isna(value) else value} ({effect:+.2f})"
            for name, value, effect in zip(
                top[f"reason_{k}"], top[f"reason_{k}_value"], top[f"reason_{k}_effect"], strict=True
            )
        ]
        k += 1
    return table.reset_index(drop=True)
