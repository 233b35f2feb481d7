"""The runtime: labels keep their type, single rows from dicts match scikit-learn (missing and unknown categories
included), the server's gate serves only a verified file, and bad input is refused naming the feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.onnx.conftest import frame

from lifecycle.artifact import ModelMetadata, predict
from lifecycle.data import telemetry
from lifecycle.errors import DataError
from lifecycle.io import sha256_file
from lifecycle.onnx.runtime import OnnxPredictor, load_predictor


def test_label_types_round_trip(datasets: dict[str, Any], exported: dict) -> None:
    wine, _, wine_test = datasets["wine"]
    predictor = OnnxPredictor.from_bytes(exported[("wine", "random_forest")][1], wine)
    assert predictor.classes_.tolist() == [3, 4, 5, 6, 7, 8] and predictor.classes_.dtype == np.int64
    label, _ = predictor.run_one(wine_test[wine.features].iloc[0].to_dict())
    assert isinstance(label[0], np.int64)
    tel, _, tel_test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "random_forest")][1], tel)
    assert predictor.classes_.tolist() == sorted(telemetry.CLASSES)
    label, _ = predictor.run_one(tel_test[tel.features].iloc[0].to_dict())
    assert isinstance(label[0], str)


def test_single_row_from_a_dict_matches_sklearn_with_missing_and_unknown_values(
    datasets: dict[str, Any], exported: dict
) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, onnx, _ = exported[("telemetry", "hist_gradient_boosting")]
    predictor = OnnxPredictor.from_bytes(onnx, schema)
    records = test[schema.features].head(80).astype(object).where(test[schema.features].head(80).notna(), None)
    records = records.to_dict("records")
    records[0]["state_of_health_pct"] = None  # a missing numeric reading is imputed in both engines
    records[1]["charge_mode"] = float("nan")  # NaN category, as pandas would give it
    records[2]["climate_zone"] = "arctic"  # never seen in training
    assert records[5]["charge_mode"] is None and records[35]["chemistry"] == "solid_state"
    for record in records:
        label, proba = predictor.run_one(record)
        expected_label, expected = predict(pipeline, frame([record], schema), schema.task)  # the one sklearn path
        np.testing.assert_allclose(proba, expected, atol=1e-6, rtol=0)
        assert label[0] == expected_label[0] == pipeline.classes_[np.argmax(expected)]
    # Missing or unknown categories encode as all zeros: the same answer as a row with every category unknown.
    unknown = dict(records[3], charge_mode="warp", chemistry="unobtainium", climate_zone="moon")
    missing = dict(records[3], charge_mode=None, chemistry=None, climate_zone=None)
    np.testing.assert_allclose(predictor.run_one(unknown)[1], predictor.run_one(missing)[1], atol=0)
    # the batch path on dicts equals the batch path on a DataFrame
    np.testing.assert_allclose(predictor.run(records)[1], predictor.run(pd.DataFrame(records))[1], atol=0)


def test_regression_single_row(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["wine_regression"]
    pipeline, onnx, _ = exported[("wine_regression", "ridge")]
    predictor = OnnxPredictor.from_bytes(onnx, schema)
    record = test[schema.features].iloc[0].to_dict()
    prediction, proba = predictor.run_one(record)
    assert proba is None and prediction.shape == (1,) and prediction.dtype == np.float64
    assert prediction[0] == pytest.approx(pipeline.predict(frame([record], schema))[0], rel=1e-6, abs=0)
    assert predictor.predict([record])[0] == prediction[0]
    with pytest.raises(AttributeError, match="regressor"):
        predictor.predict_proba([record])


# --------------------------------------------------------------------------------------------- the gate
def test_load_predictor_serves_only_a_verified_file(tmp_path: Path, datasets: dict[str, Any], exported: dict) -> None:
    schema, _, _ = datasets["telemetry"]
    _, onnx, report = exported[("telemetry", "random_forest")]
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx)
    section = report | {"sha256": sha256_file(path)}

    predictor, why = load_predictor({"onnx": section}, path, schema)
    assert predictor is not None and why == ""

    assert load_predictor({}, path, schema)[1].startswith("model.json has no 'onnx' section")
    not_usable = section | {"usable": False, "reason": "parity failed on the test split: x"}
    assert load_predictor({"onnx": not_usable}, path, schema) == (
        None,
        "ONNX model not usable: parity failed on the test split: x",
    )
    predictor, why = load_predictor({"onnx": section | {"sha256": "0" * 64}}, path, schema)
    assert predictor is None and "does not match" in why
    path.write_bytes(b"")
    predictor, why = load_predictor({"onnx": section}, path, schema)
    assert predictor is None and "missing or empty" in why


def test_load_predictor_takes_the_typed_record(tmp_path: Path, datasets: dict[str, Any], exported: dict) -> None:
    """The same gate on model.json read as :class:`ModelMetadata` (what the server holds)."""
    schema, _, _ = datasets["telemetry"]
    _, onnx, report = exported[("telemetry", "random_forest")]
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx)
    record = ModelMetadata.from_dict(
        {
            "model": {"file": "model.joblib", "sha256": "0" * 64, "bytes": 1, "family": "random_forest",
                      "task": "classification", "hyperparameters": {}, "seed": 42, "search": {}},
            "data": {"file": "train.parquet", "sha256": "0" * 64, "rows": 1, "target_distribution": {}},
            "packages": {}, "schema": schema.to_dict(), "metrics": {},
            "onnx": report | {"file": "model.onnx", "sha256": sha256_file(path), "bytes": len(onnx)},
        }
    )  # fmt: skip
    predictor, why = load_predictor(record, path, schema)
    assert isinstance(predictor, OnnxPredictor) and why == ""
    assert load_predictor(record.model_copy(update={"onnx": None}), path, schema)[1].startswith("model.json has no")
    path.write_bytes(onnx + b"\x00")
    predictor, why = load_predictor(record, path, schema)
    assert predictor is None and "does not match" in why


# --------------------------------------------------------------------------------------------- bad input
def test_a_record_without_a_feature_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], schema)
    record = test[schema.features].iloc[0].to_dict()
    del record["pack_voltage_v"]
    with pytest.raises(DataError, match="record has no feature 'pack_voltage_v'"):
        predictor.run_one(record)
    with pytest.raises(DataError, match="a record has no feature 'pack_voltage_v'"):
        predictor.run([record])


def test_a_non_numeric_value_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], schema)
    record = test[schema.features].iloc[0].to_dict() | {"pack_voltage_v": "high"}
    with pytest.raises(DataError, match=r"'pack_voltage_v'.*not a number"):
        predictor.run_one(record)
    with pytest.raises(DataError, match="'pack_voltage_v' is not numeric in every record"):
        predictor.run([record])
    with pytest.raises(DataError, match="'pack_voltage_v' is not numeric"):
        predictor.run(pd.DataFrame([record]))


def test_rows_without_a_feature_column_are_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    predictor = OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], schema)
    with pytest.raises(DataError, match=r"no feature column\(s\) \['chemistry'\]"):
        predictor.run(test[schema.features].drop(columns=["chemistry"]))


def test_an_empty_onnx_file_is_refused(tmp_path: Path, datasets: dict[str, Any]) -> None:
    schema, _, _ = datasets["telemetry"]
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(DataError, match=r"model\.onnx: no ONNX model"):
        OnnxPredictor(tmp_path / "model.onnx", schema)


def test_a_model_for_another_schema_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    wine_schema, _, _ = datasets["wine"]
    with pytest.raises(DataError, match="exported for task 'classification' with features"):
        OnnxPredictor.from_bytes(exported[("telemetry", "hist_gradient_boosting")][1], wine_schema)
