"""Shared dependencies of the routes, as ``Annotated[..., Depends(...)]`` aliases (FastAPI's dependency injection).

A route declares what it needs (``state: ServingState``, ``body: PredictBody``, ``model: NamedModel``) instead of
closing over the app's state. Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a
thread pool, a thread hop per request that a few attribute reads do not need.

Bodies are generated per model (:mod:`lifecycle.serve.schemas`), so they cannot be parameter annotations of a
module-level route; the body dependencies validate the raw bytes with the app's generated model instead (pydantic-core,
about 2x faster than FastAPI's ``json.loads`` then validation), with the same error handling.
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from lifecycle.serve.errors import parse_body
from lifecycle.serve.predictors import ServedModel
from lifecycle.serve.schemas import V2Request
from lifecycle.serve.settings import Settings
from lifecycle.serve.state import State


async def get_state(request: Request) -> State:
    """The app's serving state (set by ``create_app``)."""
    return request.app.state.serving


ServingState = Annotated[State, Depends(get_state)]


async def get_settings(state: ServingState) -> Settings:
    """The app's settings."""
    return state.settings


ServingSettings = Annotated[Settings, Depends(get_settings)]


async def get_request_id(request: Request) -> str:
    """The request id: the client's ``x-request-id`` when well formed, else a new one (set by the middleware)."""
    return request.scope["state"]["request_id"]


RequestId = Annotated[str, Depends(get_request_id)]


# --------------------------------------------------------------------------------------------- the model in the URL
def _champion(state: State, name: str) -> ServedModel:
    if name != state.settings.model_name:
        raise StarletteHTTPException(404, f"model {name!r} not found; this server serves {state.settings.model_name!r}")
    assert state.champion is not None
    return state.champion


async def named_model(name: str, state: ServingState) -> ServedModel:
    """The champion, when ``name`` (the URL's ``{name}``) is this server's ``SERVE_MODEL_NAME``; else 404."""
    return _champion(state, name)


async def named_model_version(name: str, version: str, state: ServingState) -> ServedModel:
    """The champion, when ``name`` is served and ``version`` is the champion's or the challenger's; else 404."""
    champion = _champion(state, name)
    if version not in {m.version for m in (state.champion, state.challenger) if m}:
        raise StarletteHTTPException(404, f"model {name!r} has no version {version!r}; it serves {champion.version!r}")
    return champion


NamedModel = Annotated[ServedModel, Depends(named_model)]
NamedModelVersion = Annotated[ServedModel, Depends(named_model_version)]


# --------------------------------------------------------------------------------------------- bodies
async def predict_body(request: Request, state: ServingState) -> Any:
    """``POST /predict``'s body, validated as the generated ``PredictRequest`` (``.records``: validated dicts)."""
    return parse_body(await request.body(), state.models.predict_request)


async def v1_body(request: Request, state: ServingState) -> Any:
    """KServe V1's body, validated as the generated ``V1PredictRequest`` (``.instances``: objects or rows)."""
    return parse_body(await request.body(), state.models.v1_request)


async def v2_body(request: Request) -> V2Request:
    """Open Inference V2's body, validated as :class:`V2Request` (tensors; their values are checked later)."""
    return parse_body(await request.body(), V2Request)


PredictBody = Annotated[Any, Depends(predict_body)]
V1Body = Annotated[Any, Depends(v1_body)]
V2Body = Annotated[V2Request, Depends(v2_body)]
