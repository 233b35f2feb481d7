"""lifecycle.modeling.evaluation: curves, permutation importance, and what evaluate computes for each task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from lifecycle.config import Evaluate
from lifecycle.errors import DataError
from lifecycle.modeling import evaluation
from lifecycle.modeling.evaluation import (
    GRID,
    PLOTS,
    evaluate,
    figure_confusion,
    importances,
    one_vs_rest_curves,
    sample_rows,
)
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
    rows = {p.name: p.rows for p in result.plots}
    assert list(rows) == list(PLOTS)  # every declared plot file, in dvc.yaml's order
    assert [r["actual"] for r in rows["confusion_matrix"]] == df["y"].tolist()
    assert all(rows[name] for name in ("confusion_matrix", "roc", "precision_recall", "importance"))
    assert rows["predicted_vs_actual"] == rows["residuals"] == []  # the other task's: empty, drawn by nobody
    assert list(result.figures) == ["confusion_matrix.png", "roc.png", "precision_recall.png", "importance.png"]


@pytest.mark.parametrize(("cap", "seed"), [(50, 1), (120, 1), (50, 2)])
def test_the_confusion_plot_data_is_a_seeded_sample_of_large_test_splits(monkeypatch, cap: int, seed: int) -> None:
    """Above CONFUSION_ROWS test rows, dvclive's confusion plot gets a seeded sample (in split order); the metrics
    and the PNG still use every row."""
    df = frame("classification")
    model, schema = fitted(df, "classification")
    full = evaluate(model, df, schema, CFG, seed=seed)
    monkeypatch.setattr(evaluation, "CONFUSION_ROWS", cap)
    result = evaluate(model, df, schema, CFG, seed=seed)
    rows = sample_rows(len(df), cap, seed)
    assert len(rows) == cap == len(np.unique(rows)) and np.all(np.diff(rows) > 0)
    confusion = {p.name: p.rows for p in result.plots}["confusion_matrix"]
    every_row = {p.name: p.rows for p in full.plots}["confusion_matrix"]
    assert len(every_row) == len(df)
    assert confusion == [every_row[i] for i in rows]
    assert result.metrics == full.metrics
    assert not np.array_equal(rows, sample_rows(len(df), cap, seed + 1))


@pytest.mark.parametrize(("n", "size"), [(0, 5), (5, 5), (3, 5)])
def test_a_sample_of_at_least_every_row_is_every_row(n: int, size: int) -> None:
    np.testing.assert_array_equal(sample_rows(n, size, seed=0), np.arange(n))


def test_regression_evaluation() -> None:
    df = frame("regression")
    model, schema = fitted(df, "regression")
    result = evaluate(model, df, schema, CFG, seed=1)
    assert set(result.metrics) == set(REGRESSION) and result.metrics["r2"] > 0.9
    rows = {p.name: p.rows for p in result.plots}
    assert list(rows) == list(PLOTS)
    assert rows["confusion_matrix"] == rows["roc"] == rows["precision_recall"] == []
    assert len(rows["predicted_vs_actual"]) == len(rows["residuals"]) == len(df)
    assert list(result.figures) == ["predicted_vs_actual.png", "residuals.png", "importance.png"]


def test_missing_column_is_refused() -> None:
    df = frame("regression")
    model, schema = fitted(df, "regression")
    with pytest.raises(DataError, match=r"test data lacks column\(s\) \['noise'\]; rerun split"):
        evaluate(model, df.drop(columns="noise"), schema, CFG, seed=1)


def test_confusion_png_has_actual_rows_and_predicted_columns_as_declared() -> None:
    """The PNG's orientation is the one dvc.yaml declares (PLOTS): actual on the y axis (rows), predicted on x."""
    spec = PLOTS["confusion_matrix"]
    assert (spec.x, spec.y, spec.template) == ("predicted", "actual", "confusion")
    y_true = pd.Series(["a", "a", "a", "b"])
    y_pred = np.array(["b", "b", "a", "b"])  # two a's predicted as b, none the other way
    ax = figure_confusion(y_true, y_pred, ["a", "b"]).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == (spec.x, spec.y)
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {(0, 0): "1", (0, 1): "2", (1, 0): "0", (1, 1): "1"}  # (row = actual, column = predicted)
