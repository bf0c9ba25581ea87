"""`report.md` and its PNG plots for a run folder, built only from the files saved in it,
so `python main.py report` can rebuild the report of any past run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve  # noqa: E402

from churn.config import GATE_KEYS, DecisionConfig  # noqa: E402
from churn.errors import ModelError  # noqa: E402
from churn.scoring.decisions import Costs, Money  # noqa: E402
from churn.store import upgrade  # noqa: E402
from churn.store.files import atomic_path, write_text_atomic  # noqa: E402
from churn.store.record import METRIC_LABELS, RunRecord, SurvivalRecord, TestMetrics  # noqa: E402
from churn.store.runs import (  # noqa: E402
    LEADERBOARD,
    REPORT,
    SURVIVAL_CURVES,
    SURVIVAL_DECILES,
    TEST_EXPLANATIONS,
    TEST_PREDICTIONS,
    THRESHOLD_CURVE,
)
from churn.training import insights  # noqa: E402
from churn.training.evaluation import saving_curve, threshold_curve  # noqa: E402

PLOTS = {
    "roc.png": "ROC curve (test rows)",
    "precision_recall.png": "Precision-recall curve (test rows)",
    "calibration.png": "Calibration curve (test rows)",
    "confusion_matrix.png": "Confusion matrix at the threshold (test rows)",
    "threshold.png": "Precision, recall and F1 against the threshold (out-of-fold, training rows)",
    "gains.png": "Cumulative gains: share of churners reached by contacting the riskiest customers first (test rows)",
}
# Drawn only when the config sets the decision costs, and when the run's test rows were explained.
COST_PLOT = {
    "cost.png": "Expected cost against the threshold (test rows)",
    "saving.png": "Saving against the number contacted, ranked by expected saving and by probability (test rows)",
}
SURVIVAL_PLOTS = {
    "survival_calibration.png": "Churn within the last horizon by decile: predicted against Kaplan-Meier (test rows)",
    "survival_curves.png": "Survival from joining per risk group: predicted against Kaplan-Meier (test rows)",
}
CONTRIBUTIONS_PLOT = {"contributions.png": "What drives the churn score: mean |contribution| per input column"}
GAINS_AT = (0.1, 0.2, 0.3, 0.5)
MAX_BARS = 30  # a wider table's remaining columns are in the report's table, and the chart says so
UNITS = {"log-odds": "log-odds of churn", "probability": "probability of churn"}


def write_report(run_dir: Path, record: RunRecord) -> Path:
    """Draw every plot and write report.md into the run folder; return the report's path.

    While training, `record` is the run's record about to be written (metadata.json comes last).

    Raises:
        ModelError: a file the report needs is missing from the run folder.
    """
    inputs = _read_inputs(run_dir, record)
    threshold = record.threshold.value
    figures = {
        "roc.png": _roc_figure(inputs["test"]),
        "precision_recall.png": _pr_figure(inputs["test"]),
        "calibration.png": _calibration_figure(inputs["test"]),
        "confusion_matrix.png": _confusion_figure(record.metrics.confusion_matrix.model_dump(), threshold),
        "threshold.png": _threshold_figure(inputs["curve"], threshold),
        "gains.png": _gains_figure(inputs["test"]),
    }
    if record.decision.has_costs:
        figures["cost.png"] = _cost_figure(inputs["test"], record)
        figures["saving.png"] = _saving_figure(inputs["test"], record)
    if record.survival is not None:
        figures["survival_calibration.png"] = _survival_calibration_figure(inputs["deciles"], record.survival)
        figures["survival_curves.png"] = _survival_curves_figure(inputs["curves"])
    if inputs["global"] is not None:
        figures["contributions.png"] = _contributions_figure(inputs["global"], _units(record), len(inputs["explained"]))
    for name, figure in figures.items():
        _save(figure, run_dir / name)
    path = run_dir / REPORT
    write_text_atomic(path, _markdown(inputs))
    return path


def _read_inputs(run_dir: Path, record: RunRecord) -> dict[str, Any]:
    needed = [LEADERBOARD, TEST_PREDICTIONS, THRESHOLD_CURVE]
    if record.explanations is not None and record.explanations.rows:
        needed.append(TEST_EXPLANATIONS)
    if record.survival is not None:
        needed += [SURVIVAL_DECILES, SURVIVAL_CURVES]
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise ModelError(f"{run_dir}: cannot build a report, missing {', '.join(missing)}; retrain to get a full run")
    explained = insights.read_explanations(run_dir / TEST_EXPLANATIONS) if TEST_EXPLANATIONS in needed else None
    return {
        "record": record,
        "leaderboard": pd.read_csv(run_dir / LEADERBOARD),
        "test": pd.read_csv(run_dir / TEST_PREDICTIONS),
        "curve": pd.read_csv(run_dir / THRESHOLD_CURVE),
        "explained": explained,
        "deciles": pd.read_csv(run_dir / SURVIVAL_DECILES) if record.survival is not None else None,
        "curves": pd.read_csv(run_dir / SURVIVAL_CURVES) if record.survival is not None else None,
        "global": None
        if explained is None
        else insights.global_contributions(explained, set(record.features.numeric_features)),
    }


def _units(record: RunRecord) -> str:
    return UNITS[record.explanations.margin] if record.explanations is not None else "margin"


def _save(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    figure, ax = plt.subplots(figsize=(6, 4.5))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return figure, ax


def _roc_figure(test: pd.DataFrame) -> Figure:
    fpr, tpr, _ = roc_curve(test["y_true"], test["churn_probability"])
    figure, ax = _axes("ROC curve (test rows)", "false positive rate", "true positive rate")
    ax.plot(fpr, tpr, label=f"model (ROC AUC {roc_auc_score(test['y_true'], test['churn_probability']):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.legend(loc="lower right")
    return figure


def _pr_figure(test: pd.DataFrame) -> Figure:
    precision, recall, _ = precision_recall_curve(test["y_true"], test["churn_probability"])
    figure, ax = _axes("Precision-recall curve (test rows)", "recall", "precision")
    pr_auc = average_precision_score(test["y_true"], test["churn_probability"])
    ax.plot(recall, precision, label=f"model (PR AUC {pr_auc:.3f})")
    ax.axhline(test["y_true"].mean(), linestyle="--", color="grey", label="churn rate")
    ax.legend(loc="upper right")
    return figure


def _calibration_figure(test: pd.DataFrame) -> Figure:
    observed, predicted = calibration_curve(test["y_true"], test["churn_probability"], n_bins=10, strategy="quantile")
    figure, ax = _axes("Calibration (test rows, 10 quantile bins)", "mean predicted probability", "observed churn rate")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.legend(loc="upper left")
    return figure


def _survival_calibration_figure(deciles: pd.DataFrame, survival: SurvivalRecord) -> Figure:
    months = survival.horizons[-1]
    figure, ax = _axes(
        f"Churn within {months} months by decile (test rows)", "predicted (decile mean)", "Kaplan-Meier observed"
    )
    ax.plot(deciles["predicted"], deciles["observed"], marker="o", label=survival.model)
    top = float(max(deciles["predicted"].max(), deciles["observed"].max(), 0.05))
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    ax.legend(loc="upper left")
    return figure


def _survival_curves_figure(curves: pd.DataFrame) -> Figure:
    figure, ax = _axes("Survival from joining per risk group (test rows)", "months stayed", "share still a customer")
    for index, (group, rows) in enumerate(curves.groupby("group", sort=False)):
        colour = f"C{index}"
        ax.plot(rows["month"], rows["predicted"], color=colour, label=f"{group} risk: predicted")
        ax.step(rows["month"], rows["kaplan_meier"], where="post", color=colour, linestyle="--", label="Kaplan-Meier")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize="small")
    return figure


def _confusion_figure(cm: dict[str, int], threshold: float) -> Figure:
    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    figure, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    actual = matrix.sum(axis=1)
    for (row, col), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        share = count / actual[row] if actual[row] else 0.0  # of the customers who actually stayed / churned
        ax.text(
            col,
            row,
            f"{count:,}\n{share:.0%} of {['stayers', 'churners'][row]}",
            ha="center",
            va="center",
            color=color,
            fontsize=11,
        )
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["stays", "churns"],
        yticklabels=["stayed", "churned"],
        xlabel="predicted",
        ylabel="actual",
        title=f"Confusion matrix at threshold {threshold:.2f}",
    )
    return figure


def _threshold_figure(curve: pd.DataFrame, threshold: float) -> Figure:
    figure, ax = _axes("Precision, recall, F1 vs threshold (out-of-fold)", "threshold", "score")
    # Above the highest score nobody is contacted: precision has no value there, so the curve stops
    nobody = curve["contacted"] == 0 if "contacted" in curve else (curve["precision"] == 0) & (curve["recall"] == 0)
    shown = curve[~nobody]
    for column in ("precision", "recall", "f1"):
        ax.plot(shown["threshold"], shown[column], label=column)
    if nobody.any() and len(shown):
        ax.axvspan(float(shown["threshold"].max()), 1.0, color="0.92", label="nobody contacted")
    ax.axvline(threshold, linestyle="--", color="black", label=f"chosen {threshold:.2f}")
    ax.set_xlim(0, 1)
    ax.legend(loc="best")
    return figure


def cumulative_gains(test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Share of customers contacted (riskiest first) against share of churners reached."""
    order = np.argsort(-test["churn_probability"].to_numpy(), kind="stable")
    churned = test["y_true"].to_numpy()[order]
    contacted = np.arange(0, len(churned) + 1) / max(len(churned), 1)
    reached = np.concatenate([[0.0], np.cumsum(churned) / max(churned.sum(), 1)])
    return contacted, reached


def gains_at(test: pd.DataFrame, share: float) -> float:
    """Share of churners reached by contacting the riskiest `share` of customers."""
    contacted, reached = cumulative_gains(test)
    return float(np.interp(share, contacted, reached))


def _gains_figure(test: pd.DataFrame) -> Figure:
    contacted, reached = cumulative_gains(test)
    figure, ax = _axes(
        "Cumulative gains (test rows)", "share of customers contacted, riskiest first", "share of churners reached"
    )
    ax.plot(contacted, reached, label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random order")
    at = gains_at(test, 0.2)
    ax.plot([0.2], [at], marker="o", color="black")
    ax.annotate(f"top 20 % reach {at:.0%} of churners", (0.2, at), textcoords="offset points", xytext=(10, -15))
    ax.legend(loc="lower right")
    return figure


def _cost_figure(test: pd.DataFrame, record: RunRecord) -> Figure:
    """Expected cost on the test rows, the figures the report's text quotes, from zero."""
    threshold, decision = record.threshold.value, record.decision
    money = test_money(test, decision)
    curve = threshold_curve(test["y_true"], test["churn_probability"].to_numpy(), decision, money)
    unit = f" ({decision.currency})" if decision.currency else ""
    figure, ax = _axes(f"Expected cost vs threshold ({len(test):,} test rows)", "threshold", f"expected cost{unit}")
    ax.plot(curve["threshold"], curve["expected_cost"], label="contact at or above the threshold")
    ax.axhline(curve["cost_contact_nobody"].iloc[0], linestyle=":", color="tab:red", label="contact nobody")
    ax.axhline(curve["cost_contact_everyone"].iloc[0], linestyle=":", color="tab:green", label="contact everyone")
    ax.axvline(threshold, linestyle="--", color="black", label=f"chosen {threshold:.2f}")
    ax.set_ylim(bottom=0)  # from zero: a saving of a few percent looks its size
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.legend(loc="lower right")
    return figure


def test_money(test: pd.DataFrame, decision: DecisionConfig) -> Money:
    """The test rows' money: as training stored it (per-customer costs), or the constants."""
    costs = Costs.required(decision)
    if not costs.per_customer:
        return costs.money(None, len(test))
    value = test["value"].to_numpy() if "value" in test else None
    return Money(value, test["churn_cost"].to_numpy(), test["offer_cost"].to_numpy())


def saving_points(test: pd.DataFrame, decision: DecisionConfig) -> dict[str, Any]:
    """The saving curve of the test rows and its landmarks: its maximum, the budget's point
    (decision.contact_budget, else every positive expected saving), ranked by expected saving,
    and the same numbers of contacts ranked by probability alone; the value at risk."""
    money = test_money(test, decision)
    probabilities = test["churn_probability"].to_numpy()
    curve = saving_curve(test["y_true"], probabilities, decision, money)
    positive = int((Costs.required(decision).savings(probabilities, money) > 0).sum())
    budget = min(decision.contact_budget or positive, len(test))
    best = int(curve["saving"].idxmax())
    monthly = float((probabilities * money.value).sum()) if money.value is not None else None
    return {
        "curve": curve,
        "best": best,
        "budget": budget,
        "positive": positive,
        "value_at_risk_monthly": monthly,
        "value_at_risk": float((probabilities * money.churn_cost).sum()),
    }


def _saving_figure(test: pd.DataFrame, record: RunRecord) -> Figure:
    points = saving_points(test, record.decision)
    curve, best, budget = points["curve"], points["best"], points["budget"]
    unit = f" ({record.decision.currency})" if record.decision.currency else ""
    figure, ax = _axes(
        f"Saving against the number contacted ({len(test):,} test rows)", "customers contacted", f"saving{unit}"
    )
    ax.plot(curve["contacted"], curve["saving"], color="tab:blue", label="ranked by expected saving")
    ax.plot(curve["contacted"], curve["saving_by_probability"], color="tab:orange", label="ranked by probability")
    ax.plot(curve["contacted"], curve["expected_saving"], color="tab:blue", linestyle=":", label="expected (model)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.plot([best], [curve["saving"].iloc[best]], marker="o", color="black", label=f"maximum: {best:,} contacted")
    ax.plot([budget], [curve["saving"].iloc[budget]], marker="s", color="tab:red", label=f"the rule: {budget:,}")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.legend(loc="lower left", fontsize=8)
    return figure


def _contributions_figure(table: pd.DataFrame, units: str, rows: int) -> Figure:
    shown = table.head(MAX_BARS).iloc[::-1]
    figure, ax = plt.subplots(figsize=(8, 0.32 * len(shown) + 1.6))
    labels = shown["column"].astype(str).str.replace(r"\s+", " ", regex=True)  # a tab in a name has no glyph
    bars = ax.barh(labels, shown["mean_abs_contribution"], color="tab:blue")
    notes = [_short(text) for text in shown["direction"]]
    ax.bar_label(bars, labels=notes, padding=3, fontsize=8)
    ax.set_xlim(0, float(shown["mean_abs_contribution"].max() or 1.0) * 1.6)  # room for the notes
    more = f"; {len(table) - len(shown)} more columns in the report's table" if len(table) > len(shown) else ""
    ax.set(
        title=f"What drives the churn score ({rows:,} test customers{more})",
        xlabel=f"mean |contribution| ({units}); beside each bar, the values that raise churn",
    )
    ax.grid(alpha=0.3, axis="x")
    return figure


def _short(direction: str) -> str:
    """A direction's first part, short enough to sit beside a bar."""
    first = direction.split(";")[0].removeprefix("raise: ").split(" (correlation")[0]
    return first if len(first) <= 40 else first[:39] + "…"


def _markdown(inputs: dict[str, Any]) -> str:
    record: RunRecord = inputs["record"]
    sections = [
        f"# Churn model report: run {record.run_id}",
        f"Created {record.created}; model **{record.model.name}**; status **{record.status}**.",
        _gate_section(record),
        _data_section(record),
        _comparison_section(record, inputs["leaderboard"]),
        _metrics_section(record.metrics, record.threshold.value, record.selection.cv_folds),
        _threshold_section(record),
        *filter(None, [_money_section(inputs["test"], record)]),
        _gains_section(inputs["test"]),
        *filter(None, [_survival_section(inputs)]),
        "## Plots\n\n" + "\n\n".join(f"### {title}\n\n![{title}]({name})" for name, title in plots_of(inputs).items()),
        _why_section(inputs),
    ]
    return "\n\n".join(sections) + "\n"


def _comparison_section(record: RunRecord, leaderboard: pd.DataFrame) -> str:
    selection = record.selection
    if selection.sampled:
        where = (
            f"Candidates were compared on a stratified sample of {selection.compared_on_rows:,} of the "
            f"{selection.training_rows:,} training rows (`training.selection_rows`); the selected one was "
            "then fitted on all of them."
        )
    else:
        where = f"Candidates were compared on all {selection.training_rows:,} training rows."
    chose = SELECTED_BY.get(selection.metric, f"the mean CV {selection.metric}")
    where += f" The selected candidate has the best {chose} (`training.selection_metric: {selection.metric}`)."
    board = leaderboard.rename(columns=LEADERBOARD_HEADERS)
    return "## Model comparison (cross-validation on the training rows)\n\n" + where + "\n\n" + _table(board)


LEADERBOARD_HEADERS = {
    "rank": "rank",
    "model": "model",
    "roc_auc_mean": "ROC AUC (mean)",
    "roc_auc_std": "ROC AUC (std)",
    "pr_auc_mean": "PR AUC (mean)",
    "pr_auc_std": "PR AUC (std)",
    "f1_mean": "F1 (mean)",
    "f1_std": "F1 (std)",
    "oof_expected_cost": "expected cost (out-of-fold)",
    "fit_seconds_mean": "fit seconds (mean)",
    "settings_tried": "settings tried",
    "selected": "selected",
}


SELECTED_BY = {
    "roc_auc": "mean CV ROC AUC",
    "pr_auc": "mean CV PR AUC",
    "f1": "mean CV F1",
    "expected_cost": "expected cost: the lowest cost of its out-of-fold predictions at its own cost-optimal "
    "threshold (`oof_expected_cost`)",
}


def _gate_section(record: RunRecord) -> str:
    gate = record.validation
    if not gate.criteria:
        return "## Validation gate\n\nNo criteria set (`validation:` in the config): the model is accepted."
    reached = record.metrics.model_dump()
    lines = [
        f"- `{key}`: {bound:g}; reached {float(reached[GATE_KEYS[key]]):.4f}" for key, bound in gate.criteria.items()
    ]
    verdict = "passed" if not gate.missed else "**failed**: " + "; ".join(gate.missed)
    return "## Validation gate\n\n" + "\n".join(lines) + f"\n\nVerdict: {verdict}."


def _split_text(split: Any) -> str:
    rows = f"{split.train_rows} training rows, {split.test_rows} test rows"
    if split.method != "time" or split.train_period is None or split.test_period is None:
        return f"random (stratified), {rows}; cross-validation on stratified random folds"
    train, test = split.train_period, split.test_period
    return (
        f"by time on `{split.time_column}`, {rows}: training {train[0]} to {train[1]}, test {test[0]} to "
        f"{test[1]}; cross-validation on forward-chaining folds (train on earlier, validate on later)"
    )


def _data_section(record: RunRecord) -> str:
    data, balance, split = record.data, record.data.class_balance, record.split
    lines = [
        f"- {'file' if data.url is None else 'database'}: `{data.path}` (sha256 `{data.sha256[:16]}…`)",
        f"- rows read {data.rows_read}, used {data.rows_used} "
        f"(dropped: {data.dropped_missing_target} missing target, {data.dropped_duplicate_ids} duplicate id)",
        f"- split: {_split_text(split)}",
        f"- class balance: {balance.positive} churned ({balance.positive_rate:.1%}), {balance.negative} stayed",
    ]
    if data.query is not None:
        lines.insert(1, f"- query: `{' '.join(data.query.split())}`")
    missing = {column: count for column, count in data.missing_values.items() if count > 0}
    table = pd.DataFrame({"column": list(missing), "missing values": list(missing.values())})
    missing_text = "\n\n" + _table(table) if missing else "none."
    return "## Data\n\n" + "\n".join(lines) + "\n\nMissing values per feature column: " + missing_text


def _metrics_section(metrics: TestMetrics, threshold: float, cv_folds: int) -> str:
    values = metrics.model_dump()
    rows = [(label, f"{values[key]:.4f}") for key, label in METRIC_LABELS.items()]
    rows.append(
        (f"{cv_folds}-fold CV ROC AUC (training rows)", f"{metrics.cv_roc_auc_mean:.4f} ± {metrics.cv_roc_auc_std:.4f}")
    )
    cm = metrics.confusion_matrix
    confusion = pd.DataFrame(
        {
            "": ["actual stayed", "actual churned"],
            "predicted stays": [cm.tn, cm.fn],
            "predicted churns": [cm.fp, cm.tp],
        }
    )
    return (
        f"## Final model on the {metrics.rows} held-out test rows\n\n"
        + _table(pd.DataFrame(rows, columns=["metric", "value"]))
        + f"\n\nConfusion matrix at threshold {threshold:.2f}:\n\n"
        + _table(confusion)
    )


def _threshold_section(record: RunRecord) -> str:
    text = f"## Decision threshold\n\nThreshold **{record.threshold.value:.2f}**: {record.threshold.reason}."
    if (costs := record.metrics.costs) is not None:
        unit = f" {record.decision.currency}" if record.decision.currency else ""
        saving = costs.saving_vs_contact_nobody / costs.cost_contact_nobody if costs.cost_contact_nobody else 0.0
        text += (
            f"\n\nOn the test rows, contacting the customers at or above this threshold has an expected cost of "
            f"{costs.expected_cost:,.0f}{unit}, against {costs.cost_contact_nobody:,.0f}{unit} for contacting nobody "
            f"and {costs.cost_contact_everyone:,.0f}{unit} for contacting everyone: a saving of "
            f"{costs.saving_vs_contact_nobody:,.0f}{unit} ({saving:.1%}) against contacting nobody (`cost.png` plots "
            "these test-row figures, from zero)."
        )
    return text


def _money_section(test: pd.DataFrame, record: RunRecord) -> str:
    """What contacting is worth on the test rows: the saving curve's landmarks against ranking by
    probability alone, and the value at risk."""
    decision = record.decision
    if not decision.has_costs:
        return ""
    points = saving_points(test, decision)
    curve, unit = points["curve"], f" {decision.currency}" if decision.currency else ""

    def row(what: str, k: int) -> tuple[str, str, str, str, str]:
        at = curve.iloc[k]
        return (
            what,
            f"{k:,}",
            f"{at['expected_saving']:,.0f}",
            f"{at['saving']:,.0f}",
            f"{at['saving_by_probability']:,.0f}",
        )

    rule = "the budget (decision.contact_budget)" if decision.contact_budget else "every positive expected saving"
    table = pd.DataFrame(
        [
            row(rule, points["budget"]),
            row("the curve's maximum", points["best"]),
            row("a tenth of the customers", len(test) // 10),
        ],
        columns=["contacting", "customers", "expected saving", "saving (test labels)", "same count by probability"],
    )
    risk = f"Value at risk on the test rows (sum of p x cost of churn): **{points['value_at_risk']:,.0f}{unit}**"
    if points["value_at_risk_monthly"] is not None:
        risk += (
            f", {points['value_at_risk_monthly']:,.0f}{unit} a month (sum of p x {decision.value_column}) over "
            f"{decision.value_months:g} months"
        )
    return (
        f"## Money (test rows)\n\nContacting the customers with the highest expected saving first; the saving on "
        f"the test labels counts a contacted churner as cost of churn x offer_success_rate, every contact as its "
        f"offer (`saving.png`). {points['positive']:,} test customers have a positive expected saving.\n\n"
        + _table(table)
        + f"\n\n{risk}."
    )


def _gains_section(test: pd.DataFrame) -> str:
    rows = [(f"top {share:.0%}", f"{gains_at(test, share):.0%}") for share in GAINS_AT]
    table = pd.DataFrame(rows, columns=["customers contacted, riskiest first", "churners reached"])
    return "## Who to contact (test rows)\n\n" + _table(table)


def _why_section(inputs: dict[str, Any]) -> str:
    """The global view: each input column's mean |contribution| and direction, and the reason
    codes of the riskiest test customers; or why the run has none."""
    record: RunRecord = inputs["record"]
    title = "## Why customers churn (test rows)\n\n"
    if inputs["global"] is None:
        gap = upgrade.gaps_of(record).report_explanations
        why = record.explanations.unavailable if record.explanations is not None else None
        return title + (f"No explanations: {why}." if why else str(gap))
    explained, units = inputs["explained"], _units(record)
    assert record.explanations is not None
    table = inputs["global"].rename(
        columns={
            "column": "input column",
            "mean_abs_contribution": f"mean |contribution| ({units})",
            "mean_contribution": "mean contribution",
            "direction": "which values raise churn",
        }
    )
    intro = (
        f"Each customer's score is explained by one contribution per input column, in {units}: "
        f"they add up, with the base {record.explanations.base:+.3f} (the model's average over its training "
        f"rows), to that customer's {units}. Figures over {len(explained):,} test customers "
        f"(`{TEST_EXPLANATIONS}`); `predict --explain` gives every customer's."
    )
    id_column = record.features.id_column
    risky = insights.riskiest_reasons(explained, id_column if id_column in explained else None)
    return (
        title
        + intro
        + "\n\n"
        + _table(table.round(4))
        + f"\n\n### Reason codes of the {len(risky)} highest-risk test customers\n\n"
        + _table(risky)
    )


def _survival_section(inputs: dict[str, Any]) -> str | None:
    record: RunRecord = inputs["record"]
    survival = record.survival
    if survival is None:
        return None
    m, last = survival.metrics, survival.horizons[-1]
    left_out = "; ".join(f"`{c}` ({why})" for c, why in survival.left_out.items()) or "none"
    compared = pd.DataFrame(
        [{"hazard model": c.name, "CV integrated Brier score": c.cv_ibs, "CV Harrell's C": c.cv_concordance}
         for c in survival.compared]
    )  # fmt: skip
    sampled = f" (a stratified sample of {survival.fitted_on_customers:,})" if survival.sampled else ""
    how = "chosen by cross-validated integrated Brier score" if survival.compared else "the one kind configured"
    lines = [
        f"## Time to churn (test rows)\n\nA discrete-time hazard model (**{survival.model}**) on "
        f"`{survival.duration_column}` as months stayed and churn as the end of a stay, fitted on the training "
        f"customers{sampled}, {how}. Left out: {left_out}.",
        *([_table(compared)] if survival.compared else []),
        f"On the {m.rows:,} test rows: Harrell's C **{m.harrell_c:.4f}**, Uno's C {m.uno_c:.4f} (up to month "
        f"{m.tau}); integrated Brier score over months 1-{m.tau} **{m.ibs:.4f}**, against "
        f"{m.kaplan_meier_ibs:.4f} for Kaplan-Meier without covariates. Churn within {last} months by decile of "
        f"prediction (from joining), against the Kaplan-Meier estimate of the same customers; the largest gap is "
        f"{100 * m.worst_decile_gap:.1f} points (a decile of {m.rows // 10} customers has a standard error of a few "
        "points):",
        _table(inputs["deciles"]),
    ]
    revenue = f"expected_months_{last}m"
    if "value" in inputs["test"] and revenue in inputs["test"]:
        at_risk = float((inputs["test"]["value"] * (last - inputs["test"][revenue])).sum())
        lines.append(
            f"Revenue at risk over the next {last} months of the test customers (value x months not expected to "
            f"be kept, from their present tenure): {at_risk:,.0f}{_units_of_money(record)}."
        )
    return "\n\n".join(lines)


def _units_of_money(record: RunRecord) -> str:
    return f" {record.decision.currency}" if record.decision.currency else ""


def plots_of(inputs: dict[str, Any]) -> dict[str, str]:
    """The plots this run's report holds: the cost plot only when costs are set, the
    contributions plot only when the test rows were explained, the survival plots only with a
    survival model."""
    plots = PLOTS | (COST_PLOT if "expected_cost" in inputs["curve"] else {})
    plots |= SURVIVAL_PLOTS if inputs["record"].survival is not None else {}
    return plots | (CONTRIBUTIONS_PLOT if inputs["global"] is not None else {})


def _table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (pandas' to_markdown needs an extra package)."""
    header = "| " + " | ".join(_escaped(str(c)) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return _escaped(str(value))


def _escaped(text: str) -> str:
    """Text for a Markdown table cell: a pipe would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")
