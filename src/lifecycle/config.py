"""params.yaml -> frozen, typed sections.

Every key is declared here once. Loading fails on an unknown key (with a did-you-mean), a missing key or a
value of the wrong type, naming the dotted key, so ``dvc exp run -S train.n_estimatrs=5`` stops with
``train.n_estimatrs: unknown key`` instead of silently training the default.

Every section is declared here, so a change of any key's type is one edit in one place. Unknown top-level
sections are errors too.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from lifecycle.errors import ParamsError

T = TypeVar("T")
DEFAULT_PARAMS = "params.yaml"


# --------------------------------------------------------------------------------------------- sections
@dataclasses.dataclass(frozen=True)
class Base:
    seed: int
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


@dataclasses.dataclass(frozen=True)
class Paths:
    external: str
    contracts: str  # data contracts, one <dataset>.yaml per dataset (lifecycle.quality)
    raw: str
    schema: str
    validated: str
    quarantine: str
    train: str
    test: str
    model: str
    model_meta: str
    train_meta: str
    onnx: str
    metrics: str
    reports: str
    incoming: str
    scored: str
    scored_quarantine: str
    feedback: str
    champion: str  # committed record of the prod model's version and metrics; `make release` updates it
    promotion: str  # the promote stage's decision file


@dataclasses.dataclass(frozen=True)
class Ingest:
    source: str
    data_version: str | list[str]
    rows: int
    missing_rate: float
    glitch_rate: float
    duplicate_rate: float
    target: str
    task: Literal["classification", "regression"]
    read_options: dict[str, Any]
    normalize_columns: bool
    drop_columns: list[str]
    id_columns: list[str]
    max_categories: int


@dataclasses.dataclass(frozen=True)
class Validate:
    min_rows: int
    max_rows: int | None
    max_null_fraction: float
    max_bad_row_fraction: float
    min_class_rows: int
    row_expectations_on: Literal["flagged", "all"]  # GE evaluates row-level rules on flagged rows or all rows


@dataclasses.dataclass(frozen=True)
class Split:
    test_size: float
    stratify: bool
    time_column: str | None


@dataclasses.dataclass(frozen=True)
class HistGradientBoosting:
    max_iter: int
    learning_rate: float
    max_leaf_nodes: int
    min_samples_leaf: int
    l2_regularization: float


@dataclasses.dataclass(frozen=True)
class RandomForest:
    n_estimators: int
    max_depth: int | None
    min_samples_leaf: int
    max_features: str | float | None
    n_jobs: int


@dataclasses.dataclass(frozen=True)
class LogisticRegression:
    C: float
    max_iter: int


@dataclasses.dataclass(frozen=True)
class Ridge:
    alpha: float


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Per model: hyperparameter -> list of values to try (or ``{low, high, log}`` for random search)."""

    hist_gradient_boosting: dict[str, Any]
    random_forest: dict[str, Any]
    logistic_regression: dict[str, Any]
    ridge: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Train:
    model: Literal["hist_gradient_boosting", "random_forest", "logistic_regression", "ridge"]
    threads: int  # OpenMP threads of the fit: the bytes of the model depend on it, so it is a param, not the core count
    search: Literal["none", "random", "grid"]  # tune train.<model> by cross-validation (lifecycle.modeling.search)
    cv_folds: int
    search_iterations: int  # random search: candidates drawn
    search_metric: str | None  # null: f1_macro (classification) / rmse (regression)
    search_n_jobs: int
    search_space: SearchSpace
    hist_gradient_boosting: HistGradientBoosting
    random_forest: RandomForest
    logistic_regression: LogisticRegression
    ridge: Ridge


@dataclasses.dataclass(frozen=True)
class Evaluate:
    permutation_repeats: int
    permutation_max_rows: int


@dataclasses.dataclass(frozen=True)
class Export:
    enabled: bool  # false: skip the ONNX conversion; model.json says why and serving uses scikit-learn
    opset: int  # ONNX default-domain opset the converter targets
    max_abs_diff: float  # parity: largest |sklearn - onnxruntime| of class probabilities / predictions
    min_label_agreement: float  # parity (classification): share of test rows with the same label


@dataclasses.dataclass(frozen=True)
class Score:
    chunk_rows: int  # rows read, validated and predicted at a time: memory is bounded by the chunk, not the file
    min_rows: int  # a batch with fewer clean rows is an error


@dataclasses.dataclass(frozen=True)
class Monitor:
    psi_bins: int  # reference-quantile bins of the PSI of numeric features
    psi_threshold: float  # a feature (numeric or categorical) drifted when its PSI reaches this
    ks_threshold: float  # ... or its KS statistic reaches this with p < p_value (numeric)
    js_threshold: float  # ... or its Jensen-Shannon distance reaches this with chi-square p < p_value (categorical)
    p_value: float
    max_missing_delta: float  # |missing rate in batch - in reference| that counts as a change
    prediction_psi_threshold: float  # PSI of the predicted-class shares (or predicted values)
    min_drifted_features: int  # retrain when at least this many features drifted
    reference_rows: int  # seeded sample of the training reference (0 = all rows)
    feedback_metric: str  # metric on the feedback labels, compared with the same metric on the test split
    max_metric_drop: float  # retrain when feedback_metric is worse than on the test split by more than this
    min_feedback_rows: int  # fewer labelled rows than this: report the metrics, decide nothing on them
    fail_on_drift: bool  # true: the monitor stage exits non-zero when it decides to retrain (a gate)


@dataclasses.dataclass(frozen=True)
class Notify:
    webhook_url: str | None  # Slack-compatible incoming webhook; null = no notifications
    timeout_seconds: float


@dataclasses.dataclass(frozen=True)
class Promote:
    """The promotion gate (docs/registry.md). Keys of each map are metric names of lifecycle.modeling.metrics."""

    min: dict[str, float]  # scores that must reach at least this value, e.g. {accuracy: 0.85}
    max: dict[str, float]  # losses that must stay at or below this value, e.g. {log_loss: 0.5}
    min_improvement: dict[str, float]  # required gain over the champion, in the metric's better direction
    strict: bool  # true: a reject makes the stage exit non-zero (`dvc repro` stops)


@dataclasses.dataclass(frozen=True)
class Kfp:
    """The Kubeflow pipeline compiled from dvc.yaml (lifecycle.kfp, docs/kubeflow.md). Not read by any DVC stage.

    The per-task maps (``env`` aside) are keyed by task name (a dvc.yaml stage, ``register``, ``deploy`` or
    ``notify``) or ``default``; lifecycle.kfp checks their keys and value types."""

    pipeline_name: str
    image: str  # the project's image (deploy/Dockerfile) that every component runs in
    pipeline_root: str  # where KFP stores every task's artifacts: an s3:// URI (MinIO in a cluster)
    inputs_uri: str  # prefix of the inputs no stage writes (contracts, incoming batches, ...): <inputs_uri>/<path>
    registry_uri: str  # register writes <registry_uri>/<version>/ and <registry_uri>/champion.json
    namespace: str  # where deploy applies the KServe InferenceService
    s3_secret: str | None  # Kubernetes Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (kfp-kubernetes)
    s3_endpoint_url: str | None  # AWS_ENDPOINT_URL of every task (MinIO); null = AWS S3
    env: dict[str, str]  # environment of every task
    cpu_limit: dict[str, str]  # e.g. {default: "1", train: "2"}
    memory_limit: dict[str, str]  # e.g. {default: 2G, train: 4G}
    retries: dict[str, int]
    timeout_seconds: dict[str, int]  # the pod's activeDeadlineSeconds
    caching: dict[str, bool]
    katib_parallel_trials: int  # the Katib Experiment generated from train.search_space


# A new section: declare its frozen dataclass above, add a field here, add the section to params.yaml.
@dataclasses.dataclass(frozen=True)
class Params:
    """All of params.yaml, validated: one attribute per top-level section."""

    base: Base
    paths: Paths
    ingest: Ingest
    validate: Validate
    split: Split
    train: Train
    evaluate: Evaluate
    export: Export
    score: Score
    monitor: Monitor
    notify: Notify
    promote: Promote
    kfp: Kfp


def sections() -> dict[str, type]:
    """Top-level section name -> its dataclass, as :class:`Params` declares them."""
    return dict(typing.get_type_hints(Params))


# --------------------------------------------------------------------------------------------- loading
def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Load and validate ``path`` (every section, every key)."""
    p = Path(path)
    if not p.exists():
        raise ParamsError(f"{p}: params file not found; run from the repository root")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{p}: not valid YAML ({exc})") from exc
    return parse_params(raw, source=str(p))


def parse_params(raw: Mapping[str, Any], source: str = DEFAULT_PARAMS) -> Params:
    """Validate an already-parsed params mapping (see :func:`load_params`)."""
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{source}: top level must be a mapping of sections, got {type(raw).__name__}")
    known = sections()
    for key in raw:
        if key not in known:
            raise ParamsError(_unknown(source, str(key), known))
    built: dict[str, Any] = {}
    for name, cls in known.items():
        if name not in raw:
            raise ParamsError(f"{source}: section '{name}' is missing; add it (see README, 'Parameters')")
        built[name] = _build(cls, raw[name], name, source)
    return Params(**built)


def _unknown(source: str, key: str, known: Mapping[str, Any], prefix: str = "") -> str:
    dotted = f"{prefix}{key}"
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
    return f"{source}: {dotted}: unknown key; {hint}known keys here: {', '.join(sorted(known))}"


def _build(cls: type[T], value: Any, dotted: str, source: str) -> T:
    if not isinstance(value, Mapping):
        raise ParamsError(f"{source}: {dotted}: expected a mapping of keys, got {value!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in value:
        if key not in fields:
            raise ParamsError(_unknown(source, str(key), fields, prefix=f"{dotted}."))
    kwargs: dict[str, Any] = {}
    for name in fields:
        if name not in value:
            raise ParamsError(f"{source}: {dotted}.{name}: missing key; add it to params.yaml")
        kwargs[name] = _coerce(value[name], hints[name], f"{dotted}.{name}", source)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, dotted: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, dotted, source)  # type: ignore[arg-type]
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ParamsError(
                f"{source}: {dotted}: {value!r} is not allowed; use one of: {', '.join(map(str, choices))}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, dotted, source)
            except ParamsError as exc:
                errors.append(exc)
        raise ParamsError(f"{source}: {dotted}: {value!r} does not fit type {_name(hint)}")
    if hint is type(None):
        if value is None:
            return None
        raise ParamsError(f"{source}: {dotted}: expected null")
    if hint is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{source}: {dotted}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(v, item, f"{dotted}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(f"{source}: {dotted}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a developer error in this module
        raise TypeError(f"params.py cannot check type {hint!r} of {dotted}")
    raise ParamsError(f"{source}: {dotted}: expected {_name(hint)}, got {value!r} ({type(value).__name__})")


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
