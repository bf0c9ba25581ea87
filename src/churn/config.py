"""Load `config.yaml` once and validate it into a frozen, typed `Config`.

Every problem is a `ConfigError` that names the file and the dotted key, and says what
would be accepted, so a typo is never silently ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from churn.errors import ConfigError

Scalar = str | int | float | bool

MODEL_NAMES = ("logistic_regression", "random_forest", "hist_gradient_boosting", "gradient_boosting")
NUMERIC_IMPUTE_STRATEGIES = ("median", "mean")
SELECTION_METRICS = ("roc_auc", "pr_auc", "f1")
SEARCH_METHODS = ("grid", "random")
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


@dataclass(frozen=True)
class DataConfig:
    path: Path
    target: str
    positive_label: Scalar
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    id_column: str | None = None
    drop_columns: tuple[str, ...] = ()
    max_unparsed_share: float = 0.01  # above this share of values that are not numbers, a column is an error

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric_features + self.categorical_features


@dataclass(frozen=True)
class PreprocessingConfig:
    numeric_impute: str = "median"
    fill_values: Mapping[str, float] = field(default_factory=dict)
    scale_numeric: bool = True


@dataclass(frozen=True)
class SplitConfig:
    test_size: float = 0.2
    random_state: int = 42


@dataclass(frozen=True)
class ModelConfig:
    name: str = "logistic_regression"
    params: Mapping[str, Any] = field(default_factory=dict)
    threshold: float | str = 0.5  # a probability, or "auto": chosen on out-of-fold predictions


@dataclass(frozen=True)
class SearchConfig:
    method: str  # grid or random
    space: Mapping[str, tuple[Any, ...]]
    n_iter: int = 10


@dataclass(frozen=True)
class CandidateConfig:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    search: SearchConfig | None = None
    where: str = "model"  # the config key it came from, for error messages


@dataclass(frozen=True)
class TrainingConfig:
    cv_folds: int = 5
    selection_metric: str = "roc_auc"
    candidates: tuple[CandidateConfig, ...] = ()


@dataclass(frozen=True)
class DecisionConfig:
    cost_false_positive: float | None = None  # a retention offer to a customer who would have stayed
    cost_false_negative: float | None = None  # a customer lost without an offer

    @property
    def has_costs(self) -> bool:
        return self.cost_false_positive is not None


@dataclass(frozen=True)
class ValidationConfig:
    criteria: Mapping[str, float] = field(default_factory=dict)  # gate key -> bound


@dataclass(frozen=True)
class PredictConfig:
    chunk_rows: int = 100_000  # rows scored at a time: bounds memory, however large the file


@dataclass(frozen=True)
class PathsConfig:
    models_dir: Path
    predictions_dir: Path


@dataclass(frozen=True)
class Config:
    source: Path
    data: DataConfig
    preprocessing: PreprocessingConfig
    split: SplitConfig
    model: ModelConfig
    training: TrainingConfig
    paths: PathsConfig
    raw: Mapping[str, Any]  # the validated YAML, paths as written: stored with every run
    decision: DecisionConfig = DecisionConfig()
    validation: ValidationConfig = ValidationConfig()
    predict: PredictConfig = PredictConfig()

    def candidates(self) -> tuple[CandidateConfig, ...]:
        """The models to compare: training.candidates, or the single model section."""
        if self.training.candidates:
            return self.training.candidates
        return (CandidateConfig(self.model.name, self.model.params, None, "model"),)


class _Reader:
    """Typed access to one mapping of the YAML, with errors that name file and key."""

    def __init__(self, mapping: Mapping[str, Any], prefix: str, source: Path) -> None:
        self.mapping = mapping
        self.prefix = prefix
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.prefix}{key} {problem}")

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.mapping:
            if key not in allowed:
                raise self.fail(str(key), f"is not a known key; expected one of: {', '.join(allowed)}")

    def has(self, key: str) -> bool:
        return key in self.mapping

    def section(self, key: str, allowed: tuple[str, ...], required: bool = False) -> _Reader:
        value = self.mapping.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing; add this section to the config")
            value = {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a mapping of keys, got {value!r}")
        reader = _Reader(value, f"{self.prefix}{key}.", self.source)
        reader.check_keys(allowed)
        return reader

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, null: bool = False) -> Any:
        if key not in self.mapping or (self.mapping[key] is None and not null):
            if default is ...:
                raise self.fail(key, "is missing; it is required")
            return default
        value = self.mapping[key]
        if value is None and null:
            return None
        # bool is an int subclass in Python: `test_size: true` must not pass as a number.
        if isinstance(value, bool) and bool not in _as_tuple(kind):
            raise self.fail(key, f"must be {_type_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {_type_name(kind)}, got {value!r}")
        return value

    def number(self, key: str, default: float, low: float, high: float, *, closed: bool = False) -> float:
        """A number strictly between low and high, or (closed) from low to high inclusive."""
        value = float(self.get(key, (int, float), default))
        inside = low <= value <= high if closed else low < value < high
        if not inside:
            interval = f"[{low}, {high}]" if closed else f"({low}, {high})"
            raise self.fail(key, f"must be in {interval}, got {value!r}")
        return value

    def integer(self, key: str, default: int, low: int) -> int:
        value = int(self.get(key, int, default))
        if value < low:
            raise self.fail(key, f"must be an integer >= {low}, got {value!r}")
        return value

    def names(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default)
        for item in value:
            if not isinstance(item, str) or not item:
                raise self.fail(key, f"must be a list of column names, got item {item!r}")
        duplicated = sorted({item for item in value if value.count(item) > 1})
        if duplicated:
            raise self.fail(key, f"lists {', '.join(duplicated)} more than once; list each column once")
        return tuple(value)

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Relative paths inside it resolve against the config file's own folder.

    Raises:
        ConfigError: the file is missing or not YAML, or any key is unknown or invalid.
    """
    source = Path(path)
    raw = _read_yaml(source)
    root = _Reader(raw, "", source)
    root.check_keys(
        ("data", "preprocessing", "split", "model", "training", "decision", "validation", "predict", "paths")
    )
    base = source.resolve().parent
    data = _parse_data(root.section("data", _DATA_KEYS, required=True), base)
    preprocessing = _parse_preprocessing(root.section("preprocessing", _PREPROCESSING_KEYS), data)
    return Config(
        source=source,
        data=data,
        preprocessing=preprocessing,
        split=_parse_split(root.section("split", ("test_size", "random_state"))),
        model=_parse_model(root.section("model", ("name", "params", "threshold"))),
        training=_parse_training(root.section("training", ("cv_folds", "selection_metric", "candidates"))),
        paths=_parse_paths(root.section("paths", ("models_dir", "predictions_dir")), base),
        raw=copy.deepcopy(raw),
        decision=_parse_decision(root.section("decision", ("cost_false_positive", "cost_false_negative"))),
        validation=_parse_validation(root.section("validation", tuple(GATE_KEYS))),
        predict=PredictConfig(chunk_rows=root.section("predict", ("chunk_rows",)).integer("chunk_rows", 100_000, 1)),
    )


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


_DATA_KEYS = (
    "path",
    "id_column",
    "target",
    "positive_label",
    "numeric_features",
    "categorical_features",
    "drop_columns",
    "max_unparsed_share",
)
_PREPROCESSING_KEYS = ("numeric_impute", "fill_values", "scale_numeric")


def _parse_data(section: _Reader, base: Path) -> DataConfig:
    target = section.get("target", str)
    id_column = section.get("id_column", str, None, null=True)
    positive_label = section.get("positive_label", (str, int, float, bool))
    numeric = section.names("numeric_features", [])
    categorical = section.names("categorical_features", [])
    drop = section.names("drop_columns", [])
    if not numeric and not categorical:
        raise section.fail("numeric_features", "and data.categorical_features are both empty; list the feature columns")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise section.fail(
            "categorical_features", f"repeats {', '.join(both)} from data.numeric_features; keep each in one list"
        )
    features = set(numeric) | set(categorical)
    for key, column in (("target", target), ("id_column", id_column)):
        if column is not None and column in features:
            raise section.fail(key, f"{column!r} is also listed as a feature; remove it from the feature lists")
    dropped = sorted(features & set(drop))
    if dropped:
        raise section.fail(
            "drop_columns", f"names feature columns {', '.join(dropped)}; a column is either used or dropped"
        )
    return DataConfig(
        path=_resolve(section.get("path", str), base),
        target=target,
        positive_label=positive_label,
        numeric_features=numeric,
        categorical_features=categorical,
        id_column=id_column,
        drop_columns=drop,
        max_unparsed_share=section.number("max_unparsed_share", 0.01, 0.0, 1.0, closed=True),
    )


def _parse_preprocessing(section: _Reader, data: DataConfig) -> PreprocessingConfig:
    fill_values = dict(section.get("fill_values", dict, {}))
    for column, value in fill_values.items():
        if column not in data.numeric_features:
            raise section.fail("fill_values", f"names {column!r}, which is not in data.numeric_features")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise section.fail("fill_values", f"value for {column!r} must be a number, got {value!r}")
    return PreprocessingConfig(
        numeric_impute=section.choice("numeric_impute", NUMERIC_IMPUTE_STRATEGIES, "median"),
        fill_values={str(k): float(v) for k, v in fill_values.items()},
        scale_numeric=section.get("scale_numeric", bool, True),
    )


def _parse_split(section: _Reader) -> SplitConfig:
    return SplitConfig(
        test_size=section.number("test_size", 0.2, 0.0, 1.0),
        random_state=section.integer("random_state", 42, 0),
    )


def _parse_model(section: _Reader) -> ModelConfig:
    threshold: float | str = "auto"
    if section.mapping.get("threshold") != "auto":
        threshold = section.number("threshold", 0.5, 0.0, 1.0)
    return ModelConfig(
        name=section.choice("name", MODEL_NAMES, "logistic_regression"),
        params=_params(section, "params"),
        threshold=threshold,
    )


def _params(section: _Reader, key: str) -> dict[str, Any]:
    params = section.get(key, dict, {})
    for name in params:
        if not isinstance(name, str):
            raise section.fail(key, f"keys must be parameter names, got {name!r}")
    return dict(params)


def _parse_training(section: _Reader) -> TrainingConfig:
    listed = section.get("candidates", list, [])
    candidates = []
    for index, item in enumerate(listed):
        where = f"candidates[{index}]"
        if not isinstance(item, Mapping):
            raise section.fail(where, f"must be a mapping with name, params and search, got {item!r}")
        candidate = _Reader(item, f"{section.prefix}{where}.", section.source)
        candidate.check_keys(("name", "params", "search"))
        candidates.append(_parse_candidate(candidate))
    return TrainingConfig(
        cv_folds=section.integer("cv_folds", 5, 2),
        selection_metric=section.choice("selection_metric", SELECTION_METRICS, "roc_auc"),
        candidates=tuple(candidates),
    )


def _parse_candidate(candidate: _Reader) -> CandidateConfig:
    search = None
    if candidate.has("search"):
        options = candidate.section("search", ("method", "space", "n_iter"))
        space = options.get("space", dict)
        for key, values in space.items():
            if not isinstance(values, list) or not values:
                raise options.fail("space", f"{key} must be a non-empty list of values to try, got {values!r}")
        search = SearchConfig(
            method=options.choice("method", SEARCH_METHODS, "grid"),
            space={str(k): tuple(v) for k, v in space.items()},
            n_iter=options.integer("n_iter", 10, 1),
        )
    return CandidateConfig(
        name=candidate.choice("name", MODEL_NAMES, "logistic_regression"),
        params=_params(candidate, "params"),
        search=search,
        where=candidate.prefix.rstrip("."),
    )


def _parse_decision(section: _Reader) -> DecisionConfig:
    costs = [section.get(key, (int, float), None) for key in ("cost_false_positive", "cost_false_negative")]
    if (costs[0] is None) != (costs[1] is None):
        raise section.fail("cost_false_positive", "and decision.cost_false_negative must be given together")
    for key, value in zip(("cost_false_positive", "cost_false_negative"), costs, strict=True):
        if value is not None and value <= 0:
            raise section.fail(key, f"must be a positive cost, got {value!r}")
    return DecisionConfig(*(None if c is None else float(c) for c in costs))


def _parse_validation(section: _Reader) -> ValidationConfig:
    criteria = {key: section.number(key, 0.0, 0.0, 1.0, closed=True) for key in GATE_KEYS if section.has(key)}
    return ValidationConfig(criteria)


def _parse_paths(section: _Reader, base: Path) -> PathsConfig:
    return PathsConfig(
        models_dir=_resolve(section.get("models_dir", str, "models"), base),
        predictions_dir=_resolve(section.get("predictions_dir", str, "data/predictions"), base),
    )


def _resolve(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
