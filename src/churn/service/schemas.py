"""The service's request and answer models, for the OpenAPI document and its tests.

Answers are serialised with orjson straight from the scorer's arrays (validating thousands of
rows through pydantic would cost more than scoring them); these models describe them. The
request models are built from the served run's schema, so `/docs` lists every feature with
its type and the categories training saw.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

# Numeric text as predict parses it: optional sign, digits, decimal point, exponent; or blank.
NUMERIC_TEXT = r"^\s*([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)?\s*$"


class ErrorResponse(BaseModel):
    """Every error answer: a one-line reason, the request id (also in the log), and where."""

    detail: str
    request_id: str
    row: int | None = Field(None, description="index of the offending row in the request, when one is to blame")
    field: str | None = Field(None, description="the offending field, when one is to blame")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    run_id: str


class NotReady(BaseModel):
    status: Literal["not ready"]
    detail: str


class InputSchema(BaseModel):
    id_column: str | None = Field(description="echoed back beside each prediction when a customer carries it")
    numeric_columns: list[str]
    categorical_columns: dict[str, list[str]] = Field(description="each column with the categories training saw")


class ModelInfo(BaseModel):
    run_id: str
    model_name: str
    threshold: float = Field(description="churn_prediction is 1 where churn_probability reaches it")
    created: str
    test_metrics: dict[str, Any] = Field(description="the run's metrics.json: test-set metrics, CV and costs")
    input_schema: InputSchema


class Prediction(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"description": "plus the id column, when sent"})
    churn_probability: float = Field(ge=0.0, le=1.0)
    churn_prediction: Literal[0, 1]


class PredictResponse(BaseModel):
    run_id: str
    predictions: list[Prediction] = Field(description="one per customer, in request order")
    warnings: list[str] = Field(description="values never seen in training, infinities set to missing, ...")


class InvocationsResponse(BaseModel):
    """MLflow's answer for a scikit-learn model served with predict_proba: [P(stays), P(churns)] per row."""

    predictions: list[list[float]]


def customer_model(schema: dict[str, Any]) -> type[BaseModel]:
    """One customer as the served run takes it: every feature required (null is a missing value)."""
    fields: dict[str, Any] = {}
    for column in schema["numeric_features"]:
        low, high = (schema["numeric_ranges"][column][k] for k in ("min", "max"))
        description = f"a number, or numeric text; null or blank is missing. Training range [{low}, {high}]"
        fields[column] = (float | str | None, Field(description=description, json_schema_extra=_numeric_text))
    for column in schema["categorical_features"]:
        categories = schema["categories"][column]
        description = "one of the training categories " + ", ".join(map(repr, categories))
        description += "; another value is scored as no category, with a warning; null is missing"
        extra = {"x-training-categories": categories, "examples": categories[:3]}
        fields[column] = (str | int | float | bool | None, Field(description=description, json_schema_extra=extra))
    if schema.get("id_column"):
        fields[schema["id_column"]] = (str | int | None, Field(None, description="the customer id, echoed back"))
    config = ConfigDict(extra="allow", json_schema_extra={"description": "other fields are ignored"})
    return create_model("Customer", __config__=config, **fields)


def _numeric_text(schema: dict[str, Any]) -> None:
    """Text in a numeric field must look like a number."""
    for option in schema.get("anyOf", ()):
        if option.get("type") == "string":
            option["pattern"] = NUMERIC_TEXT


def request_models(schema: dict[str, Any], max_rows: int) -> dict[str, type[BaseModel]]:
    """The request bodies of /predict and /invocations for the served run."""
    customer = customer_model(schema)
    predict = create_model(
        "PredictRequest",
        customers=(list[customer], Field(min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )
    split = create_model(
        "DataframeSplit",
        columns=(list[str], Field(description="the feature names, as in Customer")),
        data=(list[list[Any]], Field(min_length=1, max_length=max_rows, description="one list of values per row")),
    )
    by_split = create_model("DataframeSplitRequest", dataframe_split=(split, ...))
    by_records = create_model(
        "DataframeRecordsRequest",
        dataframe_records=(list[customer], Field(min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )
    return {"PredictRequest": predict, "DataframeSplitRequest": by_split, "DataframeRecordsRequest": by_records}
