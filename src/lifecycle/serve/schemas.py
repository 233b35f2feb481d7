"""Request and response models, GENERATED from the training schema in model.json.

One record is a ``TypedDict`` with one key per column the model was trained with:

- numeric features: a JSON number (not a string, not a boolean), finite, within the feature's limits when they
  are known (``SERVE_NUMERIC_LIMITS``, else the data contract's bounds that model.json carries, else the built-in
  telemetry's physical limits), or ``null`` for a missing reading (imputed like in training);
- categorical features: one of the categories seen in training (a ``Literal``), or ``null``; for a column with too
  many values to list (``infrequent`` in the schema) any text, the model grouping the values it does not know;
- identifier and datetime columns: optional, carried into the prediction log (ids let monitoring join labels
  that arrive later); a datetime the model learns from is a feature that may be missing (``null`` or absent:
  its derived features are imputed like in training);
- anything else: rejected (``extra="forbid"``), so serving never accepts what training never saw without saying so.

Every feature key is required; a ``null`` says "missing" explicitly. Validated records are plain dicts, so the
predictors get them without copying.

The routes parse the generated bodies from bytes themselves (:mod:`lifecycle.serve.deps`), so their schemas reach
/openapi.json through :func:`openapi_body` (a reference per route) and ``document_bodies`` in the app; answers are
rendered by :class:`FastJSONResponse`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired, Required

import pandas as pd
import pydantic_core
from annotated_types import Ge, Le
from fastapi.responses import JSONResponse
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, StringConstraints, TypeAdapter, create_model
from typing_extensions import TypedDict

from lifecycle.schema import Schema

IdValue = Annotated[str, StringConstraints(max_length=256)] | Annotated[int, Strict()]
MAX_ID_LENGTH = 128  # a V2 request `id` (like `x-request-id`): it is copied into every prediction-log row
MAX_NAME_LENGTH = 256  # tensor and output names
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]


def numeric_limits(
    schema: Schema,
    overrides: Mapping[str, tuple[float, float]],
    builtin: bool = True,
    packaged: Mapping[str, Sequence[float | None]] | None = None,
) -> dict[str, tuple[float, float]]:
    """The allowed ``(low, high)`` of each numeric feature that has limits: ``overrides`` (SERVE_NUMERIC_LIMITS)
    first, then ``packaged`` (model.json's ``contract.limits``: the data contract's bounds, which the training rows
    met; ``None`` = unbounded), then (when ``builtin``) the telemetry simulator's physical limits for its own column
    names. Unknown names in ``overrides`` are errors."""
    unknown = sorted(set(overrides) - set(schema.numeric))
    if unknown:
        raise ValueError(
            f"SERVE_NUMERIC_LIMITS names {unknown}, which are not numeric features of the model "
            f"({', '.join(schema.numeric)})"
        )
    limits: dict[str, tuple[float, float]] = {}
    if builtin:
        from lifecycle.data.telemetry import PHYSICAL_LIMITS

        limits.update({k: v for k, v in PHYSICAL_LIMITS.items() if k in schema.numeric})
    for name, (low, high) in (packaged or {}).items():
        if name in schema.numeric:
            limits[name] = (-math.inf if low is None else float(low), math.inf if high is None else float(high))
    limits.update({k: (float(lo), float(hi)) for k, (lo, hi) in overrides.items()})
    return limits


def _numeric_type(limits: tuple[float, float] | None) -> Any:
    constraints: list[Any] = [Strict(), AllowInfNan(False)]
    if limits is not None:
        low, high = limits
        if math.isfinite(low):
            constraints.append(Ge(low))
        if math.isfinite(high):
            constraints.append(Le(high))
    return Annotated[float, *constraints] | None


def record_type(schema: Schema, limits: Mapping[str, tuple[float, float]]) -> type:
    """The ``TypedDict`` of one request record (see the module doc)."""
    fields: dict[str, Any] = {}
    for column in schema.columns:
        if column.role == "numeric":
            fields[column.name] = Required[_numeric_type(limits.get(column.name))]
        elif column.role == "categorical" and column.infrequent:  # any text: other values are grouped by the model
            fields[column.name] = Required[str | None]
        elif column.role == "categorical":
            fields[column.name] = Required[Literal[tuple(column.categories)] | None]  # type: ignore[valid-type]
        elif column.role == "identifier":
            fields[column.name] = NotRequired[IdValue | None]
        elif column.role == "datetime":
            fields[column.name] = NotRequired[dt.datetime | None]
    record = TypedDict("Record", fields)  # type: ignore[misc]  # functional form: any column name is a key
    record.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return record


# --------------------------------------------------------------------------------------------- envelopes
class FastJSONResponse(JSONResponse):
    """JSON rendered by pydantic-core (Rust): ~6x faster than json.dumps for 1000 rows of probabilities."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


def openapi_body(name: str) -> dict[str, Any]:
    """A route's ``openapi_extra`` for a JSON body parsed by the route itself: a reference to the component schema
    ``name`` (the body model's class name), which the app adds to /openapi.json."""
    schema = {"$ref": f"#/components/schemas/{name}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class ModelInfo(BaseModel):
    name: str
    version: str
    role: Literal["champion", "challenger"]
    engine: str


class PredictResponse(BaseModel):
    request_id: str
    model: ModelInfo
    predictions: list[Any] = Field(description="one label (classification) or value (regression) per record")
    probabilities: list[dict[str, float]] | None = Field(
        default=None, description="classification: one {class: probability} per record"
    )


class ErrorItem(BaseModel):
    field: str
    value: Any = None
    rule: str


class ErrorResponse(BaseModel):
    error: str
    errors: list[ErrorItem] = []
    error_count: int = 0


class V1Response(BaseModel):
    predictions: list[Any]


V2Datatype = Literal[
    "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64", "BYTES"
]
# Open Inference Protocol tensor datatypes of the values this server sends, by pandas' inferred kind of the values
_V2_BY_KIND: dict[str, V2Datatype] = {
    "boolean": "BOOL",
    "integer": "INT64",
    "floating": "FP64",
    "mixed-integer-float": "FP64",
    "decimal": "FP64",
}


def v2_datatype(values: Any) -> V2Datatype:
    """The Open Inference Protocol (KServe V2) datatype of ``values`` (a numpy array or a sequence of Python
    values): ``BOOL`` for booleans, ``INT64`` for integers, ``FP64`` for floats, ``BYTES`` for text and anything
    else. The one mapping the model metadata and the inference responses use (``pandas.api.types.infer_dtype``
    reads the values, so a list of Python bools and a numpy bool array agree; ``True`` is never an integer here).
    """
    return _V2_BY_KIND.get(pd.api.types.infer_dtype(values, skipna=True), "BYTES")


def output_datatype(task: str, values: Any) -> V2Datatype:
    """The datatype of a model's ``label`` (classification: that of its classes or predicted labels, by
    :func:`v2_datatype`) or ``prediction`` (regression: always ``FP64``, even for an integer-valued target)."""
    return v2_datatype(values) if task == "classification" else "FP64"


def feature_datatype(role: str) -> V2Datatype:
    """The datatype model metadata declares for an input column: ``FP64`` for a numeric feature (INT and FP32
    tensors are accepted too), ``BYTES`` for a categorical one (booleans become categories at ingest) or a datetime (ISO 8601 text)."""
    return "FP64" if role == "numeric" else "BYTES"


class V2Tensor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    shape: list[Annotated[int, Ge(0)]]
    datatype: V2Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any]


class V2RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    parameters: dict[str, Any] | None = None


class V2Request(BaseModel):
    """Open Inference Protocol inference request: one tensor per feature column, named like the column."""

    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(max_length=MAX_ID_LENGTH)] | None = Field(
        default=None, description=f"echoed in the answer and logged with every row; at most {MAX_ID_LENGTH} characters"
    )
    parameters: dict[str, Any] | None = None
    inputs: list[V2Tensor] = Field(min_length=1)
    outputs: list[V2RequestedOutput] | None = None


class V2OutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class V2Response(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str
    parameters: dict[str, Any] | None = None
    outputs: list[V2OutputTensor]


@dataclasses.dataclass(frozen=True)
class RequestModels:
    """What the app needs, generated once per (schema, limits, max_rows)."""

    record: type
    predict_request: type[BaseModel]
    v1_request: type[BaseModel]
    records: TypeAdapter  # list[record], for V1/V2 bodies converted to records
    limits: dict[str, tuple[float, float]]


def request_models(schema: Schema, limits: Mapping[str, tuple[float, float]], max_rows: int) -> RequestModels:
    """The request models of ``schema``: ``PredictRequest`` (``records``, 1 to ``max_rows``), ``V1PredictRequest``
    (``instances``: records or rows of values) and the records adapter for V1/V2 bodies converted to records."""
    record = record_type(schema, limits)
    example = example_record(schema, limits)
    forbid = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"records": [example]}]})
    predict_request = create_model(
        "PredictRequest",
        __config__=forbid,
        records=(list[record], Field(min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )
    v1_request = create_model(
        "V1PredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [{"instances": [example]}]}),
        instances=(
            list[dict[str, Any] | list[Any]],
            Field(
                min_length=1,
                max_length=max_rows,
                description="records (objects) or rows of feature values in the order of GET /v2/models/<name>",
            ),
        ),
    )
    return RequestModels(record, predict_request, v1_request, TypeAdapter(list[record]), dict(limits))  # type: ignore[valid-type]


def example_record(schema: Schema, limits: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """A valid record for the docs: the middle of each numeric range (or 0), the first category."""
    out: dict[str, Any] = {}
    for column in schema.columns:
        if column.role == "numeric":
            low, high = limits.get(column.name, (0.0, 0.0))
            out[column.name] = round((low + high) / 2, 3) if math.isfinite(low + high) else 0.0
        elif column.role == "categorical":
            out[column.name] = column.categories[0] if column.categories else None
    return out
