"""create_app and lifespan: the model is verified before anything is served; the docs describe the generated bodies."""

from __future__ import annotations

import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import copy_model, settings_for

from lifecycle.artifact import ModelIntegrityError
from lifecycle.serve.app import create_app


def test_refuses_to_start_when_the_model_hash_does_not_match(tmp_path, champion, caplog):
    files = copy_model(champion, tmp_path)
    meta = json.loads(files["model.json"].read_text())
    meta["model"]["sha256"] = "0" * 64
    files["model.json"].write_text(json.dumps(meta))
    app = create_app(settings_for(files, prediction_log_dir=None))
    refusal = r"refusing to load .*model.joblib: its sha256 .* does not match"
    with pytest.raises(ModelIntegrityError, match=refusal), TestClient(app):
        pass
    assert "cannot start serving" in caplog.text


def test_refuses_to_start_when_the_model_file_is_missing(tmp_path, champion):
    files = copy_model(champion, tmp_path)
    files["model.joblib"].unlink()
    with (
        pytest.raises(ModelIntegrityError, match=r"model\.joblib: model not found"),
        TestClient(create_app(settings_for(files))),
    ):
        pass


def test_refuses_to_build_without_model_metadata(tmp_path, champion):
    files = copy_model(champion, tmp_path)
    files["model.json"].unlink()
    with pytest.raises(ModelIntegrityError, match="model metadata not found"):
        create_app(settings_for(files))


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200
    record = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert record["additionalProperties"] is False
    assert record["properties"]["charge_mode"]["anyOf"][0]["enum"] == ["fast", "normal", "slow"]
    assert (
        record["properties"]["state_of_health_pct"]["anyOf"][0] | {"minimum": 0.0, "maximum": 100.0}
        == (record["properties"]["state_of_health_pct"]["anyOf"][0])
    )


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_external_url(client, page):
    """Swagger UI and ReDoc load from the server itself: the assets packaged in fastapi-offline, not a CDN."""
    r = client.get(page)
    assert r.status_code == 200
    html = r.text
    assert re.findall(r"(?:https?:)?//[\w.-]+", html) == []  # no absolute or protocol-relative URL anywhere
    parser = _Links()
    parser.feed(html)
    scripts = [link for link in parser.links if link.endswith(".js")]
    assert scripts, html
    package = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"
    for link in parser.links:
        assert link.startswith("/"), link
        asset = client.get(link)
        assert asset.status_code == 200, link
        assert asset.content == (package / Path(link).name).read_bytes()  # the packaged distribution's file
    assert "/openapi.json" in html
    assert "fonts.googleapis" not in html
