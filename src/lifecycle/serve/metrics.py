"""Prometheus metrics of one app (its own registry, so several apps can live in one process, e.g. in tests).

Names follow Prometheus' conventions: base units in the name (``lifecycle_request_duration_seconds``), counters
exposed with ``_total`` by the client library (declared here without it, as prometheus-client wants), one ``_info``
gauge of value 1 for the loaded models. The registry also carries the client library's default collectors
(``process_*``: CPU, memory, file descriptors; ``python_gc_*``; ``python_info``), as its default registry would.

Several workers (``make serve WORKERS=2``): prometheus-client's multiprocess mode. ``python -m lifecycle.serve``
sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before the workers start (and removes it at exit); each
worker's values go to files there, and ``GET /metrics`` on any worker aggregates all of them
(``MultiProcessCollector``): counters and histograms are summed, the ``_info`` gauges keep their maximum (1). As the
library documents, the per-process collectors do not apply in that mode (it exports no ``process_*`` or
``python_gc_*`` for a group of workers; on Kubernetes the container's own metrics cover CPU and memory).
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "Metrics", "multiprocess_dir"]
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER = "<other>"


def multiprocess_dir() -> str | None:
    """The multiprocess directory prometheus-client writes to, when this process runs in that mode (the library
    chose it at import time from the same variable)."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The app's metrics (docs/serving.md lists them) in their own registry; :meth:`render` is ``GET /metrics``."""

    def __init__(self, field_names: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.fields = set(field_names)  # label values allowed for `field` (bounded cardinality)
        r = self.registry
        if multiprocess_dir() is None:  # the default registry's collectors (process_*, python_gc_*, python_info)
            for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
                r.register(collector)
        self.requests = Counter(
            "lifecycle_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "lifecycle_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template",
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
            "lifecycle_model_info",
            "The loaded models (value 1)",
            ["role", "name", "version", "engine"],
            registry=r,
            multiprocess_mode="max",
        )
        self.training_class_share = Gauge(
            "lifecycle_training_class_share",
            "Share of each class in the model's training rows (model.json data.target_distribution): the baseline of "
            "the predicted-class mix",
            ["role", "label"],
            registry=r,
            multiprocess_mode="max",
        )

    def count_predictions(self, role: str, y_pred: Any, classification: bool) -> None:
        """Count served rows and (classification) each predicted class."""
        _count(self.rows, self.predictions, role, y_pred, classification)

    def count_explanations(self, role: str, y_pred: Any, classification: bool) -> None:
        """Count explained rows (apart from predictions: an explanation is not a served prediction)."""
        _count(self.explained_rows, self.explanations, role, y_pred, classification)

    def count_failure(self, route: str, field: str, rule: str) -> None:
        self.validation_failures.labels(route, field if field in self.fields else OTHER, rule).inc()

    def set_model(self, role: str, name: str, version: str, engine: str, class_rows: dict[str, int]) -> None:
        """Record a loaded model: its ``_info`` gauge and its training class shares (``class_rows``: rows per class)."""
        self.model_info.labels(role, name, version, engine).set(1)
        total = sum(class_rows.values())
        for label, rows in class_rows.items():
            self.training_class_share.labels(role, str(label)).set(rows / total if total else 0.0)

    def render(self) -> bytes:
        """The Prometheus text format: this registry, or every worker's values in multiprocess mode."""
        if multiprocess_dir() is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _count(rows: Counter, by_class: Counter, role: str, y_pred: Any, classification: bool) -> None:
    """``rows`` += len(y_pred) for ``role``; for classification, ``by_class`` += each predicted class's count."""
    values = y_pred.tolist() if hasattr(y_pred, "tolist") else list(y_pred)
    rows.labels(role).inc(len(values))
    if classification:
        for label, n in Tally(values).items():
            by_class.labels(role, str(label)).inc(n)
