"""The campaign workflow: `python main.py campaign`, the offer's effect measured on the campaign
that `predict --holdout` designed.

The contact list (predict's output with its `group` column: contact or holdout) and the
outcomes (each customer's id and whether they churned) are joined by id; churn in each group
gives the fall in churn the offer caused, with Newcombe's hybrid score interval, the offer's
success rate (what `decision.offer_success_rate` assumes) with Katz's interval, and the money
saved against contacting nobody (`churn.scoring.experiment`). Written as `campaign.json` and a
self-contained `campaign.html`.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.config import Config
from churn.errors import ChurnError, DataError
from churn.io import tables
from churn.labels import label_key
from churn.monitoring.page import STYLE
from churn.scoring import decisions, experiment
from churn.store.files import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

GROUPS = ("contact", "holdout")
# The widest 95 % interval of the success rate from which a value for the config is offered:
# narrower than this, the figure is worth setting; wider, the campaign was too small to say.
MAX_RATE_WIDTH = 0.2
CHURNED = {"1", "1.0", "true", "yes", "churned"}
STAYED = {"0", "0.0", "false", "no", "stayed"}
SHOWN_IDS = 3


@dataclass(frozen=True)
class CampaignResult:
    output: Path
    figures: dict[str, Any]


def campaign(
    config: Config, contacts: tables.Source, outcomes: tables.Source, output: Path | None = None
) -> CampaignResult:
    """Measure a campaign: its contact list against the outcomes, into campaign.json and
    campaign.html (in `output`, default campaigns/<contact list's stem>/ beside the config).

    Raises:
        DataError: a column is missing; an id repeats; ids of the list have no outcome, or
            outcomes name customers not in the list; a group is empty; an outcome is not a
            churn label.
    """
    id_column = config.data.id_column
    if id_column is None:
        raise ChurnError(f"{config.source}: data.id_column is not set; a campaign joins its files by customer id")
    folder = output or config.source.parent / "campaigns" / _stem(contacts)
    listed = _read_contacts(contacts, id_column, config.decision)
    churned = _read_outcomes(outcomes, id_column, config.data.target, config.data.positive_label)
    joined = _join(listed, churned, id_column, contacts, outcomes)
    figures = {
        "contacts": str(contacts),
        "outcomes": str(outcomes),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    } | measure(joined, config.decision)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "campaign.json", figures)
    write_text_atomic(folder / "campaign.html", page(figures))
    return CampaignResult(folder, figures)


def _stem(source: tables.Source) -> str:
    name = source.name
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_contacts(source: tables.Source, id_column: str, decision: Any) -> pd.DataFrame:
    header = tables.table_columns(source)
    for column in (id_column, "group"):
        if column not in header:
            raise DataError(
                f"{source}: no column {column}; give the contact list predict --holdout wrote (its id and group)"
            )
    money = [c for c in decision.value_columns if c in header]
    frame = tables.read_table(source, [id_column, "group", *money], categorical=[id_column, "group"])
    frame = frame[frame["group"].notna()]  # the customers not chosen are not in the campaign
    groups = set(frame["group"].astype("str"))
    if unknown := groups - set(GROUPS):
        raise DataError(f"{source}: column group holds {sorted(unknown)[0]!r}; it must be contact or holdout")
    frame = frame.assign(**{id_column: frame[id_column].astype("str"), "group": frame["group"].astype("str")})
    _refuse_repeats(frame[id_column], source, id_column)
    return frame.reset_index(drop=True)


def _read_outcomes(source: tables.Source, id_column: str, target: str, positive: Any) -> pd.DataFrame:
    header = tables.table_columns(source)
    column = target if target in header else "churned" if "churned" in header else None
    if id_column not in header or column is None:
        raise DataError(
            f"{source}: the outcomes need columns {id_column} and {target} (or churned): each customer's id and "
            "whether they churned"
        )
    frame = tables.read_table(source, [id_column, column], categorical=[id_column, column])
    keys = frame[column].astype("str").map(label_key)
    churned = keys.isin(CHURNED | {label_key(positive)})  # any other value (one at most) is stayed
    others = sorted(set(keys[~churned & ~keys.isin(STAYED) & frame[column].notna()]))
    if len(others) > 1 or frame[column].isna().any():
        problem = "is missing" if frame[column].isna().any() else f"holds {others[0]!r} and {others[1]!r}"
        raise DataError(
            f"{source}: column {column} {problem}; each outcome is churned ({positive}, 1, true, yes) or stayed "
            "(one other value: 0, false, no)"
        )
    result = pd.DataFrame({id_column: frame[id_column].astype("str"), "churned": churned.astype("int64")})
    _refuse_repeats(result[id_column], source, id_column)
    return result


def _refuse_repeats(ids: pd.Series, source: tables.Source, id_column: str) -> None:
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise DataError(f"{source}: {len(repeated):,} repeated {id_column}(s), first {repeated.iloc[0]}; one row each")


def _join(
    listed: pd.DataFrame, churned: pd.DataFrame, id_column: str, contacts: tables.Source, outcomes: tables.Source
) -> pd.DataFrame:
    joined = listed.merge(churned, on=id_column, how="outer", indicator=True)
    for side, source, other in (("left_only", contacts, outcomes), ("right_only", outcomes, contacts)):
        orphans = joined.loc[joined["_merge"] == side, id_column]
        if len(orphans):
            first = ", ".join(map(str, orphans.head(SHOWN_IDS)))
            raise DataError(
                f"{source}: {len(orphans):,} customer(s) are not in {other} (first: {first}); every customer of "
                "the campaign needs an outcome, and only they"
            )
    for group in GROUPS:
        if not (joined["group"] == group).any():
            raise DataError(f"{contacts}: the {group} group is empty; a campaign needs both groups to compare")
    return joined.drop(columns="_merge")


def measure(joined: pd.DataFrame, decision: Any) -> dict[str, Any]:
    """The campaign's figures: each group's churn, the fall with its interval, the success rate
    with its interval, the money saved, and what to set `decision.offer_success_rate` to."""
    contact, held = joined[joined["group"] == "contact"], joined[joined["group"] == "holdout"]
    n_c, x_c, n_h, x_h = len(contact), int(contact["churned"].sum()), len(held), int(held["churned"].sum())
    effect = experiment.churn_fall(x_c, n_c, x_h, n_h)
    rate, rate_low, rate_high = experiment.success_rate(x_c, n_c, x_h, n_h)
    figures: dict[str, Any] = {
        "groups": {"contact": {"customers": n_c, "churned": x_c}, "holdout": {"customers": n_h, "churned": x_h}},
        "churn_contacted": effect.churn_contacted,
        "churn_held_out": effect.churn_held_out,
        "churn_fall": {
            "estimate": effect.fall,
            "low": effect.low,
            "high": effect.high,
            "method": "Newcombe hybrid score",
        },
        "distinguishable": effect.distinguishable,
        "success_rate": {"estimate": rate, "low": rate_low, "high": rate_high, "method": "Katz log risk ratio"},
        "assumed_success_rate": decision.offer_success_rate,
        "recommendation": _recommendation(effect, rate, rate_low, rate_high),
    }
    if (costs := decisions.Costs.of(decision)) is not None:
        figures["money"] = _money(contact, effect, costs, decision)
    return figures


def _recommendation(effect: experiment.Effect, rate: float, low: float, high: float) -> dict[str, Any]:
    if effect.distinguishable and high - low <= MAX_RATE_WIDTH:
        value = round(min(max(rate, 0.0), 1.0), 2)
        text = f"set decision.offer_success_rate: {value} (95 % interval {low:.2f} to {high:.2f})"
        return {"offer_success_rate": value, "text": text}
    why = "the fall in churn is not distinguishable from zero" if not effect.distinguishable else ""
    wide = f"the success rate's 95 % interval ({low:.2f} to {high:.2f}) is wider than {MAX_RATE_WIDTH}"
    reason = why if why and high - low <= MAX_RATE_WIDTH else f"{why} and {wide}" if why else wide
    text = f"keep decision.offer_success_rate as it is: {reason}; a larger campaign (or holdout) can say"
    return {"offer_success_rate": None, "text": text}


def _money(contact: pd.DataFrame, effect: experiment.Effect, costs: decisions.Costs, decision: Any) -> dict[str, Any]:
    """The money the contacts saved against contacting nobody: the fall in churn times the
    contacted customers' cost of churn, less their offers; its interval from the fall's."""
    present = [c for c in costs.columns if c in contact]
    if len(present) < len(costs.columns):  # the list lacks a money column: each customer's value is unknown
        return {"unavailable": f"the contact list lacks {', '.join(sorted(set(costs.columns) - set(present)))}"}
    money = costs.money(contact, len(contact), decisions.Rows("the contact list"))
    worth, offers = float(money.churn_cost.sum()), float(money.offer_cost.sum())
    return {
        "currency": decision.currency,
        "offers": offers,
        "saved": effect.fall * worth - offers,
        "low": effect.low * worth - offers,
        "high": effect.high * worth - offers,
    }


def page(figures: dict[str, Any]) -> str:
    """campaign.html: the verdict, the two groups, the effect, the success rate, the money."""
    fall, rate, groups = figures["churn_fall"], figures["success_rate"], figures["groups"]
    colour = "#1b7f3b" if figures["distinguishable"] else "#b26a00"
    verdict = (
        f"The offer cut churn by {100 * fall['estimate']:.1f} points (95 % interval {100 * fall['low']:.1f} to "
        f"{100 * fall['high']:.1f})" + ("" if figures["distinguishable"] else ": not distinguishable from zero")
    )
    rows = "".join(
        f"<tr><td>{name}</td><td>{g['customers']:,}</td><td>{g['churned']:,}</td>"
        f"<td>{100 * g['churned'] / g['customers']:.1f} %</td></tr>"
        for name, g in groups.items()
    )
    money = figures.get("money", {})
    saved = ""
    if "saved" in money:
        unit = f" {money['currency']}" if money.get("currency") else ""
        saved = (
            f"<h2>Money</h2><p>Saved against contacting nobody: <b>{money['saved']:,.0f}{unit}</b> (95 % interval "
            f"{money['low']:,.0f} to {money['high']:,.0f}), after {money['offers']:,.0f}{unit} of offers.</p>"
        )
    chart = _interval_chart(fall)
    body = (
        f'<p class="verdict" style="background:{colour}">{html.escape(verdict)}</p>'
        f"<h2>Groups</h2><table><tr><th>group</th><th>customers</th><th>churned</th><th>churn</th></tr>{rows}</table>"
        f"<h2>Effect</h2>{chart}<p>Fall in churn (held out minus contacted), {html.escape(fall['method'])} interval."
        f"</p><h2>Offer success rate</h2><p>Measured {rate['estimate']:.2f} (95 % interval {rate['low']:.2f} to "
        f"{rate['high']:.2f}); the config assumes {figures['assumed_success_rate']}.</p>"
        f"<p><b>{html.escape(figures['recommendation']['text'])}</b></p>{saved}"
    )
    title = f"churn campaign: {html.escape(figures['contacts'])}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        f'<p class="meta">outcomes {html.escape(figures["outcomes"])} · {html.escape(figures["created"])}</p>'
        f"{body}</body></html>\n"
    )


def _interval_chart(fall: dict[str, float]) -> str:
    """The fall and its interval on a line through zero, in points of churn (inline SVG)."""
    span = max(abs(fall["low"]), abs(fall["high"]), 0.01) * 1.2
    width, height = 520, 60

    def x(value: float) -> float:
        return float(np.clip(width / 2 + value / span * (width / 2 - 20), 0, width))

    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="fall in churn with its interval">'
        f'<line x1="{x(0)}" y1="5" x2="{x(0)}" y2="55" stroke="#999"/>'
        f'<line x1="{x(fall["low"])}" y1="30" x2="{x(fall["high"])}" y2="30" stroke="#1f77b4" stroke-width="4"/>'
        f'<circle cx="{x(fall["estimate"])}" cy="30" r="6" fill="#d2691e"/>'
        f'<text x="{x(0) + 4}" y="12" font-size="11">0</text></svg>'
    )
