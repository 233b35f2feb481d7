"""Stage ``promote`` on a failed gate: a failure message with the reasons reaches ``notify.webhook_url`` (a real HTTP
server on loopback), strict or not; a passing gate sends nothing; a webhook that is down never fails the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.helpers import free_port
from tests.stages.test_promote import STAGE_ARGS, promote_stage, stage_inputs
from tests.test_notify import Webhook
from tests.test_promotion import METRICS, champion

from lifecycle.stages import promote


@pytest.fixture
def webhook() -> Webhook:
    hook = Webhook()
    yield hook
    hook.close()


def with_webhook(folder: Path, url: str) -> Path:
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["notify"]["webhook_url"] = url
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder


def test_a_rejected_candidate_is_notified_with_the_reasons(tmp_path, monkeypatch, webhook) -> None:
    monkeypatch.chdir(with_webhook(stage_inputs(tmp_path, METRICS, champion(0.93)), webhook.url))
    promote.main(STAGE_ARGS)
    decision = json.loads(Path("out/promotion.json").read_text())
    assert decision["decision"] == "reject"
    (message,) = webhook.received
    text = json.dumps(message["body"])
    assert message["body"]["text"].startswith(":x: *Promotion gate failed: the champion stays in place*")
    assert decision["reasons"] and all(json.dumps(reason)[1:-1] in text for reason in decision["reasons"])
    assert "out/promotion.json" in text


def test_strict_reject_notifies_then_exits_1(tmp_path, webhook) -> None:
    folder = with_webhook(stage_inputs(tmp_path, METRICS, champion(0.93), {"strict": True}), webhook.url)
    proc = promote_stage(folder)
    assert proc.returncode == 1, proc.stderr
    assert [m["body"]["text"].split("\n")[0] for m in webhook.received] == [
        ":x: *Promotion gate failed: the champion stays in place*"
    ]


def test_a_promoted_candidate_sends_nothing(tmp_path, monkeypatch, webhook) -> None:
    monkeypatch.chdir(with_webhook(stage_inputs(tmp_path, METRICS, champion(0.88)), webhook.url))
    promote.main(STAGE_ARGS)
    assert json.loads(Path("out/promotion.json").read_text())["decision"] == "promote"
    assert webhook.received == []


def test_a_webhook_that_is_down_does_not_fail_the_stage(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(
        with_webhook(stage_inputs(tmp_path, METRICS, champion(0.93)), f"http://127.0.0.1:{free_port()}/x")
    )
    promote.main(STAGE_ARGS)
    assert json.loads(Path("out/promotion.json").read_text())["decision"] == "reject"
    assert "notification" in caplog.text.lower() or "webhook" in caplog.text.lower()
