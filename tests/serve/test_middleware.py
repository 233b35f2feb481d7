"""The middleware: request ids, and bodies over the limit refused with 413 before they are read."""

from __future__ import annotations

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
