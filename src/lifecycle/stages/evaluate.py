"""Stage ``evaluate``: score the model on the test split with dvclive; metrics, plot data and PNG pictures.

    python -m lifecycle.stages.evaluate --model MODEL --data TEST --schema SCHEMA --out metrics/evaluate

Writes ``<out>/metrics.json`` and ``<out>/plots/`` (dvclive layout, declared by hand in dvc.yaml because
dvclive runs with ``dvcyaml=False``).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import Any

import joblib
import matplotlib
import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from lifecycle import cli
from lifecycle.config import Evaluate, load_params
from lifecycle.data.readers import read_parquet
from lifecycle.errors import DataError
from lifecycle.modeling.metrics import score
from lifecycle.schema import Schema, read_schema

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)
GRID = np.linspace(0.0, 1.0, 101)


def one_vs_rest_curves(y: pd.Series, proba: np.ndarray, classes: Sequence[Any]) -> tuple[list[dict], list[dict]]:
    """ROC (TPR at each FPR of a fixed grid) and precision-recall (best precision at each recall) per class,
    in long form (one row per class and grid point) for the ``class_curves`` template."""
    roc: list[dict] = []
    pr: list[dict] = []
    for i, cls in enumerate(classes):
        positive = (y == cls).to_numpy()
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, proba[:, i])
        precision, recall, _ = precision_recall_curve(positive, proba[:, i])
        order = np.argsort(recall, kind="stable")
        best = np.maximum.accumulate(precision[order][::-1])[::-1]  # interpolated precision
        for x, t in zip(GRID, np.interp(GRID, fpr, tpr), strict=True):
            roc.append({"class": str(cls), "fpr": round(float(x), 4), "tpr": round(float(t), 4)})
        for x, p in zip(GRID, np.interp(GRID, recall[order], best), strict=True):
            pr.append({"class": str(cls), "recall": round(float(x), 4), "precision": round(float(p), 4)})
    return roc, pr


def importances(model: Any, X: pd.DataFrame, y: pd.Series, cfg: Evaluate, seed: int) -> list[dict]:
    """Permutation importance of each raw input column on at most ``permutation_max_rows`` test rows."""
    if len(X) > cfg.permutation_max_rows:
        X = X.sample(cfg.permutation_max_rows, random_state=seed)
        y = y.loc[X.index]
    log.info(
        "permutation importance: %d columns x %d repeats on %d rows",
        X.shape[1],
        cfg.permutation_repeats,
        len(X),
    )
    result = permutation_importance(model, X, y, n_repeats=cfg.permutation_repeats, random_state=seed, n_jobs=1)
    rows = [
        {"feature": str(c), "importance": round(float(m), 6)}
        for c, m in zip(X.columns, result.importances_mean, strict=True)
    ]
    return sorted(rows, key=lambda r: -r["importance"])


def _figure_lines(rows: list[dict], x: str, y: str, title: str, diagonal: bool) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    for cls in dict.fromkeys(r["class"] for r in rows):
        mine = [r for r in rows if r["class"] == cls]
        ax.plot([r[x] for r in mine], [r[y] for r in mine], label=cls)
    if diagonal:
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(title=title, xlabel=x, ylabel=y, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _figure_confusion(y: pd.Series, pred: np.ndarray, classes: Sequence[Any]) -> plt.Figure:
    cm = confusion_matrix(y, pred, labels=list(classes))
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    ax.imshow(cm, cmap="Blues")
    labels = [str(c) for c in classes]
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="actual")
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_yticklabels(labels)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black", fontsize=8)
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    return fig


def _figure_importance(rows: list[dict]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 0.3 * len(rows) + 1.2), dpi=100)
    ax.barh([r["feature"] for r in rows][::-1], [r["importance"] for r in rows][::-1], color="#4c72b0")
    ax.set(title="Permutation importance (test split)", xlabel="mean score drop")
    fig.tight_layout()
    return fig


def _figure_scatter(x: np.ndarray, y: np.ndarray, title: str, xlabel: str, ylabel: str, ref: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    ax.scatter(x, y, s=6, alpha=0.4)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    if ref == "diagonal":
        ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=0.8)
    else:
        ax.axhline(0, ls="--", c="grey", lw=0.8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    return fig


def evaluate(model: Any, df: pd.DataFrame, schema: Schema, cfg: Evaluate, seed: int, live: Any) -> dict[str, float]:
    """Compute metrics, plot data and pictures on ``df`` and log them to the dvclive ``live`` object."""
    missing = [c for c in [*schema.features, schema.target] if c not in df.columns]
    if missing:
        raise DataError(f"test data lacks column(s) {missing}; rerun split")
    X, y = df[schema.features], df[schema.target]
    pred = model.predict(X)
    figures: dict[str, plt.Figure] = {}
    if schema.task == "classification":
        proba = model.predict_proba(X)
        metrics = score("classification", y, pred, proba, schema.classes)
        live.log_sklearn_plot("confusion_matrix", y.astype(str).tolist(), pd.Series(pred).astype(str).tolist())
        roc, pr = one_vs_rest_curves(y, proba, schema.classes)
        live.log_plot("roc", roc, x="fpr", y="tpr", template="class_curves", title="ROC, one vs rest")
        live.log_plot(
            "precision_recall",
            pr,
            x="recall",
            y="precision",
            template="class_curves",
            title="Precision-recall",
        )
        figures["confusion_matrix.png"] = _figure_confusion(y, pred, schema.classes)
        figures["roc.png"] = _figure_lines(roc, "fpr", "tpr", "ROC, one vs rest", diagonal=True)
        figures["precision_recall.png"] = _figure_lines(pr, "recall", "precision", "Precision-recall", diagonal=False)
    else:
        metrics = score("regression", y, pred)
        sample = np.random.default_rng(seed).permutation(len(y))[:2000]
        actual, predicted = y.to_numpy()[sample], np.asarray(pred)[sample]
        points = [
            {"actual": round(float(a), 4), "predicted": round(float(p), 4)}
            for a, p in zip(actual, predicted, strict=True)
        ]
        live.log_plot(
            "predicted_vs_actual",
            points,
            x="actual",
            y="predicted",
            template="scatter",
            title="Predicted vs actual",
        )
        resid = [{"predicted": p["predicted"], "residual": round(p["actual"] - p["predicted"], 4)} for p in points]
        live.log_plot("residuals", resid, x="predicted", y="residual", template="scatter", title="Residuals")
        figures["predicted_vs_actual.png"] = _figure_scatter(
            actual, predicted, "Predicted vs actual", "actual", "predicted", "diagonal"
        )
        figures["residuals.png"] = _figure_scatter(
            predicted, actual - predicted, "Residuals", "predicted", "actual - predicted", "zero"
        )
    imp = importances(model, X, y, cfg, seed)
    live.log_plot(
        "importance",
        imp,
        x="importance",
        y="feature",
        template="bar_horizontal_sorted",
        title="Permutation importance",
    )
    figures["importance.png"] = _figure_importance(imp)
    for name, value in metrics.items():
        live.log_metric(name, value, plot=False)
    for name, fig in figures.items():
        live.log_image(name, fig)
        plt.close(fig)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--out", required=True, help="dvclive directory")
    args = parser.parse_args(argv)

    from dvclive import Live

    params = load_params(args.params)
    schema = read_schema(args.schema)
    if not os.path.exists(args.model):
        raise DataError(f"{args.model}: model not found; run `dvc repro train` first")
    model = joblib.load(args.model)
    df = read_parquet(args.data, "test split")
    with Live(dir=args.out, dvcyaml=False, save_dvc_exp=False, report=None) as live:
        metrics = evaluate(model, df, schema, params.evaluate, params.base.seed, live)
    log.info("test metrics on %d rows: %s", len(df), ", ".join(f"{k}={v}" for k, v in metrics.items()))


if __name__ == "__main__":
    cli.run(main)
