"""The report workflow: `python main.py report`, a saved run's report redrawn from its folder."""

from __future__ import annotations

from pathlib import Path

from churn.config import Config
from churn.errors import ModelError
from churn.store import runs
from churn.training.report import write_report


def rebuild_report(config: Config, run: str | Path | None) -> Path:
    """Redraw report.md and its plots for an existing run (default: latest)."""
    run_dir = runs.resolve_run(config.paths.models_dir, run)
    try:
        record = runs.read_record(run_dir)
    except ModelError as error:
        raise ModelError(f"its report cannot be rebuilt: {error}") from None
    if changed := runs.changed_artefacts(run_dir, record):  # the report reads the run's tables
        raise ModelError(
            f"{run_dir}: recorded artefact(s) {', '.join(changed)} missing or changed; "
            "its report cannot be rebuilt. Train again"
        )
    with runs.holding(run_dir):  # no sweep takes the report's temporary files meanwhile
        return write_report(run_dir, record)
