"""The service's request and answer models, for the OpenAPI document and its tests.

Answers are serialised with orjson straight from the scorer's arrays (validating thousands of
rows through pydantic would cost more than scoring them); these models describe them. The
request models are built from the served run's schema, so `/docs` lists every feature with
its type and the categories training saw.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from churn.store.record import FeatureSchema, TestMetrics

# Numeric text as predict parses it: optional sign, digits, decimal point, exponent; or blank.
NUMERIC_TEXT = r"^\s*([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)?\s*$"


ERRORS = {
    400: "the body is not JSON, or not CSV",
    401: "a token is required (CHURN_API_TOKEN is set) and was missing or wrong",
    408: "the request's headers or body did not arrive within serve.read_timeout_s",
    413: "more rows than serve.max_rows, or a body over serve.max_body_mb",
    415: "a content type other than application/json or text/csv",
    422: "a row lacks a feature, or holds a value of the wrong kind (the row and field are named)",
    500: "an internal error; the log line with the traceback carries the same request id",
    404: "/monitor: no customer has been scored by the served run yet",
    501: "reason codes asked of a run that cannot give them (a random forest without shap installed, or a "
    "run saved by an earlier churn without what explaining needs), or /monitor of a run without a reference "
    "profile: the detail says which, and to retrain",
    503: "no model is loaded yet (see /ready), or every scoring thread is busy (see Retry-After)",
}


def answers(ok: dict[str, Any] | None, *codes: int) -> dict[int | str, dict[str, Any]]:
    """An operation's documented answers: `ok` for 200, and the error answers `codes`."""
    documented: dict[int | str, dict[str, Any]] = {} if ok is None else {200: ok}
    return documented | {code: {"model": ErrorResponse, "description": ERRORS[code]} for code in codes}


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


class Explanations(BaseModel):
    """What a prediction's reasons are measured in: contributions to the margin add up, with
    the base, to the margin of that customer."""

    available: bool = Field(description='false: "explain" is answered 501 (see detail)')
    margin: Literal["log-odds", "probability"] = Field(
        description="log-odds of churn (logistic regression, gradient boosting) or the probability (random forest)"
    )
    base: float | None = Field(description="the model's expected margin over its training rows")
    detail: str | None = Field(None, description="why explanations are not available")


class SurvivalInfo(BaseModel):
    """The run's survival model: "horizons": true in a /predict body adds these columns."""

    duration_column: str = Field(description="the column of months stayed each customer's horizons start from")
    horizons: list[int] = Field(description="months ahead")
    columns: list[str] = Field(description="what each prediction gains: churn_within_<h>m, expected_months_<h>m")
    model: str
    harrell_c: float = Field(description="test rows' Harrell's concordance")
    ibs: float = Field(description="test rows' integrated Brier score (Kaplan-Meier's in kaplan_meier_ibs)")
    kaplan_meier_ibs: float


class ModelInfo(BaseModel):
    run_id: str
    model_name: str
    threshold: float = Field(description="churn_prediction is 1 where churn_probability reaches it")
    created: str
    test_metrics: TestMetrics = Field(description="the run's test-set metrics, cross-validated ROC AUC and costs")
    input_schema: InputSchema
    explanations: Explanations
    survival: SurvivalInfo | None = Field(None, description="null: the run has no survival model")


class Reason(BaseModel):
    """A reason code: an input column that pushes this customer towards churn."""

    feature: str = Field(description="the input column")
    value: str | None = Field(description="the customer's value, as cleaning left it (null: missing)")
    effect: float = Field(gt=0, description="its contribution to the margin (see /model explanations)")


class Prediction(BaseModel):
    churn_probability: float = Field(ge=0.0, le=1.0)
    churn_prediction: Literal[0, 1]
    reasons: list[Reason] | None = Field(
        None, description='with "explain": K, the K largest pushes towards churn, largest first (fewer when fewer push)'
    )
    horizon_reasons: list[Reason] | None = Field(
        None,
        description='with "horizons": true and "explain": K, a logistic hazard model\'s K largest pushes on churn '
        "within every horizon (effects in log-odds of churn in a month)",
    )
    expected_saving: float | None = Field(
        None, description='with "budget": the expected saving of contacting this customer (decision costs of the run)'
    )
    contact: Literal[0, 1] | None = Field(
        None, description='with "budget": N, 1 for the N customers of the request with the highest positive saving'
    )
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "description": 'plus the id column, when sent; with "horizons": true, churn_within_<h>m per horizon and '
            "expected_months_<h>m (null without a tenure) and, for a run with a value column, revenue_at_risk_<h>m"
        },
    )


class PredictResponse(BaseModel):
    run_id: str
    predictions: list[Prediction] = Field(description="one per customer, in request order")
    warnings: list[str] = Field(description="values never seen in training, infinities set to missing, ...")


class InvocationsResponse(BaseModel):
    """MLflow's answer for a scikit-learn model served with predict_proba: [P(stays), P(churns)] per row."""

    predictions: list[list[float]]


def customer_model(features: FeatureSchema) -> type[BaseModel]:
    """One customer as the served run takes it: every feature required (null is a missing value)."""
    fields: dict[str, Any] = {}
    for column in features.numeric_features:
        bounds = features.numeric_ranges[column]
        description = (
            f"a number, or numeric text; null or blank is missing. Training range [{bounds.min}, {bounds.max}]"
        )
        fields[column] = (float | str | None, Field(description=description, json_schema_extra=_numeric_text))
    for column in features.categorical_features:
        categories = list(features.categories[column])
        description = "one of the training categories " + ", ".join(map(repr, categories))
        description += "; another value is scored as no category, with a warning; null is missing"
        extra: dict[str, Any] = {"x-training-categories": categories, "examples": categories[:3]}
        fields[column] = (str | int | float | bool | None, Field(description=description, json_schema_extra=extra))
    if features.id_column:
        fields[features.id_column] = (str | int | None, Field(None, description="the customer id, echoed back"))
    config = ConfigDict(extra="allow", json_schema_extra={"description": "other fields are ignored"})
    return create_model("Customer", __config__=config, **fields)


def _numeric_text(schema: dict[str, Any]) -> None:
    """Text in a numeric field must look like a number."""
    for option in schema.get("anyOf", ()):
        if option.get("type") == "string":
            option["pattern"] = NUMERIC_TEXT


def request_models(features: FeatureSchema, max_rows: int) -> dict[str, type[BaseModel]]:
    """The request bodies of /predict and /invocations for the served run."""
    customer = customer_model(features)
    columns = len(features.numeric_features) + len(features.categorical_features)
    predict = create_model(
        "PredictRequest",
        customers=(list[customer], Field(min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
        explain=(int, Field(0, ge=0, le=columns, description="reason codes per customer (0: none)")),
        budget=(int | None, Field(None, ge=1, description="contacts for this batch: the highest expected savings")),
        horizons=(bool, Field(False, description="true: churn within each horizon of the run's survival model")),
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
