"""churn: config-driven batch training and scoring of customer-churn models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"
__all__ = ["__version__", "explain"]


def explain(model: Any, frame: pd.DataFrame, top: int = 3, contributions: bool = True) -> pd.DataFrame:
    """Each raw row's churn probability, decision, `top` reason codes and (with `contributions`)
    every input column's contribution, from a loaded `model.joblib`: what `predict --explain TOP
    --contributions` writes. See `churn.explaining.explain`."""
    from churn.explaining import explain as explain_rows  # defers numpy and pyarrow: `import churn` stays instant

    return explain_rows(model, frame, top, contributions)
