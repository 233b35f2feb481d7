"""Notifications: a Slack-compatible JSON message to ``notify.webhook_url`` on detected drift or a failed gate.

The body is what Slack's incoming webhooks accept (``text`` as the fallback, plus ``blocks``); Mattermost,
Rocket.Chat, Teams workflows and most chat bridges accept the same shape. Sending is best effort: a timeout,
a refused connection or a non-2xx answer is logged as a warning and never fails the stage that notifies.

    from lifecycle.notify import notify
    notify(params.notify, "Drift detected", ["ambient_temp_c: PSI 0.24 >= 0.2"], status="warning")
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)
Status = Literal["info", "warning", "failure"]
_ICON = {"info": ":information_source:", "warning": ":warning:", "failure": ":x:"}
MAX_LINES = 20  # keep the message readable; the report has the rest


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


def send(url: str, message: dict[str, Any], timeout: float = 5.0) -> bool:
    """POST ``message`` as JSON to ``url``; True on a 2xx answer. Failures are logged, never raised."""
    body = json.dumps(message).encode("utf-8")
    try:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        log.warning("notification to the webhook failed: HTTP %s %s (the stage goes on)", exc.code, exc.reason)
        return False
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("notification to the webhook failed: %s (the stage goes on)", exc)
        return False
    if not 200 <= status < 300:
        log.warning("notification to the webhook answered HTTP %s (the stage goes on)", status)
        return False
    log.info("notification sent to the webhook (HTTP %s)", status)
    return True


def notify(
    cfg: NotifyConfig, title: str, lines: Sequence[str] = (), status: Status = "warning", link: str = ""
) -> bool:
    """Send a message when ``cfg.webhook_url`` is set; False when it is not set or sending failed."""
    if not cfg.webhook_url:
        log.debug("notify.webhook_url is not set; no notification for %r", title)
        return False
    return send(cfg.webhook_url, build_message(title, lines, status, link), cfg.timeout_seconds)
