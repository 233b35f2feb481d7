"""Shared fixtures of the ONNX tests: every model family fitted on the telemetry preprocessing (numeric columns
with NaNs + one-hot categoricals) and on the wine-quality data (numeric only, integer classes), and exported."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from lifecycle.config import HistGradientBoosting, LogisticRegression, RandomForest, Ridge
from lifecycle.data import telemetry
from lifecycle.modeling.estimators import NEEDS_SCALING, build_model
from lifecycle.modeling.features import build_preprocessor
from lifecycle.onnx.convert import export_pipeline
from lifecycle.schema import Schema, coerce_frame, infer_schema, normalize_columns

ROOT = Path(__file__).resolve().parents[2]
WINE_RED = ROOT / "data/external/winequality-red.csv"
THRESHOLDS = {"max_abs_diff": 1e-4, "min_label_agreement": 0.999}
CLASSIFIERS = ["hist_gradient_boosting", "random_forest", "logistic_regression"]
REGRESSORS = ["hist_gradient_boosting", "random_forest", "ridge"]
CASES = [(d, m) for d in ("telemetry", "wine") for m in CLASSIFIERS] + [
    (d, m) for d in ("telemetry_regression", "wine_regression") for m in REGRESSORS
]


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting fits and predicts with OpenMP; on a busy 2-core machine (pytest -n 2, other jobs) its
    threads contend and one-row predictions take 100x longer. One thread keeps the tests fast and the sums stable."""
    with threadpool_limits(limits=1):
        yield


def small_train(model: str, hgb_iterations: int = 30) -> Any:
    """The ``train`` params section as build_model reads it (the model name and its hyperparameters)."""
    return types.SimpleNamespace(
        model=model,
        hist_gradient_boosting=HistGradientBoosting(
            max_iter=hgb_iterations, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.0
        ),
        random_forest=RandomForest(n_estimators=20, max_depth=None, min_samples_leaf=2, max_features="sqrt", n_jobs=1),
        logistic_regression=LogisticRegression(C=1.0, max_iter=1000),
        ridge=Ridge(alpha=1.0),
    )


def fit(schema: Schema, train: pd.DataFrame, model: str, hgb_iterations: int = 30) -> Pipeline:
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale_numeric=model in NEEDS_SCALING)),
            ("model", build_model(small_train(model, hgb_iterations), schema.task, seed=42)),
        ]
    )
    return pipeline.fit(train[schema.features], train[schema.target])


def frame(records: list[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Records as the pipeline expects them: float numerics, object categoricals (None/NaN = missing)."""
    df = pd.DataFrame(records, columns=schema.features)
    return df.astype(dict.fromkeys(schema.numeric, np.float64) | dict.fromkeys(schema.categorical, object))


def split(df: pd.DataFrame, n_train: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return df.iloc[:n_train].reset_index(drop=True), df.iloc[n_train:].reset_index(drop=True)


def red_wine() -> pd.DataFrame:
    return normalize_columns(pd.read_csv(WINE_RED, sep=";"))


@pytest.fixture(scope="session")
def datasets() -> dict[str, tuple[Schema, pd.DataFrame, pd.DataFrame]]:
    """name -> (schema, train, test): telemetry (classification, regression) and wine quality (both tasks)."""
    raw = telemetry.generate(rows=3000, version="v1", seed=7, missing_rate=0.02)
    schema = infer_schema(raw, telemetry.TARGET, "classification")
    tel = coerce_frame(raw, schema)
    tel_train, tel_test = split(tel, 2000)
    # The test rows also carry missing and unseen categories: both must encode as all zeros in ONNX too.
    tel_test.loc[:29, "charge_mode"] = None
    tel_test.loc[30:59, "chemistry"] = "solid_state"
    reg_raw = raw.drop(columns=[telemetry.TARGET]).dropna(subset=["state_of_health_pct"])
    reg_schema = infer_schema(reg_raw, "state_of_health_pct", "regression")
    reg_train, reg_test = split(coerce_frame(reg_raw, reg_schema), 2000)
    wine = red_wine().sample(frac=1.0, random_state=0).reset_index(drop=True)
    wine_train, wine_test = split(wine, 1100)
    return {
        "telemetry": (schema, tel_train, tel_test),
        "telemetry_regression": (reg_schema, reg_train, reg_test),
        "wine": (infer_schema(wine, "quality", "classification"), wine_train, wine_test),
        "wine_regression": (infer_schema(wine, "quality", "regression"), wine_train, wine_test),
    }


@pytest.fixture(scope="session")
def exported(datasets: dict[str, Any]) -> dict[tuple[str, str], tuple[Pipeline, bytes | None, dict[str, Any]]]:
    """(dataset, model) -> (fitted pipeline, ONNX bytes or None, export report) for every case of CASES."""
    out = {}
    with threadpool_limits(limits=1):
        for name, model in CASES:
            schema, train, test = datasets[name]
            pipeline = fit(schema, train, model)
            onnx, report = export_pipeline(
                pipeline, schema, test[schema.features], enabled=True, opset=17, **THRESHOLDS
            )
            out[(name, model)] = (pipeline, onnx, report)
    return out
