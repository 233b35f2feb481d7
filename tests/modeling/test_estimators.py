"""lifecycle.modeling.estimators: the estimator of train.model for the task, seeded, with its hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.base import is_classifier
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from lifecycle.config import MODEL_TASKS, load_params
from lifecycle.modeling.estimators import build_model, model_params

ROOT = Path(__file__).resolve().parents[2]
TRAIN = load_params(ROOT / "params.yaml").train


def with_model(name: str):
    return TRAIN.__class__(**{**TRAIN.__dict__, "model": name})


def test_model_for_the_task_with_params_seed_and_overrides() -> None:
    model = build_model(with_model("hist_gradient_boosting"), "regression", seed=9, overrides={"max_iter": 7})
    assert isinstance(model, HistGradientBoostingRegressor)
    assert model.random_state == 9 and model.max_iter == 7
    assert model.learning_rate == model_params(TRAIN)["learning_rate"]


def test_linear_classifier() -> None:
    assert isinstance(build_model(with_model("logistic_regression"), "classification", seed=1), LogisticRegression)


@pytest.mark.parametrize(("model", "task"), [(m, t) for m, tasks in MODEL_TASKS.items() for t in tasks])
def test_every_model_and_task_that_config_allows_builds(model: str, task: str) -> None:
    """config.MODEL_TASKS (checked at load: ridge is regression-only, ...) is what build_model can build."""
    estimator = build_model(with_model(model), task, seed=1)
    assert is_classifier(estimator) == (task == "classification")
