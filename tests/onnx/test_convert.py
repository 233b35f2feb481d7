"""Conversion: every model family converts and agrees with scikit-learn, in the precision scikit-learn computes
in; the bytes are deterministic; a pipeline that cannot convert, or export switched off, is reported, not raised."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.onnx.conftest import CASES, THRESHOLDS, fit

from lifecycle.onnx.convert import convert, export_pipeline
from lifecycle.onnx.runtime import OnnxPredictor


@pytest.mark.parametrize(("dataset", "model"), CASES)
def test_every_family_converts_with_parity(datasets: dict[str, Any], exported: dict, dataset: str, model: str) -> None:
    schema, _, test = datasets[dataset]
    pipeline, onnx, report = exported[(dataset, model)]
    parity = report["parity"]
    assert onnx is not None, report["reason"]
    assert report["usable"] and parity["passed"] and report["reason"] == ""
    assert parity["rows"] == len(test)
    # float64 inputs and exact thresholds: ~1e-7, the float32 scores of onnxruntime's tree operators
    scale = 1.0 if schema.task == "classification" else float(test[schema.target].abs().max())
    assert parity["max_abs_diff"] <= 1e-6 * scale
    assert parity["thresholds"]["max_abs_diff"] == THRESHOLDS["max_abs_diff"]

    predictor = OnnxPredictor.from_bytes(onnx, schema)
    X = test[schema.features]
    labels, proba = predictor.run(X)
    expected = pipeline.predict(X)
    if schema.task == "classification":
        # The label type round-trips: strings for telemetry, integers 3..8 for wine quality.
        assert labels.dtype == expected.dtype
        assert list(predictor.classes_) == list(pipeline.classes_)
        assert type(labels[0]) is type(expected[0])
        assert parity["label_agreement"] >= THRESHOLDS["min_label_agreement"]
        np.testing.assert_allclose(proba, pipeline.predict_proba(X), atol=1e-6, rtol=0)
        assert proba.dtype == np.float64 and proba.shape == (len(X), len(pipeline.classes_))
    else:
        assert parity["label_agreement"] is None and proba is None
        assert labels.dtype == np.float64
        np.testing.assert_allclose(labels, expected, rtol=1e-6, atol=0)  # float32 graph: measured 9.3e-8 relative


def test_conversion_is_deterministic(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, _ = datasets["telemetry"]
    pipeline, onnx, _ = exported[("telemetry", "hist_gradient_boosting")]
    assert convert(pipeline, schema, 17) == onnx


def test_inputs_have_the_precision_scikit_learn_compares_in(datasets: dict[str, Any], exported: dict) -> None:
    """Forests compare float32 in scikit-learn, everything else float64; the graph's inputs follow."""
    for (name, model), (_, onnx, report) in exported.items():
        schema = datasets[name][0]
        session = OnnxPredictor.from_bytes(onnx, schema).session
        types = {i.name: i.type for i in session.get_inputs()}
        expected = "tensor(float)" if model == "random_forest" else "tensor(double)"
        assert {types[c] for c in schema.numeric} == {expected}, (name, model)
        assert report["inputs"]["numeric"] == ("float32" if model == "random_forest" else "float64")
        if schema.categorical:
            assert {types[c] for c in schema.categorical} == {"tensor(string)"}


# --------------------------------------------------------------------------------------------- fallback
def test_a_custom_step_that_cannot_convert_is_reported_not_raised(datasets: dict[str, Any]) -> None:
    schema, train, test = datasets["wine"]
    base = fit(schema, train, "logistic_regression")
    custom = Pipeline(
        [("preprocess", base.steps[0][1]), ("log", FunctionTransformer(np.log1p)), ("model", base.steps[1][1])]
    )
    onnx, report = export_pipeline(custom, schema, test[schema.features], enabled=True, opset=17, **THRESHOLDS)
    assert onnx is None
    assert report["usable"] is False and report["parity"] is None
    assert report["reason"].startswith("skl2onnx cannot convert the pipeline:")
    assert "FunctionTransformer" in report["reason"]
    assert " at 0x" not in report["reason"]  # nothing volatile in model.json


def test_disabled_export_says_so(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, _, _ = exported[("telemetry", "logistic_regression")]
    onnx, report = export_pipeline(pipeline, schema, test[schema.features], enabled=False, opset=17, **THRESHOLDS)
    assert onnx is None and report["usable"] is False and "export.enabled is false" in report["reason"]
