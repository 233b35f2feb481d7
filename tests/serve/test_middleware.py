"""The middleware: request ids, bodies over the limit refused with 413 before they are read, 415 for a POST that is not
JSON, and a client that leaves mid-body is not a server error."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from tests.serve.conftest import assert_rejected


def test_request_id_header_is_echoed(client, records):
    r = client.post("/predict", json={"records": records[:1]}, headers={"x-request-id": "abc-123"})
    assert r.json()["request_id"] == "abc-123"
    assert r.headers["x-request-id"] == "abc-123"


def test_body_too_large(bad_client, records):
    r = bad_client.post(
        "/predict", content=b'{"records": [' + b" " * 5000 + b"]}", headers={"content-type": "application/json"}
    )
    assert_rejected(bad_client, r, 413, "body", "at most 4096 bytes (SERVE_MAX_BODY_BYTES)")


def test_body_too_large_without_content_length(bad_client):
    def chunks():
        for _ in range(10):
            yield b" " * 1000

    r = bad_client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert_rejected(bad_client, r, 413, "body", "too large")


POST_ROUTES = ["/predict", "/v1/models/lifecycle:predict", "/v2/models/lifecycle/infer"]


def test_post_without_json_content_type_is_415_and_not_predicted(make_client, tmp_path, records):
    client = make_client(prediction_log_dir=tmp_path / "log")
    client.valid = records[0]
    body = json.dumps({"records": records[:1], "instances": records[:1]}).encode()
    refused = 0
    for route in POST_ROUTES:
        for content_type in [
            None,
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]:
            headers = {"content-type": content_type} if content_type else {}
            r = client.post(route, content=body, headers=headers)
            assert_rejected(client, r, 415, "headers.content-type", "Content-Type: application/json", content_type)
            refused += 1
    text = client.get("/metrics").text
    assert (
        'lifecycle_validation_failures_total{field="body",route="/v2/models/{name}/infer",rule="content_type"} 4.0'
        in text
    )
    assert f'lifecycle_predicted_rows_total{{role="champion"}} {refused}.0' in text  # assert_rejected's good requests


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_are_served(client, records, content_type):
    body = json.dumps({"records": records[:1]}).encode()
    assert client.post("/predict", content=body, headers={"content-type": content_type}).status_code == 200


def test_415_does_not_hide_404_or_405(client):
    assert client.post("/nope", content=b"x", headers={"content-type": "text/plain"}).status_code == 404
    assert client.post("/health/live", content=b"x", headers={"content-type": "text/plain"}).status_code == 405


@pytest.mark.parametrize("delivered", [0, 1, 3])
def test_client_disconnecting_mid_body_is_not_a_server_error(client, caplog, delivered):
    """The ASGI messages uvicorn sends when a client goes away before its body is complete: no 500, no traceback,
    nothing sent, counted with status 499."""
    app = client.app
    chunks = [{"type": "http.request", "body": b'{"records": [', "more_body": True}] * delivered
    messages = [*chunks, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/predict", "raw_path": b"/predict", "root_path": "", "query_string": b"", "server": ("t", 80),
        "client": ("127.0.0.1", 1), "headers": [(b"content-type", b"application/json"), (b"content-length", b"999")],
    }  # fmt: skip
    caplog.set_level(logging.DEBUG)
    asyncio.run(app(scope, receive, send))
    assert sent == []
    assert "Traceback" not in caplog.text
    assert "internal error" not in caplog.text
    text = client.get("/metrics").text
    assert 'lifecycle_requests_total{method="POST",route="/predict",status="499"} 1.0' in text
    assert 'status="500"' not in text
