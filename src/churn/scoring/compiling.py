"""Compile a saved churn model for fast batch scoring: the same probabilities as
`model.predict_proba`, sooner.

The saved artefact is a `FixedThresholdClassifier` around a `Pipeline` of `FeatureCleaner`,
`ColumnTransformer` and classifier. `FastScorer` cleans with the cleaner's own spec (the same
`churn.cleaning` code), replays what the fitted ColumnTransformer learned with numpy and
category codes, writing every block straight into one preallocated matrix, then calls the
fitted classifier on cache-sized slices. `export_linear_tables` goes further for logistic
regression: it turns the whole model into lookup tables that `churn.scoring.scorers.LinearScorer`
evaluates without scikit-learn at all. Anything unrecognised falls back to the pipeline's own
steps, so the result is always the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn.cleaning import FeatureSpec, FeatureTable
from churn.codes import category_codes
from churn.model import unwrap
from churn.scoring.trees import ForestWalk, ShallowTrees, imputed_and_scaled, in_slices

# Tree ensembles walk the whole input once per tree; slices that fit in the CPU cache make
# those walks several times faster than one pass over a large matrix.
CLASSIFIER_SLICE_ROWS = 8192
# Up to this many rows (a service's request), a forest's trees are walked all at once
# (`ForestWalk`, the same numbers); above it scikit-learn's compiled walk is faster.
FOREST_WALK_ROWS = 64


@dataclass(frozen=True)
class _NumericBlock:
    columns: list[str]
    fill: np.ndarray  # imputation value per column
    mean: np.ndarray | None  # StandardScaler's mean_ and scale_, when it scales
    scale: np.ndarray | None

    @property
    def width(self) -> int:
        return len(self.columns)

    @property
    def widths(self) -> list[int]:
        """Output columns per input column: one each."""
        return [1] * len(self.columns)

    def tables(self, coef: np.ndarray, training_means: np.ndarray | None) -> list[dict[str, Any]]:
        """Each column's fill, scaling, coefficient and training mean (of the scaled value; for
        explanations, when the model holds them), for `churn.scoring.scorers.LinearScorer`."""
        found = [
            {
                "column": column,
                "fill": float(self.fill[i]),
                "mean": None if self.mean is None else float(self.mean[i]),
                "scale": None if self.scale is None else float(self.scale[i]),
                "coef": float(coef[i]),
            }
            for i, column in enumerate(self.columns)
        ]
        if training_means is not None:
            for item, mean in zip(found, training_means, strict=True):
                item["training_mean"] = float(mean)
        return found

    def inputs(self) -> list[dict[str, Any]]:
        """Each column's imputation and scaling, as `churn.scoring.trees` reads them."""
        return [
            {
                "column": column,
                "fill": float(self.fill[i]),
                "mean": None if self.mean is None else float(self.mean[i]),
                "scale": None if self.scale is None else float(self.scale[i]),
            }
            for i, column in enumerate(self.columns)
        ]

    def write_into(self, features: FeatureTable, out: np.ndarray, offset: int) -> int:
        for i, item in enumerate(self.inputs()):
            out[:, offset + i] = imputed_and_scaled(
                features.numbers[item["column"]], item["fill"], item["mean"], item["scale"]
            )
        return offset + self.width


@dataclass(frozen=True)
class _CategoricalBlock:
    """A fitted `SimpleImputer(most_frequent)` + `OneHotEncoder(handle_unknown="ignore")` pair,
    replayed from category codes: missing values take the most frequent training category,
    categories never seen in training encode as all zeros, and with `min_frequency` the rare
    training categories all set their column's one "infrequent" output (the last, as
    scikit-learn orders them)."""

    columns: list[str]
    categories: list[list[str]]  # each column's training categories, as the encoder sorted them
    most_frequent: list[str]
    positions: list[np.ndarray]  # each category's output column within its column's outputs
    widths: list[int]  # each column's number of output columns

    @classmethod
    def from_fitted(cls, imputer: SimpleImputer, encoder: OneHotEncoder) -> _CategoricalBlock | None:
        """The pair's block, or None when it is configured in a way the block does not replay."""
        if encoder.handle_unknown != "ignore" or encoder.drop_idx_ is not None or encoder.sparse_output:
            return None
        if len(imputer.statistics_) != len(encoder.categories_):  # an all-missing column was dropped
            return None
        categories = [[str(value) for value in found] for found in encoder.categories_]
        grouped = encoder.min_frequency is not None or encoder.max_categories is not None
        rare = encoder.infrequent_categories_ if grouped else [None] * len(categories)
        positions, widths = [], []
        for labels, infrequent in zip(categories, rare, strict=True):
            kept = [label for label in labels if infrequent is None or label not in set(map(str, infrequent))]
            position = {label: i for i, label in enumerate(kept)}
            positions.append(np.asarray([position.get(label, len(kept)) for label in labels], dtype="int64"))
            widths.append(len(kept) + (infrequent is not None))
        return cls(
            [str(name) for name in imputer.feature_names_in_],
            categories,
            [str(value) for value in imputer.statistics_],
            positions,
            widths,
        )

    @property
    def width(self) -> int:
        return sum(self.widths)

    def tables(self, coef: np.ndarray, training_means: np.ndarray | None) -> list[dict[str, Any]]:
        """Each column's categories, fill, one coefficient per category and (when the model holds
        them) each category's share of the training rows, for LinearScorer. Categories grouped
        as infrequent share the group's coefficient; the group's share is given to its first
        category (0 to the others), so that shares still sum, column by column, to the
        output's training mean."""
        found, offset = [], 0
        for name, categories, fill, position, width in self._each():
            weights = coef[offset : offset + width][position]
            found.append({"column": name, "categories": categories, "fill": fill, "coef": [float(w) for w in weights]})
            if training_means is not None:
                means = training_means[offset : offset + width]
                first = np.zeros(len(position), dtype=bool)
                first[np.unique(position, return_index=True)[1]] = True
                found[-1]["training_share"] = [float(m) for m in np.where(first, means[position], 0.0)]
            offset += width
        return found

    def inputs(self) -> list[dict[str, Any]]:
        """Each column's categories, fill and one-hot layout, as `churn.scoring.trees` reads them."""
        return [
            {"column": name, "categories": categories, "fill": fill, "positions": position.tolist(), "width": width}
            for name, categories, fill, position, width in self._each()
        ]

    def write_into(self, features: FeatureTable, out: np.ndarray, offset: int) -> int:
        """Set the one-hot columns of `out` from `offset` on (they must be zero); return the next offset."""
        rows = np.arange(len(features))
        for name, categories, fill, position, width in self._each():
            codes = category_codes(features.coded[name], categories, fill)
            seen = codes >= 0
            out[rows[seen], offset + position[codes[seen]]] = 1.0
            offset += width
        return offset

    def _each(self) -> zip[tuple[str, list[str], str, np.ndarray, int]]:
        return zip(self.columns, self.categories, self.most_frequent, self.positions, self.widths, strict=True)


Block = _NumericBlock | _CategoricalBlock


class FastScorer:
    """`predict_proba(X)[:, 1]` of a saved churn model, via its compiled preprocessing.

    A forest's trees are summed one after the other (`n_jobs=1`): scikit-learn's parallel sum
    adds them in whatever order its threads finish, so the last bit of a probability would
    depend on the run. Parallelism comes from scoring slices of rows on `threads` threads
    instead, which changes no number: each row is scored by the same code in the same order.
    """

    def __init__(self, model: FixedThresholdClassifier, threads: int = 1) -> None:
        pipeline = unwrap(model)
        self.threshold = float(model.threshold)
        self.spec: FeatureSpec = pipeline.named_steps["clean"].spec_
        self.after_cleaning = pipeline[1:]  # preprocess + classifier, for what does not compile
        self.preprocessor = pipeline.named_steps["preprocess"]
        self.classifier = pipeline.named_steps["classifier"]
        if "n_jobs" in self.classifier.get_params():
            self.classifier.set_params(n_jobs=1)
        self.blocks = _compile_blocks(pipeline.named_steps["preprocess"])
        self.compiled = self.blocks is not None
        self.trees = ShallowTrees.of(self.classifier, preprocessing_inputs(self.blocks))
        self.forest = ForestWalk.of(self.classifier) if self.blocks is not None else None
        self.threads = threads

    def score_clean(self, features: FeatureTable) -> np.ndarray:
        """Probability of churn per row of cleaned features; equal to the model's own to rounding."""
        if self.blocks is None:
            return np.asarray(self.after_cleaning.predict_proba(features.frame)[:, 1], dtype="float64")
        if self.trees is not None:  # the link scikit-learn's binomial loss applies to the margin
            return np.asarray(expit(self.trees.margin(features, self.threads)), dtype="float64")
        matrix = self.transform(features)
        if self.forest is not None and len(features) <= FOREST_WALK_ROWS:
            return self.forest.probabilities(matrix)
        out = np.empty(len(features), dtype="float64")

        def score_slice(start: int) -> None:
            stop = start + CLASSIFIER_SLICE_ROWS
            out[start:stop] = self.classifier.predict_proba(matrix[start:stop])[:, 1]

        in_slices(score_slice, range(0, len(features), CLASSIFIER_SLICE_ROWS), self.threads)
        return out

    def transform(self, features: FeatureTable) -> np.ndarray:
        """The preprocessed feature matrix, as the pipeline's ColumnTransformer would give it."""
        assert self.blocks is not None
        out = np.zeros((len(features), sum(block.width for block in self.blocks)), dtype="float64")
        offset = 0
        for block in self.blocks:
            offset = block.write_into(features, out, offset)
        return out


def preprocessing_inputs(blocks: list[Block] | None) -> list[dict[str, Any]] | None:
    """The compiled preprocessing's inputs, in the order of its output columns (None: it did not compile)."""
    return None if blocks is None else [item for block in blocks for item in block.inputs()]


def export_tree_tables(model: FixedThresholdClassifier) -> dict[str, Any] | None:
    """A boosted-trees model as tables for `churn.scoring.trees.TreeScorer`, or None when its
    trees are not all shallow or its preprocessing does not compile."""
    pipeline = unwrap(model)
    inputs = preprocessing_inputs(_compile_blocks(pipeline.named_steps["preprocess"]))
    evaluator = ShallowTrees.of(pipeline.named_steps["classifier"], inputs)
    if evaluator is None:
        return None
    spec = pipeline.named_steps["clean"].spec_.to_dict()
    return {"kind": "boosted_trees", "threshold": float(model.threshold), "features": spec} | evaluator.to_dict()


def export_linear_tables(model: FixedThresholdClassifier) -> dict[str, Any] | None:
    """The saved model as lookup tables for `churn.scoring.scorers.LinearScorer`, or None when it is
    not a binary logistic regression over preprocessing that FastScorer compiles."""
    pipeline = unwrap(model)
    classifier = pipeline.named_steps["classifier"]
    if not isinstance(classifier, LogisticRegression) or classifier.coef_.shape[0] != 1:
        return None
    tables = linear_tables(pipeline, classifier.coef_[0], float(classifier.intercept_[0]))
    return None if tables is None else {"kind": "logistic_regression", "threshold": float(model.threshold)} | tables


def linear_tables(features: Pipeline, weights: np.ndarray, intercept: float) -> dict[str, Any] | None:
    """A linear margin over a cleaning + preprocessing pipeline's output as lookup tables: the
    cleaning spec, the intercept, and per column its imputation, scaling and weights (the first
    weights, one per preprocessed column; any after them belong to the caller). None when the
    preprocessing is not one FastScorer compiles."""
    blocks = _compile_blocks(features.named_steps["preprocess"])
    if blocks is None:
        return None
    numeric: list[dict[str, Any]] = []
    categorical: list[dict[str, Any]] = []
    means = features.named_steps["preprocess"].training_means_  # None: an older run (churn.store.upgrade)
    offset = 0
    for block in blocks:
        block_weights = weights[offset : offset + block.width]
        block_means = None if means is None else np.asarray(means[offset : offset + block.width], dtype="float64")
        if isinstance(block, _NumericBlock):
            numeric += block.tables(block_weights, block_means)
        else:
            categorical += block.tables(block_weights, block_means)
        offset += block.width
    return {
        "features": features.named_steps["clean"].spec_.to_dict(),
        "intercept": intercept,
        "numeric": numeric,
        "categorical": categorical,
    }


def _compile_blocks(preprocessor: Any) -> list[_NumericBlock | _CategoricalBlock] | None:
    """The ColumnTransformer's fitted steps as fast blocks, or None if any step is unfamiliar."""
    if not isinstance(preprocessor, ColumnTransformer):
        return None
    blocks: list[_NumericBlock | _CategoricalBlock] = []
    for name, transformer, columns in preprocessor.transformers_:
        if name == "remainder" and transformer == "drop":
            continue
        block = _compile_step(transformer, list(columns))
        if block is None:
            return None
        blocks.append(block)
    return blocks


def _compile_step(transformer: Any, columns: list[str]) -> _NumericBlock | _CategoricalBlock | None:
    steps = dict(transformer.steps) if isinstance(transformer, Pipeline) else {}
    imputer, scaler, encoder = steps.get("impute"), steps.get("scale"), steps.get("encode")
    if not isinstance(imputer, SimpleImputer) or len(imputer.statistics_) != len(columns):
        return None
    if isinstance(encoder, OneHotEncoder) and set(steps) == {"impute", "encode"}:
        return _CategoricalBlock.from_fitted(imputer, encoder)
    if set(steps) - {"impute", "scale"}:
        return None
    try:  # the "constant" strategy keeps its statistics as objects
        fill = np.asarray(imputer.statistics_, dtype="float64")
    except (TypeError, ValueError):
        return None
    if np.isnan(fill).any():
        return None  # an all-missing training column, which the imputer drops
    if scaler is not None and not (isinstance(scaler, StandardScaler) and scaler.with_mean and scaler.with_std):
        return None
    mean = scaler.mean_ if scaler is not None else None
    scale = scaler.scale_ if scaler is not None else None
    return _NumericBlock(columns, fill, mean, scale)
