"""Open Inference Protocol (KServe V2): inference, model metadata and readiness, server metadata and health.

``POST /v2/models/<name>[/versions/<v>]/infer`` takes one input tensor per feature column (shape ``[N]`` or
``[N, 1]``, named like the column; ``BYTES`` for categories, ``FP64``/``FP32``/``INT*`` for numbers), or one
``[N, features]`` tensor by position; the tensors become records and are validated like ``/predict``'s. The output
datatypes (metadata and responses alike) come from one mapping, :func:`lifecycle.serve.schemas.v2_datatype`.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lifecycle.schema import Schema
from lifecycle.serve.deps import (
    NamedModel,
    NamedModelVersion,
    ServingState,
    read_body,
    request_id,
    served_model,
    serving,
)
from lifecycle.serve.errors import BadRequestError, Where, bad, validate_records
from lifecycle.serve.predictors import ServedModel
from lifecycle.serve.schemas import (
    FastJSONResponse,
    V2Request,
    V2Response,
    feature_datatype,
    openapi_body,
    output_datatype,
)
from lifecycle.serve.state import State, package_version

router = APIRouter()
TAGS: list[str] = ["open inference v2"]
NOT_READY = 400  # the spec: "a 200 status code indicating true and a 4xx status code indicating false"


def flatten(data: list[Any]) -> list[Any]:
    """V2 tensor data may be flat or nested (row-major); flatten one level at a time."""
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for v in data:
        out.extend(flatten(v) if isinstance(v, list) else [v])
    return out


INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
NUMBER_TYPES = INT_TYPES | {"FP16", "FP32", "FP64"}
DATATYPE_RULES = {
    "BOOL": ("JSON booleans", lambda v: isinstance(v, bool)),
    "BYTES": ("JSON strings", lambda v: isinstance(v, str)),
    **{t: ("JSON integers", lambda v: isinstance(v, int) and not isinstance(v, bool)) for t in INT_TYPES},
    **{
        t: ("JSON numbers", lambda v: isinstance(v, int | float) and not isinstance(v, bool))
        for t in NUMBER_TYPES - INT_TYPES
    },
}


def datatype_errors(datatype: str, data: list[Any], where: list[Any]) -> list[dict[str, Any]]:
    """The values of ``data`` (flat) that the tensor's ``datatype`` cannot hold (``null`` = missing is allowed): an
    ``INT64`` tensor holds integers, ``FP*`` numbers, ``BOOL`` booleans, ``BYTES`` strings. At most one item per
    tensor, naming the first offending value's position (``where`` + ``["data", i]``)."""
    what, ok = DATATYPE_RULES[datatype]
    for i, value in enumerate(data):
        if value is not None and not ok(value):
            return [bad([*where, "data", i], value, f"{datatype} tensor: values must be {what} (or null)", "datatype")]
    return []


def tensors_to_records(body: V2Request, schema: Schema, max_rows: int) -> tuple[list[dict[str, Any]], Where]:
    """The request's rows as dicts (validated afterwards), and where each value came from in the body.

    Two forms: one tensor per column (named like it, shape ``[N]`` or ``[N, 1]``), or one ``[N, features]`` tensor
    by position. Raises :class:`BadRequestError` listing every tensor with an unknown or duplicate name, a wrong
    shape, a datatype the column cannot take or values its datatype cannot hold, a row count unlike the others',
    or a missing feature; and for zero rows or more than ``max_rows`` (checked on both forms, before any row is
    built).
    """
    features = schema.features
    columns = {c.name: c for c in schema.columns if c.role in ("numeric", "categorical", "identifier", "datetime")}
    if len(body.inputs) == 1 and body.inputs[0].name not in columns:  # one [N, features] tensor, by position
        return _positional(body.inputs[0], schema, max_rows)
    problems: list[dict[str, Any]] = []
    by_name = {}
    for i, tensor in enumerate(body.inputs):
        if tensor.name in by_name:
            problems.append(bad(["inputs", i, "name"], tensor.name, "duplicate input name"))
        by_name[tensor.name] = tensor
    n = None
    values: dict[str, list[Any]] = {}
    for i, tensor in enumerate(body.inputs):
        column = columns.get(tensor.name)
        if column is None:
            rule = f"unknown input: not a column of the training schema (features: {', '.join(features)})"
            problems.append(bad(["inputs", i, "name"], tensor.name, rule))
            continue
        where = ["inputs", tensor.name]
        data = flatten(tensor.data)
        rows = tensor.shape[0] if tensor.shape else 0
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1) or len(data) != rows:
            rule = f"a column tensor has shape [N] or [N, 1] and N values; got {len(data)} values"
            problems.append(bad([*where, "shape"], tensor.shape, rule))
            continue
        allowed = {
            "numeric": NUMBER_TYPES,
            "categorical": {"BYTES"},
            "identifier": INT_TYPES | {"BYTES"},
            "datetime": {"BYTES"},
        }[column.role]
        if tensor.datatype not in allowed:
            rule = {
                "numeric": "numeric feature: use FP64, FP32 or an INT datatype",
                "categorical": "categorical feature: use BYTES (the category as text)",
                "identifier": "identifier: use BYTES or an INT datatype",
                "datetime": "datetime: use BYTES (ISO 8601 text)",
            }[column.role]
            problems.append(bad([*where, "datatype"], tensor.datatype, rule))
        else:
            problems += datatype_errors(tensor.datatype, data, where)
        if n is not None and rows != n:
            rule = f"every input must have the same number of rows ({n})"
            problems.append(bad([*where, "shape"], tensor.shape, rule))
        n = rows if n is None else n
        values[tensor.name] = data
    for name in features:
        if name not in values and name not in by_name:
            rule = "required: every feature needs an input tensor named like it"
            problems.append(bad(["inputs", name], None, rule, "missing"))
    if problems:
        raise BadRequestError(problems)
    _check_rows(n or 0, max_rows)
    names = list(values)
    raw = [dict(zip(names, row, strict=True)) for row in zip(*(values[k] for k in names), strict=True)]
    return raw, lambda row, field: ["inputs", field, "data", row] if field else ["inputs", "data", row]


def _check_rows(rows: int, max_rows: int) -> None:
    """Zero rows, or more than ``max_rows`` (SERVE_MAX_ROWS), raise :class:`BadRequestError`."""
    if rows == 0:
        raise BadRequestError(
            [bad(["inputs"], 0, "no rows: the input tensors have 0 rows; send at least 1", "too_short")]
        )
    if rows > max_rows:
        rule = f"too many rows: at most {max_rows} per request (SERVE_MAX_ROWS)"
        raise BadRequestError([bad(["inputs"], rows, rule, "too_long")])


def _positional(tensor: Any, schema: Schema, max_rows: int) -> tuple[list[dict[str, Any]], Where]:
    """One ``[N, features]`` tensor, values in the order of the metadata's inputs: ``BYTES`` when a feature is
    categorical (text and numbers side by side, each validated like its column), else ``FP*``/``INT*``."""
    features = schema.features
    width = len(features)
    where = ["inputs", 0]
    if len(tensor.shape) != 2 or tensor.shape[1] != width:
        rule = f"one input tensor that is not a column must have shape [N, {width}] (features in this order: {', '.join(features)})"
        raise BadRequestError([bad([*where, "shape"], tensor.shape, rule)])
    _check_rows(tensor.shape[0], max_rows)
    data = flatten(tensor.data)
    if len(data) != tensor.shape[0] * width:
        rule = f"shape {tensor.shape} needs {tensor.shape[0] * width} values; got {len(data)}"
        raise BadRequestError([bad([*where, "data"], len(data), rule)])
    if schema.categorical and tensor.datatype != "BYTES":
        rule = f"a tensor of every feature holds text ({', '.join(schema.categorical)}): use BYTES"
        raise BadRequestError([bad([*where, "datatype"], tensor.datatype, rule)])
    if not schema.categorical:
        if tensor.datatype not in NUMBER_TYPES:
            raise BadRequestError(
                [bad([*where, "datatype"], tensor.datatype, "numeric features: use FP64, FP32 or an INT datatype")]
            )
        problems = datatype_errors(tensor.datatype, data, where)
        if problems:
            raise BadRequestError(problems)
    raw = [dict(zip(features, data[r * width : (r + 1) * width], strict=True)) for r in range(tensor.shape[0])]
    return raw, lambda row, field: ["inputs", tensor.name, row, field] if field else ["inputs", tensor.name, row]


async def infer(request: Request, name: str, version: str | None) -> FastJSONResponse:
    """Check the model's name (and version), validate the tensors as records, predict, and answer with
    ``label``/``prediction`` and ``probabilities``."""
    state = serving(request)
    served_model(state, name, version)  # 404 for another name or a version not served, before the body is read
    body: V2Request = await read_body(request, V2Request)
    raw, where = tensors_to_records(body, state.schema, state.settings.max_rows)
    records = validate_records(state.models.records, raw, where)
    rid = body.id or request_id(request)
    model, engine, y_pred, proba = await state.predict(records, "/v2/models/infer", rid)
    n = len(records)
    classification = state.schema.task == "classification"
    outputs = [
        {
            "name": "label" if classification else "prediction",
            "shape": [n],
            "datatype": output_datatype(state.schema.task, y_pred),
            "data": y_pred.tolist(),
        }
    ]
    if proba is not None:
        outputs.append(
            {
                "name": "probabilities",
                "shape": [n, proba.shape[1]],
                "datatype": "FP64",
                "data": proba.ravel().tolist(),
                "parameters": {"classes": model.classes},
            }
        )
    if body.outputs:
        wanted = [o.name for o in body.outputs]
        known = {o["name"] for o in outputs}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise BadRequestError([bad(["outputs"], unknown, f"unknown output; this model has {sorted(known)}")])
        outputs = [o for o in outputs if o["name"] in wanted]
    return FastJSONResponse(
        {
            "model_name": model.name,
            "model_version": model.version,
            "id": rid,
            "parameters": {"model_role": model.role, "engine": engine},
            "outputs": outputs,
        }
    )


def model_metadata(name: str, model: ServedModel, state: State) -> dict[str, Any]:
    """V2 model metadata: one input per feature (``FP64`` or ``BYTES``, shape ``[-1, 1]``), the outputs, the
    versions served (champion, challenger), and what actually serves: ``platform`` names the engine of every request
    size (``onnxruntime_onnx`` when ONNX answers all, ``sklearn`` when scikit-learn does, else both with their row
    ranges) and ``parameters.engines`` lists them (:meth:`ServedModel.engines`). Datatypes come from
    :mod:`lifecycle.serve.schemas`' one mapping, as the inference responses' do (``label``: BOOL, INT64 or BYTES
    by the classes; ``prediction``: FP64)."""
    columns = {c.name: c for c in state.schema.columns}
    inputs = [
        {"name": c, "datatype": feature_datatype(columns[c].role), "shape": [-1, 1]} for c in state.schema.features
    ]
    if state.schema.task == "classification":
        outputs = [
            {"name": "label", "datatype": output_datatype("classification", model.classes), "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(model.classes)]},
        ]
    else:
        outputs = [{"name": "prediction", "datatype": output_datatype("regression", []), "shape": [-1]}]
    versions = [m.version for m in (state.champion, state.challenger) if m]
    engines = model.engines(state.settings.max_rows)
    if len(engines) == 1:
        platform = engines[0]["platform"]
    else:
        platform = ", ".join(f"{e['platform']} ({e['min_rows']}-{e['max_rows']} rows)" for e in engines)
    return {
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {"engines": engines},
    }


# --------------------------------------------------------------------------------------------- routes
@router.post("/v2/models/{name}/infer", response_model=V2Response, tags=TAGS, openapi_extra=openapi_body("V2Request"))
async def v2_infer_latest(name: str, request: Request) -> Any:
    """Open Inference Protocol: one input tensor per feature column (shape [N] or [N, 1], named like the
    column; BYTES for categories, FP64/FP32/INT for numbers), or one [N, features] tensor by position."""
    return await infer(request, name, None)


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    response_model=V2Response,
    tags=TAGS,
    openapi_extra=openapi_body("V2Request"),
)
async def v2_infer_version(name: str, version: str, request: Request) -> Any:
    return await infer(request, name, version)


@router.get("/v2/models/{name}", tags=TAGS)
async def v2_model(name: str, model: NamedModel, state: ServingState) -> dict[str, Any]:
    return model_metadata(name, model, state)


@router.get("/v2/models/{name}/versions/{version}", tags=TAGS)
async def v2_model_version(name: str, model: NamedModelVersion, state: ServingState) -> dict[str, Any]:
    return model_metadata(name, model, state)


def ready_response(body: dict[str, Any], ready: bool) -> JSONResponse:
    """A V2 health answer: the spec's status (200 = true, 4xx = false: 400 here) with the flag in a JSON body.
    (``/health/ready``, the Kubernetes probe, answers 503 instead.)"""
    return JSONResponse(body, status_code=200 if ready else NOT_READY)


@router.get("/v2/models/{name}/ready", tags=TAGS)
async def v2_model_ready(model: NamedModel, state: ServingState) -> JSONResponse:
    """Model ready: 200 once the model is loaded, 400 while starting or stopping; 404 for another model's name."""
    return ready_response({"name": model.name, "ready": state.ready}, state.ready)


@router.get("/v2/models/{name}/versions/{version}/ready", tags=TAGS)
async def v2_model_version_ready(model: NamedModelVersion, version: str, state: ServingState) -> JSONResponse:
    """Model version ready: 200 when ``version`` (the champion's or the challenger's) is loaded; 404 for a version
    this server does not serve."""
    return ready_response({"name": model.name, "version": version, "ready": state.ready}, state.ready)


@router.get("/v2", tags=TAGS)
async def v2_server() -> dict[str, Any]:
    return {"name": "lifecycle", "version": package_version(), "extensions": []}


@router.get("/v2/health/live", tags=["health"])
async def v2_live() -> dict[str, bool]:
    return {"live": True}


@router.get("/v2/health/ready", tags=["health"])
async def v2_ready(state: ServingState) -> JSONResponse:
    return ready_response({"ready": state.ready}, state.ready)
