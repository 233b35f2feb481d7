"""POST /explain and KServe V1 :explain: per row the prediction, the base value and one contribution per input
feature, additive; the same validation, limits and errors as :predict; counted apart from predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.serve.conftest import assert_rejected, copy_model, expected, settings_for

from lifecycle.serve.app import create_app

TOLERANCE = 1e-6


def additive(row: dict) -> float:
    """The largest |base_value + sum(contributions) - output| of one explanation row, over its classes."""
    gaps = [abs(row["base_value"][c] + sum(row["contributions"][c].values()) - row["output"][c]) for c in row["output"]]
    return max(gaps)


def test_explain_records_are_additive_and_name_every_raw_feature(client, champion, records):
    labels, proba = expected(champion, records[:20])
    r = client.post("/explain", json={"records": records[:20]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["output_space"] == "log_odds" and "softmax" in body["output_description"]
    assert body["method"].startswith("shap.TreeExplainer")
    assert body["model"]["engine"] == "sklearn" and body["model"]["role"] == "champion"
    features = [f["name"] for f in client.get("/model").json()["features"]]
    classes = client.get("/model").json()["champion"]["classes"]
    assert len(body["explanations"]) == 20
    for row, label, p in zip(body["explanations"], labels, proba, strict=True):
        assert row["prediction"] == label  # the served prediction
        assert row["probabilities"] == pytest.approx(dict(zip(classes, p, strict=True)), abs=1e-12)
        assert set(row["contributions"]) == set(classes)
        for per_class in row["contributions"].values():
            assert list(per_class) == features  # charge_mode, chemistry, climate_zone: one each, not one-hot
        assert additive(row) <= TOLERANCE
        # the explained output is the model's: its softmax is the served probabilities
        out = np.array([row["output"][c] for c in classes])
        assert np.exp(out) / np.exp(out).sum() == pytest.approx(p, abs=1e-9)


def test_explained_predictions_equal_predict_on_every_protocol(client, records):
    predicted = client.post("/predict", json={"records": records[:50]}).json()["predictions"]  # ONNX engine (auto)
    explained = client.post("/explain", json={"records": records[:50]}).json()["explanations"]
    assert [e["prediction"] for e in explained] == predicted
    v1 = client.post("/v1/models/lifecycle:explain", json={"instances": records[:50]})
    assert v1.status_code == 200, v1.text
    assert [e["prediction"] for e in v1.json()["explanations"]] == predicted
    assert v1.json()["explanations"] == explained  # the same explanation through both protocols


def test_v1_explain_takes_rows_of_values(client, records):
    features = [f["name"] for f in client.get("/model").json()["features"]]
    rows = [[rec[f] for f in features] for rec in records[:3]]
    by_rows = client.post("/v1/models/lifecycle:explain", json={"instances": rows}).json()
    by_records = client.post("/v1/models/lifecycle:explain", json={"instances": records[:3]}).json()
    assert by_rows == by_records


def test_large_requests_are_explained_off_the_event_loop_with_the_same_result(client, records):
    small = [client.post("/explain", json={"records": records[i : i + 1]}).json()["explanations"][0] for i in (0, 70)]
    big = client.post("/explain", json={"records": records[:100]}).json()["explanations"]  # > INLINE_ROWS
    for got, want in zip([big[0], big[70]], small, strict=True):
        assert got["prediction"] == want["prediction"]
        for c in want["contributions"]:
            assert got["contributions"][c] == pytest.approx(want["contributions"][c], abs=1e-9)


def test_missing_values_and_identifiers_are_explained(client, records):
    record = dict(records[0], cell_temp_max_c=None, charge_mode=None)
    row = client.post("/explain", json={"records": [record]}).json()["explanations"][0]
    assert additive(row) <= TOLERANCE
    assert "reading_id" not in next(iter(row["contributions"].values()))  # ids are carried, never explained


@pytest.mark.parametrize(
    ("path", "body", "field", "rule"),
    [
        ("/explain", {"records": [{"charge_mode": "turbo"}]}, "records[0].charge_mode", "categories seen in training"),
        ("/explain", {"records": [{"state_of_health_pct": 250.0}]}, "records[0].state_of_health_pct", "out of range"),
        ("/explain", {"records": []}, "records", "at least 1"),
        ("/explain", {"rows": []}, "records", "required"),
        ("/v1/models/lifecycle:explain", {"instances": [[1.0, 2.0]]}, "instances[0]", "needs 11 values"),
        (
            "/v1/models/lifecycle:explain",
            {"instances": [{"chemistry": "NiCd"}]},
            "instances[0].chemistry",
            "categories",
        ),
    ],
)
def test_bad_requests_get_the_predict_errors(bad_client, records, path, body, field, rule):
    for key in ("records", "instances"):
        if body.get(key) and isinstance(body[key][0], dict):
            body = {key: [dict(records[0], **body[key][0])]}
    r = bad_client.post(path, json=body)
    assert_rejected(bad_client, r, 422, field, rule)
    twin = path.replace(":explain", ":predict").replace("/explain", "/predict")
    assert bad_client.post(twin, json=body).json()["errors"] == r.json()["errors"]


def test_row_and_body_limits_and_bad_json(bad_client, records):
    r = bad_client.post("/explain", json={"records": records[:6]})  # SERVE_MAX_ROWS=5
    assert_rejected(bad_client, r, 422, "records", "at most 5 per request (SERVE_MAX_ROWS)")
    r = bad_client.post("/v1/models/lifecycle:explain", json={"instances": records[:6]})
    assert_rejected(bad_client, r, 422, "instances", "at most 5")
    r = bad_client.post("/explain", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = bad_client.post("/explain", json={"records": [dict(records[0], note="x" * 5000)]})
    assert r.status_code == 413 and "SERVE_MAX_BODY_BYTES" in r.json()["error"]


def test_unknown_model_name_is_404(client, records):
    r = client.post("/v1/models/other:explain", json={"instances": records[:1]})
    assert r.status_code == 404 and "other" in r.json()["error"]


def test_metrics_count_explanations_apart_from_predictions(client, records):
    client.post("/explain", json={"records": records[:7]})
    client.post("/v1/models/lifecycle:explain", json={"instances": records[:3]})
    client.post("/explain", json={"records": [dict(records[0], charge_mode="turbo")]})
    text = client.get("/metrics").text
    assert 'lifecycle_explained_rows_total{role="champion"} 10.0' in text
    assert 'lifecycle_explanations_total{label="none",role="champion"}' in text
    assert 'lifecycle_predicted_rows_total{role="champion"}' not in text  # no prediction was served
    assert 'lifecycle_requests_total{method="POST",route="/explain",status="200"} 1.0' in text
    assert 'lifecycle_requests_total{method="POST",route="/v1/models/{name}:explain",status="200"} 1.0' in text
    assert 'lifecycle_validation_failures_total{field="charge_mode",route="/explain",rule="literal_error"} 1.0' in text


def test_a_model_without_background_is_served_and_its_explain_is_501(tmp_path, champion, records):
    from fastapi.testclient import TestClient

    files = copy_model(champion, tmp_path / "old")
    meta = json.loads(files["model.json"].read_text())
    del meta["explainer"]  # a model.json written before explanations existed
    files["model.json"].write_text(json.dumps(meta))
    with TestClient(create_app(settings_for(files, prediction_log_dir=tmp_path / "log"))) as client:
        assert client.post("/predict", json={"records": records[:1]}).status_code == 200
        r = client.post("/explain", json={"records": records[:1]})
        assert r.status_code == 501
        assert "no explainer background" in r.json()["error"] and "retrain" in r.json()["error"]


def test_canary_requests_are_explained_by_the_model_that_predicts_them(make_client, challenger, records):
    client = make_client(
        challenger_mode="canary", canary_percent=100, challenger_model_path=challenger.model,
        challenger_meta_path=challenger.meta, challenger_onnx_path=challenger.onnx,
    )  # fmt: skip
    body = client.post("/explain", json={"records": records[:5]}).json()
    assert body["model"]["role"] == "challenger"
    assert body["method"].startswith("shap.LinearExplainer") and body["output_space"] == "log_odds"
    predicted = client.post("/predict", json={"records": records[:5]}).json()["predictions"]
    assert [e["prediction"] for e in body["explanations"]] == predicted
    assert all(additive(row) <= TOLERANCE for row in body["explanations"])
