"""A challenger beside the champion: shadow (logged, never returned) and canary (a deterministic share)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import copy_model

from lifecycle.errors import DataError
from lifecycle.predictions import read_records
from lifecycle.serve.app import create_app
from lifecycle.serve.challenger import canary_hit
from lifecycle.serve.settings import Settings


def read_log(directory: Path) -> pd.DataFrame:
    return read_records(directory, served_only=False)


def test_shadow_challenger_predicts_every_request_but_is_not_returned(
    tmp_path, make_client, champion, challenger, records
):
    client = make_client(
        challenger_mode="shadow", challenger_model_path=challenger.model, challenger_meta_path=challenger.meta
    )
    ids = [f"shadow-{i}" for i in range(5)]
    for rid in ids:
        body = client.post("/predict", json={"records": records[:3]}, headers={"x-request-id": rid}).json()
        assert body["model"]["role"] == "champion"
    info = client.get("/model").json()
    assert info["challenger"]["family"] == "logistic_regression"
    assert info["challenger_mode"] == "shadow"
    client.__exit__(None, None, None)  # drain the shadow queue and the log
    log = read_log(tmp_path / "predictions")
    assert sorted(log[log.model_role == "champion"].request_id.unique()) == ids
    shadow = log[log.model_role == "challenger"]
    assert sorted(shadow.request_id.unique()) == ids
    assert not shadow.served.any()
    assert log[log.model_role == "champion"].served.all()
    assert len(shadow) == 15


def test_canary_answers_a_deterministic_share(make_client, challenger, records):
    client = make_client(
        challenger_mode="canary",
        canary_percent=30,
        challenger_model_path=challenger.model,
        challenger_meta_path=challenger.meta,
    )
    roles = {}
    for i in range(200):
        rid = f"req-{i}"
        body = client.post("/predict", json={"records": records[:1]}, headers={"x-request-id": rid}).json()
        roles[rid] = body["model"]["role"]
        assert body["model"]["role"] == ("challenger" if canary_hit(rid, 30) else "champion")
    share = sum(r == "challenger" for r in roles.values()) / len(roles)
    assert 0.2 < share < 0.4
    again = client.post("/predict", json={"records": records[:1]}, headers={"x-request-id": "req-7"}).json()
    assert again["model"]["role"] == roles["req-7"]


def test_canary_bounds():
    ids = [f"id-{i}" for i in range(1000)]
    assert not any(canary_hit(i, 0) for i in ids)
    assert all(canary_hit(i, 100) for i in ids)


def test_challenger_with_another_schema_is_refused(tmp_path, champion, challenger):
    files = copy_model(challenger, tmp_path / "challenger")
    meta = json.loads(files["model.json"].read_text())
    meta["schema"]["columns"] = [c for c in meta["schema"]["columns"] if c["name"] != "chemistry"]
    files["model.json"].write_text(json.dumps(meta))
    s = Settings(**champion.settings(prediction_log_dir=None, challenger_mode="canary",
                                     challenger_model_path=files["model.joblib"], challenger_meta_path=files["model.json"]))  # fmt: skip
    with pytest.raises(DataError, match=r"different schema .*chemistry"), TestClient(create_app(s)):
        pass
