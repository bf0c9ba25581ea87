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
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from churn.errors import ModelError  # noqa: E402
from churn.files import atomic_path, write_text_atomic  # noqa: E402
from churn.record import METRIC_LABELS, RunRecord, TestMetrics  # noqa: E402
from churn.runs import FEATURE_EFFECTS, LEADERBOARD, REPORT, TEST_PREDICTIONS, THRESHOLD_CURVE  # noqa: E402

PLOTS = {
    "roc.png": "ROC curve (test rows)",
    "precision_recall.png": "Precision-recall curve (test rows)",
    "calibration.png": "Calibration curve (test rows)",
    "confusion_matrix.png": "Confusion matrix at the threshold (test rows)",
    "threshold.png": "Precision, recall and F1 against the threshold (out-of-fold, training rows)",
    "gains.png": "Cumulative gains: share of churners reached by contacting the riskiest customers first (test rows)",
    "feature_effects.png": "Top feature effects",
}
# Drawn only when the config sets the decision costs.
COST_PLOT = {"cost.png": "Expected cost against the threshold (out-of-fold, training rows)"}
GAINS_AT = (0.1, 0.2, 0.3, 0.5)
TOP_EFFECTS = 15


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
        "feature_effects.png": _effects_figure(inputs["effects"]),
    }
    if "expected_cost" in inputs["curve"]:
        figures["cost.png"] = _cost_figure(inputs["curve"], threshold)
    for name, figure in figures.items():
        _save(figure, run_dir / name)
    path = run_dir / REPORT
    write_text_atomic(path, _markdown(inputs))
    return path


def _read_inputs(run_dir: Path, record: RunRecord) -> dict[str, Any]:
    needed = [LEADERBOARD, TEST_PREDICTIONS, THRESHOLD_CURVE, FEATURE_EFFECTS]
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise ModelError(f"{run_dir}: cannot build a report, missing {', '.join(missing)}; retrain to get a full run")
    return {
        "record": record,
        "leaderboard": pd.read_csv(run_dir / LEADERBOARD),
        "test": pd.read_csv(run_dir / TEST_PREDICTIONS),
        "curve": pd.read_csv(run_dir / THRESHOLD_CURVE),
        "effects": pd.read_csv(run_dir / FEATURE_EFFECTS),
    }


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
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.legend(loc="lower right")
    return figure


def _pr_figure(test: pd.DataFrame) -> Figure:
    precision, recall, _ = precision_recall_curve(test["y_true"], test["churn_probability"])
    figure, ax = _axes("Precision-recall curve (test rows)", "recall", "precision")
    ax.plot(recall, precision, label="model")
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


def _confusion_figure(cm: dict[str, int], threshold: float) -> Figure:
    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    figure, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=color, fontsize=14)
    ax.set(
        xticks=[0, 1], yticks=[0, 1], xticklabels=["stays", "churns"], yticklabels=["stayed", "churned"],
        xlabel="predicted", ylabel="actual", title=f"Confusion matrix at threshold {threshold:.2f}",
    )  # fmt: skip
    return figure


def _threshold_figure(curve: pd.DataFrame, threshold: float) -> Figure:
    figure, ax = _axes("Precision, recall, F1 vs threshold (out-of-fold)", "threshold", "score")
    for column in ("precision", "recall", "f1"):
        ax.plot(curve["threshold"], curve[column], label=column)
    ax.axvline(threshold, linestyle="--", color="black", label=f"chosen {threshold:.2f}")
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
    figure, ax = _axes("Cumulative gains (test rows)", "share of customers contacted, riskiest first",
                       "share of churners reached")  # fmt: skip
    ax.plot(contacted, reached, label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random order")
    at = gains_at(test, 0.2)
    ax.plot([0.2], [at], marker="o", color="black")
    ax.annotate(f"top 20 % reach {at:.0%} of churners", (0.2, at), textcoords="offset points", xytext=(10, -15))
    ax.legend(loc="lower right")
    return figure


def _cost_figure(curve: pd.DataFrame, threshold: float) -> Figure:
    figure, ax = _axes("Expected cost vs threshold (out-of-fold)", "threshold", "expected cost")
    ax.plot(curve["threshold"], curve["expected_cost"], label="contact at or above the threshold")
    ax.axhline(curve["cost_contact_nobody"].iloc[0], linestyle=":", color="tab:red", label="contact nobody")
    ax.axhline(curve["cost_contact_everyone"].iloc[0], linestyle=":", color="tab:green", label="contact everyone")
    ax.axvline(threshold, linestyle="--", color="black", label=f"chosen {threshold:.2f}")
    ax.legend(loc="best")
    return figure


def _effects_figure(effects: pd.DataFrame) -> Figure:
    top = effects.head(TOP_EFFECTS).iloc[::-1]
    kind = str(effects["kind"].iloc[0]) if len(effects) else "effect"
    figure, ax = plt.subplots(figsize=(7, 0.35 * len(top) + 1.5))
    labels = top["feature"].astype(str).str.replace(r"\s+", " ", regex=True)  # a tab in a category has no glyph
    ax.barh(labels, top["effect"], xerr=top["std"].fillna(0), color="tab:blue")
    xlabel = "coefficient (standardised / one-hot)" if kind == "coefficient" else "drop in ROC AUC when shuffled"
    ax.set(title=f"Top {len(top)} feature effects ({kind.replace('_', ' ')})", xlabel=xlabel)
    ax.grid(alpha=0.3, axis="x")
    return figure


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
        _gains_section(inputs["test"]),
        "## Plots\n\n" + "\n\n".join(f"### {title}\n\n![{title}]({name})" for name, title in plots_of(inputs).items()),
        "## Top feature effects\n\n" + _table(inputs["effects"].head(TOP_EFFECTS).round(4)),
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
    return "## Model comparison (cross-validation on the training rows)\n\n" + where + "\n\n" + _table(leaderboard)


def _gate_section(record: RunRecord) -> str:
    gate = record.validation
    if not gate.criteria:
        return "## Validation gate\n\nNo criteria set (`validation:` in the config): the model is accepted."
    lines = [f"- `{key}`: {bound:g}" for key, bound in gate.criteria.items()]
    verdict = "passed" if not gate.missed else "**failed**: " + "; ".join(gate.missed)
    return "## Validation gate\n\n" + "\n".join(lines) + f"\n\nVerdict: {verdict}."


def _data_section(record: RunRecord) -> str:
    data, balance, split = record.data, record.data.class_balance, record.split
    lines = [
        f"- file: `{data.path}` (sha256 `{data.sha256[:16]}…`)",
        f"- rows read {data.rows_read}, used {data.rows_used} "
        f"(dropped: {data.dropped_missing_target} missing target, {data.dropped_duplicate_ids} duplicate id)",
        f"- split: {split.train_rows} training rows, {split.test_rows} test rows",
        f"- class balance: {balance.positive} churned ({balance.positive_rate:.1%}), {balance.negative} stayed",
    ]
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
        text += (
            f"\n\nOn the test rows, contacting the customers at or above this threshold has an expected cost of "
            f"{costs.expected_cost:,.0f}, against {costs.cost_contact_nobody:,.0f} for contacting nobody "
            f"and {costs.cost_contact_everyone:,.0f} for contacting everyone: a saving of "
            f"{costs.saving_vs_contact_nobody:,.0f} against contacting nobody."
        )
    return text


def _gains_section(test: pd.DataFrame) -> str:
    rows = [(f"top {share:.0%}", f"{gains_at(test, share):.0%}") for share in GAINS_AT]
    table = pd.DataFrame(rows, columns=["customers contacted, riskiest first", "churners reached"])
    return "## Who to contact (test rows)\n\n" + _table(table)


def plots_of(inputs: dict[str, Any]) -> dict[str, str]:
    """The plots this run's report holds: the cost plot only when costs are set."""
    return PLOTS | (COST_PLOT if "expected_cost" in inputs["curve"] else {})


def _table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (pandas' to_markdown needs an extra package)."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)
