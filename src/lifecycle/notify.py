"""Notifications: a Slack-compatible JSON message to ``notify.webhook_url`` on detected drift or a failed gate.

The body is what Slack's incoming webhooks accept (``text`` as the fallback, plus ``blocks``); Mattermost,
Rocket.Chat, Teams workflows and most chat bridges accept the same shape. Sending is best effort: a timeout,
a refused connection or a non-2xx answer is retried once (:func:`send`), then logged as a warning; it never fails
the stage that notifies. Only http(s) URLs are used.

    from lifecycle.notify import notify
    notify(params.notify, "Drift detected", ["ambient_temp_c: PSI 0.24 >= 0.2"], status="warning")
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)
Status = Literal["info", "warning", "failure"]
_ICON = {"info": ":information_source:", "warning": ":warning:", "failure": ":x:"}
MAX_LINES = 20  # keep the message readable; the report has the rest
ATTEMPTS = 2  # one retry
RETRY_SECONDS = 1.0  # pause before the retry
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # answers worth a second try


class NotifyConfig(Protocol):
    webhook_url: str | None
    timeout_seconds: float


def build_message(title: str, lines: Sequence[str] = (), status: Status = "warning", link: str = "") -> dict[str, Any]:
    """The Slack-compatible JSON body: a ``text`` fallback and ``blocks`` (header + a bulleted section)."""
    shown = list(lines[:MAX_LINES])
    if len(lines) > MAX_LINES:
        shown.append(f"... and {len(lines) - MAX_LINES} more")
    bullets = "\n".join(f"• {line}" for line in shown)
    text = f"{_ICON[status]} *{title}*" + (f"\n{bullets}" if bullets else "") + (f"\n{link}" if link else "")
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
    if bullets:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": bullets[:3000]}})
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    return {"text": text, "blocks": blocks}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answers, it does not redirect: a 3xx is a failed send (urllib would turn the POST into a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, timeout: float) -> tuple[bool, bool, str]:
    """One POST: ``(sent, worth_retrying, what happened)``. Never raises."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return False, exc.code in RETRY_STATUSES, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, reset, timed out, DNS, bad URL
        return False, True, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    if status is None or not 200 <= status < 300:
        return False, status is None or status >= 500, f"HTTP {status}"
    return True, False, f"HTTP {status}"


def send(url: str, message: dict[str, Any], timeout: float = 5.0) -> bool:
    """POST ``message`` as JSON to ``url``; True on a 2xx answer. Never raises: a failure is logged as a warning.

    Only ``http``/``https`` URLs with a host are used (lifecycle.config refuses others at params load; this check
    also covers callers that build their own config, e.g. the Kubeflow exit handler). A connection error, a
    timeout, a 5xx or a 429 is retried once after :data:`RETRY_SECONDS`; another 4xx or a redirect is not retried.
    """
    scheme = urllib.parse.urlsplit(url)
    if scheme.scheme not in ("http", "https") or not scheme.netloc:
        log.warning("notification not sent: %r is not an http(s) URL (notify.webhook_url); the stage goes on", url)
        return False
    body = json.dumps(message).encode("utf-8")
    for attempt in range(1, ATTEMPTS + 1):
        sent, retry, what = _post(url, body, timeout)
        if sent:
            log.info("notification sent to the webhook (%s, attempt %d)", what, attempt)
            return True
        if not retry or attempt == ATTEMPTS:
            log.warning(
                "notification to the webhook failed: %s (attempt %d of %d; the stage goes on)", what, attempt, ATTEMPTS
            )
            return False
        log.info("notification to the webhook failed: %s; retrying in %.1f s", what, RETRY_SECONDS)
        time.sleep(RETRY_SECONDS)
    return False


def notify(
    cfg: NotifyConfig, title: str, lines: Sequence[str] = (), status: Status = "warning", link: str = ""
) -> bool:
    """Send a message when ``cfg.webhook_url`` is set; False when it is not set or sending failed. Never raises: a
    notification is best effort and must not fail the stage that sends it."""
    if not cfg.webhook_url:
        log.debug("notify.webhook_url is not set; no notification for %r", title)
        return False
    try:
        return send(cfg.webhook_url, build_message(title, lines, status, link), cfg.timeout_seconds)
    except Exception as exc:  # best effort by contract: anything unforeseen is logged, not raised
        log.warning("notification not sent (%s: %s); the stage goes on", type(exc).__name__, exc)
        return False
