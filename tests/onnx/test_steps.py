"""lifecycle.onnx.steps: the project's own pipeline steps (datetime features, infrequent categories) convert to ONNX
exactly, for every model family, and the ONNX engine agrees with scikit-learn on records as the server gets them:
dates as text with offsets or as datetime objects, missing dates and categories, categories never seen."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from tests.onnx.conftest import THRESHOLDS, fit

from lifecycle.modeling.features import INFREQUENT
from lifecycle.onnx.convert import export_pipeline
from lifecycle.onnx.runtime import OnnxPredictor
from lifecycle.schema import coerce_frame, infer_schema
from lifecycle.serve.predictors import SklearnPredictor

PARTS = ["hour", "day_of_week", "month", "elapsed_days"]


def own_data(task: str, n: int = 900) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    at = pd.Timestamp("2024-01-01", tz="America/Chicago") + pd.to_timedelta(rng.integers(0, 400 * 86400, n), unit="s")
    towns = [f"t{i}" for i in range(80)]
    p = 1.0 / np.arange(1, 81)
    town = rng.choice(towns, n, p=p / p.sum())
    x = rng.normal(size=n)
    score = x + (at.hour >= 12) + 0.5 * np.isin(town, towns[:4]) + 0.2 * at.month.to_numpy() / 12
    frame = pd.DataFrame({"at": at, "town": town, "x": x})
    frame["y"] = np.where(score > 1, "high", "low") if task == "classification" else score
    frame.loc[::37, "at"] = pd.NaT
    frame.loc[::41, "town"] = None
    return frame.iloc[:700].reset_index(drop=True), frame.iloc[700:].reset_index(drop=True)


@pytest.mark.parametrize(
    ("task", "model"),
    [
        ("classification", "hist_gradient_boosting"),
        ("classification", "random_forest"),
        ("classification", "logistic_regression"),
        ("regression", "hist_gradient_boosting"),
        ("regression", "ridge"),
    ],
)
def test_datetime_and_infrequent_steps_convert_exactly(task: str, model: str) -> None:
    train, test = own_data(task)
    schema = infer_schema(train, "y", task, max_categories=10, min_category_rows=5, datetime_features=PARTS)
    assert schema.column("town").infrequent and schema.datetime_features == ["at"]
    train, test = coerce_frame(train, schema), coerce_frame(test, schema)
    test.loc[:9, "town"] = "never seen"
    pipeline = fit(schema, train, model)
    onnx, report = export_pipeline(pipeline, schema, test[schema.features], enabled=True, opset=17, **THRESHOLDS)
    assert report["usable"], report["reason"]
    assert report["parity"]["max_abs_diff"] <= 1e-6

    predictor = OnnxPredictor.from_bytes(onnx, schema)
    records = [
        {"x": 0.3, "town": "t0", "at": "2024-05-01T13:30:00-05:00"},
        {"x": 0.3, "town": "t0", "at": dt.datetime(2024, 5, 1, 18, 30, tzinfo=dt.UTC)},  # the same instant
        {"x": -1.0, "town": "not a town", "at": None},
        {"x": 2.0, "town": None},  # a date the request left out
        {"x": 0.0, "town": INFREQUENT, "at": "2026-12-31 23:59:59"},  # after every training date
    ]
    full = [{"at": None} | r for r in records]
    expected_labels, expected_proba = SklearnPredictor(pipeline, schema).predict(full)
    labels, proba = predictor.run(full)
    one = np.concatenate([predictor.run_one(r)[0] for r in records])
    if task == "classification":
        assert list(labels) == list(expected_labels) == list(one)
        np.testing.assert_allclose(proba, expected_proba, atol=1e-6)
        assert proba[0].tolist() == proba[1].tolist()
    else:
        np.testing.assert_allclose(labels, expected_labels, atol=1e-6)
        np.testing.assert_allclose(one, expected_labels, atol=1e-6)
        assert labels[0] == labels[1]
