"""The saved model's preprocessing: `FeatureCleaner` (raw columns in, clean features out) and
one `ColumnTransformer` built from the column lists.

Both are fitted inside the model `Pipeline` on training rows only, so every statistic they
learn (category spellings, medians, scales, category lists) comes from those rows and is
saved with the model. They are steps of a saved model, loaded wherever the model is: this
module takes plain values and imports nothing that reads a file or the config.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from churn.cleaning import CleanedFeatures, FeatureSpec, check_unparsed, clean_features, cleaning_warnings

logger = logging.getLogger(__name__)


def build_preprocessor(
    numeric: Sequence[str],
    categorical: Sequence[str],
    numeric_impute: Literal["median", "mean"] = "median",
    fill_values: Mapping[str, float] | None = None,
    scale_numeric: bool = True,
    min_category_count: int | None = None,
) -> ColumnTransformer:
    """Impute and scale numeric columns, impute and one-hot encode categorical ones.

    Columns named in `fill_values` are imputed with that constant instead of the learned
    statistic (Telco: a blank TotalCharges belongs to a customer with tenure 0, who has been
    charged nothing yet, so 0 is the true value, not the median). Categories unseen in training
    encode as all zeros instead of failing. With `min_category_count`, categories seen fewer
    times in the training rows share one "infrequent" column (scikit-learn's `min_frequency`): a
    code with hundreds of values becomes a few dozen columns, and a rare value is not a feature
    learned from a handful of rows.
    """
    fill_values = fill_values or {}
    steps: list[tuple[str, object, list[str]]] = []
    learned = [c for c in numeric if c not in fill_values]
    if learned:
        steps.append(("numeric", _numeric_steps(SimpleImputer(strategy=numeric_impute), scale_numeric), learned))
    for value in sorted(set(fill_values.values())):
        columns = [c for c in numeric if fill_values.get(c) == value]
        imputer = SimpleImputer(strategy="constant", fill_value=value)
        steps.append((f"numeric_fill_{len(steps)}", _numeric_steps(imputer, scale_numeric), columns))
    if categorical:
        steps.append(("categorical", _categorical_steps(min_category_count), list(categorical)))
    return Preprocessor(steps, remainder="drop", verbose_feature_names_out=True)


MEAN_SLICE_ROWS = 100_000  # output rows summed at a time when the training means are taken


class Preprocessor(ColumnTransformer):
    """scikit-learn's ColumnTransformer that also learns, when fitted, each output column's mean
    over the rows it was fitted on (`training_means_`): a linear model's explanations are
    measured from them (`churn.explain.explainers`), and `clone` + `fit` learns them again."""

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> Any:
        out = super().fit_transform(X, y, **params)
        dense = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
        sums = sum(
            dense[start : start + MEAN_SLICE_ROWS].sum(axis=0) for start in range(0, len(dense), MEAN_SLICE_ROWS)
        )
        self.training_means_ = np.asarray(sums, dtype="float64") / max(len(dense), 1)
        return out


def _numeric_steps(imputer: SimpleImputer, scale: bool) -> Pipeline:
    steps: list[tuple[str, object]] = [("impute", imputer)]
    if scale:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def _categorical_steps(min_count: int | None) -> Pipeline:
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=min_count)
    return Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("encode", encoder)])


class FeatureCleaner(TransformerMixin, BaseEstimator):
    """The first step of every saved model: raw feature columns in, clean features out.

    It applies `churn.cleaning.clean_features`, the cleaning that training, predict, the
    service and the cluster all use, so the saved model takes a table as pandas or pyarrow
    read it, or as JSON records give it, and answers what `python main.py predict` answers.

    Parameters:
        numeric_features: the numeric columns; with `categorical_features` both None, the
            columns are inferred at fit (numeric dtypes are numeric, everything else is a
            category).
        categorical_features: the categorical columns.
        max_unparsed_share: above this share of the non-missing values of a numeric column
            that are not numbers, `transform` raises `DataError` (a ValueError); below, it warns.
        missing_values: text that means "no value" in a numeric column ("Unknown", "-"), read
            as missing and not counted as unparsed.

    Fitted attributes:
        spec_: the `FeatureSpec` cleaning applies (columns, training's spelling of true/false).
        categories_: each categorical column's training categories, sorted.
        n_features_in_, feature_names_in_: the feature columns (names only when fitted on named columns).

    Input: a DataFrame or an Arrow table, whose extra columns are ignored and whose column
    order does not matter (a raw file or a JSON record carries more than the features), or an
    array with exactly `n_features_in_` columns. Output: a DataFrame, numbers as float64 and
    categories as Categoricals of text, which the ColumnTransformer after it selects by name.
    """

    def __init__(
        self,
        numeric_features: tuple[str, ...] | None = None,
        categorical_features: tuple[str, ...] | None = None,
        max_unparsed_share: float = 0.01,
        missing_values: tuple[str, ...] = (),
    ) -> None:
        self.numeric_features = numeric_features
        self.categorical_features = categorical_features
        self.max_unparsed_share = max_unparsed_share
        self.missing_values = missing_values

    def fit(self, X: Any, y: object = None) -> FeatureCleaner:
        frame, named = self._as_frame(X, fitted=False)
        numeric, categorical = self._feature_lists(frame)
        missing = tuple(self.missing_values)
        cleaned = self._clean(frame, FeatureSpec(numeric, categorical, missing_values=missing))
        self.categories_ = {c: sorted(cleaned.X[c].dropna().unique().tolist()) for c in categorical}
        self.spec_ = FeatureSpec.learn(numeric, categorical, self.categories_, missing)
        self.n_features_in_ = len(self.spec_.columns)
        if named:
            self.feature_names_in_ = np.asarray(self.spec_.columns, dtype=object)
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "spec_")
        frame, _ = self._as_frame(X, fitted=True)
        return self._clean(frame, self.spec_).X

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "spec_")
        return np.asarray(self.spec_.columns, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # text in numeric and categorical columns
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True  # missing values are imputed later in the pipeline
        tags.transformer_tags.preserves_dtype = []  # the output is a DataFrame of numbers and Categoricals
        return tags

    def _as_frame(self, X: Any, fitted: bool) -> tuple[pd.DataFrame | pa.Table, bool]:
        """The input as a table with column names, and whether the names came with it."""
        if isinstance(X, pa.Table) or (isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns)):
            if len(X) == 0:
                raise ValueError(
                    f"Found array with 0 sample(s) (shape=({len(X)}, {len(X.columns)})) "
                    "while a minimum of 1 is required."
                )
            return X, True  # extra columns are ignored, so scikit-learn's name check does not apply
        if fitted and hasattr(self, "feature_names_in_"):
            raise ValueError(
                f"{type(self).__name__} was fitted on named columns; pass a DataFrame with columns "
                f"{', '.join(self.feature_names_in_)}"
            )
        array = validate_data(self, X, reset=not fitted, dtype=None, ensure_all_finite=False, ensure_2d=True)
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])]), False

    def _feature_lists(self, frame: pd.DataFrame | pa.Table) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self.numeric_features is not None or self.categorical_features is not None:
            return tuple(self.numeric_features or ()), tuple(self.categorical_features or ())
        kinds = _column_types(frame)
        numeric = tuple(name for name, kind in kinds.items() if _is_number_type(kind))
        return numeric, tuple(name for name in kinds if name not in numeric)

    def _clean(self, frame: pd.DataFrame | pa.Table, spec: FeatureSpec) -> CleanedFeatures:
        cleaned = clean_features(frame, spec)
        check_unparsed(cleaned.unparsed, None, self.max_unparsed_share, "max_unparsed_share")
        for line in cleaning_warnings(cleaned.unparsed, cleaned.infinite):
            logger.warning("%s", line)
        return cleaned


def _column_types(frame: pd.DataFrame | pa.Table) -> dict[str, Any]:
    if isinstance(frame, pa.Table):
        return {field.name: field.type for field in frame.schema}
    return dict(frame.dtypes)


def _is_number_type(kind: Any) -> bool:
    if isinstance(kind, pa.DataType):
        return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))
    return bool(pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind))
