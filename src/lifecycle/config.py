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
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import re
import types
import typing
import urllib.parse
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NoReturn

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lifecycle.errors import ParamsError

DEFAULT_PARAMS = "params.yaml"
SEED_MAX = 2**32 - 1  # numpy's legacy seeding (RandomState, scikit-learn's random_state) takes [0, 2**32 - 1]

# The names params may use. Homes of what they name: lifecycle.modeling.metrics (how each metric is computed),
# lifecycle.modeling.estimators (the models), lifecycle.data.telemetry (the simulated fleets); tests/test_config.py
# keeps these equal to them.
TASKS = ("classification", "regression")
METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
KNOWN_METRICS = (*METRICS["classification"], *METRICS["regression"])
LOSSES = frozenset({"log_loss", "rmse", "mae"})  # lower is better; higher for every other metric
MODEL_TASKS = {
    "hist_gradient_boosting": ("classification", "regression"),
    "random_forest": ("classification", "regression"),
    "logistic_regression": ("classification",),
    "ridge": ("regression",),
}
TELEMETRY_VERSIONS = ("v1", "v2")
DASK_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")  # the comm protocols of a Dask scheduler address
TELEMETRY_SOURCE = "telemetry"  # ingest.source of the built-in simulator (lifecycle.data.telemetry)
GATE_KINDS = ("min", "max", "min_improvement")  # promote.<task>.<kind>: {metric: value}
# What ingest.datetime_features may derive from a datetime column (lifecycle.modeling.features computes them).
DATETIME_PARTS = ("hour", "day_of_week", "month", "elapsed_days")


# --------------------------------------------------------------------------------------------- rules
def _fail(message: str, at: str = "") -> NoReturn:
    """Raise a rule's failure inside validation: ``message`` says what is wrong and the fix; ``at`` is the key's
    dotted path below the model whose validator raised (empty: the field being validated)."""
    raise PydanticCustomError("params", "{message}", {"message": message, "at": at})


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def within(
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    why: str = "",
) -> AfterValidator:
    """An ``Annotated`` marker: the value must lie in the interval (closed unless ``open_*``; None: unbounded).

    The failure reads ``1.5 is out of range; use a value in (0, 1)`` plus `` (why)`` when ``why`` is given.
    """
    if low is not None and high is not None:
        rule = f"in {'(' if open_low else '['}{_number(low)}, {_number(high)}{')' if open_high else ']'}"
    elif low is not None:
        rule = f"{'>' if open_low else '>='} {_number(low)}"
    elif high is not None:
        rule = f"{'<' if open_high else '<='} {_number(high)}"
    else:  # pragma: no cover - a developer error in this module
        raise TypeError("within() needs a bound")
    reason = f" ({why})" if why else ""

    def check(value: float) -> float:
        if value != value:  # NaN (YAML's .nan) passes every comparison
            _fail(f"{value!r} is not a number; use a value {rule}{reason}")
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            _fail(f"{value!r} is out of range; use a value {rule}{reason}")
        return value

    return AfterValidator(check)


def _nonempty(value: str) -> str:
    if not value.strip():
        _fail("must not be empty; name it, or use null where the key allows it")
    return value


def _n_jobs(value: int) -> int:
    if value < 1 and value != -1:
        _fail(f"{value!r} is out of range; use a value >= 1, or -1 for one job per core")
    return value


def _max_features(value: str | float | None) -> str | float | None:
    if isinstance(value, str) and value not in ("sqrt", "log2"):
        _fail(f"{value!r} is not allowed; use sqrt, log2, a share of the features in (0, 1], or null (all)")
    if isinstance(value, float) and not 0.0 < value <= 1.0:
        _fail(f"{value!r} is out of range; a share of the features is in (0, 1] (or use sqrt, log2, null)")
    return value


def _http_url(value: str) -> str:
    url = urllib.parse.urlsplit(value)
    if url.scheme not in ("http", "https") or not url.netloc:
        _fail(f"{value!r} is not an http(s) URL; use the webhook's https://... address, or null for no notifications")
    return value


def _closest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


Count = Annotated[int, within(1)]
Fraction = Annotated[float, within(0, 1)]
Positive = Annotated[float, within(0, open_low=True)]
NonNegative = Annotated[float, within(0)]
Rate = Annotated[float, within(0, 1, open_high=True)]
SampleRows = Annotated[int, within(0, why="0 = all rows")]  # rows of a seeded sample; 0 = every row
Seed = Annotated[int, within(0, SEED_MAX, why="numpy's seed range")]
NJobs = Annotated[int, AfterValidator(_n_jobs)]
Text = Annotated[str, AfterValidator(_nonempty)]


# params.yaml's `paths.schema` and `validate` section share their names with BaseModel's deprecated class methods
# schema() and validate(); pydantic supports such fields and only warns that they shadow the methods.
warnings.filterwarnings("ignore", r'Field name "(schema|validate)" in "(Paths|Params)" shadows', UserWarning)
# True while a section is validated inside another (pydantic calls each section's __init__): only the outermost
# construction turns pydantic's errors into one ParamsError.
_NESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("lifecycle_config_nested", default=False)


class Section(BaseModel):
    """A params.yaml section: unknown keys are errors, values are strictly typed and read-only.

    Building one in code checks the same rules as loading; a failure raises :class:`ParamsError` naming the
    section's dotted keys (``promote.classification.min.accurcy: unknown metric; ...``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def __init__(self, /, **data: Any) -> None:
        if _NESTED.get():  # pydantic validating a section inside another, or parse_params: it reports the errors
            super().__init__(**data)
            return
        token = _NESTED.set(True)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ParamsError(_explain(exc, type(self), prefix=_PREFIX.get(type(self), ""))) from None
        finally:
            _NESTED.reset(token)


# --------------------------------------------------------------------------------------------- sections
class Base(Section):
    seed: Seed
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Paths(Section):
    external: Text
    contracts: Text  # data contracts, one <dataset>.yaml per dataset (lifecycle.quality)
    raw: Text
    schema: Text  # the name of a deprecated BaseModel class method, which pydantic allows (see above)
    validated: Text
    quarantine: Text
    train: Text
    test: Text
    model: Text
    model_meta: Text
    train_meta: Text
    onnx: Text
    metrics: Text
    reports: Text
    incoming: Text  # users' batches to score (DVC-tracked: `dvc add`)
    demo: Text  # the simulate stage's demo batch (incoming/) and its labels (feedback/)
    params_check: Text  # the check_params stage's record: params.yaml passed lifecycle.config
    scored: Text
    scored_quarantine: Text
    feedback: Text
    champion: Text  # committed record of the prod model's version and metrics; `make release` updates it
    promotion: Text  # the promote stage's decision file
    labelled: Text  # labelled batches beyond ingest.source that ingest adds per retrain.strategy (`make retrain`)


class Ingest(Section):
    source: Text
    data_version: str | list[str]
    rows: Count
    missing_rate: Rate
    glitch_rate: Rate
    duplicate_rate: Rate
    target: Text
    task: Literal["classification", "regression"]
    read_options: dict[str, Any]
    normalize_columns: bool
    drop_columns: list[Text]  # each as the file's header writes it, or normalized
    id_columns: list[Text]
    max_categories: Count  # text columns with more distinct values keep their most frequent ones, the rest grouped
    min_category_rows: Count  # ... and only values seen in at least this many rows are kept
    datetime_features: list[Literal["hour", "day_of_week", "month", "elapsed_days"]]  # derived from each date column

    @field_validator("datetime_features")
    @classmethod
    def _parts(cls, parts: list[str]) -> list[str]:
        if len(set(parts)) != len(parts):
            _fail(f"{parts!r} names a part twice; list each of {', '.join(DATETIME_PARTS)} at most once")
        return parts

    @model_validator(mode="after")
    def _fleets(self) -> Ingest:
        versions = [self.data_version] if isinstance(self.data_version, str) else self.data_version
        if not versions:
            _fail("[] names no fleet; name at least one simulator fleet version, e.g. v1", "data_version")
        for i, version in enumerate(versions):
            if version not in TELEMETRY_VERSIONS:
                at = "data_version" if isinstance(self.data_version, str) else f"data_version[{i}]"
                _fail(f"{version!r} is not a simulator fleet version; use one of: {', '.join(TELEMETRY_VERSIONS)}", at)
        return self


class Simulate(Section):
    """The built-in demo batch the ``simulate`` stage writes for score and monitor (lifecycle.data.demo): telemetry
    of fleet ``data_version`` the model has not seen, with labels for a share of its rows."""

    data_version: str  # the simulator's fleet (lifecycle.data.telemetry)
    rows: Annotated[int, within(0, why="0 = no demo batch")]
    seed: Seed  # the batch's own seed, so it is not the training data
    feedback_fraction: Fraction  # share of the rows whose label "arrives later" (the demo's feedback)

    @field_validator("data_version")
    @classmethod
    def _fleet(cls, version: str) -> str:
        if version not in TELEMETRY_VERSIONS:
            _fail(f"{version!r} is not a simulator fleet version; use one of: {', '.join(TELEMETRY_VERSIONS)}")
        return version


class Validate(Section):
    min_rows: Count
    max_rows: Count | None
    max_null_fraction: Fraction
    max_bad_row_fraction: Fraction
    max_unlabeled_fraction: Fraction  # rows without a target are quarantined; more than this share fails the gate
    min_class_rows: Count
    row_expectations_on: Literal["flagged", "all"]  # GE evaluates row-level rules on flagged rows or all rows

    @model_validator(mode="after")
    def _rows(self) -> Validate:
        if self.max_rows is not None and self.max_rows < self.min_rows:
            _fail(
                f"{self.max_rows} is less than validate.min_rows={self.min_rows}; raise it, lower min_rows, or "
                "set null (no upper bound)",
                "max_rows",
            )
        return self


class Split(Section):
    test_size: Annotated[float, within(0, 1, open_low=True, open_high=True, why="the share of rows held out")]
    stratify: bool
    time_column: Text | None


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


class Evaluate(Section):
    permutation_repeats: Count
    permutation_max_rows: Count
    shap_max_rows: Count  # the global SHAP view: mean |SHAP| over at most this many test rows (drawn with base.seed)


class Export(Section):
    enabled: bool  # false: skip the ONNX conversion; model.json says why and serving uses scikit-learn
    opset: Count  # ONNX default-domain opset the converter targets
    max_abs_diff: NonNegative  # parity: largest |sklearn - onnxruntime| of class probabilities / predictions
    min_label_agreement: Fraction  # parity (classification): share of test rows with the same label
    parity_rows: SampleRows  # parity on a seeded sample of the test split (+ rows of every class and category)


class Score(Section):
    engine: Literal["pandas", "dask"]  # who runs score and monitor: pandas in this process, or Dask (section `dask`)
    chunk_rows: Count  # rows read, validated and predicted at a time: memory is bounded by the chunk, not the file
    min_rows: Count  # a batch with fewer clean rows is an error


def _task_metric(name: str, task: str, at: str) -> None:
    """Fail unless ``name`` is a metric of ``task`` (the message names the other task's metric as such)."""
    if name in METRICS[task]:
        return
    known = ", ".join(METRICS[task])
    other = next((t for t in TASKS if t != task and name in METRICS[t]), None)
    if other:
        _fail(f"{name} is a {other} metric; {task} metrics are: {known}", at)
    _fail(f"unknown metric; {_closest(name, METRICS[task])}{task} metrics are: {known}", at)


class FeedbackRule(Section):
    """``monitor.feedback.<task>``: retrain when ``metric`` on the feedback labels is worse than on the test split
    by more than ``max_drop`` (in the metric's units, in its better direction)."""

    TASK: ClassVar[str] = ""
    metric: str
    max_drop: NonNegative

    @model_validator(mode="after")
    def _metric(self) -> FeedbackRule:
        _task_metric(self.metric, self.TASK, "metric")
        return self


class ClassificationFeedback(FeedbackRule):
    TASK: ClassVar[str] = "classification"


class RegressionFeedback(FeedbackRule):
    TASK: ClassVar[str] = "regression"


class TaskFeedback(Section):
    classification: ClassificationFeedback
    regression: RegressionFeedback


class Monitor(Section):
    psi_bins: Annotated[int, within(2, why="PSI compares at least 2 bins")]  # reference-quantile bins, numeric PSI
    psi_threshold: NonNegative  # a feature (numeric or categorical) drifted when its PSI reaches this
    ks_threshold: Fraction  # ... or its KS statistic reaches this with p < p_value (numeric)
    js_threshold: Fraction  # ... or its Jensen-Shannon distance reaches this with chi-square p < p_value (categorical)
    p_value: Fraction
    max_missing_delta: Fraction  # |missing rate in batch - in reference| that counts as a change
    prediction_psi_threshold: NonNegative  # PSI of the predicted-class shares (or predicted values)
    min_drifted_features: Count  # retrain when at least this many features drifted
    reference_rows: Annotated[int, within(0, why="0 = all rows")]  # seeded sample of the training reference
    feedback: TaskFeedback  # per task (ingest.task picks one): the feedback metric and its allowed drop
    min_feedback_rows: Count  # fewer labelled rows than this: report the metrics, decide nothing on them
    fail_on_drift: bool  # true: the monitor stage exits non-zero when it decides to retrain (a gate)

    def feedback_rule(self, task: str) -> FeedbackRule:
        """``monitor.feedback.<task>``: the feedback metric and the drop that calls for retraining."""
        return getattr(self.feedback, task)


def _scheduler_address(value: str) -> str:
    url = urllib.parse.urlsplit(value)
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme not in DASK_PROTOCOLS or not url.hostname or port is None:
        _fail(
            f"{value!r} is not a Dask scheduler address; use <protocol>://<host>:<port> with protocol "
            f"{' | '.join(DASK_PROTOCOLS)}, e.g. tcp://dask-scheduler:8786 (or null for a local cluster)"
        )
    return value


class Dask(Section):
    """Where ``score.engine: dask`` runs (lifecycle.cluster, docs/scale.md). Outputs do not depend on it."""

    scheduler: Annotated[str, AfterValidator(_scheduler_address)] | None  # null: $DASK_SCHEDULER_ADDRESS or local
    n_workers: Count | None  # local cluster: worker processes; null = sized to the machine (Dask's default)
    threads_per_worker: Count | None  # local cluster: threads per worker; null = Dask's default


class Notify(Section):
    webhook_url: Annotated[str, AfterValidator(_http_url)] | None  # Slack-compatible incoming webhook; null = none
    timeout_seconds: Positive


class Gates(Section):
    """``promote.<task>``: one task's promotion thresholds. Keys of each map are metrics of that task
    (lifecycle.modeling.metrics)."""

    TASK: ClassVar[str] = ""
    min: dict[str, float]  # scores that must reach at least this value, e.g. {accuracy: 0.85}
    max: dict[str, float]  # losses that must stay at or below this value, e.g. {log_loss: 0.5}
    min_improvement: dict[str, float]  # required gain over the champion, in the metric's better direction

    @model_validator(mode="after")
    def _metrics(self) -> Gates:
        for kind in GATE_KINDS:
            for name in getattr(self, kind):
                at = f"{kind}.{name}"
                _task_metric(name, self.TASK, at)
                if kind == "min" and name in LOSSES:
                    _fail(f"{name} is a loss (lower is better); put it under promote.{self.TASK}.max instead", at)
                if kind == "max" and name not in LOSSES:
                    _fail(f"{name} is a score (higher is better); put it under promote.{self.TASK}.min instead", at)
        return self


class ClassificationGates(Gates):
    TASK: ClassVar[str] = "classification"


class RegressionGates(Gates):
    TASK: ClassVar[str] = "regression"


class Promote(Section):
    """The promotion gate (docs/registry.md): thresholds per task, ``ingest.task`` picks the ones that apply, so
    switching the task is one ``-S ingest.task=...``."""

    classification: ClassificationGates
    regression: RegressionGates
    strict: bool  # true: a reject makes the stage exit non-zero (`dvc repro` stops)

    def gates(self, task: str) -> Gates:
        """``promote.<task>``: the thresholds that apply to a model of ``task`` (classification or regression)."""
        if task not in TASKS:
            raise ValueError(f"task {task!r} is not one of: {', '.join(TASKS)}")
        return getattr(self, task)


class Kfp(Section):
    """The Kubeflow pipeline compiled from dvc.yaml (lifecycle.kfp, docs/kubeflow.md). Not read by any DVC stage.

    The per-task maps (``env`` aside) are keyed by task name (a dvc.yaml stage, ``register``, ``deploy`` or
    ``notify``) or ``default``, which every map must have; lifecycle.kfp checks the task names against dvc.yaml."""

    pipeline_name: Text
    image: Text  # the project's image (deploy/Dockerfile) that every component runs in
    pipeline_root: Text  # where KFP stores every task's artifacts: an s3:// URI (MinIO in a cluster)
    inputs_uri: Text  # prefix of the inputs no stage writes (contracts, incoming batches, ...): <inputs_uri>/<path>
    registry_uri: Text  # register writes <registry_uri>/<version>/ and <registry_uri>/champion.json
    namespace: Text  # where deploy applies the KServe InferenceService
    s3_secret: Text | None  # Kubernetes Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (kfp-kubernetes)
    s3_endpoint_url: Annotated[str, AfterValidator(_http_url)] | None  # AWS_ENDPOINT_URL of every task; null = AWS
    env: dict[str, str]  # environment of every task
    cpu_limit: dict[str, Text]  # e.g. {default: "1", train: "2"}
    memory_limit: dict[str, Text]  # e.g. {default: 2G, train: 4G}
    retries: dict[str, Annotated[int, within(0)]]
    timeout_seconds: dict[str, Count]  # the pod's activeDeadlineSeconds
    caching: dict[str, bool]
    katib_parallel_trials: Count  # the Katib Experiment generated from train.search_space

    @model_validator(mode="after")
    def _defaults(self) -> Kfp:
        for key in ("cpu_limit", "memory_limit", "retries", "timeout_seconds", "caching"):
            if "default" not in getattr(self, key):
                _fail("add a 'default' entry (the value of every task not listed)", key)
        return self


_GIT_REF_BAD = re.compile(r"\.\.|@\{|//|[\x00-\x20~^:?*\[\\\x7f]")


def _branch(value: str) -> str:
    """A branch name git accepts (git check-ref-format's rules, checked here so a typo fails before any work)."""
    if (
        not value
        or _GIT_REF_BAD.search(value)
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or "/." in value
        or value == "@"
    ):
        _fail(
            f"{value!r} is not a branch name git accepts (no spaces, '..', '~^:?*[\\', leading '-' or '.', "
            "trailing '/', '.' or '.lock'); use e.g. retrain/auto"
        )
    return value


class Retrain(Section):
    """`make retrain` (lifecycle.retrain) and the training data ingest builds from labelled batches
    (docs/monitoring.md, "The retraining loop")."""

    strategy: Literal["combined", "recent"]  # combined: ingest.source + paths.labelled; recent: paths.labelled only
    min_labelled_rows: Count  # new labelled rows needed before a retrain runs (recent: also what ingest needs)
    branch: Annotated[str, AfterValidator(_branch)]  # the branch the accepted candidate is written to (one PR)


# A new section: declare its model above, add a field here, add the section to params.yaml.
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


# --------------------------------------------------------------------------------------------- messages
def _explain(exc: ValidationError, root: type[BaseModel], source: str = DEFAULT_PARAMS, prefix: str = "") -> str:
    """pydantic's errors of validating ``root`` -> one line per key: ``{source}: {dotted.key}: {rule and fix}``.

    ``prefix``: the dotted key of ``root`` itself in params.yaml (empty for :class:`Params`).
    """
    groups: dict[str, list[tuple[Mapping[str, Any], Any, type[BaseModel] | None]]] = {}
    for err in exc.errors(include_url=False):
        dotted, hint, holder = _locate(root, err["loc"])
        at = (err.get("ctx") or {}).get("at", "")
        key = ".".join(part for part in (prefix, dotted, at) if part)
        groups.setdefault(key, []).append((err, hint, holder))
    lines = []
    for key, errors in groups.items():
        if any(other.startswith((f"{key}.", f"{key}[")) for other in groups):
            continue  # a union member that does not fit at all, while another fits but has a bad item: report that
        err, _, holder = errors[0]
        if err["type"] == "missing" and holder is Params and "." not in key:
            lines.append(f"{source}: section '{key}' is missing; add it (see README, 'Parameters')")
        else:
            lines.append(f"{source}: {key}: {_describe(errors, key)}")
    return "\n".join(lines)


def _locate(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, Any, type[BaseModel] | None]:
    """pydantic's error location -> (dotted key as params.yaml spells it, the type declared there, the model
    holding the last key). Union member tags in ``loc`` (``'str'``, ``'list[str]'``) are dropped."""
    parts: list[str] = []
    hint: Any = root  # the type where the walk is (a union's member after its tag)
    declared: Any = root  # the type declared at the last key
    holder: type[BaseModel] | None = None
    for item in loc:
        base = _unwrap(hint)
        if _is_union(base):
            members = [m for m in typing.get_args(base) if m is not type(None)]
            tagged = [m for m in members if _name(m) == item]
            if tagged:  # a member's tag, not a key
                hint = tagged[0]
                continue
            base = _unwrap(members[0]) if len(members) == 1 else None
        if isinstance(base, type) and issubclass(base, BaseModel):
            holder = base
            parts.append(f".{item}")
            hint = base.model_fields[item].annotation if item in base.model_fields else None
        elif typing.get_origin(base) is list:
            parts.append(f"[{item}]")
            hint = typing.get_args(base)[0]
        elif typing.get_origin(base) is dict:
            parts.append(f".{item}")
            hint = typing.get_args(base)[1]
        else:
            parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
            hint = None
        declared = hint
    return "".join(parts).lstrip("."), declared, holder


_TYPE_NAMES = {"int_type": "int", "float_type": "a number", "bool_type": "bool", "string_type": "str"}


def _describe(errors: list[tuple[Mapping[str, Any], Any, type[BaseModel] | None]], key: str) -> str:
    """The rule and fix for one key, from pydantic's error(s) there (several: the members of a union)."""
    rules = [err for err, _, _ in errors if err["type"] == "params"]
    if rules:
        return str(rules[0]["ctx"]["message"])
    err, hint, holder = errors[0]
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        known = list(holder.model_fields) if holder else []
        parent = key.rpartition(".")[0]
        last = key.rpartition(".")[2]
        close = difflib.get_close_matches(last, known, n=1)
        hint_text = f"did you mean '{parent + '.' if parent else ''}{close[0]}'? " if close else ""
        return f"unknown key; {hint_text}known keys here: {', '.join(sorted(known))}"
    if kind == "missing":
        return "missing key; add it to params.yaml"
    if kind in ("model_type", "model_attributes_type"):
        return f"expected a mapping of keys, got {value!r}"
    if len(errors) > 1 or (_is_union(_unwrap(hint)) and kind in (*_TYPE_NAMES, "list_type", "none_required")):
        return f"{value!r} does not fit type {_name(hint)}"
    if kind == "literal_error":
        choices = typing.get_args(_unwrap(hint)) if hint is not None else ()
        return f"{value!r} is not allowed; use one of: {', '.join(map(str, choices))}"
    if kind == "dict_type":
        return f"expected a mapping, got {value!r}"
    if kind == "list_type":
        return f"expected a list, got {value!r}"
    if kind == "none_required":
        return "expected null"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {value!r} ({type(value).__name__})"
    return str(err["msg"])


def _unwrap(hint: Any) -> Any:
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _name(hint: Any) -> str:
    """A type as params.yaml's reader knows it: ``int``, ``str | float | None``, ``list[str]``."""
    hint = _unwrap(hint)
    if hint is type(None):
        return "None"
    if _is_union(hint):
        return " | ".join(_name(m) for m in typing.get_args(hint))
    origin = typing.get_origin(hint)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_name(a) for a in typing.get_args(hint))}]"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
