"""KServe V1: instances as records or rows; model status; bad bodies get the same error contract as /predict."""

from __future__ import annotations

from tests.serve.conftest import assert_rejected, expected


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


def test_v1_bad_instance_value(bad_client, records):
    r = bad_client.post("/v1/models/lifecycle:predict", json={"instances": [dict(records[0], chemistry="NiCd")]})
    assert_rejected(bad_client, r, 422, "instances[0].chemistry", "categories seen in training", "NiCd")


def test_v1_row_of_wrong_length(bad_client):
    r = bad_client.post("/v1/models/lifecycle:predict", json={"instances": [[1.0, 2.0]]})
    assert_rejected(bad_client, r, 422, "instances[0]", "needs 11 values")


def test_v1_row_value_out_of_range(bad_client, records):
    features = [f["name"] for f in bad_client.get("/model").json()["features"]]
    row = [records[0][f] for f in features]
    row[0] = 250.0  # state_of_health_pct
    r = bad_client.post("/v1/models/lifecycle:predict", json={"instances": [row]})
    assert_rejected(bad_client, r, 422, f"instances[0].{features[0]}", "out of range", 250.0)


def test_v1_missing_instances(bad_client):
    r = bad_client.post("/v1/models/lifecycle:predict", json={"records": []})
    assert_rejected(bad_client, r, 422, "instances", "required")


def test_v1_list_models(client):
    assert client.get("/v1/models").json() == {"models": ["lifecycle"]}
    assert client.app.state.serving.settings.model_name == "lifecycle"
