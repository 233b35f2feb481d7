"""What evaluate computes on the test split: metrics, plot data and pictures; no file I/O.

:func:`evaluate` predicts once with :func:`lifecycle.artifact.predict` and returns an :class:`Evaluation`: the
metrics of :func:`~lifecycle.modeling.metrics.compute_metrics`, the plot data in long form (one dict per point, as
DVC's plot templates read it) and matplotlib figures of the same plots. The evaluate stage logs them with dvclive.
Classification: confusion matrix, one-vs-rest ROC and precision-recall per class; regression: predicted vs actual
and residuals; both: permutation importance of each raw input column and, given the model's SHAP background, the
global SHAP view: mean |SHAP| of each raw input column over test rows (:mod:`lifecycle.modeling.explain`; ``[]``
without a background).

:data:`PLOTS` is how dvc.yaml's top-level ``plots:`` declares each file (x, y, template, title; a test holds the two
together). dvc.yaml cannot make a declaration depend on ``ingest.task``, so every declared file is written for both
tasks: a plot of the other task holds ``[]``, which DVC loads without a warning and draws nothing for (the offline
plots page leaves it out). The confusion matrix has the actual class on the rows (y) and the predicted class on
the columns (x), as scikit-learn's ``confusion_matrix`` and ``ConfusionMatrixDisplay`` lay it out, in the PNG, the
DVC plot and the PR report alike.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.inspection import permutation_importance
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from lifecycle import artifact
from lifecycle.config import Evaluate
from lifecycle.errors import DataError
from lifecycle.modeling.explain import Explainer, mean_abs_shap
from lifecycle.modeling.metrics import compute_metrics
from lifecycle.schema import Schema

log = logging.getLogger(__name__)
GRID = np.linspace(0.0, 1.0, 101)  # the x values (FPR, recall) at which curves are sampled
SCATTER_POINTS = 2000  # regression plots show at most this many test rows, sampled with the seed
# DVC's confusion plot gets one JSON record per row (~75 bytes): at most this many test rows, sampled with the seed
# (2M test rows were a 148 MB git-tracked file and ~85 s of dvclive; issue 20). Metrics and the PNG use every row.
CONFUSION_ROWS = 20_000


@dataclasses.dataclass(frozen=True)
class PlotSpec:
    """How one plot file is drawn: the fields on the x and y axes, the DVC template, the title, and the task it
    belongs to (None: both)."""

    x: str
    y: str
    template: str
    title: str
    task: str | None


# file name (without .json, under <evaluate out>/plots/custom/) -> its declaration in dvc.yaml's top-level plots
PLOTS: dict[str, PlotSpec] = {
    "confusion_matrix": PlotSpec("predicted", "actual", "confusion", "Confusion matrix (test split)", "classification"),
    "roc": PlotSpec("fpr", "tpr", "class_curves", "ROC, one vs rest (test split)", "classification"),
    "precision_recall": PlotSpec(
        "recall", "precision", "class_curves", "Precision-recall (test split)", "classification"
    ),
    "predicted_vs_actual": PlotSpec("actual", "predicted", "scatter", "Predicted vs actual (test split)", "regression"),
    "residuals": PlotSpec("predicted", "residual", "scatter", "Residuals (test split)", "regression"),
    "importance": PlotSpec(
        "importance", "feature", "bar_horizontal_sorted", "Permutation importance (test split)", None
    ),
    "shap_importance": PlotSpec("mean_abs_shap", "feature", "bar_horizontal_sorted", "Mean |SHAP| (test split)", None),
}


@dataclasses.dataclass(frozen=True)
class Plot:
    """One custom plot as dvclive's ``log_plot`` takes it: ``rows`` (one dict per point; ``[]`` for a plot of the
    other task) drawn as :data:`PLOTS` ``[name]`` says."""

    name: str
    rows: list[dict[str, Any]]

    @property
    def spec(self) -> PlotSpec:
        """This plot's :data:`PLOTS` entry."""
        return PLOTS[self.name]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The result of :func:`evaluate`.

    ``plots``: one :class:`Plot` per :data:`PLOTS` entry, in its order (``confusion_matrix``: one record per test
    row, or per :data:`CONFUSION_ROWS` of them sampled with the seed, in test-split order, when there are more);
    ``figures``: PNG file name -> figure of the task's plots, in the order they are to be saved.
    """

    metrics: dict[str, float]
    plots: list[Plot]
    figures: dict[str, Figure]


def evaluate(
    model: Any, df: pd.DataFrame, schema: Schema, cfg: Evaluate, seed: int, background: pd.DataFrame | None = None
) -> Evaluation:
    """Metrics, plot data and figures of the fitted pipeline ``model`` on ``df`` (the test split, raw rows).

    ``cfg``: params.yaml's ``evaluate`` section (permutation importance, the SHAP sample); ``seed`` (base.seed)
    draws the permutation rows, the SHAP rows and the regression scatter sample; ``background``: the model's SHAP
    background (raw rows, :func:`lifecycle.modeling.explain.background_frame`), without which there is no SHAP
    view. Raises :class:`~lifecycle.errors.DataError` when ``df`` lacks a feature or the target, or a classifier
    gives no probabilities, and :class:`~lifecycle.modeling.explain.ExplanationError` when the model cannot be
    explained.
    """
    missing = [c for c in [*schema.features, schema.target] if c not in df.columns]
    if missing:
        raise DataError(f"test data lacks column(s) {missing}; rerun split")
    X, y = df[schema.features], df[schema.target]
    y_pred, proba = artifact.predict(model, X, schema.task)
    metrics = compute_metrics(schema.task, y, y_pred, proba, schema.classes)
    figures: dict[str, Figure] = {}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in PLOTS}
    if schema.task == "classification":
        if proba is None:
            raise DataError(f"{type(model).__name__} has no predict_proba; evaluate needs class probabilities")
        sample = sample_rows(len(y), CONFUSION_ROWS, seed)
        rows["confusion_matrix"] = [
            {"actual": a, "predicted": p}
            for a, p in zip(y.iloc[sample].astype(str), pd.Series(np.asarray(y_pred)[sample]).astype(str), strict=True)
        ]
        rows["roc"], rows["precision_recall"] = one_vs_rest_curves(y, proba, schema.classes)
        figures["confusion_matrix.png"] = figure_confusion(y, y_pred, schema.classes)
        figures["roc.png"] = figure_lines(rows["roc"], "fpr", "tpr", PLOTS["roc"].title, diagonal=True)
        figures["precision_recall.png"] = figure_lines(
            rows["precision_recall"], "recall", "precision", PLOTS["precision_recall"].title, diagonal=False
        )
    else:
        sample = np.random.default_rng(seed).permutation(len(y))[:SCATTER_POINTS]
        actual, predicted = y.to_numpy()[sample], np.asarray(y_pred)[sample]
        rows["predicted_vs_actual"] = [
            {"actual": round(float(a), 4), "predicted": round(float(p), 4)}
            for a, p in zip(actual, predicted, strict=True)
        ]
        rows["residuals"] = [
            {"predicted": p["predicted"], "residual": round(p["actual"] - p["predicted"], 4)}
            for p in rows["predicted_vs_actual"]
        ]
        figures["predicted_vs_actual.png"] = figure_scatter(
            actual, predicted, PLOTS["predicted_vs_actual"].title, "actual", "predicted", "diagonal"
        )
        figures["residuals.png"] = figure_scatter(
            predicted, actual - predicted, PLOTS["residuals"].title, "predicted", "actual - predicted", "zero"
        )
    rows["importance"] = importances(model, X, y, cfg, seed)
    figures["importance.png"] = figure_importance(rows["importance"])
    if background is not None:
        rows["shap_importance"], per_output, space = shap_importance(
            model, X, schema, background, cfg.shap_max_rows, seed
        )
        figures["shap_importance.png"] = figure_shap(rows["shap_importance"], per_output, space)
    return Evaluation(metrics, [Plot(name, rows[name]) for name in PLOTS], figures)


def shap_importance(
    model: Any, X: pd.DataFrame, schema: Schema, background: pd.DataFrame, max_rows: int, seed: int
) -> tuple[list[dict], dict[str, list[float]], str]:
    """The global SHAP view: mean |SHAP| of each raw input column over at most ``max_rows`` rows of ``X`` (sampled
    with ``seed``), against ``background``. Returns ``(rows, per_output, output_space)`` as
    :func:`lifecycle.modeling.explain.mean_abs_shap` gives them, and the key of the unit they are in."""
    if len(X) > max_rows:
        X = X.sample(max_rows, random_state=seed)
    explainer = Explainer(model, background, schema)
    log.info("SHAP: %s on %d rows against %d background rows", explainer.method, len(X), len(background))
    explanation = explainer.explain(X)
    rows, per_output = mean_abs_shap(explanation)
    return rows, per_output, explanation.output_space


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Positions of at most ``size`` of ``n`` rows, shape (min(n, size),), sorted: all of them when ``n <= size``,
    else the first ``size`` of a permutation drawn with ``seed`` (numpy's ``default_rng(seed).permutation``)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def one_vs_rest_curves(y: pd.Series, proba: np.ndarray, classes: Sequence[Any]) -> tuple[list[dict], list[dict]]:
    """ROC and precision-recall curves of each class against the rest, sampled on :data:`GRID`.

    ``y``: true labels, shape (n,); ``proba``: shape (n, len(classes)), columns in ``classes`` order. Returns
    ``(roc, pr)`` in long form (one dict per class and grid point, values rounded to 4 digits) for the
    ``class_curves`` template: ROC is TPR linearly interpolated at each FPR of the grid; precision-recall is the
    interpolated precision (the best precision at this recall or above, as in the PASCAL VOC average precision) at
    each recall. A class that is absent from ``y``, or is all of it, has no curve.
    """
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
    """Permutation importance (scikit-learn's ``permutation_importance``, the model's default ``score``) of each
    raw input column of ``X`` on at most ``cfg.permutation_max_rows`` rows sampled with ``seed``, repeated
    ``cfg.permutation_repeats`` times. Returns ``[{"feature", "importance"}]`` (mean score drop, 6 digits),
    most important first."""
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


# --------------------------------------------------------------------------------------------- figures
def _figure(height: float = 4.5) -> tuple[Figure, Any]:
    """A 5.5 in wide figure at 100 dpi with one axes; no pyplot, so no GUI backend is involved."""
    fig = Figure(figsize=(5.5, height), dpi=100)
    return fig, fig.subplots()


def figure_lines(rows: list[dict], x: str, y: str, title: str, diagonal: bool) -> Figure:
    """One line per class of long-form ``rows`` (keys ``class``, ``x``, ``y``) on the unit square."""
    fig, ax = _figure()
    for cls in dict.fromkeys(r["class"] for r in rows):
        mine = [r for r in rows if r["class"] == cls]
        ax.plot([r[x] for r in mine], [r[y] for r in mine], label=cls)
    if diagonal:
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(title=title, xlabel=x, ylabel=y, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def figure_confusion(y_true: pd.Series, y_pred: np.ndarray, classes: Sequence[Any]) -> Figure:
    """The confusion matrix (rows actual, columns predicted, in ``classes`` order, as scikit-learn lays it out and
    :data:`PLOTS` declares it to DVC) with the count in each cell."""
    cm = confusion_matrix(y_true, y_pred, labels=list(classes))
    fig, ax = _figure()
    ax.imshow(cm, cmap="Blues")
    labels = [str(c) for c in classes]
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="actual")
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_yticklabels(labels)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black", fontsize=8)
    ax.set_title(PLOTS["confusion_matrix"].title)
    fig.tight_layout()
    return fig


def figure_importance(rows: list[dict]) -> Figure:
    """Horizontal bars of :func:`importances`' rows, the most important on top."""
    fig, ax = _figure(0.3 * len(rows) + 1.2)
    ax.barh([r["feature"] for r in rows][::-1], [r["importance"] for r in rows][::-1], color="#4c72b0")
    ax.set(title=PLOTS["importance"].title, xlabel="mean score drop")
    fig.tight_layout()
    return fig


def figure_shap(rows: list[dict], per_output: dict[str, list[float]], output_space: str) -> Figure:
    """Horizontal bars of mean |SHAP| per feature, most important on top; with several outputs (classes) each bar
    is stacked from the classes' shares (each class's mean |SHAP| divided by the number of classes)."""
    fig, ax = _figure(0.3 * len(rows) + 1.4)
    names = [r["feature"] for r in rows][::-1]
    left = np.zeros(len(rows))
    if len(per_output) > 1:
        for label, values in per_output.items():
            share = np.asarray(values[::-1]) / len(per_output)
            ax.barh(names, share, left=left, label=label)
            left += share
        ax.legend(fontsize=7, loc="lower right", title="class", title_fontsize=7)
    else:
        ax.barh(names, [r["mean_abs_shap"] for r in rows][::-1], color="#4c72b0")
    unit = {"log_odds": "log-odds", "probability": "probability", "target": "target units"}.get(output_space, "")
    ax.set(title=PLOTS["shap_importance"].title, xlabel=f"mean |SHAP| ({unit})")
    fig.tight_layout()
    return fig


def figure_scatter(x: np.ndarray, y: np.ndarray, title: str, xlabel: str, ylabel: str, ref: str) -> Figure:
    """``y`` against ``x`` with a reference line: the diagonal (``ref="diagonal"``) or y = 0 (otherwise)."""
    fig, ax = _figure()
    ax.scatter(x, y, s=6, alpha=0.4)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    if ref == "diagonal":
        ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=0.8)
    else:
        ax.axhline(0, ls="--", c="grey", lw=0.8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    return fig
