"""Bad requests and what the client gets back: one error body for every 4xx, and the handlers that build it.

Every refused request gets ``{"error": <summary>, "errors": [{"field", "value", "rule"}], "error_count"}``: the
field path without ``body`` (``records[0].charge_mode``, ``inputs.cell_temp_max_c.data[1]``), the offending value
(none for a missing field), the rule in words with its bound. At most :data:`MAX_LISTED_ERRORS` are listed. Each
refused value is also counted in ``lifecycle_validation_failures_total`` by route, field and rule.

An *item* is the dict :func:`error_items` and :func:`bad` make: the three public keys plus ``_type`` (the pydantic
error type, the metric's ``rule`` label) and ``_loc`` (the location as a list), which never reach the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lifecycle.errors import DataError

log = logging.getLogger(__name__)
MAX_LISTED_ERRORS = 20
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
    "string_too_long": "too long: at most {max_length} characters",
}
V2_PREFIX = "/v2/"  # Open Inference Protocol routes: a failed request is a 400 there (the spec's "usually 400")
Where = Callable[[int, Any], list[Any]]  # (row, field or None) -> the location of that value in the request body


class BadRequestError(Exception):
    """A request the server understood but must refuse; ``items`` like :func:`error_items`, ``status`` 4xx."""

    def __init__(self, items: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__(items[0]["rule"] if items else "bad request")
        self.items, self.status = items, status


# --------------------------------------------------------------------------------------------- items
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
    """pydantic/FastAPI errors -> items: the field path without ``body``, the offending value (none for a missing
    field), the rule in words with its bound (:data:`RULES`; pydantic's message for other types). ``categorical``
    names the columns whose allowed values are the training categories."""
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


def bad(field: Sequence[Any], value: Any, rule: str, kind: str = "invalid") -> dict[str, Any]:
    """One item: ``field`` as a location (``["inputs", 0, "name"]``), the value, the rule, the metric's rule label."""
    return {"field": _loc(field), "value": _value(value), "rule": rule, "_type": kind, "_loc": list(field)}


def error_response(status: int, items: list[dict[str, Any]]) -> JSONResponse:
    """The 4xx body: a one-line summary of the first item, up to :data:`MAX_LISTED_ERRORS` items, the count."""
    listed = [{k: v for k, v in item.items() if not k.startswith("_")} for item in items[:MAX_LISTED_ERRORS]]
    first = listed[0] if listed else {"field": "body", "value": None, "rule": "bad request"}
    summary = f"{first['field']}: {first['rule']}" + (
        f" (value {first['value']!r})" if first.get("value") is not None else ""
    )
    if len(items) > 1:
        summary += f"; and {len(items) - 1} more error(s)"
    return JSONResponse({"error": summary, "errors": listed, "error_count": len(items)}, status_code=status)


# --------------------------------------------------------------------------------------------- validating
def parse_body(body: bytes, model: type[BaseModel]) -> Any:
    """``body`` validated straight from its bytes by pydantic-core (about 2x faster than ``json.loads`` followed by
    validation of the objects). Raises ``RequestValidationError`` located under ``body`` (handled below)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def validate_records(records: TypeAdapter, raw: list[Any], where: Where) -> list[dict[str, Any]]:
    """``raw`` rows (dicts built from a V1/V2 body) validated as request records; a refused value raises
    ``RequestValidationError`` located where the client sent it (``where(row, field)``)."""
    try:
        return records.validate_python(raw)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            loc = list(e["loc"])
            row, rest = (loc[0], loc[1:]) if loc and isinstance(loc[0], int) else (0, loc)
            errors.append({**e, "loc": [*where(row, rest[0] if rest else None), *rest[1:]]})
        raise RequestValidationError(errors) from None


# --------------------------------------------------------------------------------------------- handlers
def _count(request: Request, items: list[dict[str, Any]]) -> None:
    """Count each refused value by route template, field (a known column or body part, else ``<other>``), rule."""
    metrics = request.app.state.serving.metrics
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    for item in items:
        loc = item.get("_loc") or ["body"]
        names = [p for p in loc if isinstance(p, str)]
        field = next((p for p in reversed(names) if p in metrics.fields), names[0] if names else "body")
        metrics.count_failure(route, field, item.get("_type", "invalid"))


def status_for(request: Request, status: int) -> int:
    """``status`` for a refused request, except on the Open Inference Protocol (V2) routes, whose spec indicates a
    failed inference or metadata request with 400 (and the ``{"error": ...}`` body every 4xx here has): a 422 there
    becomes 400. 404, 413 and 415 keep their meaning on every route."""
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    return 400 if status == 422 and route.startswith(V2_PREFIX) else status


async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Refused body or values: 400 when the body is not JSON, else 422 (400 on V2 routes: :func:`status_for`)."""
    items = error_items(exc.errors(), frozenset(request.app.state.serving.schema.categorical))
    _count(request, items)
    status = 400 if any(i["_type"] == "json_invalid" for i in items) else 422
    return error_response(status_for(request, status), items)


async def on_bad_request(request: Request, exc: BadRequestError) -> JSONResponse:
    """A request the routes refused themselves (V1 row length, V2 tensor shapes, unknown outputs, ...)."""
    _count(request, exc.items)
    return error_response(status_for(request, exc.status), exc.items)


async def on_data_error(request: Request, exc: DataError) -> JSONResponse:
    """Data the model cannot take although it passed validation: 422 with the reason (400 on V2 routes)."""
    items = [bad(["body"], None, str(exc), "data_error")]
    _count(request, items)
    return error_response(status_for(request, 422), items)


async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """404 (unknown route, model name or version), 405, 503: ``{"error": detail}``."""
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see /docs"
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def on_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a bad request: 500 that says so, with the request id to find the trace in the log."""
    log.exception("internal error on %s %s", request.method, request.url.path)
    rid = request.scope.get("state", {}).get("request_id", "")
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); request id {rid}"}, status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app`` (they read the serving state from ``app.state.serving``)."""
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(BadRequestError, on_bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(DataError, on_data_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_error)
