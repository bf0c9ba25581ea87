"""The CLI's text tables: the leaderboard, metrics and the runs of a models folder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from churn.record import METRIC_LABELS

if TYPE_CHECKING:
    import pandas as pd


def leaderboard_table(board: pd.DataFrame) -> str:
    lines = [f"  {'rank':<5}{'model':<25}{'ROC AUC':>18}{'PR AUC':>18}{'F1':>18}{'fit s':>8}{'tried':>7}"]
    for row in board.itertuples(index=False):
        scores = "".join(
            f"{getattr(row, m + '_mean'):>10.4f} ± {getattr(row, m + '_std'):.3f}" for m in ("roc_auc", "pr_auc", "f1")
        )
        lines.append(f"  {row.rank:<5}{row.model:<25}{scores}{row.fit_seconds_mean:>8.2f}{row.settings_tried:>7}")
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


def runs_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no runs yet"
    lines = [f"  {'run id':<28}{'created':<27}{'model':<24}{'ROC AUC':>8}{'thresh':>8}  status"]
    for row in rows:
        auc = f"{row['test_roc_auc']:.4f}" if row["test_roc_auc"] is not None else "-"
        threshold = f"{row['threshold']:.2f}" if row["threshold"] is not None else "-"
        status = row["status"] + ("  <- latest" if row["latest"] else "")
        lines.append(
            f"  {row['run_id']:<28}{row['created'] or '-':<27}{row['model'] or '-':<24}{auc:>8}{threshold:>8}  {status}"
        )
    return "\n".join(lines)
