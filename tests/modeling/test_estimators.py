"""lifecycle.modeling.estimators: the estimator of train.model for the task, seeded, with its hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.base import is_classifier
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge

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


EXPECTED = {  # scikit-learn's estimator for each (train.model, task), as docs and params.yaml name them
    ("hist_gradient_boosting", "classification"): HistGradientBoostingClassifier,
    ("hist_gradient_boosting", "regression"): HistGradientBoostingRegressor,
    ("random_forest", "classification"): RandomForestClassifier,
    ("random_forest", "regression"): RandomForestRegressor,
    ("logistic_regression", "classification"): LogisticRegression,
    ("ridge", "regression"): Ridge,
}


def test_the_allowed_pairs_are_exactly_the_known_estimators() -> None:
    assert {(m, t) for m, tasks in MODEL_TASKS.items() for t in tasks} == set(EXPECTED)


@pytest.mark.parametrize(("model", "task"), sorted(EXPECTED))
def test_every_params_yaml_hyperparameter_and_the_seed_reach_the_estimator(model: str, task: str) -> None:
    estimator = build_model(with_model(model), task, seed=123)
    assert type(estimator) is EXPECTED[(model, task)]
    configured = getattr(TRAIN, model).model_dump()
    assert configured  # params.yaml names some hyperparameters for every model
    got = estimator.get_params()
    assert {k: got[k] for k in configured} == configured
    assert got["random_state"] == 123
    if model == "hist_gradient_boosting":
        assert got["early_stopping"] is False  # no internal validation split: every row of train trains
