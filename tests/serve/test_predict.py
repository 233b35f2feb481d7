"""The prediction endpoints through TestClient: /predict, KServe V1, Open Inference V2, engines, health, metrics."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits


def expected(champion, records):
    pipeline = joblib.load(champion.model)
    features = list(pipeline.feature_names_in_)
    X = pd.DataFrame([{k: (np.nan if r[k] is None else r[k]) for k in features} for r in records])
    with threadpool_limits(1):  # HGB's OpenMP threads on a busy machine: 1 is faster
        return pipeline.predict(X).tolist(), pipeline.predict_proba(X)


# --------------------------------------------------------------------------------------------- /predict
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


def test_predict_single_row_onnx_and_sklearn_agree(make_client, records):
    onnx, sklearn = make_client(engine="onnx"), make_client(engine="sklearn")
    for record in records[:20]:
        a = onnx.post("/predict", json={"records": [record]}).json()
        b = sklearn.post("/predict", json={"records": [record]}).json()
        assert a["model"]["engine"] == "onnx"
        assert b["model"]["engine"] == "sklearn"
        assert a["predictions"] == b["predictions"]
        for c, p in b["probabilities"][0].items():
            assert a["probabilities"][0][c] == pytest.approx(p, abs=1e-4)


def test_auto_engine_sends_large_batches_to_sklearn(make_client, records):
    client = make_client(engine="auto", onnx_max_rows=5)
    assert client.post("/predict", json={"records": records[:5]}).json()["model"]["engine"] == "onnx"
    assert client.post("/predict", json={"records": records[:6]}).json()["model"]["engine"] == "sklearn"


def test_missing_readings_are_null_and_imputed(client, records):
    record = dict(records[0], state_of_health_pct=None, charge_mode=None)
    r = client.post("/predict", json={"records": [record]})
    assert r.status_code == 200, r.text


def test_request_id_header_is_echoed(client, records):
    r = client.post("/predict", json={"records": records[:1]}, headers={"x-request-id": "abc-123"})
    assert r.json()["request_id"] == "abc-123"
    assert r.headers["x-request-id"] == "abc-123"


def test_ids_and_timestamp_are_optional(client, records):
    features_only = {k: v for k, v in records[0].items() if k not in ("reading_id", "vehicle_id", "recorded_at")}
    assert client.post("/predict", json={"records": [features_only]}).status_code == 200


# --------------------------------------------------------------------------------------------- KServe V1
def test_v1_predict_with_objects_and_rows(client, champion, records):
    labels, _ = expected(champion, records[:10])
    r = client.post("/v1/models/lifecycle:predict", json={"instances": records[:10]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": labels}
    features = [f["name"] for f in client.get("/model").json()["features"]]
    rows = [[rec[f] for f in features] for rec in records[:10]]
    assert client.post("/v1/models/lifecycle:predict", json={"instances": rows}).json() == {"predictions": labels}


def test_v1_model_ready_and_unknown_name(client, records):
    assert client.get("/v1/models/lifecycle").json() == {"name": "lifecycle", "ready": True}
    r = client.post("/v1/models/other:predict", json={"instances": records[:1]})
    assert r.status_code == 404
    assert "other" in r.json()["error"]


# --------------------------------------------------------------------------------------------- Open Inference V2
def v2_body(client, records, nested=False):
    meta = client.get("/v2/models/lifecycle").json()
    inputs = []
    for spec in meta["inputs"]:
        data = [r[spec["name"]] for r in records]
        inputs.append(
            {
                "name": spec["name"],
                "datatype": spec["datatype"],
                "shape": [len(records), 1] if nested else [len(records)],
                "data": [[v] for v in data] if nested else data,
            }
        )
    return {"id": "req-1", "inputs": inputs}


def test_v2_infer_per_column_tensors(client, champion, records):
    labels, proba = expected(champion, records[:7])
    r = client.post("/v2/models/lifecycle/infer", json=v2_body(client, records[:7]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == "lifecycle"
    out = {o["name"]: o for o in body["outputs"]}
    assert out["label"]["data"] == labels
    assert out["label"]["shape"] == [7]
    assert out["probabilities"]["shape"] == [7, 4]
    np.testing.assert_allclose(np.reshape(out["probabilities"]["data"], (7, 4)), proba, atol=1e-4)
    nested = client.post("/v2/models/lifecycle/infer", json=v2_body(client, records[:7], nested=True)).json()
    assert {o["name"]: o for o in nested["outputs"]}["label"]["data"] == labels


def test_v2_infer_one_positional_tensor_and_version_route(client, champion, records):
    labels, _ = expected(champion, records[:3])
    features = [i["name"] for i in client.get("/v2/models/lifecycle").json()["inputs"]]
    body = {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "BYTES",
                "shape": [3, len(features)],
                "data": [[r[f] for f in features] for r in records[:3]],
            }
        ],
        "outputs": [{"name": "label"}],
    }
    version = client.get("/v2/models/lifecycle").json()["versions"][0]
    r = client.post(f"/v2/models/lifecycle/versions/{version}/infer", json=body)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["label"]
    assert r.json()["outputs"][0]["data"] == labels
    assert client.post("/v2/models/lifecycle/versions/nope/infer", json=body).status_code == 404


def test_v2_metadata_and_health(client):
    meta = client.get("/v2/models/lifecycle").json()
    assert meta["name"] == "lifecycle"
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["charge_mode"] == "BYTES"
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert client.get(f"/v2/models/lifecycle/versions/{meta['versions'][0]}").status_code == 200
    assert client.get("/v2/models/lifecycle/ready").json() == {"name": "lifecycle", "ready": True}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "lifecycle"
    assert client.get("/v2/models/other").status_code == 404


# --------------------------------------------------------------------------------------------- health, docs, metrics
def test_health_docs_and_model(client):
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert client.get("/docs").status_code == 200
    record = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert record["additionalProperties"] is False
    assert record["properties"]["charge_mode"]["anyOf"][0]["enum"] == ["fast", "normal", "slow"]
    assert (
        record["properties"]["state_of_health_pct"]["anyOf"][0] | {"minimum": 0.0, "maximum": 100.0}
        == (record["properties"]["state_of_health_pct"]["anyOf"][0])
    )
    info = client.get("/model").json()
    assert info["champion"]["family"] == "hist_gradient_boosting"
    assert info["challenger"] is None
    assert {"name": "state_of_charge_pct", "role": "numeric", "min": 0.0, "max": 100.0} in info["features"]


def test_metrics_count_requests_latency_classes_and_failures(client, records):
    client.post("/predict", json={"records": records[:10]})
    client.post("/predict", json={"records": [dict(records[0], charge_mode="turbo")]})
    text = client.get("/metrics").text
    assert 'lifecycle_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'lifecycle_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert 'lifecycle_request_seconds_bucket{le="0.5",route="/predict"}' in text
    assert 'lifecycle_predicted_rows_total{role="champion"} 10.0' in text
    assert 'lifecycle_predictions_total{label="none",role="champion"}' in text
    assert 'lifecycle_validation_failures_total{field="charge_mode",route="/predict",rule="literal_error"} 1.0' in text
    assert 'lifecycle_model_info{engine="onnx",name="lifecycle",role="champion"' in text


def test_unknown_route_is_json_404(client):
    r = client.get("/nope")
    assert r.status_code == 404
    assert "/nope" in r.json()["error"]
    assert client.get("/predict").status_code == 405


def test_both_engines_implement_the_predictor_protocol(client):
    from lifecycle.serve.predictors import Predictor

    champion = client.app.state.serving.champion
    assert isinstance(champion.sklearn, Predictor)
    assert isinstance(champion.onnx, Predictor)
    assert {champion.sklearn.engine, champion.onnx.engine} == {"sklearn", "onnx"}
