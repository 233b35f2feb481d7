"""Parity: a failed comparison is reported with the observed numbers and the thresholds; no rows is refused."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.errors import DataError
from lifecycle.onnx.convert import export_pipeline
from lifecycle.onnx.parity import check_parity


def test_failed_parity_is_reported_with_the_numbers(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, _, _ = exported[("telemetry", "logistic_regression")]
    onnx, report = export_pipeline(
        pipeline, schema, test[schema.features], enabled=True, opset=17, max_abs_diff=0.0, min_label_agreement=1.0
    )
    assert onnx is None and report["usable"] is False
    assert report["parity"]["passed"] is False and report["parity"]["max_abs_diff"] > 0
    assert "export.max_abs_diff 0" in report["reason"]


def test_parity_on_no_rows_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, onnx, _ = exported[("telemetry", "hist_gradient_boosting")]
    with pytest.raises(DataError, match="test split is empty"):
        check_parity(pipeline, onnx, test[schema.features].head(0), schema, 1e-4, 0.999)
