"""The config: `config.yaml` validated once into a deeply immutable, typed `Config`.

- `churn.config.schema`: the sections as frozen pydantic models (nothing read, nothing worded);
- `churn.config.messages`: a validation error as one line naming the dotted key;
- `churn.config.loading`: reading the YAML file, and the JSON Schema editors use.

`config.schema.json` is the JSON Schema of the file (`python -m churn.config > config.schema.json`).
"""

from churn.config.loading import json_schema, load_config, write_schema
from churn.config.schema import (
    GATE_KEYS,
    MODEL_NAMES,
    Candidate,
    CandidateConfig,
    Config,
    DataConfig,
    DecisionConfig,
    MonitorConfig,
    PreprocessingConfig,
    Scalar,
    ServeConfig,
    SplitConfig,
    SurvivalConfig,
    TrainingConfig,
    ValidationConfig,
)

__all__ = [
    "GATE_KEYS",
    "MODEL_NAMES",
    "Candidate",
    "CandidateConfig",
    "Config",
    "DataConfig",
    "DecisionConfig",
    "MonitorConfig",
    "PreprocessingConfig",
    "Scalar",
    "ServeConfig",
    "SplitConfig",
    "SurvivalConfig",
    "TrainingConfig",
    "ValidationConfig",
    "json_schema",
    "load_config",
    "write_schema",
]
