"""The ``train`` section: the four models' hyperparameters, the search space checked against them, and
:func:`hyperparameters`."""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from lifecycle.config.messages import _describe
from lifecycle.config.rules import (
    MODEL_TASKS,
    Count,
    NJobs,
    NonNegative,
    Positive,
    SampleRows,
    Section,
    _closest,
    _fail,
    _max_features,
    within,
)


class HistGradientBoosting(Section):
    max_iter: Count
    learning_rate: Positive
    max_leaf_nodes: Annotated[int, within(2, why="a tree needs 2 leaves to split")]
    min_samples_leaf: Count
    l2_regularization: NonNegative


class RandomForest(Section):
    n_estimators: Count
    max_depth: Count | None
    min_samples_leaf: Count
    max_features: Annotated[str | float | None, AfterValidator(_max_features)]
    n_jobs: NJobs


class LogisticRegression(Section):
    C: Positive
    max_iter: Count


class Ridge(Section):
    alpha: Positive


class SearchSpace(Section):
    """Per model: hyperparameter -> list of values to try (or ``{low, high, log}`` for random search).

    Checked against ``train.<model>``: every key must be one of its hyperparameters and every value must pass that
    hyperparameter's type and range; lists hold typed values (an int written for a float becomes a float).
    """

    hist_gradient_boosting: dict[str, Any]
    random_forest: dict[str, Any]
    logistic_regression: dict[str, Any]
    ridge: dict[str, Any]


class Train(Section):
    model: Literal["hist_gradient_boosting", "random_forest", "logistic_regression", "ridge"]
    threads: Count  # OpenMP threads of the fit: the model's bytes depend on it, so it is a param, not the core count
    search: Literal["none", "random", "grid"]  # tune train.<model> by cross-validation (lifecycle.modeling.search)
    cv_folds: Annotated[int, within(2, why="cross-validation needs 2 or more folds")]
    search_iterations: Count  # random search: candidates drawn
    search_metric: str | None  # null: f1_macro (classification) / rmse (regression)
    search_n_jobs: NJobs
    search_space: SearchSpace
    metrics_sample_rows: SampleRows  # train metrics on a seeded sample of this many train rows (model.json says so)
    shap_background_rows: Count  # rows of the train split (drawn with base.seed) that SHAP explanations start from
    hist_gradient_boosting: HistGradientBoosting
    random_forest: RandomForest
    logistic_regression: LogisticRegression
    ridge: Ridge

    @field_validator("search_space")
    @classmethod
    def _search_space(cls, space: SearchSpace, info: ValidationInfo) -> SearchSpace:
        model, search = info.data.get("model"), info.data.get("search")  # absent when they failed (reported)
        typed = {name: _check_space(getattr(space, name), name, model, search) for name in MODEL_TASKS}
        return space.model_copy(update=typed)


def hyperparameters(model: str) -> dict[str, Any]:
    """``train.<model>``'s hyperparameters: name -> type (``int``, ``float``, ``int | None``, ...), in order.

    Raises KeyError for a model name that is not a key of :data:`MODEL_TASKS`.
    """
    return typing.get_type_hints(Train.model_fields[model].annotation)


# --------------------------------------------------------------------------------------------- search space
@functools.cache
def _value_adapter(model: str, name: str) -> TypeAdapter[Any]:
    """Validates one value of ``train.<model>.<name>``: its type and its range, as the section itself does."""
    field = Train.model_fields[model].annotation.model_fields[name]  # type: ignore[union-attr]
    hint = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(hint, config=ConfigDict(strict=True))


def _check_space(space: Mapping[str, Any], model: str, selected: str | None, search: str | None) -> dict[str, Any]:
    """``train.search_space.<model>`` checked and typed (see :class:`SearchSpace`); failures name the key.

    ``selected``/``search``: ``train.model`` and ``train.search``. The space of the selected model must not be empty
    when searching, and holds lists only for a grid search; every space is checked for names, types and ranges.
    """
    hints = hyperparameters(model)
    is_selected = model == selected
    if is_selected and search not in (None, "none") and not space:
        _fail(
            f"empty, but train.search is {search!r}; list values to try, e.g. {{{next(iter(hints))}: [...]}}, "
            "or set train.search: none",
            model,
        )
    typed: dict[str, Any] = {}
    for name, values in space.items():
        at = f"{model}.{name}"
        if name not in hints:
            _fail(f"not a hyperparameter of {model}; {_closest(name, hints)}known: {', '.join(hints)}", at)
        if isinstance(values, Mapping):
            if is_selected and search == "grid":
                _fail("a {low, high} range needs train.search: random; grid needs a list", at)
            typed[name] = _check_range(values, model, name, at)
        elif isinstance(values, list) and values:
            typed[name] = [_check_value(v, model, name, f"{at}[{i}]") for i, v in enumerate(values)]
        else:
            _fail(f"expected a non-empty list of values (or {{low, high}}), got {values!r}", at)
    return typed


def _check_range(spec: Mapping[str, Any], model: str, name: str, at: str) -> dict[str, Any]:
    unknown = set(spec) - {"low", "high", "log"}
    low, high, use_log = spec.get("low"), spec.get("high"), spec.get("log", False)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if unknown or not numbers or not isinstance(use_log, bool) or not low < high or (use_log and low <= 0):
        _fail(
            "a range is {low: number, high: number, log: bool} with low < high (and low > 0 when log), "
            f"got {dict(spec)!r}",
            at,
        )
    hint = hyperparameters(model)[name]
    if use_log and (hint is int or int in typing.get_args(hint)):
        _fail("log ranges are for float hyperparameters; drop log or list values", at)
    return {
        **spec,
        "low": _check_value(low, model, name, f"{at}.low"),
        "high": _check_value(high, model, name, f"{at}.high"),
    }


def _check_value(value: Any, model: str, name: str, at: str) -> Any:
    try:
        return _value_adapter(model, name).validate_python(value)
    except ValidationError as exc:
        _fail(_describe([(err, hyperparameters(model)[name], None) for err in exc.errors()], at), at)
