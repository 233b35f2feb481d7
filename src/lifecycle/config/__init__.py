"""params.yaml -> frozen, typed sections, every value's meaning checked once, at load.

One pydantic model per section (``extra="forbid"``, ``frozen=True``, strict types: no ``"5"`` -> 5, no ``true``
-> 1; an int is accepted for a float) and :class:`Params` over all of them. Loading fails, naming the dotted key,
the rule and the fix, on

- an unknown key or section (with a did-you-mean), a missing key or section, a value of the wrong type;
- a value out of its range (``split.test_size`` in (0, 1), counts >= 1, seeds in [0, 2**32 - 1], fractions in
  [0, 1], learning rates, ``C`` and ``alpha`` > 0, timeouts > 0, ...), a name that is not one of its choices;
- a combination that cannot work: ``train.model`` that does not fit ``ingest.task`` (ridge is regression-only,
  logistic_regression classification-only), a ``train.search_metric`` of the other task, a
  ``train.search_space`` key that is not a hyperparameter of its model or a value of the wrong type or range, a
  ``{low, high}`` range without ``train.search: random``, ``promote.<task>`` thresholds (or a
  ``monitor.feedback.<task>.metric``) on a metric that is not one of that task's, a loss under ``min`` (a score
  under ``max``), ``validate.max_rows`` < ``validate.min_rows``, a ``notify.webhook_url`` that is not an http(s)
  URL.

Settings that depend on the task are keyed by it (``promote.classification``/``promote.regression``,
``monitor.feedback.<task>``): ``ingest.task`` picks the ones that apply, so switching the task is one ``-S``.

So ``dvc exp run -S train.n_estimatrs=5`` stops with ``train.n_estimatrs: unknown key`` and ``-S
train.threads=0`` with ``train.threads: 0 is out of range; use a value >= 1`` before any work is done, and no
consumer re-checks a value. Several problems are reported together, one line each. Building a section in code
(``ClassificationGates(min=..., ...)``) checks the same rules and raises the same :class:`~lifecycle.errors.ParamsError`;
``section.model_copy(update=...)`` does not check (tests use it to build deliberately odd values).

Importing this module is cheap (pydantic and PyYAML only): the names it checks against (metric names, the
simulator's fleet versions, which model fits which task) are declared here, and tests keep them equal to their
users' (lifecycle.modeling.metrics, lifecycle.data.telemetry, lifecycle.modeling.estimators).

Layout: :mod:`~lifecycle.config.rules` (those names, the range and format validators, the :class:`Section` base),
:mod:`~lifecycle.config.sections` (every section but ``train``), :mod:`~lifecycle.config.training` (``train``, its
models and the search space), :mod:`~lifecycle.config.messages` (pydantic's errors -> one line per key); this module
holds :class:`Params` over all sections, :func:`load_params` and :func:`parse_params`, and re-exports the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from lifecycle.config.messages import _explain
from lifecycle.config.rules import (
    _NESTED,
    DASK_PROTOCOLS,
    DATETIME_PARTS,
    DEFAULT_PARAMS,
    GATE_KINDS,
    KNOWN_METRICS,
    LOSSES,
    METRICS,
    MODEL_TASKS,
    SEED_MAX,
    TASKS,
    TELEMETRY_SOURCE,
    TELEMETRY_VERSIONS,
    Count,
    Fraction,
    NJobs,
    NonNegative,
    Positive,
    Rate,
    SampleRows,
    Section,
    Seed,
    Text,
    _closest,
    _fail,
    within,
)
from lifecycle.config.sections import (
    Base,
    ClassificationFeedback,
    ClassificationGates,
    Dask,
    Evaluate,
    Export,
    FeedbackRule,
    Gates,
    Ingest,
    Kfp,
    Monitor,
    Notify,
    Paths,
    Promote,
    RegressionFeedback,
    RegressionGates,
    Retrain,
    Score,
    Simulate,
    Split,
    TaskFeedback,
    Validate,
)
from lifecycle.config.training import (
    HistGradientBoosting,
    LogisticRegression,
    RandomForest,
    Ridge,
    SearchSpace,
    Train,
    hyperparameters,
)
from lifecycle.errors import ParamsError

__all__ = [
    "DASK_PROTOCOLS",
    "DATETIME_PARTS",
    "DEFAULT_PARAMS",
    "GATE_KINDS",
    "KNOWN_METRICS",
    "LOSSES",
    "METRICS",
    "MODEL_TASKS",
    "SEED_MAX",
    "TASKS",
    "TELEMETRY_SOURCE",
    "TELEMETRY_VERSIONS",
    "Base",
    "ClassificationFeedback",
    "ClassificationGates",
    "Count",
    "Dask",
    "Evaluate",
    "Export",
    "FeedbackRule",
    "Fraction",
    "Gates",
    "HistGradientBoosting",
    "Ingest",
    "Kfp",
    "LogisticRegression",
    "Monitor",
    "NJobs",
    "NonNegative",
    "Notify",
    "Params",
    "Paths",
    "Positive",
    "Promote",
    "RandomForest",
    "Rate",
    "RegressionFeedback",
    "RegressionGates",
    "Retrain",
    "Ridge",
    "SampleRows",
    "Score",
    "SearchSpace",
    "Section",
    "Seed",
    "Simulate",
    "Split",
    "TaskFeedback",
    "Text",
    "Train",
    "Validate",
    "hyperparameters",
    "load_params",
    "parse_params",
    "sections",
    "within",
]


# A new section: declare its model in sections.py (or training.py), add a field here, add the section to
# params.yaml.
class Params(Section):
    """All of params.yaml, validated: one attribute per top-level section."""

    base: Base
    paths: Paths
    ingest: Ingest
    simulate: Simulate
    validate: Validate  # the name of a deprecated BaseModel class method, which pydantic allows (see above)
    split: Split
    train: Train
    evaluate: Evaluate
    export: Export
    score: Score
    monitor: Monitor
    dask: Dask
    notify: Notify
    promote: Promote
    retrain: Retrain
    kfp: Kfp

    @model_validator(mode="after")
    def _combinations(self) -> Params:
        task, train = self.ingest.task, self.train
        if task not in MODEL_TASKS[train.model]:
            fitting = [m for m, tasks in MODEL_TASKS.items() if task in tasks]
            _fail(
                f"{train.model!r} does not support task {task!r} (ingest.task); use one of: {', '.join(fitting)}",
                "train.model",
            )
        if train.search_metric is not None and train.search_metric not in METRICS[task]:
            known = "" if train.search_metric in KNOWN_METRICS else _closest(train.search_metric, METRICS[task])
            _fail(
                f"{train.search_metric!r} is not a {task} metric; {known}use one of: {', '.join(METRICS[task])} "
                "(or null for the task's default)",
                "train.search_metric",
            )
        if self.retrain.strategy == "recent" and self.retrain.min_labelled_rows < self.validate.min_rows:
            _fail(
                f"{self.retrain.min_labelled_rows} is below validate.min_rows ({self.validate.min_rows}), but "
                "retrain.strategy 'recent' trains on the labelled rows alone; raise it to at least "
                f"{self.validate.min_rows} or use strategy 'combined'",
                "retrain.min_labelled_rows",
            )
        return self


def _prefixes(model: type[BaseModel], prefix: str = "") -> dict[type, str]:
    out: dict[type, str] = {}
    for name, field in model.model_fields.items():
        hint = field.annotation
        if isinstance(hint, type) and issubclass(hint, Section):
            key = f"{prefix}{name}"
            out[hint] = key
            out |= _prefixes(hint, f"{key}.")
    return out


_PREFIX = _prefixes(Params)


def sections() -> dict[str, type]:
    """Top-level section name (as params.yaml spells it) -> its model, as :class:`Params` declares them."""
    return {name: field.annotation for name, field in Params.model_fields.items()}  # type: ignore[misc]


# --------------------------------------------------------------------------------------------- loading
def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Load and validate ``path`` (every section, every key, every value's meaning).

    Raises ParamsError (one line per problem, each naming the dotted key, the rule and the fix) when the file is
    missing, is not YAML, or breaks any rule of this module.
    """
    p = Path(path)
    if not p.exists():
        raise ParamsError(f"{p}: params file not found; run from the repository root")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{p}: not valid YAML ({exc})") from exc
    return parse_params(raw, source=str(p))


def parse_params(raw: Mapping[str, Any], source: str = DEFAULT_PARAMS) -> Params:
    """Validate an already-parsed params mapping (see :func:`load_params`); ``source`` prefixes the messages."""
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{source}: top level must be a mapping of sections, got {type(raw).__name__}")
    token = _NESTED.set(True)
    try:
        return Params.model_validate(dict(raw))
    except ValidationError as exc:
        raise ParamsError(_explain(exc, Params, source)) from None
    finally:
        _NESTED.reset(token)
