"""GET /metrics: requests, latency, predicted classes and refused values, counted."""

from __future__ import annotations


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
