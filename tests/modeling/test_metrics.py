"""lifecycle.modeling.metrics: one name per metric, computed with scikit-learn's formulas."""

from __future__ import annotations

import numpy as np
import pytest

from lifecycle.modeling.metrics import CLASSIFICATION, REGRESSION, compute_metrics, higher_is_better


def test_classification_metrics_of_perfect_predictions() -> None:
    y = ["a", "b", "c", "a"]
    proba = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    metrics = compute_metrics("classification", y, y, proba, ["a", "b", "c"])
    assert set(metrics) == set(CLASSIFICATION)
    assert metrics["accuracy"] == metrics["f1_macro"] == metrics["roc_auc"] == 1.0
    assert metrics["log_loss"] == pytest.approx(0.0, abs=1e-6)


def test_without_probabilities_there_is_no_roc_auc_or_log_loss() -> None:
    metrics = compute_metrics("classification", ["a", "b", "b"], ["a", "a", "b"])
    assert set(metrics) == {"accuracy", "balanced_accuracy", "f1_macro"}
    assert metrics["accuracy"] == round(2 / 3, 6)


def test_roc_auc_needs_every_class_present_in_multiclass() -> None:
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    metrics = compute_metrics("classification", ["a", "b"], ["a", "b"], proba, ["a", "b", "c"])
    assert "roc_auc" not in metrics and "log_loss" in metrics


def test_regression_metrics_in_the_targets_units() -> None:
    metrics = compute_metrics("regression", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    assert set(metrics) == set(REGRESSION)
    assert metrics["rmse"] == 1.0  # sqrt(4 / 4)
    assert metrics["mae"] == 0.5
    assert metrics["r2"] == round(1 - 4 / 5, 6)


def test_losses_are_lower_is_better() -> None:
    assert not higher_is_better("log_loss") and not higher_is_better("rmse")
    assert higher_is_better("accuracy") and higher_is_better("r2")
