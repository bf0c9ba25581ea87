"""Runs saved by earlier churns: the one place that knows how they differ from today's.

Where a run is read, its record is upgraded in memory (`parse_record`: version 1 kept its metrics
in metrics.json), its saved model too (`upgrade_model`: a preprocessing saved before it learned
its training means), and what it cannot give is stated once, as `Gaps`, with the remedy. The
doors ask a run's gaps (monitor, the service's /monitor, explanations, the report); none of them
branches on how old a run is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churn.store.record import SCHEMA_VERSION, FeatureSchema, RunRecord, TestMetrics

REFERENCE = "reference.json"  # churn.store.runs.REFERENCE: defined here, where its absence is explained
NO_REFERENCE = f"was trained before churn saved a reference profile ({REFERENCE}); retrain it to monitor its batches"
NO_REPORT_EXPLANATIONS = "This run was trained before churn explained its predictions; retrain it to see them."
NO_TRAINING_MEANS = (
    "this logistic-regression run was saved before churn recorded what explaining it needs (each "
    "input's mean over the training rows); retrain it to explain its predictions"
)


@dataclass(frozen=True)
class Gaps:
    """What a run saved by an earlier churn cannot give, each with why and the remedy (None: it can)."""

    reference: str | None  # no reference profile: nothing to monitor against
    report_explanations: str | None  # its report has no global view of the contributions


def gaps_of(record: RunRecord) -> Gaps:
    return Gaps(
        reference=None if REFERENCE in record.artefacts else NO_REFERENCE,
        report_explanations=None if record.explanations is not None else NO_REPORT_EXPLANATIONS,
    )


def linear_tables_gap(tables: dict[str, Any]) -> str | None:
    """Why a logistic regression's lookup tables cannot explain (None: they can)."""
    complete = all("training_mean" in item for item in tables["numeric"]) and all(
        "training_share" in item for item in tables["categorical"]
    )
    return None if complete else NO_TRAINING_MEANS


def upgrade_tables(tables: dict[str, Any]) -> dict[str, Any]:
    """A logistic regression's lookup tables (scorer.json) as today's code reads them: a run saved
    before `data.missing_values` existed lists none (its cleaning treated no value as missing)."""
    features = tables["features"]
    if "missing_values" not in features:
        tables = tables | {"features": features | {"missing_values": []}}
    return tables


def upgrade_model(model: Any) -> Any:
    """A saved model as today's code reads it: a preprocessing fitted before it learned its
    training means (`churn.preprocessing.Preprocessor`) gets `training_means_` None (its run
    explains nothing: `linear_tables_gap`)."""
    pipeline = getattr(model, "estimator_", getattr(model, "estimator", None))
    preprocess = getattr(pipeline, "named_steps", {}).get("preprocess")
    if preprocess is not None and not hasattr(preprocess, "training_means_"):
        preprocess.training_means_ = None
    return model


class UnknownVersion(ValueError):
    """A metadata.json written by a churn this code does not know how to read."""


def parse_record(payload: dict[str, Any], metrics_v1: dict[str, Any] | None = None) -> RunRecord:
    """The record a metadata.json payload holds, upgraded in memory from version 1.

    `metrics_v1` is the run's metrics.json, which version 1 kept outside the record.

    Raises:
        UnknownVersion: a schema_version this code does not read.
        pydantic.ValidationError: the payload does not fit its version.
    """
    version = payload.get("schema_version", 1)
    if version == SCHEMA_VERSION:
        return RunRecord.model_validate(payload)
    if version == 1 and metrics_v1 is not None:
        return RunRecord.model_validate(upgrade_v1(payload, metrics_v1))
    raise UnknownVersion(f"schema_version {version!r} (this churn reads versions 1 and {SCHEMA_VERSION})")


def upgrade_v1(old: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """A version-1 metadata.json (and its metrics.json) in the current record's shape."""
    data, schema, config = old["training_data"], old["schema"], old["config"]
    cost_keys = ("expected_cost", "cost_contact_nobody", "cost_contact_everyone", "saving_vs_contact_nobody")
    choice = old["threshold_choice"]
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": old["run_id"],
        "created": old["created"],
        "status": old.get("status", "accepted"),
        "config_path": old["config_path"],
        "config": config,
        "data": {
            key: data[key]
            for key in ("path", "sha256", "rows_read", "rows_used", "dropped_missing_target", "dropped_duplicate_ids")
        }
        | {"class_balance": old["class_balance"], "missing_values": old["missing_values"]},
        "split": {
            "test_size": config["split"]["test_size"],
            "random_state": config["split"]["random_state"],
            "train_rows": data["train_rows"],
            "test_rows": data["test_rows"],
        },
        "features": {key: schema[key] for key in FeatureSchema.model_fields if key in schema}
        | {"positive_label": config["data"]["positive_label"]},
        "selection": old["selection"]
        | {"metric": config["training"]["selection_metric"], "cv_folds": metrics["cv_folds"]},
        "model": {"name": old["model_name"], "params": old["model_params"]},
        "threshold": {
            "value": old["threshold"],
            "objective": choice["objective"],
            "reason": choice["reason"],
            "oof_value": choice.get("oof_value"),
        },
        "decision": old["decision"],
        "metrics": {key: metrics[key] for key in TestMetrics.model_fields if key in metrics}
        | {"costs": {key: metrics[key] for key in cost_keys} if "expected_cost" in metrics else None},
        "validation": old["validation"],
        "train_seconds": metrics.get("train_seconds", 0.0),
        "artefacts": old["artefacts"],
        "environment": old["environment"],
    }
