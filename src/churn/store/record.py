"""The run record: what a run folder's `metadata.json` holds, as one typed pydantic model.

The train workflow writes it once, last, when every other file of the run is in place; every
other part of the package (predict, evaluate, the report, the service, tracking, the cluster,
`models list`) reads it through these attributes. Each value has one home: the decision
threshold is `record.threshold.value`, the test metrics are `record.metrics`.

`schema_version` says how to read a file. Version 1 is what churn wrote before this model
existed (a plain dict, its metrics in `metrics.json`); `churn.store.upgrade` reads it into the
current model in memory, so runs trained then still load, score and report. A version this code
does not know is refused with an error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from churn.config import DecisionConfig, Scalar

SCHEMA_VERSION: Literal[2] = 2
# The test metrics in words, as the CLI and the report show them.
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "brier": "Brier score",
}


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClassBalance(_Record):
    positive: int
    negative: int
    positive_rate: float


class DataRecord(_Record):
    """The labelled table trained on, and what loading it dropped."""

    path: str = Field(description="the file, or a database as its URL without password and the table or (query)")
    sha256: str = Field(description="of the file; of a database's rows, the sorted row hashes (churn.io.sql.RowDigest)")
    url: str | None = Field(None, description="a database read: its URL, without password")
    table: str | None = Field(None, description="a database read: the table")
    query: str | None = Field(None, description="a database read: the query")
    rows_read: int
    rows_used: int
    dropped_missing_target: int
    dropped_duplicate_ids: int
    class_balance: ClassBalance
    missing_values: dict[str, int] = Field(description="missing values per feature column, after cleaning")

    @property
    def name(self) -> str:
        """A short name: the file's, the table's, or "query"."""
        if self.url is None:
            return Path(self.path).name
        return self.table or "query"


class SplitRecord(_Record):
    method: Literal["random", "time"] = "random"
    time_column: str | None = None
    test_size: float
    random_state: int
    train_rows: int
    test_rows: int
    train_period: tuple[str, str] | None = Field(None, description="time split: first and last time, training")
    test_period: tuple[str, str] | None = Field(None, description="time split: first and last time, test")


class NumericRange(_Record):
    min: float | None
    max: float | None
    missing: int


class FeatureSchema(_Record):
    """The input columns as training saw them: what predict checks and the service documents."""

    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    id_column: str | None
    target: str
    positive_label: Scalar
    dtypes: dict[str, str]
    categories: dict[str, tuple[str, ...]] = Field(description="each categorical column's training categories")
    numeric_ranges: dict[str, NumericRange]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric_features + self.categorical_features


class SelectionRecord(_Record):
    """How the model was chosen: the comparison's metric, folds and rows."""

    metric: str
    cv_folds: int
    compared_on_rows: int
    training_rows: int
    sampled: bool


class ModelRecord(_Record):
    name: str
    params: dict[str, Any] = Field(description="the selected estimator's parameters that JSON can hold")


class ThresholdRecord(_Record):
    """The decision threshold: churn_prediction is 1 where the churn probability reaches `value`."""

    value: float
    objective: Literal["fixed", "max_f1", "break_even", "min_cost"]  # min_cost: runs of before 2026-12
    reason: str
    oof_value: float | None = Field(None, description="the objective's value on the out-of-fold predictions")


class Confusion(_Record):
    tn: int
    fp: int
    fn: int
    tp: int


class CostSummary(_Record):
    expected_cost: float
    cost_contact_nobody: float
    cost_contact_everyone: float
    saving_vs_contact_nobody: float


class LabelledMetrics(_Record):
    """A run's metrics on labelled rows at its threshold (with its decision costs, their expected cost)."""

    rows: int
    positive_rate: float
    roc_auc: float
    pr_auc: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    brier: float
    confusion_matrix: Confusion
    costs: CostSummary | None = Field(None, description="with the config's decision costs only")


class TestMetrics(LabelledMetrics):
    """The final model on the held-out test rows, and its cross-validated ROC AUC."""

    __test__ = False  # not a pytest test class, whatever its name

    cv_roc_auc_mean: float
    cv_roc_auc_std: float


class ValidationRecord(_Record):
    criteria: dict[str, float]
    missed: list[str]


class EnvironmentRecord(_Record):
    python: str
    packages: dict[str, str | None]
    git_commit: str | None


class ExplanationsRecord(_Record):
    """What the run's explanations measure, and the test rows explained for the report."""

    margin: Literal["log-odds", "probability"] = Field(description="the unit of every contribution")
    base: float | None = Field(description="the model's expected margin over its training rows")
    rows: int = Field(description="test rows explained into test_explanations.csv (the ten riskiest among them)")
    unavailable: str | None = Field(None, description="why the run's predictions cannot be explained here")


class HazardCandidate(_Record):
    """One hazard model compared: its cross-validated integrated Brier score and Harrell's C."""

    name: str
    cv_ibs: float
    cv_concordance: float


class SurvivalMetrics(_Record):
    """The hazard model on the test rows (with a known duration), as survival models are judged."""

    rows: int
    harrell_c: float = Field(description="Harrell's concordance of the cumulative hazard at the last month")
    uno_c: float = Field(description="Uno's concordance (IPCW) up to tau")
    ibs: float = Field(description="integrated Brier score over months 1 ... tau (IPCW)")
    kaplan_meier_ibs: float = Field(description="the same for Kaplan-Meier without covariates (the baseline)")
    tau: int = Field(description="the last month the scores integrate over (80th percentile of training stays)")
    worst_decile_gap: float = Field(
        description="the largest |predicted - Kaplan-Meier observed| churn within the last horizon over deciles"
    )


class SurvivalRecord(_Record):
    """The run's survival model: what it was trained on, how it was chosen, how good it is."""

    duration_column: str
    horizons: tuple[int, ...]
    left_out: dict[str, str] = Field(description="features left out of the hazard model, with their reasons")
    features: tuple[str, ...]
    model: str
    params: dict[str, Any]
    compared: list[HazardCandidate] = Field(description="the hazard kinds cross-validated (none when there was one)")
    fitted_on_customers: int
    sampled: bool
    skipped_customers: int = Field(description="training rows without a usable duration (missing or negative)")
    max_month: int
    metrics: SurvivalMetrics


class RunRecord(_Record):
    """Everything a run folder records about how its model was made and how good it is."""

    schema_version: Literal[2] = SCHEMA_VERSION
    run_id: str
    created: str
    status: Literal["accepted", "rejected"]
    config_path: str
    config: dict[str, Any] = Field(description="the whole config, defaults filled in, as validated")
    data: DataRecord
    split: SplitRecord
    features: FeatureSchema
    selection: SelectionRecord
    model: ModelRecord
    threshold: ThresholdRecord
    decision: DecisionConfig
    metrics: TestMetrics
    validation: ValidationRecord
    train_seconds: float
    artefacts: dict[str, str] = Field(description="file name -> sha256 of every file written before this record")
    environment: EnvironmentRecord
    explanations: ExplanationsRecord | None = Field(
        None, description="none: an earlier churn saved the run (churn.store.upgrade)"
    )
    survival: SurvivalRecord | None = Field(None, description="none: no survival model (survival.duration_column)")

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
