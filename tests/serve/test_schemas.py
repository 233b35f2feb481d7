"""The request models generated from the training schema: numeric limits and where they come from."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import copy_model, settings_for

from lifecycle.serve.app import create_app
from lifecycle.serve.settings import Settings


def test_numeric_limits_must_name_numeric_features(champion):
    with pytest.raises(ValueError, match="not numeric features"):
        create_app(Settings(**champion.settings(numeric_limits={"charge_mode": (0, 1)})))


def test_custom_numeric_limits_are_enforced(make_client, records):
    client = make_client(numeric_limits={"charge_cycles": (0, 100)})
    r = client.post("/predict", json={"records": [dict(records[0], charge_cycles=150.0)]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["rule"] == "out of range: must be <= 100.0"


def test_the_data_contracts_bounds_in_model_json_are_enforced(tmp_path, champion, records):
    """What a user's own dataset gets: the bounds its contract held the training rows to (model.json's
    ``contract.limits``, written by export) apply with the built-in telemetry limits off; an open side (null) is
    not checked; SERVE_NUMERIC_LIMITS still wins."""
    files = copy_model(champion, tmp_path)
    meta = json.loads(files["model.json"].read_text())
    meta["contract"] = {
        "file": "c.yaml",
        "dataset": "x",
        "limits": {"charge_cycles": [0, 100], "ambient_temp_c": [None, 30]},
    }
    files["model.json"].write_text(json.dumps(meta))
    row = dict(records[0], charge_cycles=50.0, ambient_temp_c=-500.0)
    with TestClient(create_app(settings_for(files, builtin_limits=False, prediction_log_dir=None))) as client:
        assert client.post("/predict", json={"records": [row]}).status_code == 200  # no lower bound on ambient
        r = client.post("/predict", json={"records": [dict(row, charge_cycles=150.0)]})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"].endswith("charge_cycles")
        assert r.json()["errors"][0]["rule"] == "out of range: must be <= 100.0"
        r = client.post("/predict", json={"records": [dict(row, ambient_temp_c=31.0)]})
        assert r.json()["errors"][0]["rule"] == "out of range: must be <= 30.0"
    override = settings_for(
        files, builtin_limits=False, numeric_limits={"charge_cycles": (0, 1000)}, prediction_log_dir=None
    )
    with TestClient(create_app(override)) as client:
        assert client.post("/predict", json={"records": [dict(row, charge_cycles=150.0)]}).status_code == 200
