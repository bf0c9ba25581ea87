"""Why this customer: exact contributions of each input column to a run's margin, and the reason
codes read from them; the one implementation behind `predict --explain`, the service, the
cluster, the notebook function `churn.explain` and the report.

For one customer there is one contribution per original input column (`Contract`, `tenure`,
..., never a one-hot column), in the model's margin: log-odds of churn for logistic regression
and gradient boosting, the probability for a random forest. They are additive:
`base + sum(contributions) == margin(customer)`, where `base` is the model's expected margin
over its training rows.

- Logistic regression: coefficient x (transformed value - its mean over the training rows),
  summed over the one-hot columns of each original column; exact by construction. Read from
  the run's lookup tables (`scorer.json`), which hold those means.
- Tree models: path-dependent TreeSHAP (`churn.explain.treeshap`, `churn.explain.pathshap`),
  summed per original column.

A reason code is one of the `top` largest contributions that push towards churn (positive),
with the customer's value as cleaning left it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from churn.cleaning import FeatureTable
from churn.codes import Coded, category_codes
from churn.errors import ChurnError, ConfigError, ModelError
from churn.scoring.margins import LinearMargin
from churn.scoring.scorers import LinearScorer, Scorer, score
from churn.scoring.trees import TreeScorer
from churn.store import upgrade

if TYPE_CHECKING:
    import pandas as pd

    from churn.scoring.compiling import FastScorer

logger = logging.getLogger(__name__)

# rows a slow explainer is timed on before a whole table: one block of the walk (on fewer, its
# per-block cost would be charged to each row)
PROBE_ROWS = 128  # = churn.explain.pathshap.BLOCK_ROWS: one block, on one thread
WARN_SECONDS = 10.0  # an explanation expected to take longer is announced, with its estimate


class Explainer(Protocol):
    """Contributions of a run's original input columns to its margin, for cleaned features."""

    columns: tuple[str, ...]
    margin: str  # "log-odds" or "probability"
    base: float
    slow: bool  # a walk of every node for each row (a forest's): timed before a large table is explained

    def contributions(self, features: FeatureTable) -> np.ndarray: ...


@dataclass(frozen=True)
class Explain:
    """What to add to each scored row: the `top` reason codes (0: none) and, with
    `contributions`, every column's contribution and the base."""

    top: int = 3
    contributions: bool = False
    max_seconds: float | None = None  # refuse a slow explainer's table expected to take longer
    max_seconds_key: str = "predict.max_explain_seconds"  # the setting a refusal names
    words: bool = False  # reason_k as a sentence in points of probability (a contact list's)


def checked(explain: Explain | None, scorer: Scorer, max_seconds: float, option: str) -> Explain | None:
    """The explanations asked for, checked against the run (its explainer is built here, so that
    a run that cannot be explained is refused before anything is read) and bounded in time.

    Raises:
        ConfigError: more reason codes than the run has input columns (`option` names the
            setting).
        ModelError: the run cannot be explained (retrain it).
    """
    if explain is None:
        return None
    check_top(explain.top, explainer_for(scorer), option)
    return replace(explain, max_seconds=max_seconds)


def check_top(top: int, explainer: Explainer, option: str) -> None:
    """Reason codes asked for: at most one per input column.

    Raises:
        ConfigError: more than the run's input columns."""
    if top > len(explainer.columns):
        raise ConfigError(
            f"{option} {top}: this run has {len(explainer.columns)} input columns, so at most "
            f"{len(explainer.columns)} reason codes; ask for fewer"
        )


class ExplainTooSlowError(ChurnError):
    """Explaining the rows asked for would take longer than the setting allows."""


_EXPLAINERS: weakref.WeakKeyDictionary[Any, Explainer] = weakref.WeakKeyDictionary()
_BUILDING = threading.Lock()


def explainer_for(scorer: Scorer) -> Explainer:
    """The explainer of a run's scorer, built once per scorer (a service's, a cluster worker's).

    Raises:
        ModelError: the run was saved without what explaining it needs (retrain it).
    """
    with _BUILDING:
        if scorer not in _EXPLAINERS:
            _EXPLAINERS[scorer] = _build(scorer)
        return _EXPLAINERS[scorer]


def margin_of(scorer: Scorer) -> str:
    """What a run's contributions are measured in, whether or not it can be explained here: the
    probability for a forest (its trees average probabilities), log-odds otherwise."""
    classifier = getattr(scorer, "classifier", None)
    return "log-odds" if classifier is None or hasattr(classifier, "decision_function") else "probability"


def reason_lists(columns: dict[str, Any], top: int) -> list[list[dict[str, Any]]]:
    """The reason codes of `explanation_columns` as one list per row: {feature, value, effect},
    largest first, the rows with fewer pushes towards churn given fewer."""
    parts = [
        [columns[f"reason_{k}{part}"].to_pylist() for part in ("", "_value", "_effect")] for k in range(1, top + 1)
    ]
    rows = len(parts[0][0]) if parts else 0
    return [
        [{"feature": names[row], "value": values[row], "effect": effects[row]}
         for names, values, effects in parts if names[row] is not None]
        for row in range(rows)
    ]  # fmt: skip


def _build(scorer: Any) -> Explainer:
    if isinstance(scorer, TreeScorer):  # explained by TreeSHAP of the saved model's own trees
        return TreeExplainer(scorer.compiled())
    if hasattr(scorer, "tables"):
        return LinearExplainer(scorer)
    if scorer.blocks is None or type(scorer.classifier).__name__ == "LogisticRegression":
        raise ModelError("this run's preprocessing is not one churn can explain; retrain it with this version")
    return TreeExplainer(scorer)


def column_of_transformed(scorer: FastScorer | TreeScorer) -> np.ndarray:
    """For each transformed (one-hot, scaled) column, the position of its original column."""
    compiled: FastScorer = scorer.compiled() if isinstance(scorer, TreeScorer) else scorer
    position = {column: i for i, column in enumerate(compiled.spec.columns)}
    found: list[int] = []
    for block in compiled.blocks or []:
        for name, width in zip(block.columns, block.widths, strict=True):
            found += [position[name]] * width
    return np.asarray(found, dtype="int64")


class LinearExplainer:
    """Logistic regression, from its lookup tables: coefficient x (value - training mean). Also
    a logistic hazard model's features (`churn.survival.horizons.LinearHazardScorer.margin`),
    whose log-odds of churn in a month add the month's baseline to this margin."""

    margin = "log-odds"
    slow = False

    def __init__(self, scorer: LinearMargin) -> None:
        tables = scorer.tables
        if (gap := upgrade.linear_tables_gap(tables)) is not None:
            raise ModelError(gap)
        self.columns: tuple[str, ...] = scorer.spec.columns
        self.numeric = [(self.columns.index(item["column"]), item) for item in tables["numeric"]]
        self.categorical = []
        base = tables["intercept"] + sum(item["coef"] * item["training_mean"] for item in tables["numeric"])
        shares = {item["column"]: item["training_share"] for item in tables["categorical"]}
        for column, categories, fill, weights in scorer.categorical:
            expected = float(np.dot(weights[:-1], shares[column]))  # weights end with unseen's 0.0
            self.categorical.append((self.columns.index(column), categories, fill, weights - expected))
            base += expected
        self.base = float(base)

    def contributions(self, features: FeatureTable) -> np.ndarray:
        out = np.zeros((len(features), len(self.columns)))
        for target, item in self.numeric:
            values = features.numbers[item["column"]]
            values = np.where(np.isnan(values), item["fill"], values)
            if item["mean"] is not None:
                values = (values - item["mean"]) / item["scale"]
            out[:, target] = item["coef"] * (values - item["training_mean"])
        for target, categories, fill, centred in self.categorical:
            out[:, target] = centred[category_codes(features.coded[self.columns[target]], categories, fill)]
        return out


class TreeExplainer:
    """A tree model: TreeSHAP of its transformed columns, summed per original column. Shallow
    boosted trees from tables (fast); forests and deeper boosting by the quadrature walk, timed
    before a large table (`slow`)."""

    def __init__(self, scorer: FastScorer) -> None:
        from churn.explain import treeshap  # deferred: only tree runs need it

        self.scorer, self.columns = scorer, scorer.spec.columns
        classifier = scorer.classifier
        column_of = column_of_transformed(scorer)
        boosted = hasattr(classifier, "decision_function")  # gradient boosting, not a forest
        self.margin = "log-odds" if boosted else "probability"
        self.tables = treeshap.boosted_tables(classifier, column_of, len(self.columns)) if boosted else None
        self.walk = None
        if self.tables is None:
            self.walk = treeshap.deep_trees(classifier, column_of, len(self.columns), scorer.threads)
        self.slow = self.tables is None
        self.threads = self.walk.threads if self.walk is not None else 1
        self.base = self.tables.base if self.tables is not None else self.walk.base  # type: ignore[union-attr]

    def contributions(self, features: FeatureTable) -> np.ndarray:
        matrix = self.scorer.transform(features)
        if self.tables is not None:
            return self.tables.contributions(matrix)
        assert self.walk is not None
        return self.walk.contributions(matrix)


def value_text(features: FeatureTable, column: str) -> pa.Array:
    """A column's values as cleaning left them, as text (null where missing): what a reason code
    shows. Numbers in their shortest exact form (29.85, 70, 1e+20)."""
    if column in features.numbers:
        return pa.array(features.numbers[column], from_pandas=True).cast(pa.string())
    coded = features.coded[column]
    codes = pa.array(coded.codes, mask=coded.codes < 0, type=pa.int32())
    return pa.DictionaryArray.from_arrays(codes, pa.array(coded.categories, pa.string())).cast(pa.string())


def reason_columns(
    contributions: np.ndarray, columns: Sequence[str], features: FeatureTable, top: int
) -> dict[str, pa.Array]:
    """reason_k, reason_k_value and reason_k_effect for k = 1..top (top at most the number of
    columns): each row's k-th largest positive contribution (ties: the column listed first),
    null past its last positive one."""
    rows = np.arange(contributions.shape[0])
    remaining = contributions.copy()
    picks, effects = [], []
    for _ in range(top):  # argmax takes the first of equal maxima: the column listed first
        picked = np.argmax(remaining, axis=1) if len(rows) else np.zeros(0, dtype="int64")
        picks.append(picked)
        effects.append(contributions[rows, picked])
        remaining[rows, picked] = -np.inf
    absent = [~(effect > 0) for effect in effects]
    shown = sorted({int(j) for picked, gone in zip(picks, absent, strict=True) for j in np.unique(picked[~gone])})
    every = pa.concat_arrays([value_text(features, columns[j]) for j in shown]) if shown else None
    names = pa.array(list(columns), pa.string())
    out: dict[str, pa.Array] = {}
    for k, (picked, effect, gone) in enumerate(zip(picks, effects, absent, strict=True), start=1):
        out[f"reason_{k}"] = names.take(pa.array(picked, mask=gone))
        if every is None:
            out[f"reason_{k}_value"] = pa.nulls(len(rows), pa.string())
        else:
            slot = np.searchsorted(shown, np.where(gone, shown[0], picked))
            out[f"reason_{k}_value"] = every.take(pa.array(slot * len(rows) + rows, mask=gone))
        out[f"reason_{k}_effect"] = pa.array(effect, mask=gone, type=pa.float64())
    return out


def explanation_columns(
    explainer: Explainer, features: FeatureTable, explain: Explain, probabilities: np.ndarray | None = None
) -> dict[str, Any]:
    """The columns an explained prediction adds, in order: reason codes (with `explain.words`,
    as sentences, which need the rows' `probabilities`), then (asked for) each input column's
    contribution and the base."""
    contributions = explainer.contributions(features)
    out: dict[str, Any] = reason_columns(contributions, explainer.columns, features, explain.top)
    if explain.words:
        assert probabilities is not None
        out = reason_words(out, explain.top, probability_points(explainer, probabilities))
    if explain.contributions:
        for j, column in enumerate(explainer.columns):
            out[f"contribution_{column}"] = contributions[:, j]
        out["contribution_base"] = np.full(len(features), explainer.base)
    return out


def probability_points(explainer: Explainer, probabilities: np.ndarray) -> np.ndarray:
    """Per row, the points of churn probability (x 100) one unit of margin contribution is worth.

    A forest's margin is the probability: 100. In log-odds, each contribution's additive share of
    the probability gap: contribution x (p - p_base) / (margin - base), where margin = logit(p) and
    p_base = the base's probability, so that a row's points over every input column add up to
    exactly 100 x (p - p_base). When margin and base (nearly) coincide the ratio is its limit,
    the slope p (1 - p) of the logistic curve there.
    """
    if explainer.margin == "probability":
        return np.full(len(probabilities), 100.0)
    p = np.clip(np.asarray(probabilities, "float64"), 1e-15, 1 - 1e-15)
    margin = np.log(p) - np.log1p(-p)
    gap = margin - explainer.base
    base_p = 1.0 / (1.0 + np.exp(-explainer.base))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(np.abs(gap) > 1e-9, (p - base_p) / gap, p * (1 - p))
    return 100.0 * slope


def reason_words(columns: dict[str, Any], top: int, points: np.ndarray) -> dict[str, Any]:
    """reason_k as one sentence a retention agent reads ("Contract is Month-to-month: +9.1 points
    of churn probability"), from reason_k, reason_k_value and reason_k_effect; null past a row's
    last positive contribution. A missing value reads "is missing"."""
    out: dict[str, Any] = {}
    for k in range(1, top + 1):
        names, values = columns[f"reason_{k}"].to_pylist(), columns[f"reason_{k}_value"].to_pylist()
        effects = np.asarray(columns[f"reason_{k}_effect"].to_numpy(zero_copy_only=False), "float64") * points
        out[f"reason_{k}"] = pa.array(
            [
                None
                if name is None
                else f"{name} is {value if value is not None else 'missing'}: {effect:+.1f} points of churn probability"
                for name, value, effect in zip(names, values, effects.tolist(), strict=True)
            ],
            pa.string(),
        )
    return out


def check_time(explainer: Explainer, probe: FeatureTable, rows: int, explain: Explain, what: str) -> None:
    """Time a slow explainer on a block of rows; refuse when `rows` would take longer than
    `explain.max_seconds` (the time a row, over the threads the explainer runs blocks on), and
    announce a long wait. Fast explainers are not timed.

    Raises:
        ExplainTooSlowError: the estimate is over the setting.
    """
    if not explainer.slow or rows == 0:
        return
    sample = _head(probe, PROBE_ROWS)
    started = time.perf_counter()
    explainer.contributions(sample)
    per_row = (time.perf_counter() - started) / len(sample)
    threads = max(1, int(getattr(explainer, "threads", 1)))  # the walk explains blocks of rows in parallel
    estimate = per_row * rows / threads
    milliseconds = per_row * 1000
    measured = f"{milliseconds:.{2 if milliseconds < 10 else 0}f} ms a row, timed on {len(sample)} rows here"
    measured += f", on {threads} threads" if threads > 1 else ""
    if explain.max_seconds is not None and estimate > explain.max_seconds:
        raise ExplainTooSlowError(
            f"{what}: explaining {rows:,} rows with this model would take about "
            f"{_duration(estimate)} ({measured}), over {explain.max_seconds_key} ({explain.max_seconds:g} s); "
            "explain only the rows you need (for example the customers to contact) or raise the setting"
        )
    if estimate > WARN_SECONDS:
        logger.warning(
            "%s: explaining %s rows will take about %s (%s)", what, f"{rows:,}", _duration(estimate), measured
        )


def _head(features: FeatureTable, rows: int) -> FeatureTable:
    numbers = {name: values[:rows] for name, values in features.numbers.items()}
    coded = {name: Coded(c.codes[:rows], c.categories) for name, c in features.coded.items()}
    return FeatureTable(numbers, coded, min(rows, len(features)))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def explain(model: Any, frame: pd.DataFrame, top: int = 3, contributions: bool = True) -> pd.DataFrame:
    """Explain raw rows with a saved model, as `predict --explain TOP --contributions` does.

    `model` is a loaded `model.joblib` (or a run from `churn.pipeline.load_run`); `frame` holds
    raw rows as predict reads them. The result has the frame's index and, per row,
    churn_probability, churn_prediction, reason_k / reason_k_value / reason_k_effect for
    k = 1..top and, with `contributions`, contribution_<column> per input column and
    contribution_base, in the model's margin (log-odds, or the probability for a forest).
    """
    scorer = scorer_of(model)
    scored = score(scorer, frame)
    columns = explanation_columns(explainer_for(scorer), scored.cleaned.features, Explain(top, contributions))
    table = pa.table({"churn_probability": scored.probabilities, "churn_prediction": scored.predictions} | columns)
    out = table.to_pandas()
    if scored.cleaned.features.index is not None:
        out.index = scored.cleaned.features.index
    return out


def scorer_of(model: Any) -> Scorer:
    """The scorer `predict` would use for this model: its tables for a logistic regression or
    shallow boosted trees, else the compiled model."""
    if hasattr(model, "scorer"):  # a LoadedRun
        return model.scorer
    from churn.scoring.compiling import (  # deferred: scikit-learn, for a joblib model
        FastScorer,
        export_linear_tables,
        export_tree_tables,
    )

    if (tables := export_linear_tables(model)) is not None:
        return LinearScorer(tables)
    if (trees := export_tree_tables(model)) is not None:
        return TreeScorer(trees, lambda: FastScorer(model))
    return FastScorer(model)
