"""churn: config-driven batch training and scoring of customer-churn models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"
__all__ = ["__version__", "decisions", "explain", "horizons", "load_model", "load_survival"]


def load_model(run: str | Path = "latest", models_dir: str | Path = "models") -> Any:
    """A run's `model.joblib`, loaded only once its bytes match the sha256 its record holds (as
    every churn command loads it): "latest" (the run `models/latest` names), a run id in
    `models_dir`, or a run folder. `predict_proba(frame)[:, 1]` is predict's churn_probability.

    Raises:
        churn.errors.ModelError: no such run, or the file changed after training.
    """
    # deferred: `import churn` stays instant
    from churn.model import load_model as load_verified
    from churn.store import runs

    run_dir = runs.resolve_run(Path(models_dir), None if str(run) == "latest" else run)
    return load_verified(run_dir, runs.read_record(run_dir))


def explain(model: Any, frame: pd.DataFrame, top: int = 3, contributions: bool = True) -> pd.DataFrame:
    """Each raw row's churn probability, decision, `top` reason codes and (with `contributions`)
    every input column's contribution, from a loaded `model.joblib`: what `predict --explain TOP
    --contributions` writes. See `churn.explain.explainers.explain`."""
    from churn.explain.explainers import (
        explain as explain_rows,  # defers numpy and pyarrow: `import churn` stays instant
    )

    return explain_rows(model, frame, top, contributions)


def decisions(
    frame: pd.DataFrame, run: str | Path = "latest", models_dir: str | Path = "models", budget: int | None = None
) -> pd.DataFrame:
    """Each raw row's churn_probability, churn_prediction, expected_saving and contact, as
    `predict` (with `--budget`) writes them for the same rows: the run's own decision costs,
    per customer from its value column when it has one.

    Raises:
        churn.errors.ConfigError: the run has no decision costs.
        churn.errors.ModelError: no such run, or it changed after training.
        churn.errors.DataError: a feature or money column is missing, or a money value is bad.
    """
    from churn.pipeline import decide_frame  # deferred: `import churn` stays instant
    from churn.scoring import scorers

    loaded = scorers.load_run(Path(models_dir), None if str(run) == "latest" else run)
    return decide_frame(loaded, frame, budget)


def horizons(frame: pd.DataFrame, run: str | Path = "latest", models_dir: str | Path = "models") -> pd.DataFrame:
    """Each raw row's churn_probability, churn_prediction and, conditional on its tenure, churn
    within each horizon and the months expected within the last (revenue at risk with a value
    column): what `predict` writes for the same rows, through the same scoring core.

    Raises:
        churn.errors.ConfigError: the run has no survival model.
        churn.errors.ModelError: no such run, or it changed after training.
        churn.errors.DataError: a feature column is missing.
    """
    from churn.pipeline import horizons_frame  # deferred: `import churn` stays instant
    from churn.scoring import scorers

    loaded = scorers.load_run(Path(models_dir), None if str(run) == "latest" else run)
    return horizons_frame(loaded, frame)


def load_survival(run: str | Path = "latest", models_dir: str | Path = "models") -> Any:
    """A run's `survival.joblib` (`churn.survival.hazard.HazardModel`), loaded only once its bytes
    match the sha256 its record holds: `predict_horizons(frame)` gives predict's horizon columns,
    `survival(frame, months)` each row's survival curve from joining.

    Raises:
        churn.errors.ModelError: no such run, it has no survival model, or the file changed.
    """
    from churn.store import runs  # deferred: `import churn` stays instant
    from churn.survival.horizons import load_hazard_model

    run_dir = runs.resolve_run(Path(models_dir), None if str(run) == "latest" else run)
    return load_hazard_model(run_dir, runs.read_record(run_dir))
