"""The newest run of a models folder as Markdown: status, leaderboard and test metrics.

    python scripts/run_summary.py [-c config.yaml] >> "$GITHUB_STEP_SUMMARY"

Reads the run folder only (what train wrote), so it also summarises a run the gate rejected.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from churn.config import load_config
from churn.store import runs
from churn.store.record import METRIC_LABELS


def summary(run_dir: Path) -> str:
    record = runs.read_record(run_dir)
    metrics = record.metrics.model_dump()
    board = pd.read_csv(run_dir / runs.LEADERBOARD)
    gate = record.validation.missed
    lines = [
        f"## churn run {record.run_id}: {record.status}",
        "",
        f"Selected **{record.model.name}**, threshold {record.threshold.value:.2f}"
        + (f"; missed the gate: {'; '.join(gate)}" if gate else "; passed the validation gate."),
        "",
        "### Leaderboard (cross-validation on the training rows)",
        "",
        "| rank | model | ROC AUC | PR AUC | F1 | settings tried |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in board.itertuples(index=False):
        lines.append(
            f"| {row.rank} | {row.model} | {row.roc_auc_mean:.4f} ± {row.roc_auc_std:.4f} | "
            f"{row.pr_auc_mean:.4f} | {row.f1_mean:.4f} | {row.settings_tried} |"
        )
    lines += ["", f"### Test metrics ({metrics['rows']} held-out rows)", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {label} | {metrics[key]:.4f} |" for key, label in METRIC_LABELS.items()]
    if (costs := record.metrics.costs) is not None:
        lines.append(f"| expected cost | {costs.expected_cost:,.0f} (contacting nobody: "
                     f"{costs.cost_contact_nobody:,.0f}) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", type=Path, default=Path("config.yaml"))
    args = parser.parse_args()
    folders = runs.run_folders(load_config(args.config).paths.models_dir)
    complete = [folder for folder in folders if runs.is_complete(folder)]
    if not complete:
        print("no complete run to summarise", file=sys.stderr)
        return 1
    sys.stdout.write(summary(complete[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
