"""The models workflow: `python main.py models`, the runs of a models folder, and promoting one
the same way from every door: `latest` moves, and with it MLflow's champion alias when the run
was tracked (by the config or by `train --track`)."""

from __future__ import annotations

from typing import Any

from churn.config import Config
from churn.store import runs


def promote(config: Config, run_id: str) -> bool:
    """Point `latest` at a complete, accepted run (a rollback), then MLflow's champion alias when
    the run was tracked. Returns whether the alias moved.

    Raises:
        ModelError: no such run, or it is incomplete or was rejected by the validation gate.
    """
    models_dir = config.paths.models_dir
    runs.promote(models_dir, run_id)
    where = runs.read_tracking(models_dir / run_id)  # a run tracked with train --track
    if not config.tracking.enabled and where is None:
        return False
    from churn.store import tracking  # deferred: pandas; MLflow loads when the alias moves

    tracking.move_champion(config, run_id, where)
    return True


def list_runs(config: Config) -> list[dict[str, Any]]:
    return runs.list_runs(config.paths.models_dir)


def run_details(config: Config, run_id: str) -> dict[str, Any]:
    return runs.run_details(config.paths.models_dir, run_id)


def compare_runs(config: Config, first: str | None, second: str | None) -> dict[str, Any]:
    return runs.compare_runs(config.paths.models_dir, first, second)


def prune(config: Config, keep: int, dry_run: bool = False) -> list[str]:
    return runs.prune(config.paths.models_dir, keep, dry_run)
