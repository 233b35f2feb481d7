"""One pure ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``) around every HTTP request.

It gives each request an id (the client's ``x-request-id`` when well formed, else a new one; echoed in the answer's
header), refuses a POST whose ``Content-Type`` is not JSON with 415 (a browser's "simple" cross-origin POST is
``text/plain`` or a form: it must not reach the prediction log), refuses a body over ``SERVE_MAX_BODY_BYTES`` with
413 before the app reads it (by ``Content-Length``, or while the chunks arrive), drops a request whose client
disconnected before its body arrived (counted with status 499, nginx's "client closed request": not a server
error, no traceback), and counts every request by route template, method and status with its latency.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Match

from lifecycle.serve.errors import bad, error_response
from lifecycle.serve.state import State

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CLIENT_CLOSED = 499  # the status counted for a request whose client disconnected before its body arrived


def is_json(content_type: bytes | None) -> bool:
    """True for ``application/json`` and ``application/<x>+json``, with any parameters (``; charset=utf-8``)."""
    if not content_type:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class ServingMiddleware:
    """Request id, body size limit (413), per-route request count and latency (see the module doc)."""

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
            if scope["method"] == "POST" and not is_json(headers.get(b"content-type")) and self._route(scope):
                await self._unsupported(headers.get(b"content-type"), scope)(scope, receive, send_wrapper)
                return
            messages, too_large = await self._read_body(receive, headers)
            if too_large is not None:
                await self._too_large(too_large, scope)(scope, receive, send_wrapper)
                return
            if messages and messages[-1]["type"] == "http.disconnect":  # the client left: nobody to answer
                self._route(scope)
                status[0] = CLIENT_CLOSED
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

    def _route(self, scope: dict) -> str | None:
        """The template of the route that fully matches ``scope`` (set as ``scope["route"]``, which the request
        count reads), or None. Only on the refusal paths: the router does this for requests that reach the app."""
        route = next((r for r in self.state.routes if r.matches(scope)[0] == Match.FULL), None)
        scope["route"] = route
        return getattr(route, "path", None)

    def _unsupported(self, content_type: bytes | None, scope: dict) -> Response:
        route = scope["route"].path
        self.state.metrics.count_failure(route, "body", "content_type")
        sent = content_type.decode("latin-1") if content_type else None
        rule = "unsupported media type: send the body as JSON with Content-Type: application/json"
        return error_response(415, [bad(["headers", "content-type"], sent, rule, "content_type")])

    def _too_large(self, size: int, scope: dict) -> Response:
        route = self._route(scope) or "unmatched"
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
