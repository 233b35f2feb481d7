"""The prediction API: a FastAPI app built from the model's training schema.

    uvicorn --factory lifecycle.serve.app:create_app --port 8000      # or: make serve / python -m lifecycle.serve

``create_app(settings)`` reads model.json (cheap) to generate the request models; the model itself is verified
(sha256 against model.json) and loaded in :func:`lifespan`, which refuses to start on a mismatch. Routes, one
router each (``lifecycle.serve.routes``):

- ``predict``: ``POST /predict`` ``{"records": [...]}`` -> predictions, probabilities, model version;
- ``kserve_v1``: ``POST /v1/models/<name>:predict`` ``{"instances": [...]}`` -> ``{"predictions": [...]}``,
  ``GET /v1/models/<name>``;
- ``open_inference_v2``: ``POST /v2/models/<name>[/versions/<v>]/infer``, ``GET /v2/models/<name>[/versions/<v>]``,
  ``GET /v2/models/<name>/ready``, ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``;
- ``explain``: ``POST /explain`` (the ``/predict`` body), ``POST /v1/models/<name>:explain`` (KServe V1) -> per row
  the prediction, the base value and one SHAP contribution per input feature;
- ``health``: ``GET /health/live``, ``GET /health/ready``, ``GET /metrics`` (Prometheus);
- ``model``: ``GET /model``; and FastAPI's ``GET /openapi.json``, with ``GET /docs`` (Swagger UI) and ``GET /redoc``
  (ReDoc) served with the assets packaged in ``fastapi-offline`` (no CDN: the pages work without internet).

A bad request gets a 4xx JSON body ``{"error": ..., "errors": [{"field", "value", "rule"}], "error_count"}``
(:mod:`lifecycle.serve.errors`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from lifecycle.errors import LifecycleError
from lifecycle.serve.errors import install_handlers
from lifecycle.serve.middleware import ServingMiddleware
from lifecycle.serve.routes import explain, health, kserve_v1, model, open_inference_v2, predict
from lifecycle.serve.schemas import ErrorResponse, V2Request
from lifecycle.serve.settings import Settings
from lifecycle.serve.state import State, build_state, package_version

log = logging.getLogger(__name__)
ROUTERS = (predict.router, kserve_v1.router, explain.router, open_inference_v2.router, health.router, model.router)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the models, start the log and build the explainers at startup (a refused model stops the start); drain
    and stop at shutdown."""
    state: State = app.state.serving
    try:
        state.start()
    except (LifecycleError, OSError) as exc:
        log.error("cannot start serving: %s", exc)
        raise
    app.state.explainers = explain.build_explainers(state)
    yield
    state.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment). Reads model.json now; loads the model at startup.

    Raises what :func:`lifecycle.serve.state.build_state` raises (missing or malformed metadata, bad limits, an
    unresolvable registry stage).
    """
    state = build_state(settings or Settings())
    # FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN (a blank page offline); fastapi-offline is
    # FastAPI with the same pages pointing at the assets it packages, served under /static-offline-docs.
    app = FastAPIOffline(
        title="lifecycle prediction API",
        version=package_version(),
        description=f"Predicts `{state.schema.target}` ({state.schema.task}) from the features of the training schema.",
        lifespan=lifespan,
        responses={status: {"model": ErrorResponse} for status in (400, 413, 415, 422)},
    )
    app.state.serving = state
    app.state.explainers = explain.Explainers()  # built at startup
    install_handlers(app)
    own = [route for route in app.routes if hasattr(route, "path")]  # /openapi.json, /docs, ...
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(ServingMiddleware, state=state)
    document_bodies(app, [state.models.predict_request, state.models.v1_request, V2Request])
    state.routes = [*own, *(route for router in ROUTERS for route in router.routes)]  # flat: included routers nest
    return app


def document_bodies(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the schemas of bodies that routes parse themselves (``openapi_extra``) to /openapi.json's components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = original()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for body in models:
                js = body.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(js.pop("$defs", {}))
                components[body.__name__] = js
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
