"""build_model(params, task, seed) -> an unfitted scikit-learn estimator, chosen by ``train.model``."""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge

from lifecycle.config import Train

# Linear models need scaled inputs; trees do not.
NEEDS_SCALING = {"logistic_regression", "ridge"}


def model_params(train: Train) -> dict[str, object]:
    """The hyperparameters of the chosen model, as params.yaml spells them."""
    return getattr(train, train.model).model_dump()


def build_model(train: Train, task: str, seed: int, overrides: dict[str, object] | None = None) -> BaseEstimator:
    """An unfitted estimator for ``train.model`` and ``task`` with params from ``train.<model>``, updated with
    ``overrides``, and ``random_state=seed``. That the model supports ``task`` is checked by
    :mod:`lifecycle.config` at load (``config.MODEL_TASKS``)."""
    name = train.model
    hp = model_params(train) | (overrides or {})
    classification = task == "classification"
    if name == "hist_gradient_boosting":
        cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return cls(**hp, early_stopping=False, random_state=seed)
    if name == "random_forest":
        cls = RandomForestClassifier if classification else RandomForestRegressor
        return cls(**hp, random_state=seed)
    if name == "logistic_regression":
        return LogisticRegression(**hp, random_state=seed)
    return Ridge(**hp, random_state=seed)
