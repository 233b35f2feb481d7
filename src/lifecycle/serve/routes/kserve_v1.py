"""KServe V1 (the data plane of KServe's predictors): ``POST /v1/models/<name>:predict``, ``GET /v1/models/<name>``,
``GET /v1/models`` (the list of served models).

``instances`` are records (objects keyed by column) or rows of feature values in the order of ``GET /model``.
"""

from typing import Any

from fastapi import APIRouter, Request

from lifecycle.serve.deps import NamedModel, ServingSettings, ServingState, read_body, request_id, served_model, serving
from lifecycle.serve.errors import BadRequestError, bad, validate_records
from lifecycle.serve.schemas import FastJSONResponse, V1Response, openapi_body

router = APIRouter(tags=["kserve v1"])


def instances_to_records(instances: list[Any], features: list[str]) -> list[Any]:
    """Rows of values (in ``features`` order) -> dicts; objects stay as they are (validated afterwards).

    Raises :class:`BadRequestError` listing every row whose length is not ``len(features)``.
    """
    raw: list[Any] = []
    problems = []
    for i, instance in enumerate(instances):
        if isinstance(instance, list):
            if len(instance) != len(features):
                rule = f"a row needs {len(features)} values, in this order: {', '.join(features)}"
                problems.append(bad(["instances", i], instance, rule))
                continue
            raw.append(dict(zip(features, instance, strict=True)))
        else:
            raw.append(instance)
    if problems:
        raise BadRequestError(problems)
    return raw


def instance_location(row: int, field: Any) -> list[Any]:
    """Where a value of a record built from ``instances`` was in the body: ``instances[row].field``."""
    return ["instances", row, field] if field is not None else ["instances", row]


@router.post("/v1/models/{name}:predict", response_model=V1Response, openapi_extra=openapi_body("V1PredictRequest"))
async def v1_predict(name: str, request: Request) -> Any:
    """KServe V1: instances are records (objects) or rows of feature values in the order of GET /model."""
    state = serving(request)
    served_model(state, name)  # 404 for another model's name, before the body is read
    body = await read_body(request, state.models.v1_request)
    raw = instances_to_records(body.instances, state.schema.features)
    records = validate_records(state.models.records, raw, instance_location)
    _, _, y_pred, _ = await state.predict(records, "/v1/models/:predict", request_id(request))
    return FastJSONResponse({"predictions": y_pred.tolist()})


@router.get("/v1/models")
async def v1_models(settings: ServingSettings) -> dict[str, list[str]]:
    """KServe V1 list models: ``{"models": [<name>]}`` (one model name per server; its challenger shares it)."""
    return {"models": [settings.model_name]}


@router.get("/v1/models/{name}")
async def v1_model(model: NamedModel, state: ServingState) -> dict[str, Any]:
    """KServe V1 model status: ``{"name", "ready"}``."""
    return {"name": model.name, "ready": state.ready}
