"""POST /predict: records in, the pipeline's predictions and probabilities out."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.serve.conftest import expected

# The largest probability gap measured between onnxruntime and scikit-learn on these models is ~2e-7 (float32
# graph); scikit-learn against itself is exact up to summation order.
ATOL = {"sklearn": 1e-12, "onnx": 1e-6}


def assert_same_as_the_pipeline(body, champion, records, engine):
    """The server's answer for ``records`` is the fitted pipeline's own prediction (labels and probabilities)."""
    labels, proba = expected(champion, records)
    assert body["model"]["engine"] == engine
    assert body["predictions"] == labels
    got = np.array([[p[c] for c in sorted(p)] for p in body["probabilities"]])
    np.testing.assert_allclose(got, proba, atol=ATOL[engine], rtol=0)


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


@pytest.mark.parametrize("engine", ["sklearn", "onnx"])
def test_missing_readings_are_null_and_imputed(make_client, champion, records, engine):
    """A null numeric and a null categorical reading are imputed the way the pipeline imputes them: the answer is the
    pipeline's own prediction for the record with those values missing, under both engines."""
    client = make_client(engine=engine)
    rows = [dict(r, state_of_health_pct=None, charge_mode=None) for r in records[:20]]
    rows += [
        {k: (None if k in ("cell_temp_max_c", "chemistry", "climate_zone") else v) for k, v in records[20].items()}
    ]
    r = client.post("/predict", json={"records": rows})
    assert r.status_code == 200, r.text
    assert_same_as_the_pipeline(r.json(), champion, rows, engine)


@pytest.mark.parametrize("engine", ["sklearn", "onnx"])
def test_ids_and_timestamp_are_optional(make_client, champion, records, engine):
    client = make_client(engine=engine)
    features_only = [
        {k: v for k, v in r.items() if k not in ("reading_id", "vehicle_id", "recorded_at")} for r in records[:20]
    ]
    r = client.post("/predict", json={"records": features_only})
    assert r.status_code == 200, r.text
    assert_same_as_the_pipeline(r.json(), champion, features_only, engine)
    assert r.json()["predictions"] == client.post("/predict", json={"records": records[:20]}).json()["predictions"]
