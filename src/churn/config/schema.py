"""The config's schema: every section of `config.yaml` as a frozen pydantic model.

Unknown keys, wrong types and out-of-range values are refused by these models; mappings inside
the config (model parameters, fill values, search spaces) are frozen too, so no stage can change
what another stage reads. Nothing here reads a file (`churn.config.loading` does) or words an
error for the user (`churn.config.messages` does): a check that concerns one key raises
`KeyProblem`, which the messages module turns into `section.key problem`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    Strict,
    ValidationInfo,
    model_validator,
)

from churn.errors import ChurnError
from churn.io.sql_text import check_url, has_password

Scalar = str | int | float | bool

MODEL_NAMES = ("logistic_regression", "random_forest", "hist_gradient_boosting", "gradient_boosting")
# validation.<key>: a test metric must reach at least (min_) or at most (max_) the value.
GATE_KEYS = {
    "min_roc_auc": "roc_auc",
    "min_pr_auc": "pr_auc",
    "min_accuracy": "accuracy",
    "min_precision": "precision",
    "min_recall": "recall",
    "min_f1": "f1",
    "min_cv_roc_auc": "cv_roc_auc_mean",
    "max_brier": "brier",
}


class KeyProblem(ValueError):
    """A problem with one key of the section being validated; the messages module prefixes its path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")
        self.key, self.problem = key, problem


class FrozenDict(dict[str, Any]):
    """A dict that refuses every change; unlike a read-only view it pickles, so a Config can
    travel to worker processes (Dask)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("the config is read-only; change config.yaml instead")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


def _freeze(value: Any) -> Any:
    """Mappings become read-only dicts and lists tuples, all the way down."""
    if isinstance(value, Mapping):
        return FrozenDict({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: Any) -> Any:
    """The JSON form of a frozen value: dicts and lists again."""
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    if any(not name for name in names):
        raise ValueError("must name columns; an empty name is not a column")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"lists {', '.join(repeated)} more than once; list each column once")
    return names


def _resolve_path(value: Any, info: ValidationInfo) -> Any:
    """Relative paths resolve against the config file's own folder."""
    if not isinstance(value, str):
        return value
    path = Path(value).expanduser()
    base = (info.context or {}).get("base")
    return path if path.is_absolute() or base is None else base / path


Frozen = PlainSerializer(_thaw, return_type=Any)
FrozenParams = Annotated[Mapping[str, Any], AfterValidator(_freeze), Frozen]
Columns = Annotated[tuple[str, ...], AfterValidator(_unique)]
ConfigPath = Annotated[Path, BeforeValidator(_resolve_path)]
# Numbers and booleans are strict: `true` is not a number and "1" is not an integer.
Number = Annotated[float, Strict()]
Integer = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Probability = Annotated[float, Strict(), Field(gt=0.0, lt=1.0)]
Share = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceConfig(_Section):
    """A database to train from (and the password variable for every database URL churn opens)."""

    url: str = Field(
        description="database URL without a password: postgresql://user@host:5432/db or sqlite:///data/crm.db"
    )
    table: str | None = Field(None, description="the table to read (schema.table or table); or give query")
    query: str | None = Field(None, description="a SELECT giving the rows to read; or give table")
    password_env: str | None = Field(
        None,
        description="environment variable holding the password of a URL without one (else the driver's own: "
        "PGPASSWORD, ~/.pgpass)",
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> SourceConfig:
        if self.table is not None and self.query is not None:
            raise KeyProblem("table", "and data.source.query are both set; read a table or a query, not both")
        if "://" not in self.url:
            raise KeyProblem(
                "url", f"{self.url!r} is not a database URL; write postgresql://user@host:port/db or sqlite:///path.db"
            )
        if has_password(self.url):  # in the user part or as a password= parameter, parsed or not
            raise KeyProblem(
                "url",
                "holds a password, which would end up in files and logs; remove it and set "
                "data.source.password_env (or PGPASSWORD, ~/.pgpass)",
            )
        try:
            check_url(self.url)
        except ChurnError as error:
            raise KeyProblem("url", str(error)) from None
        return self


class DataConfig(_Section):
    """The table: where it is, which columns are features, which is the target."""

    path: ConfigPath | None = Field(
        None, description="the labelled table to train on: .csv, .csv.gz or .parquet (or give data.source)"
    )
    source: SourceConfig | None = Field(None, description="train from a database instead of data.path")
    target: str = Field(description="the column holding churn / no churn")
    positive_label: Annotated[Scalar, BeforeValidator(lambda v: _scalar(v))] = Field(
        description='the target value that means churn: "Yes", 1, true ...'
    )
    numeric_features: Columns = Field((), description="numeric feature columns (text is parsed; blanks are missing)")
    categorical_features: Columns = Field((), description="categorical feature columns (one-hot encoded)")
    id_column: str | None = Field(None, description="customer id column, written beside predictions; null if none")
    drop_columns: Columns = Field(
        (), description="columns known to be unused: documents intent (a column not listed as a feature is ignored)"
    )
    max_unparsed_share: Share = Field(
        0.01, description="above this share of a numeric column's values that are not numbers, stop with an error"
    )
    missing_values: Columns = Field(
        (),
        description='text that means "no value" in a numeric column ("Unknown", "NA", "-"): read as missing, '
        "not counted as unparsed (compared trimmed and case-insensitively)",
    )

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric_features + self.categorical_features

    @model_validator(mode="after")
    def _columns_fit_together(self) -> DataConfig:
        if self.path is None and self.source is None:
            raise KeyProblem("path", "is missing; name the labelled table (or a database in data.source)")
        names_rows = self.source is not None and (self.source.table or self.source.query) is not None
        if self.path is not None and names_rows:
            raise KeyProblem("source", "and data.path both name a table to train on; keep one of them")
        if not self.numeric_features and not self.categorical_features:
            raise KeyProblem(
                "numeric_features", "and data.categorical_features are both empty; list the feature columns"
            )
        both = sorted(set(self.numeric_features) & set(self.categorical_features))
        if both:
            raise KeyProblem(
                "categorical_features", f"repeats {', '.join(both)} from data.numeric_features; keep each in one list"
            )
        for key, column in (("target", self.target), ("id_column", self.id_column)):
            if column is not None and column in self.features:
                raise KeyProblem(key, f"{column!r} is also listed as a feature; remove it from the feature lists")
        dropped = sorted(set(self.features) & set(self.drop_columns))
        if dropped:
            raise KeyProblem("drop_columns", f"names feature columns {', '.join(dropped)}; a column is used or dropped")
        return self


def _scalar(value: Any) -> Any:
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f'must be a single value such as "Yes", 1 or true, got {value!r}')
    return value


class PreprocessingConfig(_Section):
    """How the numeric columns are imputed and scaled (categories: most frequent, then one-hot)."""

    numeric_impute: Literal["median", "mean"] = Field("median", description="learned on the training rows")
    fill_values: Annotated[Mapping[str, Number], AfterValidator(_freeze), Frozen] = Field(
        default_factory=FrozenDict,
        description="numeric columns imputed with this constant instead of the learned statistic",
    )
    scale_numeric: Flag = Field(True, description="standardise the numeric columns")
    min_category_count: Annotated[Integer, Field(ge=1)] | None = Field(
        None,
        description='categories seen fewer times in the training rows share one column ("infrequent"): '
        "a code with hundreds of values stays a few dozen columns; null keeps every category",
    )


class SplitConfig(_Section):
    """The train/test split."""

    method: Literal["random", "time"] = Field(
        "random",
        description="random: a stratified random split and folds; time: the latest rows by split.time_column "
        "are the test rows and cross-validation uses forward-chaining folds (train on earlier, validate on later)",
    )
    time_column: str | None = Field(
        None, min_length=1, description="with method time: the column that orders rows in time (never a feature)"
    )
    test_size: Probability = Field(
        0.2, description="share of rows held out for the test metrics (stratified when random)"
    )
    random_state: Annotated[Integer, Field(ge=0)] = Field(
        42, description="seed of the split, the CV folds, the selection sample and every model"
    )

    @model_validator(mode="after")
    def _time_needs_a_column(self) -> SplitConfig:
        if self.method == "time" and self.time_column is None:
            raise ValueError("method time needs split.time_column, the column that orders the rows in time")
        if self.method == "random" and self.time_column is not None:
            raise ValueError("time_column is used by method time only; set split.method: time or remove it")
        return self


def _threshold(value: Any) -> Any:
    if value == "auto" or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1):
        return value
    raise ValueError(f"must be a probability between 0 and 1 (exclusive) or auto, got {value!r}")


class ModelConfig(_Section):
    """The single model trained when training.candidates is absent, and the decision threshold."""

    name: Literal[MODEL_NAMES] = Field("logistic_regression", description="the scikit-learn classifier")  # type: ignore[valid-type]
    params: FrozenParams = Field(
        default_factory=FrozenDict, description="keyword arguments of that estimator, e.g. {max_iter: 1000}"
    )
    threshold: Annotated[float | Literal["auto"], BeforeValidator(_threshold)] = Field(
        0.5, description="a probability, or auto: chosen on out-of-fold predictions of the training rows"
    )


def _space(space: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, values in space.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"{key} must be a non-empty list of values to try, got {values!r}")
    return _freeze(space)


class SearchConfig(_Section):
    """A hyperparameter search inside the cross-validation folds."""

    method: Literal["grid", "random"] = Field("grid", description="grid: every combination; random: n_iter, seeded")
    space: Annotated[Mapping[str, Any], AfterValidator(_space), Frozen] = Field(
        description="parameter name -> the list of values to try"
    )
    n_iter: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="settings to draw (random only; default 10)"
    )

    @model_validator(mode="after")
    def _n_iter_only_for_random(self) -> SearchConfig:
        if self.method == "grid" and self.n_iter is not None:
            raise KeyProblem("n_iter", "applies to method: random only; a grid tries every combination, remove it")
        return self

    @property
    def settings_to_draw(self) -> int:
        return self.n_iter if self.n_iter is not None else 10


class CandidateConfig(_Section):
    """One model to compare."""

    name: Literal[MODEL_NAMES] = Field("logistic_regression", description="the scikit-learn classifier")  # type: ignore[valid-type]
    params: FrozenParams = Field(default_factory=FrozenDict, description="fixed keyword arguments of that estimator")
    search: SearchConfig | None = Field(None, description="settings to try; null: the params alone")


@dataclass(frozen=True)
class Candidate:
    """A model to compare, with the config key it came from (for error messages)."""

    where: str
    name: str
    params: Mapping[str, Any]
    search: SearchConfig | None


class TrainingConfig(_Section):
    """How the model is chosen: candidates compared by cross-validation on the training rows."""

    cv_folds: Annotated[Integer, Field(ge=2)] = Field(5, description="folds of the stratified cross-validation")
    selection_metric: Literal["roc_auc", "pr_auc", "f1", "expected_cost"] = Field(
        "roc_auc",
        description="what picks the best candidate: a mean CV score, or expected_cost: the lowest expected cost "
        "of its out-of-fold predictions at its own cost-optimal threshold (needs the decision costs)",
    )
    candidates: tuple[CandidateConfig, ...] = Field(
        (), description="the models to compare; empty: the model section is the only one"
    )
    n_jobs: Annotated[Integer, Field(ge=1)] | None = Field(
        None,
        description="processes the comparison fits folds and settings on, each on one OpenMP/BLAS thread; "
        "default: the usable cores (affinity and cgroup quota), or this process alone for a comparison under "
        "200,000 row-fits; the results are the same for any value",
    )
    engine: Literal["local", "dask"] = Field(
        "local",
        description="where the comparison's fits run: local processes, or dask: the workers of a Dask cluster "
        "(the dask extra; the final fit stays here); the results are the same either way",
    )
    scheduler: str | None = Field(
        None,
        description="with engine dask: address of a running Dask scheduler (tcp://host:8786); default a local "
        "cluster of training.n_jobs (else one per usable core) worker processes",
    )

    @model_validator(mode="after")
    def _scheduler_only_for_dask(self) -> TrainingConfig:
        if self.scheduler is not None and self.engine != "dask":
            raise KeyProblem("scheduler", "applies to engine: dask only; set engine: dask, or remove it")
        return self

    selection_rows: Annotated[Integer, Field(ge=100)] | None = Field(
        50_000,
        description="above this many training rows, candidates are compared on a stratified sample of this "
        "size and only the winner is refit on all rows; null: always compare on all rows",
    )


class DecisionConfig(_Section):
    """The retention team's cost model; with it, `model.threshold: auto` is the break-even probability."""

    offer_cost: Annotated[Number, Field(gt=0)] | None = Field(
        None, description="cost of one retention offer, paid for every customer contacted"
    )
    churn_cost: Annotated[Number, Field(gt=0)] | None = Field(
        None, description="value lost when a customer churns (the same for everyone; or value_column)"
    )
    offer_success_rate: Share | None = Field(
        None, description="share of contacted would-be churners whom the offer keeps"
    )
    value_column: str | None = Field(
        None,
        min_length=1,
        description="a column of each customer's value per month (for example MonthlyCharges; a feature or "
        "not): each customer's cost of churn is this value x value_months, instead of churn_cost",
    )
    value_months: Annotated[Number, Field(gt=0)] | None = Field(
        None, description="the months a lost customer's value is counted over (with value_column)"
    )
    offer_cost_column: str | None = Field(
        None, min_length=1, description="a column of each customer's own offer cost, instead of offer_cost"
    )

    contact_budget: Annotated[Integer, Field(ge=1)] | None = Field(
        None,
        description="predict contacts at most this many customers, those with the highest expected saving "
        "(p x churn_cost x offer_success_rate - offer_cost), and writes expected_saving and contact; "
        "predict --budget overrides it",
    )
    currency: str | None = Field(
        None, max_length=12, description="the unit of the costs, shown in the report (EUR, USD, ...); none by default"
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_old_keys(cls, values: Any) -> Any:
        old = [
            key
            for key in ("cost_false_positive", "cost_false_negative")
            if isinstance(values, Mapping) and key in values
        ]
        if old:
            raise KeyProblem(
                old[0],
                "is no longer used: the cost model is decision.offer_cost (per customer contacted), "
                "decision.churn_cost (per churner lost) and decision.offer_success_rate (share of contacted "
                "churners kept); replace the old keys with these three",
            )
        return values

    @model_validator(mode="after")
    def _all_or_none(self) -> DecisionConfig:
        if (self.value_column is None) != (self.value_months is None):
            raise KeyProblem("value_column", "and decision.value_months go together; set both or neither")
        for constant, column in (("churn_cost", "value_column"), ("offer_cost", "offer_cost_column")):
            if getattr(self, constant) is not None and getattr(self, column) is not None:
                raise KeyProblem(column, f"replaces decision.{constant}; set one of the two")
        offer = self.offer_cost is not None or self.offer_cost_column is not None
        churn = self.churn_cost is not None or self.value_column is not None
        given = [offer, churn, self.offer_success_rate is not None]
        if any(given) and not all(given):
            raise KeyProblem(
                "offer_cost",
                "decision.churn_cost and decision.offer_success_rate go together; set all three (or "
                "offer_cost_column for offer_cost, value_column with value_months for churn_cost)",
            )
        return self

    @property
    def has_costs(self) -> bool:
        return self.offer_success_rate is not None

    @property
    def per_customer(self) -> bool:
        """Costs that differ by customer: read from a value or offer-cost column."""
        return self.value_column is not None or self.offer_cost_column is not None

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The columns the costs are read from (none for constant costs)."""
        return tuple(column for column in (self.value_column, self.offer_cost_column) if column is not None)


HAZARD_MODELS = ("logistic_regression", "hist_gradient_boosting")


def _horizons(values: tuple[int, ...]) -> tuple[int, ...]:
    if not values:
        raise ValueError("must list at least one horizon in months, for example [3, 6, 12]")
    if list(values) != sorted(set(values)):
        raise ValueError("must list each horizon once, shortest first, for example [3, 6, 12]")
    return values


class SurvivalConfig(_Section):
    """Time to churn: a discrete-time hazard model trained beside the classifier (docs/survival.md)."""

    duration_column: str | None = Field(
        None,
        min_length=1,
        description="the numeric feature holding the months each customer has stayed (Telco: tenure); the hazard "
        "model's time axis, never one of its features; null: no survival model",
    )
    horizons: Annotated[tuple[Annotated[Integer, Field(ge=1, le=120)], ...], AfterValidator(_horizons)] = Field(
        (3, 6, 12), description="months ahead: predict writes churn_within_<h>m for each, expected_months_<last>m"
    )
    leave_out: Annotated[Mapping[str, str], AfterValidator(_freeze), Frozen] = Field(
        default_factory=FrozenDict,
        description="features the hazard model leaves out, each with its reason: any column that is a function of "
        "the duration (TotalCharges is about tenure x MonthlyCharges)",
    )
    models: tuple[Literal[HAZARD_MODELS], ...] | None = Field(  # type: ignore[valid-type]
        None,
        description="hazard models compared by cross-validated integrated Brier score on the training rows "
        "(survival.cv_folds); default: the candidates' kinds among logistic_regression and hist_gradient_boosting",
    )
    cv_folds: Annotated[Integer, Field(ge=2)] = Field(
        3,
        description="folds the hazard models are compared on (each fold fits one row per customer-month, so fewer "
        "than training.cv_folds)",
    )
    max_customers: Annotated[Integer, Field(ge=100)] = Field(
        20000,
        description="the hazard model is fitted on at most this many training customers (a sample stratified by "
        "churn): each becomes one row per month stayed",
    )

    @property
    def enabled(self) -> bool:
        return self.duration_column is not None

    @property
    def longest(self) -> int:
        return self.horizons[-1]


class ValidationConfig(_Section):
    """A model below any of these is saved as rejected, latest is not moved, and train exits 3."""

    min_roc_auc: Share | None = Field(None, description="lowest test ROC AUC accepted")
    min_pr_auc: Share | None = Field(None, description="lowest test PR AUC (average precision) accepted")
    min_accuracy: Share | None = Field(None, description="lowest test accuracy accepted, at the threshold")
    min_precision: Share | None = Field(None, description="lowest test precision accepted, at the threshold")
    min_recall: Share | None = Field(None, description="lowest test recall accepted, at the threshold")
    min_f1: Share | None = Field(None, description="lowest test F1 accepted, at the threshold")
    min_cv_roc_auc: Share | None = Field(None, description="lowest mean cross-validated ROC AUC accepted")
    max_brier: Share | None = Field(None, description="highest test Brier score accepted")

    @property
    def criteria(self) -> dict[str, float]:
        """gate key -> bound, for the keys that are set."""
        return {key: value for key, value in self.model_dump().items() if value is not None}


class DaskConfig(_Section):
    """predict --engine dask (the `dask` extra)."""

    workers: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="worker processes of the local cluster; default one per usable core"
    )
    threads_per_worker: Annotated[Integer, Field(ge=1)] = Field(
        1, description="threads each worker process of the local cluster scores parts on"
    )
    scheduler: str | None = Field(
        None, description="address of a running Dask scheduler (tcp://host:8786); default a local cluster"
    )


class PredictConfig(_Section):
    """Batch scoring: `python main.py predict`."""

    chunk_rows: Annotated[Integer, Field(ge=1)] = Field(
        100_000, description="rows scored at a time: bounds memory, however large the file"
    )
    max_explain_seconds: Annotated[Number, Field(gt=0)] = Field(
        600.0,
        description="predict --explain with a random forest (timed on 128 rows first: 0.3 ms a row on one thread for "
        "leaves of 20, 4 ms for 1,000-leaf trees) refuses a file expected to take longer, with the estimate; "
        "linear and shallow boosted models are never refused",
    )
    horizons: Flag = Field(
        True,
        description="write churn within each horizon of the run's survival model (when it has one); predict "
        "--no-horizons sets it false",
    )
    dask: DaskConfig = Field(default_factory=DaskConfig, description="predict --engine dask")


class ServeConfig(_Section):
    """The HTTP service, `python main.py serve`: what a request may hold and how long it may take."""

    max_rows: Annotated[Integer, Field(ge=1)] = Field(
        10_000, description="most rows in one JSON request or /invocations CSV (413 above)"
    )
    max_body_mb: Annotated[Number, Field(gt=0)] = Field(
        100.0, description="largest request body, in megabytes, also once a gzip body is decompressed (413 above)"
    )
    max_value_chars: Annotated[Integer, Field(ge=1)] = Field(
        200, description="longest text value a request may hold in a feature column (422 above)"
    )
    read_timeout_s: Annotated[Number, Field(gt=0)] = Field(
        10.0, description="a client must send a request's headers, and then its body, within this many seconds"
    )
    max_connections: Annotated[Integer, Field(ge=1)] = Field(
        256, description="connections (and requests in flight) a worker serves at once; past it uvicorn answers 503"
    )
    threads: Annotated[Integer, Field(ge=1)] = Field(
        1, description="threads a worker scores large requests on, and its OpenMP/BLAS threads"
    )
    max_queue: Annotated[Integer, Field(ge=1)] = Field(
        16, description="large requests waiting for a scoring thread; one more is answered 503 with Retry-After"
    )
    shutdown_timeout_s: Annotated[Number, Field(gt=0)] = Field(
        8.0, description="on SIGTERM, requests whose bytes have arrived get this long to finish"
    )
    max_explain_seconds: Annotated[Number, Field(gt=0)] = Field(
        5.0, description='a request asking a random forest for "explain" expected to take longer is answered 422'
    )
    monitor_rows: Annotated[Integer, Field(ge=1)] = Field(
        10_000, description="the window of last scored rows that /monitor and the PSI gauges of /metrics describe"
    )


class MonitorConfig(_Section):
    """`python main.py monitor`: when a batch is a warning, and when an alarm (exit 4)."""

    psi_warn: Annotated[Number, Field(gt=0)] = Field(
        0.1, description="PSI at or above this is a moderate shift (warning)"
    )
    psi_alarm: Annotated[Number, Field(gt=0)] = Field(
        0.25, description="PSI at or above this, of a column or of the churn probability, is a major shift (alarm)"
    )
    max_auc_drop: Annotated[Number, Field(ge=0)] = Field(
        0.05, description="alarm when the estimated ROC AUC is below the run's test ROC AUC by more than this"
    )
    max_calibration_error: Annotated[Number, Field(gt=0)] = Field(
        0.05, description="a run whose test calibration error is larger gets a warning that its estimates mean little"
    )

    @model_validator(mode="after")
    def _bands_in_order(self) -> MonitorConfig:
        if self.psi_warn >= self.psi_alarm:
            raise ValueError(f"psi_warn ({self.psi_warn}) must be below psi_alarm ({self.psi_alarm})")
        return self


class TrackingConfig(_Section):
    """MLflow experiment tracking (the `tracking` extra); the local run folder stays the source of truth."""

    enabled: Flag = Field(False, description="true: every train is also logged to MLflow (train --track / --no-track)")
    uri: str | None = Field(None, description="tracking URI; default sqlite:///<paths.models_dir>/mlflow.db")
    experiment: str = Field("churn", min_length=1, description="the MLflow experiment")
    registered_model: str | None = Field(
        "churn", description="registered model name, alias champion on the accepted runs; null: not registered"
    )


class PathsConfig(_Section):
    """Where runs and predictions go; relative paths resolve against the config file's folder."""

    # validate_default: a default resolves beside the config file too, as a given path does
    models_dir: ConfigPath = Field(
        Path("models"), validate_default=True, description="run folders and the latest pointer"
    )
    predictions_dir: ConfigPath = Field(
        Path("data/predictions"), validate_default=True, description="default folder of predict's output"
    )


class Config(_Section):
    """Every parameter of a run, as read from one config file."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="churn config",
        json_schema_extra={"description": "config.yaml of the churn package (see its README, Config keys)"},
    )

    data: DataConfig = Field(description="the table: where it is, its features and target")
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig, description="imputing and scaling")
    split: SplitConfig = Field(default_factory=SplitConfig, description="the held-out test rows")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the single model, and the threshold")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="model comparison and search")
    decision: DecisionConfig = Field(default_factory=DecisionConfig, description="the retention team's cost model")
    survival: SurvivalConfig = Field(default_factory=SurvivalConfig, description="time to churn and its horizons")
    validation: ValidationConfig = Field(default_factory=ValidationConfig, description="the validation gate")
    predict: PredictConfig = Field(default_factory=PredictConfig, description="batch scoring")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="the HTTP service")
    monitor: MonitorConfig = Field(default_factory=MonitorConfig, description="monitoring a batch against the run")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow experiment tracking")
    paths: PathsConfig = Field(description="where runs and predictions go")
    _source: Path = PrivateAttr(default=Path("config.yaml"))

    @property
    def source(self) -> Path:
        """The file this config was read from."""
        return self._source

    @model_validator(mode="before")
    @classmethod
    def _paths_section_always_validated(cls, values: Any) -> Any:
        if isinstance(values, Mapping) and values.get("paths") is None:
            return dict(values) | {"paths": {}}
        return values

    @model_validator(mode="after")
    def _fill_values_name_numeric_columns(self) -> Config:
        for column in self.preprocessing.fill_values:
            if column not in self.data.numeric_features:
                raise KeyProblem(
                    "preprocessing.fill_values", f"names {column!r}, which is not in data.numeric_features"
                )
        if self.training.selection_metric == "expected_cost" and not self.decision.has_costs:
            raise KeyProblem(
                "training.selection_metric",
                "expected_cost needs decision.offer_cost, churn_cost and offer_success_rate",
            )
        if self.training.selection_metric == "expected_cost" and self.decision.per_customer:
            raise KeyProblem(
                "training.selection_metric",
                "expected_cost compares candidates on constant costs; with per-customer costs "
                "(decision.value_column, offer_cost_column) use roc_auc or pr_auc",
            )
        for column in self.decision.value_columns:
            if column in (self.data.target, self.data.id_column):
                raise KeyProblem("decision.value_column", f"{column!r} is the target or the id, not a value")
        self._check_survival()
        time_column = self.split.time_column
        if time_column is not None and time_column in (*self.data.features, self.data.target):
            raise KeyProblem(
                "split.time_column", f"{time_column!r} is a feature or the target; time orders rows, never a feature"
            )
        return self

    def _check_survival(self) -> None:
        duration = self.survival.duration_column
        if duration is not None and duration not in self.data.numeric_features:
            raise KeyProblem(
                "survival.duration_column",
                f"{duration!r} is not in data.numeric_features; name the numeric feature holding months stayed",
            )
        for column in self.survival.leave_out:
            if column not in self.data.features or column == duration:
                raise KeyProblem(
                    "survival.leave_out", f"names {column!r}, which is not a feature (or is the duration itself)"
                )
        if duration is not None and not set(self.data.features) - {duration, *self.survival.leave_out}:
            raise KeyProblem("survival.leave_out", "leaves the hazard model no feature; keep at least one")

    def hazard_models(self) -> tuple[str, ...]:
        """The hazard models to compare: survival.models, else the candidates' kinds that apply."""
        if self.survival.models:
            return self.survival.models
        kinds = tuple(dict.fromkeys(c.name for c in self.candidates() if c.name in HAZARD_MODELS))
        return kinds or ("logistic_regression",)

    def candidates(self) -> tuple[Candidate, ...]:
        """The models to compare: training.candidates, or the single model section."""
        if not self.training.candidates:
            return (Candidate("model", self.model.name, self.model.params, None),)
        return tuple(
            Candidate(f"training.candidates[{index}]", c.name, c.params, c.search)
            for index, c in enumerate(self.training.candidates)
        )

    def to_dict(self) -> dict[str, Any]:
        """The whole config as JSON-ready values, defaults filled in: stored with every run."""
        return self.model_dump(mode="json")
