"""GET /metrics: requests, latency, predicted classes and refused values, counted."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families


def test_metrics_count_requests_latency_classes_and_failures(client, records):
    client.post("/predict", json={"records": records[:10]})
    client.post("/predict", json={"records": [dict(records[0], charge_mode="turbo")]})
    text = client.get("/metrics").text
    assert 'lifecycle_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'lifecycle_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert 'lifecycle_request_duration_seconds_bucket{le="0.5",route="/predict"}' in text
    assert 'lifecycle_predicted_rows_total{role="champion"} 10.0' in text
    assert 'lifecycle_predictions_total{label="none",role="champion"}' in text
    assert 'lifecycle_validation_failures_total{field="charge_mode",route="/predict",rule="literal_error"} 1.0' in text
    assert 'lifecycle_model_info{engine="onnx",name="lifecycle",role="champion"' in text


def test_default_collectors_and_training_class_share(client):
    text = client.get("/metrics").text
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "python_gc_collections_total",
        "python_info",
    ):
        assert f"\n{name}" in text, name
    shares = {
        line.split('label="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lifecycle_training_class_share{")
    }
    distribution = client.app.state.serving.meta.data.target_distribution
    assert shares == pytest.approx({k: v / sum(distribution.values()) for k, v in distribution.items()})


def test_metric_names_follow_prometheus_conventions(client, records):
    client.post("/predict", json={"records": records[:1]})
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    ours = {name: f for name, f in families.items() if name.startswith("lifecycle_")}
    assert ours["lifecycle_request_duration_seconds"].type == "histogram"
    for name, family in ours.items():
        if family.type == "counter" and family.samples:  # exposed as <name>_total
            assert any(s.name == f"{name}_total" for s in family.samples), name
        if family.type == "histogram":
            assert name.endswith("_seconds"), name
        assert not name.endswith("_total"), name  # the library adds it
