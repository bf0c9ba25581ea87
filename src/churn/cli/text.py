"""The CLI's text tables: the leaderboard, metrics and the runs of a models folder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from churn.store.record import METRIC_LABELS, SurvivalRecord

if TYPE_CHECKING:
    import pandas as pd

    from churn.monitoring.verdicts import MonitorReport
    from churn.scoring.core import HorizonTotals
    from churn.workflows.roles import Role


def leaderboard_table(board: pd.DataFrame) -> str:
    costs = "oof_expected_cost" in board.columns
    head = f"  {'rank':<5}{'model':<25}{'ROC AUC':>18}{'PR AUC':>18}{'F1':>18}"
    lines = [head + (f"{'OOF cost':>12}" if costs else "") + f"{'fit s':>8}{'tried':>7}"]
    for row in board.itertuples(index=False):
        scores = "".join(
            f"{getattr(row, m + '_mean'):>10.4f} ± {getattr(row, m + '_std'):.3f}" for m in ("roc_auc", "pr_auc", "f1")
        )
        cost = f"{row.oof_expected_cost:>12,.0f}" if costs else ""
        lines.append(f"  {row.rank:<5}{row.model:<25}{scores}{cost}{row.fit_seconds_mean:>8.2f}{row.settings_tried:>7}")
    return "\n".join(lines)


def metrics_table(metrics: Mapping[str, Any], threshold: float, cv_folds: int | None = None) -> str:
    lines = [f"  {'metric':<30}{'value':>16}"]
    lines += [f"  {label:<30}{metrics[key]:>16.4f}" for key, label in METRIC_LABELS.items()]
    if cv_folds is not None:
        cv = f"{metrics['cv_roc_auc_mean']:.4f} ± {metrics['cv_roc_auc_std']:.4f}"
        lines.append(f"  {str(cv_folds) + '-fold CV ROC AUC (train)':<30}{cv:>16}")
    cm = metrics["confusion_matrix"]
    lines.append(f"  threshold {threshold:.3f}: TP {cm['tp']}  FP {cm['fp']}  FN {cm['fn']}  TN {cm['tn']}")
    return "\n".join(lines)


def survival_line(survival: SurvivalRecord) -> str:
    """train: the hazard model's test figures beside the classifier's."""
    m = survival.metrics
    return (
        f"survival ({survival.model}, {survival.duration_column} as months stayed): test C-index {m.harrell_c:.4f} "
        f"(Uno {m.uno_c:.4f}), integrated Brier score {m.ibs:.4f} over months 1-{m.tau} "
        f"(Kaplan-Meier {m.kaplan_meier_ibs:.4f})"
    )


def horizon_line(totals: HorizonTotals) -> str:
    """predict: expected churners within each horizon, and the revenue at risk."""
    within = ", ".join(
        f"{value:,.0f} within {name.removeprefix('churn_within_').removesuffix('m')} months"
        for name, value in totals.churners.items()
    )
    line = f"expected churners among {totals.customers:,} customers with a tenure: {within}"
    for name, value in totals.revenue_at_risk.items():
        line += f"; revenue at risk over {name.removeprefix('revenue_at_risk_').removesuffix('m')} months {value:,.0f}"
    return line


def roles_table(roles: list[Role]) -> str:
    """init --show: each column's role, what was measured on it, and why."""
    width = max([len("column"), *(len(r.column) for r in roles)]) + 2
    lines = [f"  {'column':<{width}}{'role':<13}{'distinct':>9}{'missing':>9}{'1-col AUC':>11}  why"]
    for r in roles:
        auc = f"{r.one_column_auc:.3f}" if r.one_column_auc is not None else "-"
        lines.append(f"  {r.column:<{width}}{r.role:<13}{r.distinct:>9,}{r.missing_share:>9.1%}{auc:>11}  {r.reason}")
    return "\n".join(lines)


def runs_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no runs yet"
    lines = [f"  {'run id':<28}{'created':<27}{'model':<24}{'ROC AUC':>8}{'thresh':>8}  {'data':<28}status"]
    for row in rows:
        auc = f"{row['test_roc_auc']:.4f}" if row["test_roc_auc"] is not None else "-"
        threshold = f"{row['threshold']:.2f}" if row["threshold"] is not None else "-"
        status = row["status"] + ("  <- latest" if row["latest"] else "")
        lines.append(
            f"  {row['run_id']:<28}{row['created'] or '-':<27}{row['model'] or '-':<24}{auc:>8}"
            f"{threshold:>8}  {(row['data'] or '-')[:27]:<28}{status}"
        )
    lines += [f"  {row['run_id']}: {row['problem']}" for row in rows if row.get("problem")]
    return "\n".join(lines)


def monitor_summary(report: MonitorReport) -> str:
    """The verdict, the columns that shifted most, the scores' drift and the estimates."""
    lines = [f"{report.verdict}: run {report.run_id} on {report.rows:,} rows of {report.input}"]
    lines += [f"  {reason}" for reason in report.reasons]
    lines.append(f"\n  {'column':<24}{'PSI':>8}  {'band':<16}{'missing then/now':>18}")
    for column in report.columns[:10]:
        missing = f"{column.missing_share_then:.1%}/{column.missing_share_now:.1%}"
        lines.append(f"  {column.column:<24}{column.psi:>8.3f}  {column.band:<16}{missing:>18}")
    prediction = report.prediction
    lines.append(
        f"\n  churn probability PSI {prediction.psi:.3f} ({prediction.band}), mean "
        f"{_value(prediction.mean_then)} then, {_value(prediction.mean_now)} now"
    )
    if (horizon := report.horizon) is not None:
        months = horizon.column.removeprefix("churn_within_").removesuffix("m")
        lines.append(
            f"  churn within {months} months (predicted from each tenure) {horizon.then:.1%} then, "
            f"{horizon.now:.1%} now ({100 * horizon.change:+.1f} points)"
        )
    for key in ("roc_auc", "precision", "recall"):
        realised = getattr(report.realised, key) if report.realised is not None else None
        extra = f", realised {_value(realised)}" if realised is not None else ""
        estimated, test = getattr(report.estimated, key), getattr(report.test, key)
        lines.append(f"  {key:<10} estimated {_value(estimated)}, test {_value(test)}{extra}")
    return "\n".join(lines)


def history_table(lines: list[dict[str, Any]]) -> str:
    if not lines:
        return "no monitored batches yet"
    head = f"  {'monitored':<27}{'run id':<28}{'rows':>10}{'pred PSI':>10}{'est AUC':>9}{'contact':>9}"
    rows = [head + "  verdict  input"]
    for line in lines:
        rows.append(
            f"  {line['created']:<27}{line['run_id']:<28}{line['rows']:>10,}{line['prediction_psi']:>10.3f}"
            f"{_value(line['estimated_roc_auc']):>9}{_value(line['contacted_share']):>9}  "
            f"{line['verdict']:<8} {line['input']}"
        )
    return "\n".join(rows)


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def comparison_table(found: Mapping[str, Any]) -> str:
    """Two runs side by side, then the config keys whose values differ."""
    first, second = found["runs"]
    lines = [f"  {'':<28}{first:<34}{second}"]
    for label, a, b in found["rows"]:
        mark = "" if a == b else "  *"
        lines.append(f"  {label:<28}{_cell(a):<34}{_cell(b)}{mark}")
    differences = found["config_differences"]
    lines.append("\n  config differences:" if differences else "\n  the configs are the same")
    lines += [f"  {key:<40}{_cell(a):<34}{_cell(b)}" for key, a, b in differences]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"
    else:
        text = str(value)
    return text if len(text) <= 32 else text[:31] + "…"


def cost_line(rows: str, costs: Mapping[str, Any]) -> str:
    """The expected cost of the run's decisions on `rows`, against contacting nobody and everyone."""
    return (
        f"expected cost on {rows} {costs['expected_cost']:,.0f} vs {costs['cost_contact_nobody']:,.0f} "
        f"contacting nobody and {costs['cost_contact_everyone']:,.0f} contacting everyone "
        f"(saving {costs['saving_vs_contact_nobody']:,.0f} against contacting nobody)"
    )


def contact_lines(contacts: Any, currency: str | None) -> list[str]:
    """predict's summary of whom it chose (a `churn.workflows.predict.Contacts`): the number
    contacted, their total expected saving and the break-even probability; with a holdout, the
    group held out and the smallest fall in churn the design can detect."""
    unit = f" {currency}" if currency else ""
    chosen = contacts.chosen
    rule = "the average customer's; each has their own" if contacts.per_customer else "contact above it"
    lines = [
        f"contacting {chosen.contacted:,} customers: total expected saving {chosen.saving:,.0f}{unit}; "
        f"break-even probability {contacts.break_even:.3f} ({rule})"
    ]
    if chosen.held_out:
        lines.append(f"holdout: {chosen.held_out:,} of the {chosen.chosen:,} chosen held out (seed {contacts.seed})")
        churn = float(chosen.held_probabilities.mean())
        if contacts.detectable_fall is None:
            lines.append("the groups are too small to detect any fall in churn; hold out more, or contact more")
        else:
            lines.append(
                f"the design detects a fall in churn of {100 * contacts.detectable_fall:.1f} points from the "
                f"{100 * churn:.1f} % predicted (5 % significance, 80 % power); measure it with campaign"
            )
    return lines


def campaign_lines(figures: Mapping[str, Any]) -> list[str]:
    """campaign's summary: each group's churn, the fall with its interval, the success rate, the
    money and what to set offer_success_rate to."""
    groups, fall, rate = figures["groups"], figures["churn_fall"], figures["success_rate"]
    lines = [
        f"{name}: {g['customers']:,} customers, {g['churned']:,} churned ({100 * g['churned'] / g['customers']:.1f} %)"
        for name, g in groups.items()
    ]
    verdict = "distinguishable from zero" if figures["distinguishable"] else "not distinguishable from zero"
    lines.append(
        f"fall in churn {100 * fall['estimate']:.1f} points (95 % interval {100 * fall['low']:.1f} to "
        f"{100 * fall['high']:.1f}, {fall['method']}): {verdict}"
    )
    lines.append(f"offer success rate {rate['estimate']:.2f} (95 % interval {rate['low']:.2f} to {rate['high']:.2f})")
    money = figures.get("money", {})
    if "saved" in money:
        unit = f" {money['currency']}" if money.get("currency") else ""
        lines.append(
            f"saved against contacting nobody {money['saved']:,.0f}{unit} (95 % interval {money['low']:,.0f} to "
            f"{money['high']:,.0f}), offers included"
        )
    lines.append(figures["recommendation"]["text"])
    return lines
