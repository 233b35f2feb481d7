"""Prometheus metrics of one app (its own registry, so several apps can live in one process, e.g. in tests).

With several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory: /metrics then aggregates
every worker's values (prometheus-client's multiprocess mode); without it each scrape sees one worker.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

__all__ = ["CONTENT_TYPE", "Metrics"]
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER = "<other>"


class Metrics:
    def __init__(self, field_names: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.fields = set(field_names)  # label values allowed for `field` (bounded cardinality)
        r = self.registry
        self.requests = Counter(
            "lifecycle_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "lifecycle_request_seconds",
            "Request latency by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("lifecycle_predicted_rows", "Rows predicted, by model role", ["role"], registry=r)
        self.predictions = Counter(
            "lifecycle_predictions", "Predictions by model role and predicted class", ["role", "label"], registry=r
        )
        self.explained_rows = Counter(
            "lifecycle_explained_rows", "Rows explained (SHAP, :explain routes), by model role", ["role"], registry=r
        )
        self.explanations = Counter(
            "lifecycle_explanations", "Explanations by model role and predicted class", ["role", "label"], registry=r
        )
        self.validation_failures = Counter(
            "lifecycle_validation_failures",
            "Rejected request values by route, field (schema column or part of the body) and rule",
            ["route", "field", "rule"],
            registry=r,
        )
        self.log_dropped = Counter(
            "lifecycle_prediction_log_dropped_rows", "Rows not logged because the log queue was full", registry=r
        )
        self.log_errors = Counter("lifecycle_prediction_log_errors", "Prediction log write/format errors", registry=r)
        self.shadow_dropped = Counter(
            "lifecycle_shadow_dropped_requests",
            "Shadow predictions skipped because the challenger fell behind",
            registry=r,
        )
        self.shadow_errors = Counter("lifecycle_shadow_errors", "Shadow predictions that failed", registry=r)
        self.engine_fallbacks = Counter(
            "lifecycle_engine_fallbacks",
            "Requests the ONNX engine failed on, answered by scikit-learn instead",
            ["role", "engine"],
            registry=r,
        )
        self.model_info = Gauge(
            "lifecycle_model_info", "The loaded models (value 1)", ["role", "name", "version", "engine"], registry=r
        )

    def count_predictions(self, role: str, labels: Any, classification: bool) -> None:
        values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        self.rows.labels(role).inc(len(values))
        if classification:
            for label, n in Tally(values).items():
                self.predictions.labels(role, str(label)).inc(n)

    def count_explanations(self, role: str, labels: Any, classification: bool) -> None:
        """Count explained rows (apart from predictions: an explanation is not a served prediction)."""
        values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        self.explained_rows.labels(role).inc(len(values))
        if classification:
            for label, n in Tally(values).items():
                self.explanations.labels(role, str(label)).inc(n)

    def count_failure(self, route: str, field: str, rule: str) -> None:
        self.validation_failures.labels(route, field if field in self.fields else OTHER, rule).inc()

    def render(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
