"""Load `config.yaml` once and validate it into a deeply immutable, typed `Config`.

The sections are pydantic models: unknown keys, wrong types and out-of-range values are
refused, and every problem becomes one `ConfigError` that names the file and the dotted key
and says what would be accepted, so a typo is never silently ignored. Mappings inside the
config (model parameters, fill values, search spaces) are frozen too, so no stage can change
what another stage reads. `config.schema.json` is the JSON Schema of this file
(`python -m churn.config > config.schema.json`), which editors use to complete and check it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from churn.errors import ConfigError

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
SCHEMA_FILE = "config.schema.json"


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
    repeated = sorted({name for name in names if names.count(name) > 1})
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


class DataConfig(_Section):
    """The table: where it is, which columns are features, which is the target."""

    path: ConfigPath = Field(description="labelled table to train on: .csv, .csv.gz or .parquet")
    target: str = Field(description="the column holding churn / no churn")
    positive_label: Annotated[Scalar, BeforeValidator(lambda v: _scalar(v))] = Field(
        description='the target value that means churn: "Yes", 1, true ...'
    )
    numeric_features: Columns = ()
    categorical_features: Columns = ()
    id_column: str | None = Field(None, description="customer id column, written beside predictions; null if none")
    drop_columns: Columns = ()
    max_unparsed_share: Share = Field(
        0.01, description="above this share of a numeric column's values that are not numbers, stop with an error"
    )

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric_features + self.categorical_features

    @model_validator(mode="after")
    def _columns_fit_together(self) -> DataConfig:
        if not self.numeric_features and not self.categorical_features:
            raise _KeyError(
                "numeric_features", "and data.categorical_features are both empty; list the feature columns"
            )
        both = sorted(set(self.numeric_features) & set(self.categorical_features))
        if both:
            raise _KeyError(
                "categorical_features", f"repeats {', '.join(both)} from data.numeric_features; keep each in one list"
            )
        for key, column in (("target", self.target), ("id_column", self.id_column)):
            if column is not None and column in self.features:
                raise _KeyError(key, f"{column!r} is also listed as a feature; remove it from the feature lists")
        dropped = sorted(set(self.features) & set(self.drop_columns))
        if dropped:
            raise _KeyError("drop_columns", f"names feature columns {', '.join(dropped)}; a column is used or dropped")
        return self


def _scalar(value: Any) -> Any:
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f'must be a single value such as "Yes", 1 or true, got {value!r}')
    return value


class PreprocessingConfig(_Section):
    numeric_impute: Literal["median", "mean"] = "median"
    fill_values: Annotated[Mapping[str, Number], AfterValidator(_freeze), Frozen] = Field(
        default_factory=FrozenDict,
        description="numeric columns imputed with this constant instead of the learned statistic",
    )
    scale_numeric: Flag = True


class SplitConfig(_Section):
    test_size: Probability = 0.2
    random_state: Annotated[Integer, Field(ge=0)] = 42


def _threshold(value: Any) -> Any:
    if value == "auto" or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1):
        return value
    raise ValueError(f"must be a probability between 0 and 1 (exclusive) or auto, got {value!r}")


class ModelConfig(_Section):
    name: Literal[MODEL_NAMES] = "logistic_regression"  # type: ignore[valid-type]
    params: FrozenParams = Field(default_factory=FrozenDict)
    threshold: Annotated[float | Literal["auto"], BeforeValidator(_threshold)] = Field(
        0.5, description="a probability, or auto: chosen on out-of-fold predictions of the training rows"
    )


def _space(space: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, values in space.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"{key} must be a non-empty list of values to try, got {values!r}")
    return _freeze(space)


class SearchConfig(_Section):
    method: Literal["grid", "random"] = "grid"
    space: Annotated[Mapping[str, Any], AfterValidator(_space), Frozen]
    n_iter: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="settings to draw (random only; default 10)"
    )

    @model_validator(mode="after")
    def _n_iter_only_for_random(self) -> SearchConfig:
        if self.method == "grid" and self.n_iter is not None:
            raise _KeyError("n_iter", "applies to method: random only; a grid tries every combination, remove it")
        return self

    @property
    def settings_to_draw(self) -> int:
        return self.n_iter if self.n_iter is not None else 10


class CandidateConfig(_Section):
    name: Literal[MODEL_NAMES] = "logistic_regression"  # type: ignore[valid-type]
    params: FrozenParams = Field(default_factory=FrozenDict)
    search: SearchConfig | None = None
    _where: str = PrivateAttr(default="model")  # the config key it came from, for error messages

    @property
    def where(self) -> str:
        return self._where


class TrainingConfig(_Section):
    cv_folds: Annotated[Integer, Field(ge=2)] = 5
    selection_metric: Literal["roc_auc", "pr_auc", "f1"] = "roc_auc"
    candidates: tuple[CandidateConfig, ...] = ()
    selection_rows: Annotated[Integer, Field(ge=100)] | None = Field(
        50_000,
        description="above this many training rows, candidates are compared on a stratified sample of this "
        "size and only the winner is refit on all rows; null: always compare on all rows",
    )


class DecisionConfig(_Section):
    """The retention team's cost model; with it, `model.threshold: auto` minimises expected cost."""

    offer_cost: Annotated[Number, Field(gt=0)] | None = Field(
        None, description="cost of one retention offer, paid for every customer contacted"
    )
    churn_cost: Annotated[Number, Field(gt=0)] | None = Field(None, description="value lost when a customer churns")
    offer_success_rate: Share | None = Field(
        None, description="share of contacted would-be churners whom the offer keeps"
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
            raise _KeyError(
                old[0],
                "is no longer used: the cost model is decision.offer_cost (per customer contacted), "
                "decision.churn_cost (per churner lost) and decision.offer_success_rate (share of contacted "
                "churners kept); replace the old keys with these three",
            )
        return values

    @model_validator(mode="after")
    def _all_or_none(self) -> DecisionConfig:
        given = [v is not None for v in (self.offer_cost, self.churn_cost, self.offer_success_rate)]
        if any(given) and not all(given):
            raise _KeyError(
                "offer_cost", "decision.churn_cost and decision.offer_success_rate go together; set all three"
            )
        return self

    @property
    def has_costs(self) -> bool:
        return self.offer_cost is not None


class ValidationConfig(_Section):
    """A model below any of these is saved as rejected, latest is not moved, and train exits 3."""

    min_roc_auc: Share | None = None
    min_pr_auc: Share | None = None
    min_accuracy: Share | None = None
    min_precision: Share | None = None
    min_recall: Share | None = None
    min_f1: Share | None = None
    min_cv_roc_auc: Share | None = None
    max_brier: Share | None = None

    @property
    def criteria(self) -> dict[str, float]:
        """gate key -> bound, for the keys that are set."""
        return {key: value for key, value in self.model_dump().items() if value is not None}


class DaskConfig(_Section):
    """predict --engine dask (the `dask` extra)."""

    workers: Annotated[Integer, Field(ge=1)] | None = Field(
        None, description="worker processes of the local cluster; default one per core"
    )
    scheduler: str | None = Field(
        None, description="address of a running Dask scheduler (tcp://host:8786); default a local cluster"
    )


class PredictConfig(_Section):
    chunk_rows: Annotated[Integer, Field(ge=1)] = Field(
        100_000, description="rows scored at a time: bounds memory, however large the file"
    )
    dask: DaskConfig = Field(default_factory=DaskConfig)


class ServeConfig(_Section):
    max_rows: Annotated[Integer, Field(ge=1)] = Field(10_000, description="most rows in one JSON request")
    max_body_mb: Annotated[Number, Field(gt=0)] = Field(100.0, description="largest request body, in megabytes")


class TrackingConfig(_Section):
    """MLflow experiment tracking (the `tracking` extra); the local run folder stays the source of truth."""

    enabled: Flag = Field(False, description="true: every train is also logged to MLflow (train --track / --no-track)")
    uri: str | None = Field(None, description="tracking URI; default sqlite:///<paths.models_dir>/mlflow.db")
    experiment: str = Field("churn", min_length=1)
    registered_model: str | None = Field(
        "churn", description="registered model name, alias champion on the accepted runs; null: not registered"
    )


class PathsConfig(_Section):
    models_dir: ConfigPath = Field(description="run folders and the latest pointer (default: models)")
    predictions_dir: ConfigPath = Field(description="default folder of predict's output (default: data/predictions)")

    @model_validator(mode="before")
    @classmethod
    def _defaults_resolve_too(cls, values: Any) -> Any:
        # Defaults are not validated, so they are filled in here to resolve beside the config.
        if isinstance(values, Mapping):
            return {"models_dir": "models", "predictions_dir": "data/predictions"} | dict(values)
        return values


class Config(_Section):
    """Every parameter of a run, as read from one config file."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="churn config",
        json_schema_extra={"description": "config.yaml of the churn package (see its README, Config keys)"},
    )

    data: DataConfig
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    predict: PredictConfig = Field(default_factory=PredictConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    paths: PathsConfig
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
                raise _KeyError("preprocessing.fill_values", f"names {column!r}, which is not in data.numeric_features")
        return self

    def candidates(self) -> tuple[CandidateConfig, ...]:
        """The models to compare: training.candidates, or the single model section."""
        if not self.training.candidates:
            only = CandidateConfig(name=self.model.name, params=self.model.params)
            return (only,)
        for index, candidate in enumerate(self.training.candidates):
            candidate._where = f"training.candidates[{index}]"
        return self.training.candidates

    def to_dict(self) -> dict[str, Any]:
        """The whole config as JSON-ready values, defaults filled in: stored with every run."""
        return self.model_dump(mode="json")


class _KeyError(ValueError):
    """A problem with one key of the section being validated; the loader prefixes its path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} {problem}")


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Relative paths inside it resolve against the config file's own folder.

    Raises:
        ConfigError: the file is missing or not YAML, or any key is unknown or invalid.
    """
    source = Path(path)
    raw = _read_yaml(source)
    try:
        config = Config.model_validate(raw, context={"base": source.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc.errors()[0])}") from None
    config._source = source
    return config


def _read_yaml(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found; pass an existing file with -c/--config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the config file ({exc}); check it is a UTF-8 text file") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{source}: is not valid YAML{line}; fix the syntax there") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must hold a YAML mapping with a `data:` section, got {type(raw).__name__}")
    return raw


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as `dotted.key problem`."""
    loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        if isinstance(error["ctx"]["error"], _KeyError):  # raised by a section for one of its keys
            return f"{_dotted(loc + tuple(message.split(' ', 1)[:1]))} {message.split(' ', 1)[1]}"
        return f"{_dotted(loc)} {message}"
    return f"{_dotted(loc)} {_problem(kind, value, error.get('ctx') or {}, loc)}"


def _problem(kind: str, value: Any, ctx: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    shown = repr(value)[:80]
    kinds = {
        "float_type": "must be a number",
        "int_type": "must be an integer",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
        "dict_type": "must be a mapping of keys",
        "model_type": "must be a mapping of keys",
        "model_attributes_type": "must be a mapping of keys",
        "mapping_type": "must be a mapping of keys",
    }
    if kind == "extra_forbidden":
        return f"is not a known key; expected one of: {', '.join(_allowed_keys(loc[:-1]))}"
    if kind == "missing" or (value is None and kind in kinds):
        return "is missing; it is required" if len(loc) > 1 else "is missing; add this section to the config"
    if kind == "literal_error":
        options = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"must be one of {options}, got {shown}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be {_interval(loc)}, got {shown}"
    if kind in kinds:
        return f"{kinds[kind]}, got {shown}"
    return f"is invalid ({kind}), got {shown}"


def _interval(loc: tuple[Any, ...]) -> str:
    """The range a number at `loc` must lie in, from its field's constraints."""
    bounds: dict[str, Any] = {}
    _collect_bounds(_field(loc), bounds)
    low = f"({bounds['gt']}" if "gt" in bounds else f"[{bounds['ge']}" if "ge" in bounds else None
    high = f"{bounds['lt']})" if "lt" in bounds else f"{bounds['le']}]" if "le" in bounds else None
    if low and high:
        return f"in {low}, {high}"
    if low:
        return f"greater than {bounds['gt']}" if "gt" in bounds else f"at least {bounds['ge']}"
    return f"less than {bounds['lt']}" if "lt" in bounds else f"at most {bounds.get('le')}"


def _collect_bounds(item: Any, bounds: dict[str, Any]) -> None:
    for name in ("gt", "ge", "lt", "le"):
        if getattr(item, name, None) is not None and not isinstance(item, type):
            bounds[name] = getattr(item, name)
    for inner in (*getattr(item, "metadata", ()), *getattr(item, "__metadata__", ()), *getattr(item, "__args__", ())):
        _collect_bounds(inner, bounds)
    if hasattr(item, "annotation"):
        _collect_bounds(item.annotation, bounds)


def _field(loc: tuple[Any, ...]) -> Any:
    """The FieldInfo at `loc`, found by walking the models along it."""
    model: Any = Config
    info = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = next((a for a in _members(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return info


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the section at `loc` accepts."""
    if not loc:
        return list(Config.model_fields)
    info = _field(loc)
    model = next((a for a in _members(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(model.model_fields) if info is not None and model is not None else []


def _members(annotation: Any) -> list[Any]:
    """A type and, for unions and tuples, the types inside it."""
    inner = [annotation]
    for arg in getattr(annotation, "__args__", ()):
        inner.extend(_members(arg))
    return inner


def write_schema(stream: Any = sys.stdout) -> None:
    """The JSON Schema of config.yaml, for editors (yaml-language-server) and review."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    stream.write(json.dumps(schema, indent=2) + "\n")


if __name__ == "__main__":
    write_schema()
