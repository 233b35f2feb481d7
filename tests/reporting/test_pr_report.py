"""The pull-request report's pure parts (lifecycle.reporting.pr_report): gates, metric rows, flattening. The
report on real repositories is tested in tests/e2e/test_report.py."""

from __future__ import annotations

import pytest

from lifecycle.config import ClassificationGates, Promote, RegressionGates
from lifecycle.reporting.pr_report import flatten, metric_rows, promotion_gates


def test_gate_helpers() -> None:
    promote = Promote(
        classification=ClassificationGates(min={"accuracy": 0.9}, max={"log_loss": 2}, min_improvement={}),
        regression=RegressionGates(min={"r2": 0.3}, max={"rmse": 2}, min_improvement={"rmse": 0.0}),
        strict=True,
    )
    # the task's own thresholds, never the other task's
    assert promotion_gates(promote, "classification") == {"accuracy": (">=", 0.9), "log_loss": ("<=", 2.0)}
    assert promotion_gates(promote, "regression") == {"r2": (">=", 0.3), "rmse": ("<=", 2.0)}
    empty = ClassificationGates(min={}, max={}, min_improvement={})
    no_gates = promotion_gates(promote.model_copy(update={"classification": empty}), "classification")
    assert no_gates == {}
    rows = metric_rows({"m.json": {"accuracy": {"old": 0.95, "new": 0.85}, "rmse": {"new": 1.0}}}, no_gates)
    assert [(r.name, r.passed, r.delta) for r in rows] == [
        ("accuracy", None, pytest.approx(-0.1)),
        ("rmse", None, None),
    ]
    gates = {"accuracy": (">=", 0.9)}
    rows = metric_rows({"m.json": {"accuracy": {"new": 0.95}, "feedback.test.accuracy": {"new": 0.5}}}, gates)
    assert {r.name: r.passed for r in rows} == {"accuracy": True, "feedback.test.accuracy": None}
    assert flatten({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}
