"""POST /predict: records in, the pipeline's predictions and probabilities out."""

from __future__ import annotations

import json

import numpy as np
from tests.serve.conftest import expected


def test_predict_batch_matches_the_pipeline(make_client, champion, records):
    client = make_client(engine="sklearn")
    r = client.post("/predict", json={"records": records[:50]})
    assert r.status_code == 200, r.text
    body = r.json()
    labels, proba = expected(champion, records[:50])
    assert body["predictions"] == labels
    got = np.array([[p[c] for c in sorted(p)] for p in body["probabilities"]])
    np.testing.assert_allclose(got, proba, atol=1e-12)
    assert body["model"]["version"] == json.loads(champion.meta.read_text())["model"]["sha256"][:12]
    assert body["model"] | {"engine": "sklearn"} == body["model"]
    assert body["request_id"] == r.headers["x-request-id"]


def test_missing_readings_are_null_and_imputed(client, records):
    record = dict(records[0], state_of_health_pct=None, charge_mode=None)
    r = client.post("/predict", json={"records": [record]})
    assert r.status_code == 200, r.text


def test_ids_and_timestamp_are_optional(client, records):
    features_only = {k: v for k, v in records[0].items() if k not in ("reading_id", "vehicle_id", "recorded_at")}
    assert client.post("/predict", json={"records": [features_only]}).status_code == 200
