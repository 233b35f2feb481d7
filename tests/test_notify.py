"""Notifications (lifecycle.notify) against a real HTTP server on 127.0.0.1: Slack-compatible JSON on drift;
a failed send is retried once, then logged, and never fails the stage; only http(s) URLs are used."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from lifecycle import notify


class Webhook:
    """A loopback HTTP server that records every POSTed JSON body and answers with the next status of ``plan``
    (then ``status``); ``"drop"`` in the plan closes the connection without an answer."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.plan: list[int | str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.received.append(
                    {"body": json.loads(self.rfile.read(length)), "content_type": self.headers["Content-Type"]}
                )
                answer = hook.plan.pop(0) if hook.plan else hook.status
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(int(answer))
                if 300 <= int(answer) < 400:
                    self.send_header("Location", "file:///etc/passwd")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_message_is_slack_compatible() -> None:
    msg = notify.build_message("Drift detected", ["a: PSI 0.3", "b: KS 0.2"], status="warning", link="reports/x")
    assert msg["text"].startswith(":warning: *Drift detected*")
    assert "• a: PSI 0.3" in msg["text"]
    assert msg["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Drift detected"}}
    assert msg["blocks"][1]["type"] == "section"
    assert msg["blocks"][1]["text"]["type"] == "mrkdwn"
    long = notify.build_message("t", [f"line {i}" for i in range(50)])
    assert "... and 30 more" in long["text"]


def test_notify_posts_json_to_the_webhook(webhook) -> None:
    cfg = SimpleNamespace(webhook_url=webhook.url, timeout_seconds=5.0)
    assert notify.notify(cfg, "Promotion gate failed", ["accuracy 0.80 < 0.85"], status="failure") is True
    assert len(webhook.received) == 1
    got = webhook.received[0]
    assert got["content_type"] == "application/json"
    assert got["body"]["text"].startswith(":x: *Promotion gate failed*")
    assert "accuracy 0.80 < 0.85" in got["body"]["blocks"][1]["text"]["text"]


def test_no_url_sends_nothing(webhook) -> None:
    assert notify.notify(SimpleNamespace(webhook_url=None, timeout_seconds=1.0), "x") is False
    assert webhook.received == []


@pytest.fixture
def quick_retry(monkeypatch) -> None:
    monkeypatch.setattr(notify, "RETRY_SECONDS", 0.05)


def test_http_error_is_retried_once_then_logged_not_raised(webhook, caplog, quick_retry) -> None:
    webhook.status = 500
    with caplog.at_level(logging.WARNING, logger="lifecycle.notify"):
        assert notify.send(webhook.url, notify.build_message("x"), timeout=5.0) is False
    assert "HTTP 500" in caplog.text and "attempt 2 of 2; the stage goes on" in caplog.text
    assert len(webhook.received) == 2


@pytest.mark.parametrize("first", [503, 429, "drop"])
def test_a_webhook_that_fails_once_gets_the_message_on_the_retry(webhook, caplog, first) -> None:
    webhook.plan = [first]
    cfg = SimpleNamespace(webhook_url=webhook.url, timeout_seconds=5.0)
    with caplog.at_level(logging.INFO, logger="lifecycle.notify"):
        assert notify.notify(cfg, "Drift detected", ["a: PSI 0.3"]) is True
    assert len(webhook.received) == 2
    assert webhook.received[0]["body"] == webhook.received[1]["body"]  # the same message, sent again
    assert "retrying in 1.0 s" in caplog.text and "(HTTP 200, attempt 2)" in caplog.text


@pytest.mark.parametrize("status", [400, 404, 302])
def test_a_client_error_or_a_redirect_is_not_retried_nor_followed(webhook, caplog, status) -> None:
    webhook.status = status
    with caplog.at_level(logging.WARNING, logger="lifecycle.notify"):
        assert notify.send(webhook.url, notify.build_message("x"), timeout=5.0) is False
    assert len(webhook.received) == 1
    assert f"HTTP {status}" in caplog.text and "attempt 1 of 2" in caplog.text


@pytest.mark.parametrize("url", ["file:///etc/hostname", "ftp://127.0.0.1/x", "https://", "127.0.0.1:9/hook"])
def test_only_http_urls_are_used_even_when_config_was_bypassed(url, caplog, tmp_path) -> None:
    """lifecycle.config refuses these at params load (tests/test_config.py); a caller that builds its own section
    (the Kubeflow exit handler) gets the same answer here: no request, a warning, no crash (a file:// URL
    crashed monitor with "'<=' not supported between 'int' and 'NoneType'")."""
    cfg = SimpleNamespace(webhook_url=url, timeout_seconds=1.0)
    with caplog.at_level(logging.WARNING, logger="lifecycle.notify"):
        assert notify.notify(cfg, "x") is False
    assert "is not an http(s) URL" in caplog.text


def test_anything_unforeseen_is_logged_not_raised(caplog) -> None:
    cfg = SimpleNamespace(webhook_url="http://127.0.0.1:9/hook", timeout_seconds="soon")  # not a number
    with caplog.at_level(logging.WARNING, logger="lifecycle.notify"):
        assert notify.notify(cfg, "x") is False
    assert "notification" in caplog.text


def test_unreachable_webhook_is_logged_not_raised(caplog, quick_retry) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="lifecycle.notify"):
        assert notify.send(url, notify.build_message("x"), timeout=2.0) is False
    assert "notification to the webhook failed" in caplog.text


def test_malformed_url_is_logged_not_raised(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="lifecycle.notify"):
        assert notify.send("not a url", notify.build_message("x")) is False
    assert "notification not sent: 'not a url' is not an http(s) URL" in caplog.text
