"""What the routes share: the serving state, the model named in the URL, the request body and id.

Each is a plain function of the ``Request`` and, for the routes that declare it, an ``Annotated[..., Depends(...)]``
alias (``state: ServingState``, ``model: NamedModel``), FastAPI's dependency injection instead of closures over the
app's state. The aliases' functions are ``async def`` (FastAPI runs plain ``def`` dependencies in a thread pool)
and none depends on another (FastAPI solves a sub-dependency again for each dependency that declares it).

The four prediction routes (``POST /predict``, KServe V1 ``:predict``, the two V2 ``infer``) call the plain functions
instead. FastAPI 0.165 solves every declared dependency anew on each request, about 63,000 CPU instructions each
(callgrind, in-process ASGI calls): three of them made a one-row ONNX request cost ~10% more server CPU over HTTP
(~25% more instructions in-process), on the path that answers in ~1 ms.

Bodies are generated per model (:mod:`lifecycle.serve.schemas`), so they cannot be parameter annotations of a
module-level route: :func:`read_body` validates the raw bytes with the app's generated model (pydantic-core, about
2x faster than FastAPI's ``json.loads`` then validation), errors going to the same handler.
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lifecycle.serve.errors import parse_body
from lifecycle.serve.predictors import ServedModel
from lifecycle.serve.settings import Settings
from lifecycle.serve.state import State


def serving(request: Request) -> State:
    """The app's serving state (``app.state.serving``, set by ``create_app``)."""
    return request.app.state.serving


def request_id(request: Request) -> str:
    """The request id: the client's ``x-request-id`` when well formed, else a new one (set by the middleware)."""
    return request.scope["state"]["request_id"]


def served_model(state: State, name: str, version: str | None = None) -> ServedModel:
    """The champion, when ``name`` (the URL's ``{name}``) is this server's ``SERVE_MODEL_NAME`` and ``version``
    (if given) is the champion's or the challenger's. Raises ``HTTPException(404)`` naming what is served."""
    if name != state.settings.model_name:
        raise StarletteHTTPException(404, f"model {name!r} not found; this server serves {state.settings.model_name!r}")
    assert state.champion is not None
    if version is not None and version not in {m.version for m in (state.champion, state.challenger) if m}:
        raise StarletteHTTPException(
            404, f"model {name!r} has no version {version!r}; it serves {state.champion.version!r}"
        )
    return state.champion


async def read_body(request: Request, model: type[BaseModel]) -> Any:
    """The request body validated as ``model`` from its bytes; ``RequestValidationError`` (400/422) when not."""
    return parse_body(await request.body(), model)


# --------------------------------------------------------------------------------------------- aliases
async def get_state(request: Request) -> State:
    """See :func:`serving`."""
    return serving(request)


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return serving(request).settings


async def named_model(name: str, request: Request) -> ServedModel:
    """See :func:`served_model` (the URL has ``{name}``)."""
    return served_model(serving(request), name)


async def named_model_version(name: str, version: str, request: Request) -> ServedModel:
    """See :func:`served_model` (the URL has ``{name}`` and ``{version}``)."""
    return served_model(serving(request), name, version)


ServingState = Annotated[State, Depends(get_state)]
ServingSettings = Annotated[Settings, Depends(get_settings)]
NamedModel = Annotated[ServedModel, Depends(named_model)]
NamedModelVersion = Annotated[ServedModel, Depends(named_model_version)]
