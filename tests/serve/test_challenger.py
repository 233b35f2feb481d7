"""A challenger beside the champion: shadow (logged, never returned) and canary (a deterministic share)."""

from __future__ import annotations

import json
import threading
import zlib
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import copy_model, expected

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


def test_a_slow_shadow_does_not_delay_the_champions_answer(tmp_path, make_client, challenger, records):
    """The shadow challenger is held inside its prediction until the champion has answered every request: the
    answers arrive all the same (no request waits for the shadow), and the shadow's records follow once released."""
    client = make_client(
        challenger_mode="shadow", challenger_model_path=challenger.model, challenger_meta_path=challenger.meta
    )
    shadow_model = client.app.state.serving.challenger
    entered, release, timed_out = threading.Event(), threading.Event(), threading.Event()
    real_predictor = shadow_model.predictor

    def held_predictor(rows):
        entered.set()
        if not release.wait(20):  # a champion that waited for the shadow would leave it here until the timeout
            timed_out.set()
        return real_predictor(rows)

    shadow_model.predictor = held_predictor  # the real prediction, after a hold
    try:
        for i in range(5):
            r = client.post("/predict", json={"records": records[:2]}, headers={"x-request-id": f"slow-{i}"})
            assert (r.status_code, r.json()["model"]["role"]) == (200, "champion"), r.text
        assert entered.wait(10), "the shadow never started predicting"
        assert not timed_out.is_set()  # every answer above came while the shadow was still held
    finally:
        release.set()
    client.__exit__(None, None, None)
    log = read_log(tmp_path / "predictions")
    assert sorted(log[log.model_role == "challenger"].request_id.unique()) == [f"slow-{i}" for i in range(5)]


def crc32_bucket_hit(request_id: str, percent: float) -> bool:
    """docs/serving.md's rule, written out: CRC-32 of the request id, in 10,000 buckets, below percent * 100."""
    return zlib.crc32(request_id.encode()) % 10_000 < percent * 100


def test_canary_answers_a_deterministic_share(make_client, champion, challenger, records):
    client = make_client(
        challenger_mode="canary",
        canary_percent=30,
        challenger_model_path=challenger.model,
        challenger_meta_path=challenger.meta,
    )
    versions = {
        role: json.loads(m.meta.read_text())["model"]["sha256"][:12]
        for role, m in (("champion", champion), ("challenger", challenger))
    }
    answers = {role: expected(m, records[:1]) for role, m in (("champion", champion), ("challenger", challenger))}
    assert answers["champion"][1].tolist() != answers["challenger"][1].tolist()  # the two models can be told apart
    roles = {}
    for i in range(200):
        rid = f"req-{i}"
        body = client.post("/predict", json={"records": records[:1]}, headers={"x-request-id": rid}).json()
        role = body["model"]["role"]
        roles[rid] = role
        assert role == ("challenger" if crc32_bucket_hit(rid, 30) else "champion")
        assert body["model"]["version"] == versions[role]  # the answer comes from that model ...
        labels, proba = answers[role]
        assert body["predictions"] == labels  # ... and is that model's own prediction
        got = [body["probabilities"][0][c] for c in sorted(body["probabilities"][0])]
        assert got == pytest.approx(proba[0].tolist(), abs=1e-6)
    share = sum(r == "challenger" for r in roles.values()) / len(roles)
    assert share == sum(crc32_bucket_hit(f"req-{i}", 30) for i in range(200)) / 200
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
