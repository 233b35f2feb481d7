"""The prediction API: FastAPI app built from the model's training schema.

    uvicorn --factory lifecycle.serve.app:create_app --port 8000      # or: make serve / python -m lifecycle.serve

``create_app(settings)`` reads model.json (cheap) to generate the request models; the model itself is verified
(sha256 against model.json) and loaded in ``lifespan``, which refuses to start on a mismatch. Routes:

- ``POST /predict`` ``{"records": [...]}`` -> predictions, probabilities, model version;
- KServe V1: ``POST /v1/models/<name>:predict`` ``{"instances": [...]}`` -> ``{"predictions": [...]}``,
  ``GET /v1/models/<name>``;
- Open Inference (V2): ``POST /v2/models/<name>[/versions/<v>]/infer``, ``GET /v2/models/<name>[/versions/<v>]``,
  ``GET /v2/models/<name>/ready``, ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``;
- ``GET /health/live``, ``GET /health/ready``, ``GET /metrics`` (Prometheus), ``GET /model``, ``GET /docs``.

A bad request gets a 4xx JSON body ``{"error": ..., "errors": [{"field", "value", "rule"}], "error_count"}``.
"""

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pydantic_core
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lifecycle.errors import DataError, LifecycleError
from lifecycle.schema import Schema
from lifecycle.serve import challenger as challengers
from lifecycle.serve.metrics import CONTENT_TYPE, Metrics
from lifecycle.serve.predictors import Predictor, ServedModel, limit_threads, load_model, read_meta
from lifecycle.serve.predlog import Entry, PredictionLog
from lifecycle.serve.schemas import (
    ErrorResponse,
    PredictResponse,
    RequestModels,
    V1Response,
    V2Request,
    V2Response,
    example_record,
    numeric_limits,
    request_models,
)
from lifecycle.serve.settings import Settings

log = logging.getLogger(__name__)
INLINE_ROWS = 64  # requests up to this many rows are predicted on the event loop; larger ones in a thread
MAX_LISTED_ERRORS = 20
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_FIELDS = ("body", "records", "instances", "inputs", "outputs", "id", "parameters")
RULES = {
    "missing": "required: every feature of the training schema must be present (null for a missing reading)",
    "extra_forbidden": "unknown field: not a column of the training schema",
    "float_type": "must be a JSON number",
    "finite_number": "must be a finite number",
    "literal_error": "must be one of: {expected}",
    "greater_than_equal": "out of range: must be >= {ge}",
    "less_than_equal": "out of range: must be <= {le}",
    "too_long": "too many items: at most {max_length} per request (SERVE_MAX_ROWS)",
    "too_short": "at least {min_length} item(s) needed",
    "json_invalid": "not valid JSON: {error}",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a JSON string",
}


def package_version() -> str:
    try:
        return metadata.version("lifecycle")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


# --------------------------------------------------------------------------------------------- model source
@dataclasses.dataclass(frozen=True)
class Source:
    model_path: Path
    meta_path: Path
    onnx_path: Path | None
    version: str | None  # the registry's version when resolved through it; else the sha256 prefix is used


def resolve_source(settings: Settings) -> Source:
    """Where the champion comes from: the files in settings, or the registry (``SERVE_MODEL_SOURCE=registry``):
    ``lifecycle.registry.resolve_prod(SERVE_REGISTRY_STAGE, SERVE_REGISTRY_REPO)`` materialized into
    ``SERVE_REGISTRY_DEST``; the response version is then the registry's (``v1.2.0``)."""
    if settings.model_source == "file":
        return Source(settings.model_path, settings.meta_path, settings.onnx_path, None)
    from lifecycle import registry

    try:
        version = registry.resolve_prod(settings.registry_stage, settings.registry_repo)
    except LifecycleError:
        raise
    except Exception as exc:  # gto raises its own types (no artifact declared, not a git repo, ...)
        raise DataError(
            f"cannot resolve the registry's {settings.registry_stage!r} model in {settings.registry_repo} "
            f"({type(exc).__name__}: {exc}); check `gto show` there, or serve files (SERVE_MODEL_SOURCE=file)"
        ) from exc
    dest = settings.registry_dest or Path(tempfile.gettempdir()) / "lifecycle-registry" / version.commit[:12]
    files = version.materialize(dest)  # model.onnx too when usable; without it scikit-learn serves and says why
    onnx_path = files.onnx or files.model.with_suffix(".onnx")
    log.info(
        "registry: %s in stage %s (commit %s) -> %s", version.tag, settings.registry_stage, version.commit[:12], dest
    )
    return Source(files.model, files.meta, onnx_path, version.version)


# --------------------------------------------------------------------------------------------- errors
def _loc(parts: Sequence[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _value(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value[:200].decode("utf-8", "replace")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)[:200]
    return value if len(text) <= 200 else text[:200] + "..."


def error_items(errors: Sequence[Mapping[str, Any]], categorical: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """pydantic/FastAPI errors -> ``{"field", "value", "rule"}``: the field path without ``body``, the offending
    value (none for a missing field), the rule in words with its bound."""
    items = []
    for e in errors:
        loc = [p for p in e.get("loc", ()) if p != "body"]
        kind = e.get("type", "")
        template = RULES.get(kind)
        try:
            rule = template.format(**(e.get("ctx") or {})) if template else str(e.get("msg", kind))
        except (KeyError, IndexError):
            rule = str(e.get("msg", kind))
        if kind == "literal_error" and loc and loc[-1] in categorical:
            rule = "must be one of the categories seen in training: {expected} (or null)".format(**e["ctx"])
        if kind == "json_invalid":
            loc = []
        elif isinstance(e.get("input"), bytes) and not loc:  # a body that is not JSON at all (e.g. text/plain)
            kind, rule = "json_invalid", "not JSON: send a JSON object with Content-Type: application/json"
        value = None if kind in ("missing", "json_invalid") else _value(e.get("input"))
        items.append({"field": _loc(loc), "value": value, "rule": rule, "_type": kind, "_loc": loc})
    return items


class BadRequestError(Exception):
    """A request the server understood but must refuse; ``items`` like :func:`error_items`."""

    def __init__(self, items: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__(items[0]["rule"] if items else "bad request")
        self.items, self.status = items, status


def bad(field: Sequence[Any], value: Any, rule: str, kind: str = "invalid") -> dict[str, Any]:
    return {"field": _loc(field), "value": _value(value), "rule": rule, "_type": kind, "_loc": list(field)}


# --------------------------------------------------------------------------------------------- state
@dataclasses.dataclass
class State:
    settings: Settings
    source: Source
    meta: dict[str, Any]
    schema: Schema
    models: RequestModels
    metrics: Metrics
    champion: ServedModel | None = None
    challenger: ServedModel | None = None
    log: PredictionLog | None = None
    shadow: challengers.ShadowRunner | None = None
    ready: bool = False
    routes: list[Any] = dataclasses.field(default_factory=list)
    executor: ThreadPoolExecutor | None = None  # large requests, off the event loop

    def choose(self, request_id: str) -> ServedModel:
        assert self.champion is not None
        if (
            self.challenger is not None
            and self.settings.challenger_mode == "canary"
            and challengers.canary_hit(request_id, self.settings.canary_percent)
        ):
            return self.challenger
        return self.champion

    def record(
        self,
        arrived: float,
        request_id: str,
        endpoint: str,
        model: ServedModel,
        served: bool,
        engine: str,
        records: Sequence[Mapping[str, Any]],
        labels: np.ndarray,
        proba: np.ndarray | None,
    ) -> None:
        self.metrics.count_predictions(model.role, labels, model.schema.task == "classification")
        if self.log is not None:
            self.log.submit(
                Entry(
                    arrived,
                    request_id,
                    endpoint,
                    model.name,
                    model.version,
                    model.role,
                    served,
                    engine,
                    records,
                    labels,
                    proba,
                    model.classes,
                )
            )


# --------------------------------------------------------------------------------------------- middleware
class ServingMiddleware:
    """Pure ASGI (cheap): request id, body size limit (413), per-route request count and latency."""

    def __init__(self, app: Any, state: State) -> None:
        self.app, self.state = app, state
        self.max_body = state.settings.max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = rid if REQUEST_ID.match(rid) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            messages, too_large = await self._read_body(receive, headers)
            if too_large is not None:
                await self._too_large(too_large, scope)(scope, receive, send_wrapper)
                return
            await self.app(scope, _Body(messages, receive), send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.state.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.state.metrics.latency.labels(route).observe(time.perf_counter() - started)

    async def _read_body(self, receive: Callable, headers: dict[bytes, bytes]) -> tuple[list[dict], int | None]:
        """The request messages, read up to the limit (the app reads the whole body anyway); or the size over it."""
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return [], int(declared)
        messages: list[dict] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, None
            size += len(message.get("body", b""))
            if size > self.max_body:
                return messages, size
            if not message.get("more_body", False):
                return messages, None

    def _too_large(self, size: int, scope: dict) -> Response:
        route = next((r.path for r in self.state.routes if r.matches(scope)[0] == Match.FULL), "unmatched")
        scope["route"] = next((r for r in self.state.routes if getattr(r, "path", None) == route), None)
        self.state.metrics.count_failure(route, "body", "max_body_bytes")
        rule = f"request body too large: at most {self.max_body} bytes (SERVE_MAX_BODY_BYTES)"
        return error_response(413, [bad(["body"], f"{size} bytes", rule, "max_body_bytes")])


class _Body:
    """The buffered request messages handed back to the app one by one."""

    def __init__(self, messages: list[dict], receive: Callable) -> None:
        self.messages, self.receive = messages, receive

    async def __call__(self) -> dict[str, Any]:
        if self.messages:
            return self.messages.pop(0)
        return await self.receive()


def error_response(status: int, items: list[dict[str, Any]]) -> JSONResponse:
    listed = [{k: v for k, v in item.items() if not k.startswith("_")} for item in items[:MAX_LISTED_ERRORS]]
    first = listed[0] if listed else {"field": "body", "value": None, "rule": "bad request"}
    summary = f"{first['field']}: {first['rule']}" + (
        f" (value {first['value']!r})" if first.get("value") is not None else ""
    )
    if len(items) > 1:
        summary += f"; and {len(items) - 1} more error(s)"
    return JSONResponse({"error": summary, "errors": listed, "error_count": len(items)}, status_code=status)


# --------------------------------------------------------------------------------------------- app
def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment). Reads model.json now; loads the model at startup."""
    settings = settings or Settings()
    source = resolve_source(settings)
    meta = read_meta(source.meta_path)
    schema = Schema.from_dict(meta["schema"])
    packaged = (meta.get("contract") or {}).get("limits") or {}
    limits = numeric_limits(schema, settings.numeric_limits, settings.builtin_limits, packaged)
    models = request_models(schema, limits, settings.max_rows)
    metrics = Metrics([c.name for c in schema.columns] + list(BODY_FIELDS))
    state = State(settings, source, meta, schema, models, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            startup(state)
        except (LifecycleError, OSError) as exc:
            log.error("cannot start serving: %s", exc)
            raise
        yield
        state.ready = False
        if state.shadow is not None:
            state.shadow.close()
        if state.log is not None:
            state.log.close()
        if state.executor is not None:
            state.executor.shutdown(wait=True)

    app = FastAPI(
        title="lifecycle prediction API",
        version=package_version(),
        description=f"Predicts `{schema.target}` ({schema.task}) from the features of the training schema.",
        lifespan=lifespan,
        responses={422: {"model": ErrorResponse}, 400: {"model": ErrorResponse}, 413: {"model": ErrorResponse}},
    )
    app.state.serving = state
    install_handlers(app, state)
    add_routes(app, state)
    app.add_middleware(ServingMiddleware, state=state)
    state.routes = list(app.routes)
    return app


def startup(state: State) -> None:
    """Verify and load the champion (and challenger), start the prediction log and the shadow runner."""
    s = state.settings
    limit_threads(s.predict_threads)  # this thread runs the event loop: small requests predict here
    probe = [example_record(state.schema, state.models.limits)]
    probe.append({k: (None if i % 2 else v) for i, (k, v) in enumerate(probe[0].items())})  # missing values too
    state.executor = ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="predict", initializer=limit_threads, initargs=(s.predict_threads,)
    )
    state.champion = load_model(
        state.source.model_path,
        state.source.meta_path,
        onnx_path=state.source.onnx_path,
        engine=s.engine,
        name=s.model_name,
        version=state.source.version,
        onnx_max_rows=s.onnx_max_rows,
        onnx_threads=s.onnx_threads,
        meta=state.meta,
        probe=probe,
    )
    if s.challenger_mode != "off":
        assert s.challenger_model_path is not None
        assert s.challenger_meta_path is not None
        state.challenger = load_model(
            s.challenger_model_path,
            s.challenger_meta_path,
            onnx_path=s.challenger_onnx_path or s.challenger_model_path.with_suffix(".onnx"),
            engine=s.engine,
            name=s.model_name,
            role="challenger",
            onnx_max_rows=s.onnx_max_rows,
            onnx_threads=s.onnx_threads,
            probe=probe,
        )
        challengers.check_compatible(state.champion, state.challenger)
        if state.challenger.version == state.champion.version:
            log.warning("the challenger is the same model as the champion (%s)", state.champion.version)
        log.info(
            "challenger %s in %s mode%s",
            state.challenger.version,
            s.challenger_mode,
            f" ({s.canary_percent:g}% of request ids)" if s.challenger_mode == "canary" else "",
        )
    for model in filter(None, (state.champion, state.challenger)):
        state.metrics.model_info.labels(model.role, model.name, model.version, model.engine).set(1)
    if s.prediction_log_dir is not None and str(s.prediction_log_dir) not in ("", "."):
        classes = list(state.champion.classes)
        classes += [c for c in (state.challenger.classes if state.challenger else []) if c not in classes]
        state.log = PredictionLog(
            s.prediction_log_dir,
            state.schema,
            classes,
            flush_rows=s.log_flush_rows,
            flush_seconds=s.log_flush_seconds,
            rotate_rows=s.log_rotate_rows,
            rotate_seconds=s.log_rotate_seconds,
            queue_size=s.log_queue_size,
            on_drop=state.metrics.log_dropped.inc,
            on_error=state.metrics.log_errors.inc,
        )
        state.log.start()
        log.info("prediction log: %s", s.prediction_log_dir)
    if state.challenger is not None and s.challenger_mode == "shadow":
        challenger = state.challenger

        def on_result(
            arrived: float,
            rid: str,
            endpoint: str,
            records: Sequence[Mapping[str, Any]],
            labels: np.ndarray,
            proba: np.ndarray | None,
            engine: str,
        ) -> None:
            state.record(arrived, rid, endpoint, challenger, False, engine, records, labels, proba)

        state.shadow = challengers.ShadowRunner(
            challenger,
            on_result,
            queue_size=s.shadow_queue_size,
            threads=s.predict_threads,
            on_drop=state.metrics.shadow_dropped.inc,
            on_error=state.metrics.shadow_errors.inc,
        )
        state.shadow.start()
    state.ready = True


def install_handlers(app: FastAPI, state: State) -> None:
    categorical = frozenset(state.schema.categorical)

    def route_of(request: Request) -> str:
        return getattr(request.scope.get("route"), "path", None) or request.url.path

    def count(request: Request, items: list[dict[str, Any]]) -> None:
        route = route_of(request)
        for item in items:
            loc = item.get("_loc") or ["body"]
            names = [p for p in loc if isinstance(p, str)]
            field = next((p for p in reversed(names) if p in state.metrics.fields), names[0] if names else "body")
            state.metrics.count_failure(route, field, item.get("_type", "invalid"))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        items = error_items(exc.errors(), categorical)
        count(request, items)
        status = 400 if any(i["_type"] == "json_invalid" for i in items) else 422
        return error_response(status, items)

    @app.exception_handler(BadRequestError)
    async def on_bad(request: Request, exc: BadRequestError) -> JSONResponse:
        count(request, exc.items)
        return error_response(exc.status, exc.items)

    @app.exception_handler(DataError)
    async def on_data_error(request: Request, exc: DataError) -> JSONResponse:
        items = [bad(["body"], None, str(exc), "data_error")]
        count(request, items)
        return error_response(422, items)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs"
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:  # a bug, not a bad request: say so
        log.exception("internal error on %s %s", request.method, request.url.path)
        rid = request.scope.get("state", {}).get("request_id", "")
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); request id {rid}"}, status_code=500)


class FastJSONResponse(JSONResponse):
    """JSON rendered by pydantic-core (Rust): ~6x faster than json.dumps for 1000 rows of probabilities."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


def document_bodies(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the schemas of bodies that routes parse themselves (``openapi_extra``) to /openapi.json's components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = original()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(js.pop("$defs", {}))
                components[model.__name__] = js
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_routes(app: FastAPI, state: State) -> None:
    models, schema, settings = state.models, state.schema, state.settings
    PredictRequest, V1Request = models.predict_request, models.v1_request
    documented: list[type[BaseModel]] = []  # bodies parsed from bytes: their schemas go to the OpenAPI components
    features = schema.features
    columns = {c.name: c for c in schema.columns if c.role in ("numeric", "categorical", "identifier", "datetime")}
    classification = schema.task == "classification"

    def check_name(name: str, version: str | None = None) -> ServedModel:
        if name != settings.model_name:
            raise StarletteHTTPException(404, f"model {name!r} not found; this server serves {settings.model_name!r}")
        assert state.champion is not None
        if version is not None and version not in {m.version for m in (state.champion, state.challenger) if m}:
            raise StarletteHTTPException(
                404, f"model {name!r} has no version {version!r}; it serves {state.champion.version!r}"
            )
        return state.champion

    def validate(raw: list[Any], where: Callable[[int, Any], list[Any]]) -> list[dict[str, Any]]:
        try:
            return models.records.validate_python(raw)
        except ValidationError as exc:
            errors = []
            for e in exc.errors(include_url=False):
                loc = list(e["loc"])
                row, rest = (loc[0], loc[1:]) if loc and isinstance(loc[0], int) else (0, loc)
                errors.append({**e, "loc": [*where(row, rest[0] if rest else None), *rest[1:]]})
            raise RequestValidationError(errors) from None

    async def run(predictor: Predictor, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        if len(records) <= INLINE_ROWS:
            return predictor.predict(records)
        return await asyncio.get_running_loop().run_in_executor(state.executor, predictor.predict, records)

    async def predict(
        request: Request, records: list[dict[str, Any]], endpoint: str, request_id: str | None = None
    ) -> tuple[ServedModel, str, np.ndarray, np.ndarray | None]:
        arrived = time.time()
        rid = request_id or request.scope["state"]["request_id"]
        if not state.ready or state.champion is None:
            raise StarletteHTTPException(503, "the model is not loaded (starting or stopping)")
        model = state.choose(rid)
        predictor = model.predictor(len(records))
        try:
            labels, proba = await run(predictor, records)
        except DataError:
            raise
        except Exception:
            if predictor is model.sklearn:
                raise
            # the ONNX engine failed on valid input: answer with scikit-learn, count it, keep the trace in the log
            log.exception("%s engine failed on request %s; answering with scikit-learn", predictor.engine, rid)
            state.metrics.engine_fallbacks.labels(model.role, predictor.engine).inc()
            predictor = model.sklearn
            labels, proba = await run(predictor, records)
        state.record(arrived, rid, endpoint, model, True, predictor.engine, records, labels, proba)
        if state.shadow is not None:
            state.shadow.submit(arrived, rid, endpoint, records)
        return model, predictor.engine, labels, proba

    async def parse(request: Request, model: type[BaseModel]) -> Any:
        """The body validated straight from its bytes by pydantic-core (about 2x faster than json.loads followed
        by validation of the objects; errors have the same form and handler)."""
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None

    def body_doc(model: type[BaseModel]) -> dict[str, Any]:
        documented.append(model)
        schema = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

    def probabilities(model: ServedModel, proba: np.ndarray | None) -> list[dict[str, float]] | None:
        if proba is None:
            return None
        names = [str(c) for c in model.classes]
        return [dict(zip(names, row, strict=True)) for row in proba.tolist()]

    # ----------------------------------------------------------------------------------------- /predict
    @app.post("/predict", response_model=PredictResponse, tags=["predict"], openapi_extra=body_doc(PredictRequest))
    async def predict_records(request: Request) -> JSONResponse:
        """Predict one or more records (objects keyed by the training schema's columns)."""
        body = await parse(request, PredictRequest)
        model, engine, labels, proba = await predict(request, body.records, "/predict")
        return FastJSONResponse(
            {
                "request_id": request.scope["state"]["request_id"],
                "model": {"name": model.name, "version": model.version, "role": model.role, "engine": engine},
                "predictions": labels.tolist(),
                "probabilities": probabilities(model, proba),
            }
        )

    # ----------------------------------------------------------------------------------------- KServe V1
    @app.post(
        "/v1/models/{name}:predict", response_model=V1Response, tags=["kserve v1"], openapi_extra=body_doc(V1Request)
    )
    async def v1_predict(name: str, request: Request) -> JSONResponse:
        """KServe V1: instances are records (objects) or rows of feature values in the order of GET /model."""
        check_name(name)
        body = await parse(request, V1Request)
        raw: list[Any] = []
        problems = []
        for i, instance in enumerate(body.instances):
            if isinstance(instance, list):
                if len(instance) != len(features):
                    problems.append(
                        bad(
                            ["instances", i],
                            instance,
                            f"a row needs {len(features)} values, in this order: {', '.join(features)}",
                        )
                    )
                    continue
                raw.append(dict(zip(features, instance, strict=True)))
            else:
                raw.append(instance)
        if problems:
            raise BadRequestError(problems)
        records = validate(
            raw, lambda row, field: ["instances", row, field] if field is not None else ["instances", row]
        )
        _, _, labels, _ = await predict(request, records, "/v1/models/:predict")
        return FastJSONResponse({"predictions": labels.tolist()})

    @app.get("/v1/models/{name}", tags=["kserve v1"])
    async def v1_model(name: str) -> dict[str, Any]:
        check_name(name)
        return {"name": name, "ready": state.ready}

    # ----------------------------------------------------------------------------------------- Open Inference V2
    def v2_records(body: V2Request) -> tuple[list[dict[str, Any]], Callable[[int, Any], list[Any]]]:
        problems: list[dict[str, Any]] = []
        by_name = {}
        for i, tensor in enumerate(body.inputs):
            if tensor.name in by_name:
                problems.append(bad(["inputs", i, "name"], tensor.name, "duplicate input name"))
            by_name[tensor.name] = tensor
        if len(body.inputs) == 1 and body.inputs[0].name not in columns:  # one [N, features] tensor, by position
            tensor = body.inputs[0]
            data = _flatten(tensor.data)
            width = len(features)
            if len(tensor.shape) != 2 or tensor.shape[1] != width or len(data) != tensor.shape[0] * width:
                raise BadRequestError(
                    [
                        bad(
                            ["inputs", 0, "shape"],
                            tensor.shape,
                            f"one input tensor that is not a column must have shape [N, {width}] (features in this order: "
                            f"{', '.join(features)}) and N*{width} values; got {len(data)} values",
                        )
                    ]
                )
            raw = [dict(zip(features, data[r * width : (r + 1) * width], strict=True)) for r in range(tensor.shape[0])]
            return (
                raw,
                lambda row, field: ["inputs", tensor.name, row, field] if field else ["inputs", tensor.name, row],
            )
        n = None
        values: dict[str, list[Any]] = {}
        for i, tensor in enumerate(body.inputs):
            column = columns.get(tensor.name)
            if column is None:
                problems.append(
                    bad(
                        ["inputs", i, "name"],
                        tensor.name,
                        f"unknown input: not a column of the training schema (features: {', '.join(features)})",
                    )
                )
                continue
            data = _flatten(tensor.data)
            rows = tensor.shape[0] if tensor.shape else 0
            if (
                len(tensor.shape) not in (1, 2)
                or (len(tensor.shape) == 2 and tensor.shape[1] != 1)
                or len(data) != rows
            ):
                problems.append(
                    bad(
                        ["inputs", tensor.name, "shape"],
                        tensor.shape,
                        f"a column tensor has shape [N] or [N, 1] and N values; got {len(data)} values",
                    )
                )
                continue
            if column.role == "numeric" and tensor.datatype in ("BYTES", "BOOL"):
                problems.append(
                    bad(
                        ["inputs", tensor.name, "datatype"],
                        tensor.datatype,
                        "numeric feature: use FP64, FP32 or an INT datatype",
                    )
                )
            elif column.role == "categorical" and tensor.datatype != "BYTES":
                problems.append(
                    bad(
                        ["inputs", tensor.name, "datatype"],
                        tensor.datatype,
                        "categorical feature: use BYTES (the category as text)",
                    )
                )
            if n is not None and rows != n:
                problems.append(
                    bad(
                        ["inputs", tensor.name, "shape"],
                        tensor.shape,
                        f"every input must have the same number of rows ({n})",
                    )
                )
            n = rows if n is None else n
            values[tensor.name] = data
        for name in features:
            if name not in values and name not in by_name:
                problems.append(
                    bad(
                        ["inputs", name], None, "required: every feature needs an input tensor named like it", "missing"
                    )
                )
        if problems:
            raise BadRequestError(problems)
        if not n:
            raise BadRequestError([bad(["inputs"], None, "no rows: the input tensors have shape [0]")])
        if n > settings.max_rows:
            raise BadRequestError(
                [
                    bad(
                        ["inputs"],
                        n,
                        f"too many rows: at most {settings.max_rows} per request (SERVE_MAX_ROWS)",
                        "too_long",
                    )
                ]
            )
        names = list(values)
        raw = [dict(zip(names, row, strict=True)) for row in zip(*(values[k] for k in names), strict=True)]
        return raw, lambda row, field: ["inputs", field, "data", row] if field else ["inputs", "data", row]

    async def v2_infer(name: str, version: str | None, request: Request) -> JSONResponse:
        check_name(name, version)
        body = await parse(request, V2Request)
        raw, where = v2_records(body)
        records = validate(raw, where)
        rid = body.id or request.scope["state"]["request_id"]
        model, engine, labels, proba = await predict(request, records, "/v2/models/infer", rid)
        n = len(records)
        label_type = "FP64" if not classification else ("INT64" if labels.dtype.kind in "iu" else "BYTES")
        outputs = [
            {
                "name": "label" if classification else "prediction",
                "shape": [n],
                "datatype": label_type,
                "data": labels.tolist(),
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

    v2_doc = body_doc(V2Request)

    @app.post("/v2/models/{name}/infer", response_model=V2Response, tags=["open inference v2"], openapi_extra=v2_doc)
    async def v2_infer_latest(name: str, request: Request) -> JSONResponse:
        """Open Inference Protocol: one input tensor per feature column (shape [N] or [N, 1], named like the
        column; BYTES for categories, FP64/FP32/INT for numbers), or one [N, features] tensor by position."""
        return await v2_infer(name, None, request)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        response_model=V2Response,
        tags=["open inference v2"],
        openapi_extra=v2_doc,
    )
    async def v2_infer_version(name: str, version: str, request: Request) -> JSONResponse:
        return await v2_infer(name, version, request)

    def v2_metadata(name: str, version: str | None) -> dict[str, Any]:
        model = check_name(name, version)
        inputs = [
            {"name": c, "datatype": "FP64" if columns[c].role == "numeric" else "BYTES", "shape": [-1, 1]}
            for c in features
        ]
        if classification:
            label_type = "INT64" if all(isinstance(c, int) for c in model.classes) else "BYTES"
            outputs = [
                {"name": "label", "datatype": label_type, "shape": [-1]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(model.classes)]},
            ]
        else:
            outputs = [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
        versions = [m.version for m in (state.champion, state.challenger) if m]
        platform = "onnxruntime_onnx" if model.engine == "onnx" else "sklearn"
        return {"name": name, "versions": versions, "platform": platform, "inputs": inputs, "outputs": outputs}

    @app.get("/v2/models/{name}", tags=["open inference v2"])
    async def v2_model(name: str) -> dict[str, Any]:
        return v2_metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}", tags=["open inference v2"])
    async def v2_model_version(name: str, version: str) -> dict[str, Any]:
        return v2_metadata(name, version)

    @app.get("/v2/models/{name}/ready", tags=["open inference v2"])
    async def v2_model_ready(name: str) -> JSONResponse:
        check_name(name)
        return JSONResponse({"name": name, "ready": state.ready}, status_code=200 if state.ready else 503)

    @app.get("/v2", tags=["open inference v2"])
    async def v2_server() -> dict[str, Any]:
        return {"name": "lifecycle", "version": package_version(), "extensions": []}

    @app.get("/v2/health/live", tags=["health"])
    async def v2_live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"])
    async def v2_ready() -> JSONResponse:
        return JSONResponse({"ready": state.ready}, status_code=200 if state.ready else 503)

    # ----------------------------------------------------------------------------------------- health, metrics
    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        if not state.ready or state.champion is None:
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready", "model": state.champion.name, "version": state.champion.version})

    @app.get("/metrics", tags=["health"])
    async def prometheus() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/model", tags=["model"])
    async def model_info() -> dict[str, Any]:
        """The served model(s): version, family, task, metrics, features with their rules, engines, challenger."""

        def describe(m: ServedModel | None) -> dict[str, Any] | None:
            if m is None:
                return None
            card = m.meta.get("model", {})
            return {
                "name": m.name,
                "version": m.version,
                "role": m.role,
                "engine": m.engine,
                "engine_note": m.engine_note,
                "family": card.get("family"),
                "task": m.schema.task,
                "sha256": card.get("sha256"),
                "classes": m.classes,
                "metrics": m.meta.get("metrics", {}),
            }

        return {
            "champion": describe(state.champion),
            "challenger": describe(state.challenger),
            "challenger_mode": settings.challenger_mode,
            "canary_percent": settings.canary_percent if settings.challenger_mode == "canary" else None,
            "features": [
                {"name": c, "role": columns[c].role}
                | ({"min": models.limits[c][0], "max": models.limits[c][1]} if c in models.limits else {})
                | ({"categories": list(columns[c].categories)} if columns[c].role == "categorical" else {})
                for c in features
            ],
            "limits": {"max_rows": settings.max_rows, "max_body_bytes": settings.max_body_bytes},
        }

    document_bodies(app, documented)


def _flatten(data: list[Any]) -> list[Any]:
    """V2 tensor data may be flat or nested (row-major); flatten one level at a time."""
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for v in data:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out
