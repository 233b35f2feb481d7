"""Metric names and how they are computed: one name everywhere (dvclive, promotion, PR report, API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

CLASSIFICATION = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")
# Lower is better for these; higher for every other metric.
LOSSES = frozenset({"log_loss", "rmse", "mae"})


def score(
    task: str, y_true: Any, y_pred: Any, proba: np.ndarray | None = None, classes: Sequence[Any] = ()
) -> dict[str, float]:
    """All metrics of ``task`` for one set of predictions, as plain floats rounded to 6 digits."""
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


compute_metrics = score  # TEMPORARY (r12-monitoring): the modeling helper renames score -> compute_metrics


def higher_is_better(name: str) -> bool:
    return name not in LOSSES
