"""One pure ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``) around every HTTP request.

It gives each request an id (the client's ``x-request-id`` when well formed, else a new one; echoed in the answer's
header), refuses a body over ``SERVE_MAX_BODY_BYTES`` with 413 before the app reads it (by ``Content-Length``, or
while the chunks arrive), and counts every request by route template, method and status with its latency.
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
