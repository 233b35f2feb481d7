"""Metric names and how they are computed: one name everywhere (dvclive, promotion, PR report, API).

Importing this module is cheap: scikit-learn (~0.5-1 s to import) is imported by :func:`compute_metrics` only, so
the stages that only need the names and directions (promote, the PR report) do not pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lifecycle.config import LOSSES, METRICS

# The names are declared once, in lifecycle.config (which checks params against them); their computation is here.
CLASSIFICATION = METRICS["classification"]
REGRESSION = METRICS["regression"]
__all__ = ["CLASSIFICATION", "LOSSES", "REGRESSION", "compute_metrics", "higher_is_better"]


def compute_metrics(
    task: str, y_true: Any, y_pred: Any, proba: np.ndarray | None = None, classes: Sequence[Any] = ()
) -> dict[str, float]:
    """All metrics of ``task`` (:data:`CLASSIFICATION` or :data:`REGRESSION` names) for one set of predictions.

    ``y_true`` and ``y_pred`` have shape (n,); ``proba`` (classification only, optional) has shape
    (n, len(classes)) with columns in ``classes`` order. Without ``proba`` there is no roc_auc or log_loss;
    roc_auc is also left out when ``y_true`` holds a single class, or (multiclass) not every class.
    Formulas are scikit-learn's (``sklearn.metrics``): roc_auc is one-vs-rest for more than two classes (the
    positive class of two is ``classes[1]``), f1_macro gives 0 to a class never predicted, rmse is the square
    root of ``mean_squared_error``. Returns plain floats rounded to 6 digits, in the units of the target for
    rmse and mae. Raises ``ValueError`` (from scikit-learn) for mismatched shapes or labels.
    """
    from sklearn import metrics as skm

    if task == "classification":
        out = {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        }
        if proba is not None:
            labels = list(classes)
            present = set(np.unique(y_true))
            if len(present) > 1:
                if len(labels) == 2:
                    out["roc_auc"] = skm.roc_auc_score(y_true, proba[:, 1])
                elif present == set(labels):
                    out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
            out["log_loss"] = skm.log_loss(y_true, proba, labels=labels)
    else:
        out = {
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "r2": skm.r2_score(y_true, y_pred),
        }
    return {k: round(float(v), 6) for k, v in out.items()}


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better (False for the losses in :data:`LOSSES`)."""
    return name not in LOSSES
