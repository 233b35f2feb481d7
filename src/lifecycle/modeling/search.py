"""Hyperparameter search inside training: ``train.search`` = none | random | grid.

Candidates come from ``train.search_space.<model>`` (hyperparameter -> list of values; for ``random`` also
``{low, high, log}`` ranges), each evaluated by k-fold cross-validation on the train split (``train.cv_folds``,
stratified for classification, shuffled with ``base.seed``) on ``train.search_metric``. The best candidate's values
override ``train.<model>`` for the final fit; the summary goes to model.json and every candidate's scores to the
CV results file. Nothing volatile (fit times are left out), so the same inputs give the same bytes.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from lifecycle.config import Train
from lifecycle.errors import DataError, ParamsError
from lifecycle.modeling.metrics import LOSSES

log = logging.getLogger(__name__)
SOURCE = "params.yaml"
STEP = "model"  # the estimator's step name in the training pipeline: its params are ``model__<name>``
# Our metric names -> scikit-learn scorer names (losses are negated by scikit-learn; we flip them back).
SCORERS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "f1_macro": "f1_macro",
    "roc_auc": "roc_auc_ovr",
    "log_loss": "neg_log_loss",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "r2": "r2",
}
DEFAULT_METRIC = {"classification": "f1_macro", "regression": "rmse"}


def search_metric(train: Train, task: str) -> str:
    """The metric the search optimises: ``train.search_metric`` or the task's default (f1_macro / rmse); that it
    belongs to the task is checked by :mod:`lifecycle.config` at load."""
    return train.search_metric or DEFAULT_METRIC[task]


def search_space(train: Train) -> dict[str, Any]:
    """``train.search_space.<model>`` as scikit-learn wants it: ``model__<name>`` -> list of values, or a scipy
    distribution for a ``{low, high, log}`` range (random search). The space is checked by :mod:`lifecycle.config`
    at load (known hyperparameters, value types, ranges only for random search, log only for floats)."""
    hints = typing.get_type_hints(type(getattr(train, train.model)))
    space: dict[str, Any] = {}
    for name, values in getattr(train.search_space, train.model).items():
        space[f"{STEP}__{name}"] = _distribution(values, hints[name]) if isinstance(values, Mapping) else list(values)
    return space


def _distribution(spec: Mapping[str, Any], hint: Any) -> Any:
    """``{low, high, log}`` -> scipy's uniform or log-uniform distribution (randint for int hyperparameters,
    ``high`` inclusive)."""
    low, high, use_log = spec["low"], spec["high"], bool(spec.get("log", False))
    if int in typing.get_args(hint) or hint is int:
        return stats.randint(int(low), int(high) + 1)
    return stats.loguniform(low, high) if use_log else stats.uniform(low, high - low)


def folds(y: pd.Series, task: str, n_folds: int, seed: int) -> KFold | StratifiedKFold:
    """Shuffled k-fold splitter (stratified for classification) seeded with ``seed``.

    Raises :class:`~lifecycle.errors.DataError` for fewer rows (or, classification, rows of a class) than folds
    (``train.cv_folds`` >= 2 is checked by :mod:`lifecycle.config`)."""
    if len(y) < n_folds:
        raise DataError(f"train split has {len(y)} rows, fewer than train.cv_folds={n_folds}; lower cv_folds")
    if task == "classification":
        counts = y.value_counts()
        if counts.min() < n_folds:
            raise DataError(
                f"train split: class {counts.idxmin()!r} of the target has {int(counts.min())} rows, fewer than "
                f"train.cv_folds={n_folds}; lower train.cv_folds or add rows of that class"
            )
        return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return KFold(n_splits=n_folds, shuffle=True, random_state=seed)


def run_search(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, train: Train, task: str, seed: int) -> dict:
    """Cross-validate the candidates of ``train.search_space.<model>`` on an unfitted ``pipeline``.

    Returns ``{"method", "metric", "cv_folds", "best_params", "best_score", "candidates": [...]}`` with scores in
    the metric's own sign (losses positive, lower is better); ``{"method": "none", "best_params": {}}`` when
    ``train.search`` is none. ``pipeline`` itself is not fitted (the caller refits it with the best params).
    ``X``: (n, features) raw rows; ``y``: (n,) target. Raises :class:`~lifecycle.errors.ParamsError` for a bad
    search space or metric, or a candidate that fails to fit, and :class:`~lifecycle.errors.DataError` for too few
    rows per fold.
    """
    if train.search == "none":
        return {"method": "none", "best_params": {}}
    metric = search_metric(train, task)
    space = search_space(train)
    cv = folds(y, task, train.cv_folds, seed)
    common = {"scoring": SCORERS[metric], "cv": cv, "n_jobs": train.search_n_jobs, "refit": False}
    if train.search == "grid":
        searcher: GridSearchCV | RandomizedSearchCV = GridSearchCV(pipeline, space, error_score="raise", **common)
    else:
        searcher = RandomizedSearchCV(
            pipeline, space, n_iter=train.search_iterations, random_state=seed, error_score="raise", **common
        )
    log.info("%s search of %s: %s on %d folds, %s", train.search, train.model, metric, train.cv_folds, sorted(space))
    try:
        searcher.fit(X, y)
    except (ValueError, TypeError) as exc:
        raise ParamsError(
            f"{SOURCE}: train.search_space.{train.model}: a candidate failed to fit ({exc}); fix its values"
        ) from exc
    return summarize(searcher.cv_results_, metric, train)


def summarize(cv_results: Mapping[str, Any], metric: str, train: Train) -> dict:
    """scikit-learn's ``cv_results_`` -> a deterministic, JSON-ready summary (no fit times)."""
    sign = -1.0 if metric in LOSSES else 1.0
    n_folds = train.cv_folds
    candidates = []
    for i, candidate in enumerate(cv_results["params"]):
        fold_scores = [sign * float(cv_results[f"split{k}_test_score"][i]) for k in range(n_folds)]
        candidates.append(
            {
                "rank": int(cv_results["rank_test_score"][i]),
                "params": {k.removeprefix(f"{STEP}__"): _plain(v) for k, v in candidate.items()},
                "mean": round(float(np.mean(fold_scores)), 6),
                "std": round(float(np.std(fold_scores)), 6),
                "folds": [round(s, 6) for s in fold_scores],
            }
        )
    candidates.sort(key=lambda c: c["rank"])  # stable: ties keep the order they were tried in
    best = candidates[0]
    log.info("best of %d candidates: %s = %.4f with %s", len(candidates), metric, best["mean"], best["params"])
    return {
        "method": train.search,
        "metric": metric,
        "cv_folds": n_folds,
        "best_params": best["params"],
        "best_score": best["mean"],
        "candidates": candidates,
    }


def headline(search: Mapping[str, Any]) -> dict[str, float | int]:
    """The search's numbers worth a column in ``dvc metrics show`` / ``dvc exp show``: the best candidate's mean
    cross-validation score under the metric's own name (e.g. ``f1_macro``; losses as losses), its standard deviation
    across folds (``<metric>_std``) and the number of candidates tried. ``{}`` without a search.

    ``search``: :func:`summarize`'s dict (or ``{"method": "none", ...}``). The candidates and best params stay in
    the cross-validation results file, a plain output.
    """
    if not search.get("candidates"):
        return {}
    metric, best = str(search["metric"]), search["candidates"][0]
    return {metric: best["mean"], f"{metric}_std": best["std"], "candidates": len(search["candidates"])}


def _plain(value: Any) -> Any:
    """numpy scalars (sampled from distributions) -> Python numbers, floats rounded for stable JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value
