"""The feature transformer: one `ColumnTransformer` built from the config's column lists.

It is fitted inside the model `Pipeline` on training rows only, so every statistic it
learns (medians, scales, category lists) comes from those rows and is saved with the model.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn.config import DataConfig, PreprocessingConfig


def build_preprocessor(data: DataConfig, options: PreprocessingConfig) -> ColumnTransformer:
    """Impute and scale numeric columns, impute and one-hot encode categorical ones.

    Columns named in `preprocessing.fill_values` are imputed with that constant instead of the
    learned statistic (Telco: a blank TotalCharges belongs to a customer with tenure 0, who has
    been charged nothing yet, so 0 is the true value, not the median).
    Categories unseen in training encode as all zeros instead of failing.
    """
    steps: list[tuple[str, object, list[str]]] = []
    learned = [c for c in data.numeric_features if c not in options.fill_values]
    if learned:
        steps.append(("numeric", _numeric_steps(SimpleImputer(strategy=options.numeric_impute), options), learned))
    for value in sorted(set(options.fill_values.values())):
        columns = [c for c in data.numeric_features if options.fill_values.get(c) == value]
        imputer = SimpleImputer(strategy="constant", fill_value=value)
        steps.append((f"numeric_fill_{len(steps)}", _numeric_steps(imputer, options), columns))
    if data.categorical_features:
        steps.append(("categorical", _categorical_steps(), list(data.categorical_features)))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def _numeric_steps(imputer: SimpleImputer, options: PreprocessingConfig) -> Pipeline:
    steps: list[tuple[str, object]] = [("impute", imputer)]
    if options.scale_numeric:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def _categorical_steps() -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
