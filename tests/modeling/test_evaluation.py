"""lifecycle.modeling.evaluation: curves, permutation importance, and what evaluate computes for each task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from lifecycle.config import Evaluate
from lifecycle.errors import DataError
from lifecycle.modeling.evaluation import GRID, evaluate, importances, one_vs_rest_curves
from lifecycle.modeling.features import build_preprocessor
from lifecycle.modeling.metrics import CLASSIFICATION, REGRESSION
from lifecycle.schema import infer_schema

CFG = Evaluate(permutation_repeats=2, permutation_max_rows=150, shap_max_rows=100)


def frame(task: str, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    signal, noise = rng.normal(size=n), rng.normal(size=n)
    target = np.where(signal > 0, "high", "low") if task == "classification" else 3 * signal + 0.1 * noise
    return pd.DataFrame({"signal": signal, "noise": noise, "y": target})


def fitted(df: pd.DataFrame, task: str) -> tuple[Pipeline, object]:
    schema = infer_schema(df, "y", task)
    estimator = LogisticRegression() if task == "classification" else Ridge()
    model = Pipeline([("preprocess", build_preprocessor(schema)), ("model", estimator)])
    return model.fit(df[schema.features], df["y"]), schema


def test_curves_per_class_on_the_grid() -> None:
    y = pd.Series(["a", "b", "a", "b", "a"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3]])
    roc, pr = one_vs_rest_curves(y, proba, ["a", "b", "c"])  # "c" never occurs: no curve
    assert {r["class"] for r in roc} == {r["class"] for r in pr} == {"a", "b"}
    assert len(roc) == len(pr) == 2 * len(GRID)
    assert all(r["tpr"] == 1.0 for r in roc if r["fpr"] == 1.0)
    assert all(r["precision"] == 1.0 for r in pr)  # perfectly ranked


def test_importance_ranks_the_signal_first() -> None:
    df = frame("classification")
    model, schema = fitted(df, "classification")
    rows = importances(model, df[schema.features], df["y"], CFG, seed=1)
    assert [r["feature"] for r in rows] == ["signal", "noise"]
    assert rows[0]["importance"] > 0.2


def test_classification_evaluation() -> None:
    df = frame("classification")
    model, schema = fitted(df, "classification")
    result = evaluate(model, df, schema, CFG, seed=1)
    assert set(result.metrics) == set(CLASSIFICATION)
    assert result.confusion is not None and result.confusion[0] == df["y"].tolist()
    assert [p.name for p in result.plots] == ["roc", "precision_recall", "importance"]
    assert list(result.figures) == ["confusion_matrix.png", "roc.png", "precision_recall.png", "importance.png"]


def test_regression_evaluation() -> None:
    df = frame("regression")
    model, schema = fitted(df, "regression")
    result = evaluate(model, df, schema, CFG, seed=1)
    assert set(result.metrics) == set(REGRESSION) and result.metrics["r2"] > 0.9
    assert result.confusion is None
    assert [p.name for p in result.plots] == ["predicted_vs_actual", "residuals", "importance"]
    assert len(result.plots[0].rows) == len(df)
    assert list(result.figures) == ["predicted_vs_actual.png", "residuals.png", "importance.png"]


def test_missing_column_is_refused() -> None:
    df = frame("regression")
    model, schema = fitted(df, "regression")
    with pytest.raises(DataError, match=r"test data lacks column\(s\) \['noise'\]; rerun split"):
        evaluate(model, df.drop(columns="noise"), schema, CFG, seed=1)
