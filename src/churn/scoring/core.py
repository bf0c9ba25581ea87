"""The scoring core: a whole table scored with a run, chunk by chunk, as an iterator of typed
scored chunks. Every door composes it with its own writer and its own rules: `predict` (and
its budget), `monitor`, the service's CSV answers and every part scored on a Dask cluster.

Memory stays flat however large the table: chunks of `chunk_rows` rows are read ahead in a
background thread, cleaned, scored with the run's scorer (and explained), and handed over in
input order. The data quality of each chunk comes with it, and of the whole table at the end
(`ScoredTable.quality`); each door words it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from churn.cleaning import FeatureTable, check_unparsed, clean_features
from churn.errors import ConfigError
from churn.explain import explainers
from churn.explain.explainers import Explain
from churn.io import tables
from churn.io.columns import SCORING_REMEDY, require_columns
from churn.scoring import decisions, experiment
from churn.scoring.quality import QualityTally
from churn.scoring.scorers import LoadedRun, Scored, score
from churn.survival.horizons import HorizonScorer, LinearHazardScorer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnparsedLimit:
    """The largest share of a numeric column's values that may fail to parse, and the setting
    a refusal names (None: one the reader cannot change, as a service's client)."""

    share: float
    setting: str | None = "data.max_unparsed_share"


@dataclass(frozen=True)
class ScoreOptions:
    """How a table is scored: its chunk size, the check on values that are not numbers (None:
    the caller checks, as for one part of a larger input), explanations, and columns to carry
    along beside the features and the id (a label)."""

    chunk_rows: int
    unparsed: UnparsedLimit | None = None
    explain: Explain | None = None
    keep: tuple[str, ...] = ()
    # expected_saving and contact: True, also with constant costs (a budget); None, with
    # per-customer costs only (contact then differs from churn_prediction); False, never
    decide: bool | None = None
    # churn within each horizon (churn.survival.horizons): True, required (an error for a run
    # without a survival model); None, when the run has one; False, never
    horizons: bool | None = None


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk of a table, scored: the rows as read (features, id, kept columns), their
    scores and decisions, their money (None unless the run decides contacts), their
    explanations (empty unless asked for) and data quality."""

    first_row: int
    rows: pa.Table
    scored: Scored
    id_column: str | None
    quality: QualityTally
    explanations: Mapping[str, Any] = field(default_factory=dict)
    money: decisions.Money | None = None
    savings: np.ndarray | None = None
    horizons: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def probabilities(self) -> np.ndarray:
        return self.scored.probabilities

    @property
    def predictions(self) -> np.ndarray:
        return self.scored.predictions

    def __len__(self) -> int:
        return self.rows.num_rows

    def output(self, extra: Mapping[str, Any] | None = None) -> pa.Table:
        """What `predict` writes for these rows: the id, churn_probability, churn_prediction,
        expected_saving and contact (when the run decides contacts; a budget replaces contact
        through `extra`), then `extra` columns, the horizons (with revenue at risk when the run
        has a value column), then the explanations."""
        columns = self._id() | {"churn_probability": self.probabilities, "churn_prediction": self.predictions}
        if self.savings is not None:
            columns |= {"expected_saving": self.savings, "contact": decisions.contact_rule(self.savings)}
        return pa.table(columns | dict(extra or {}) | dict(self.horizons) | dict(self.explanations))

    def contact_list(self, money_columns: Sequence[str]) -> pa.Table:
        """What a contact list writes for these rows: the id, churn_probability,
        expected_saving, contact, the money columns as read (value, offer cost), then the
        explanations (reasons in words)."""
        assert self.savings is not None
        columns = self._id() | {
            "churn_probability": self.probabilities,
            "expected_saving": self.savings,
            "contact": decisions.contact_rule(self.savings),
        }
        columns |= {name: self.rows.column(name) for name in money_columns}
        return pa.table(columns | dict(self.explanations))

    def _id(self) -> dict[str, Any]:
        return {self.id_column: self.rows.column(self.id_column)} if self.id_column else {}


class ScoredTable:
    """A table scored chunk by chunk: iterate it (once) for `ScoredChunk`s in input order.

    The checks that need the whole table run when the last chunk has been handed over, so a
    door that publishes only after the loop publishes nothing for a refused table.

    Raises (while iterating):
        DataError: a feature column is missing, the table is unreadable, or a numeric column
            holds more values that are not numbers than `options.unparsed` allows.
        ExplainTooSlowError: a forest's explanations would take longer than `explain.max_seconds`.
    """

    def __init__(self, run: LoadedRun, source: tables.Source, options: ScoreOptions) -> None:
        self.run, self.source, self.options = run, source, options
        self.quality = QualityTally(run.features)
        self.costs = deciding(run, options.decide)
        self.horizon_scorer = horizons_of(run, options.horizons)
        header = tables.table_columns(source)
        money_columns = self.costs.columns if self.costs is not None else ()
        required = [*run.scorer.spec.columns, *(c for c in money_columns if c not in run.scorer.spec.columns)]
        require_columns(header, required, source, SCORING_REMEDY)
        id_column = run.features.id_column
        self.id_column = id_column if id_column in header else None
        columns = required + ([self.id_column] if self.id_column else [])
        self.columns = columns + [c for c in options.keep if c in header and c not in columns]

    @property
    def rows(self) -> int:
        return self.quality.rows

    def __iter__(self) -> Iterator[ScoredChunk]:
        spec, explain = self.run.scorer.spec, self.options.explain
        explainer = None
        if explain is not None:
            check_explain_time(self.run, [self.source], explain, str(self.source))
            explainer = explainers.explainer_for(self.run.scorer)
        horizon_explainer = hazard_explainer(self.horizon_scorer, explain)
        first = 0
        for rows in tables.iter_table(self.source, self.columns, self.options.chunk_rows, spec.categorical):
            scored = score(self.run.scorer, rows)
            quality = QualityTally(self.run.features)
            quality.add(scored.cleaned)
            self.quality.merge(quality)
            explanations = {}
            if explainer is not None and explain is not None:
                explanations = explainers.explanation_columns(
                    explainer, scored.cleaned.features, explain, scored.probabilities
                )
            money = savings = None
            if self.costs is not None:
                ids = rows.column(self.id_column) if self.id_column else None
                money = self.costs.money(rows, rows.num_rows, decisions.Rows(str(self.source), first, ids))
                savings = self.costs.savings(scored.probabilities, money)
            horizons = {}
            if self.horizon_scorer is not None:
                horizons = with_revenue(self.horizon_scorer.horizons_clean(scored.cleaned.features), money)
            if horizon_explainer is not None and explain is not None:
                explanations |= horizon_reasons(horizon_explainer, scored.cleaned.features, explain.top)
            yield ScoredChunk(first, rows, scored, self.id_column, quality, explanations, money, savings, horizons)
            first += rows.num_rows
        # On the whole table, so that the answer never depends on the chunk size.
        if (limit := self.options.unparsed) is not None:
            check_unparsed(self.quality.unparsed(), self.source, limit.share, limit.setting)


def deciding(run: LoadedRun, decide: bool | None) -> decisions.Costs | None:
    """The costs to decide contacts with (`ScoreOptions.decide`), or None.

    Raises:
        ConfigError: asked for (True), and the run has no decision costs.
    """
    if decide:
        return decisions.Costs.required(run.record.decision)
    costs = decisions.Costs.of(run.record.decision)
    return costs if decide is None and costs is not None and costs.per_customer else None


@dataclass
class HorizonTotals:
    """Sums over a table's horizons for a summary line: customers with a tenure, their expected
    churners within each horizon, and the revenue at risk (when customers have a value)."""

    customers: int = 0
    churners: dict[str, float] = field(default_factory=dict)
    revenue_at_risk: dict[str, float] = field(default_factory=dict)

    def add(self, horizons: Mapping[str, np.ndarray]) -> None:
        for name, values in horizons.items():
            if name.startswith("churn_within_"):
                self.churners[name] = self.churners.get(name, 0.0) + float(np.nansum(values))
            elif name.startswith("revenue_at_risk_"):
                self.revenue_at_risk[name] = self.revenue_at_risk.get(name, 0.0) + float(np.nansum(values))
            else:
                self.customers += int(np.isfinite(values).sum())


def horizons_of(run: LoadedRun, wanted: bool | None) -> HorizonScorer | None:
    """The hazard model to score horizons with (`ScoreOptions.horizons`), or None.

    Raises:
        ConfigError: asked for (True), and the run has no survival model.
    """
    if wanted and run.horizons is None:
        raise ConfigError(
            f"run {run.run_id} has no survival model, so no horizons; train it with survival.duration_column set"
        )
    return run.horizons if wanted is not False else None


def hazard_explainer(scorer: HorizonScorer | None, explain: Explain | None) -> explainers.LinearExplainer | None:
    """The explainer of a logistic hazard model's horizons, when reasons are asked for (not as a
    contact list's sentences) and the horizons are scored; None for a tree hazard model, whose
    month interacts with the features (its horizons have no reasons: docs/survival.md)."""
    if explain is None or not explain.top or explain.words or not isinstance(scorer, LinearHazardScorer):
        return None
    return explainers.LinearExplainer(scorer.margin)


def horizon_reasons(explainer: explainers.LinearExplainer, features: FeatureTable, top: int) -> dict[str, Any]:
    """horizon_reason_k, _value and _effect: the k-th largest push of a column on the hazard's
    log-odds of churn, the same in every month ahead (so on every horizon)."""
    top = min(top, len(explainer.columns))
    columns = explainers.reason_columns(explainer.contributions(features), explainer.columns, features, top)
    return {f"horizon_{name}": values for name, values in columns.items()}


def with_revenue(horizons: dict[str, np.ndarray], money: decisions.Money | None) -> dict[str, np.ndarray]:
    """The horizons, and revenue at risk over the last one when customers have a value per
    month: value x (months of the horizon - months expected within it)."""
    if money is None or money.value is None:
        return horizons
    expected = next(name for name in horizons if name.startswith("expected_months_"))
    months = int(expected.removeprefix("expected_months_").removesuffix("m"))
    return horizons | {f"revenue_at_risk_{months}m": money.value * (months - horizons[expected])}


def check_explain_time(loaded: LoadedRun, sources: Sequence[tables.Source], explain: Explain, what: str) -> None:
    """Time a slow explainer (a forest's) on the first rows of the first source; refuse the
    whole input when it would take longer than explain.max_seconds. Fast explainers pass.

    Raises:
        ExplainTooSlowError: the estimate is over the setting.
    """
    explainer = explainers.explainer_for(loaded.scorer)
    if not explainer.slow or explain.max_seconds is None:
        return
    spec = loaded.scorer.spec
    chunks = tables.iter_table(sources[0], list(spec.columns), explainers.PROBE_ROWS, categorical=spec.categorical)
    try:
        first = next(chunks, None)
    finally:
        chunks.close()
    if first is not None:
        probe = clean_features(first, spec).features
        explainers.check_time(explainer, probe, sum(tables.count_rows(s) for s in sources), explain, what)


def write_chunks(chunks: Iterable[ScoredChunk], writer: tables.TableWriter | tables.SqlTableWriter) -> int:
    """Each chunk's output into the writer, in order; the number predicted to churn."""
    positives = 0
    for chunk in chunks:
        writer.write(chunk.output())
        positives += int(chunk.predictions.sum())
    return positives


@dataclass(frozen=True)
class ContactPlan:
    """Whom a door contacts: at most `budget` customers (None: every positive saving), with a
    seeded `holdout` share of them kept aside as the campaign's control group, and `only`: the
    contact list alone (sorted by expected saving), not every customer."""

    budget: int | None = None
    holdout: float | None = None
    seed: int = 0
    only: bool = False
    money_columns: tuple[str, ...] = ()  # the value and offer-cost columns a contact list shows


@dataclass(frozen=True)
class Contacted:
    """What a contact plan chose: the number predicted to churn, chosen (contacted and held
    out), held out, their expected saving (of those contacted) and churn probabilities."""

    predicted_positive: int
    chosen: int
    held_out: int
    saving: float
    chosen_probabilities: np.ndarray
    held_probabilities: np.ndarray
    money: decisions.Money  # every customer's

    @property
    def contacted(self) -> int:
        return self.chosen - self.held_out


def write_contacts(
    chunks: Iterable[ScoredChunk], writer: tables.TableWriter | tables.SqlTableWriter, plan: ContactPlan
) -> Contacted:
    """Each chunk's output with expected_saving and contact by `decisions`' rule across the whole
    table: the chunks are kept aside on disk while every customer is ranked (about 30 bytes a
    row in memory: saving, probability, money), then written; one read, so every rank belongs to
    its own row. With a holdout, a `group` column (contact, holdout; null for the others) and
    contact 0 for those held out. With `only`, just the chosen rows, highest expected saving
    first (kept in memory to sort)."""
    savings_parts, probabilities, money, positives = [], [], [], 0
    with tables.Spill() as spill:
        for chunk in chunks:
            assert chunk.savings is not None, "a contact plan scores with ScoreOptions(decide=True)"
            spill.write(chunk.contact_list(plan.money_columns) if plan.only else chunk.output())
            savings_parts.append(chunk.savings)
            probabilities.append(chunk.probabilities)
            assert chunk.money is not None
            money.append(chunk.money)
            positives += int(chunk.predictions.sum())
        savings = np.concatenate(savings_parts) if savings_parts else np.zeros(0)
        everyone = np.concatenate(probabilities) if probabilities else np.zeros(0)
        chosen = decisions.contact_rule(savings, plan.budget).astype(bool)
        held = np.zeros(len(savings), dtype=bool)
        if plan.holdout:
            picked = np.flatnonzero(chosen)
            held[picked[experiment.holdout_groups(savings[picked], plan.holdout, plan.seed)]] = True
        _replay(spill, writer, chosen, held, plan)
    _log_short_budget(plan.budget, int(chosen.sum()))
    contact = chosen & ~held
    return Contacted(
        positives,
        int(chosen.sum()),
        int(held.sum()),
        float(savings[contact].sum()),
        everyone[chosen],
        everyone[held],
        decisions.Money.concat(money),
    )


def _replay(
    spill: tables.Spill,
    writer: tables.TableWriter | tables.SqlTableWriter,
    chosen: np.ndarray,
    held: np.ndarray,
    plan: ContactPlan,
) -> None:
    kept: list[pa.Table] = []
    first = 0
    for table in spill.replay():
        rows = slice(first, first + table.num_rows)
        at = table.column_names.index("contact")
        table = table.set_column(at, "contact", pa.array((chosen[rows] & ~held[rows]).astype("int8")))
        if plan.holdout:
            group = pa.array(np.where(held[rows], "holdout", "contact"), pa.string(), mask=~chosen[rows])
            table = table.add_column(at + 1, "group", group)
        first += table.num_rows
        if plan.only:
            kept.append(table.filter(pa.array(chosen[rows])))
        else:
            writer.write(table)
    if plan.only and kept:
        listed = pa.concat_tables(kept)
        order = np.argsort(-listed.column("expected_saving").to_numpy(), kind="stable")
        writer.write(listed.take(pa.array(order)))


def _log_short_budget(budget: int | None, chosen: int) -> None:
    if budget is not None and chosen < budget:
        logger.info(
            "budget %s: contacting %s, every customer whose expected saving is positive (contacting anyone else "
            "would lose money on average)",
            f"{budget:,}",
            f"{chosen:,}",
        )
