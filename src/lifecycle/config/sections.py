"""The params.yaml sections of data, evaluation, serving and operations: one frozen, strictly typed model each
(the training sections are in :mod:`lifecycle.config.training`)."""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    field_validator,
    model_validator,
)

from lifecycle.config.rules import (
    DASK_PROTOCOLS,
    DATETIME_PARTS,
    GATE_KINDS,
    LOSSES,
    METRICS,
    TASKS,
    TELEMETRY_VERSIONS,
    Count,
    Fraction,
    NonNegative,
    Positive,
    Rate,
    SampleRows,
    Section,
    Seed,
    Text,
    _closest,
    _fail,
    _http_url,
    within,
)


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
