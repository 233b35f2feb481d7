"""lifecycle.modeling.estimators: the estimator of train.model for the task, seeded, with its hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from lifecycle.config import load_params
from lifecycle.errors import ParamsError
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


def test_model_that_does_not_fit_the_task_is_refused() -> None:
    with pytest.raises(ParamsError, match=r"train\.model: 'ridge' does not support task 'classification'"):
        build_model(with_model("ridge"), "classification", seed=1)
