"""The model artifact: the typed model.json record, the one integrity-checked ``load``, and the one ``predict``.

One fitted ``Pipeline(preprocess -> model)`` is pickled to ``model.joblib`` (:func:`save_model`); its metadata
(``train.json`` written by train, ``model.json`` = the same plus the ``onnx`` and ``contract`` sections written by
export) records the model's sha256. Loading a pickle runs code, so :func:`load_model` checks the file's sha256 against that record
*before* anything is unpickled (scikit-learn's model_persistence guide: load only what you trust), and every
consumer (evaluate, export, score, monitor, the server, production scoring) loads through it.

:func:`predict` is the one prediction path: one ``predict_proba`` pass for classifiers (labels are the argmax of
the probabilities, as scikit-learn's ``predict`` computes them), ``predict`` for regressors.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lifecycle.errors import DataError
from lifecycle.io import atomic_path, read_json, sha256_file, write_json
from lifecycle.schema import Schema

log = logging.getLogger(__name__)
PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")


class ModelIntegrityError(DataError):
    """The model file is missing, unreadable, or not the one its metadata describes: it must not be unpickled."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Record):
    """``model``: the pickled pipeline and how it was made."""

    file: str  # file name of the pickle (no directory: outputs hold no paths)
    sha256: str  # hex sha256 of the pickle's bytes: the integrity check of :func:`load_model`
    bytes: int
    family: str  # train.model, e.g. hist_gradient_boosting
    task: str  # classification | regression
    hyperparameters: dict[str, Any]  # the fitted hyperparameters (train.<model> with the search's best values)
    seed: int  # base.seed
    search: dict[str, Any]  # train.search summary without the per-candidate scores


class DataSection(_Record):
    """``data``: the rows the model was fitted on."""

    file: str
    sha256: str
    rows: int
    target_distribution: dict[str, int]  # classification: rows per class; regression: {}


class OnnxSection(_Record):
    """``onnx`` (export): the derived ONNX graph, its parity report, and why it is not usable when it is not."""

    file: str
    sha256: str | None  # None when not usable (model.onnx is then 0 bytes)
    bytes: int
    usable: bool
    opset: int
    ml_opset: int
    inputs: dict[str, str]  # {"numeric": float64|float32, "categorical": string}
    packages: dict[str, str]
    parity: dict[str, Any] | None
    reason: str


class ContractSection(_Record):
    """``contract`` (export): the data contract the training rows passed and its numeric bounds on the features."""

    file: str
    dataset: str
    limits: dict[str, list[float | None]]  # {column: [min, max]}, None = unbounded side


class MetricsSample(_Record):
    """``metrics_sample.<set>``: the rows a set of ``metrics`` was computed on (train: ``train.metrics_sample_rows``)."""

    rows: int  # rows predicted to compute the metrics
    sampled_from: int  # rows of the split they were drawn from (rows == sampled_from: every row)
    seed: int  # base.seed, which drew the sample


class ExplainerSection(_Record):
    """``explainer`` (train): the background of the model's SHAP explanations (lifecycle.modeling.explain).

    ``background``: rows of the training split drawn with ``model.seed`` (``train.shap_background_rows`` of them),
    the schema's features only, ``None`` for a missing value; every contribution is measured against them. It
    travels with the model, so the server and evaluate explain without the training data.
    """

    background: list[dict[str, float | str | None]]


class ModelMetadata(_Record):
    """model.json (and train.json, which lacks ``onnx`` and ``contract``): deterministic, no volatile values."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    model: ModelSection
    data: DataSection
    packages: dict[str, str]
    schema_: dict[str, Any] = Field(alias="schema")  # Schema.to_dict() (BaseModel reserves the name `schema`)
    metrics: dict[str, dict[str, float]]  # {"train": {...}}: computed by train (see model.json's docs)
    metrics_sample: dict[str, MetricsSample] | None = None  # {"train": ...}: the rows behind each set of metrics
    onnx: OnnxSection | None = None
    contract: ContractSection | None = None
    explainer: ExplainerSection | None = None  # absent in records written before explanations existed

    # ----------------------------------------------------------------------------------------- views
    @property
    def training_schema(self) -> Schema:
        """The training schema the model expects."""
        return Schema.from_dict(self.schema_)

    @property
    def version(self) -> str:
        """The model's version outside the registry: the first 12 hex digits of its sha256."""
        return self.model.sha256[:12]

    # ----------------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON content, in model.json's key names; ``metrics_sample``/``onnx``/``contract``/``explainer`` only when
        present (records written before issue 20 have no ``metrics_sample``, before explanations no ``explainer``)."""
        absent = {key for key in ("metrics_sample", "onnx", "contract", "explainer") if getattr(self, key) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=absent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "model.json") -> ModelMetadata:
        """Parse a model.json/train.json mapping; an unknown, missing or mistyped key raises
        :class:`ModelIntegrityError` naming ``source`` and the dotted key."""
        if not isinstance(data, Mapping):
            raise ModelIntegrityError(f"{source}: not a JSON object; rerun `dvc repro train`")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ModelIntegrityError(
                f"{source}: {where}: {first['msg']}; it is not a model record written by train/export "
                "(rerun `dvc repro`)"
            ) from exc

    @classmethod
    def read(cls, path: str | Path) -> ModelMetadata:
        """Read a model.json/train.json file; errors name the file."""
        p = Path(path)
        if not p.exists():
            raise ModelIntegrityError(f"{p}: model metadata not found; run `dvc repro` (or `dvc pull`)")
        try:
            raw = read_json(p)
        except DataError as exc:
            raise ModelIntegrityError(str(exc)) from exc
        return cls.from_dict(raw, str(p))

    def write(self, path: str | Path) -> None:
        """Write atomically as deterministic JSON (sorted keys)."""
        write_json(path, self.to_dict())


def package_versions() -> dict[str, str]:
    """Versions of the packages a pickle needs to load the same way (scikit-learn's persistence advice), and
    Python's."""
    versions = {name: metadata.version(name) for name in PACKAGES}
    versions["python"] = platform.python_version()
    return versions


# --------------------------------------------------------------------------------------------- saving, loading
def save_model(model: Any, model_path: str | Path) -> None:
    """Pickle the fitted pipeline to ``model_path`` with joblib (``compress=3``), atomically (temp file, fsync,
    rename): the file train writes and :func:`load_model` reads. Deterministic for a deterministic ``model``."""
    import joblib

    with atomic_path(model_path) as tmp:
        joblib.dump(model, tmp, compress=3)


def verify(model_path: str | Path, record: ModelMetadata, source: str = "model.json") -> str:
    """The model file's hex sha256, after checking it equals ``record.model.sha256``.

    Raises :class:`ModelIntegrityError` for a missing file or another file's bytes, naming both files.
    """
    path = Path(model_path)
    if not path.exists():
        raise ModelIntegrityError(f"{path}: model not found; run `dvc repro train` (or `dvc pull`)")
    actual = sha256_file(path)
    expected = record.model.sha256
    if actual != expected:
        raise ModelIntegrityError(
            f"refusing to load {path}: its sha256 {actual[:12]}... does not match model.sha256 {expected[:12]}... "
            f"in {source}; the model and its metadata come from different runs. Restore both with `dvc checkout` "
            "/ `dvc pull`, or rerun `dvc repro`"
        )
    return actual


def load_model(model_path: str | Path, record: ModelMetadata | str | Path, *, source: str | None = None) -> Any:
    """The fitted pipeline in ``model_path``, unpickled only after :func:`verify` passed against ``record`` (a
    :class:`ModelMetadata` or the path of model.json/train.json). ``source`` names where a :class:`ModelMetadata`
    was read from, for the error message (default: the path, or "model metadata").

    Raises :class:`ModelIntegrityError` when the file is missing, is not the recorded one, or cannot be unpickled.
    """
    source = source or "model metadata"
    if not isinstance(record, ModelMetadata):
        source = str(record)
        record = ModelMetadata.read(record)
    verify(model_path, record, source)
    import joblib

    try:
        return joblib.load(model_path)
    except Exception as exc:  # unpickling raises anything: a truncated file, a missing class, ...
        raise ModelIntegrityError(f"{model_path}: cannot be loaded ({type(exc).__name__}: {exc})") from exc


# --------------------------------------------------------------------------------------------- predicting
def model_classes(model: Any) -> list[Any]:
    """The fitted classifier's classes as plain Python values (``classes_`` order); [] for a regressor."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return []
    return [c.item() if hasattr(c, "item") else c for c in classes]


def predict(
    model: Any, X: pd.DataFrame | Sequence[Mapping[str, Any]], task: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predict raw feature rows ``X`` (shape (n, features)) with the fitted pipeline.

    Returns ``(y_pred, proba)``: for classification ``y_pred`` has shape (n,) with values of ``model.classes_`` and
    ``proba`` shape (n, n_classes) in ``classes_`` order, from one ``predict_proba`` pass (``y_pred`` is its argmax,
    as scikit-learn's own ``predict`` does for these estimators); for regression ``y_pred`` is float64 of shape
    (n,) and ``proba`` is None.
    """
    if task == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        return np.asarray(model.classes_)[np.argmax(proba, axis=1)], proba
    y_pred = np.asarray(model.predict(X))
    return (y_pred.astype(np.float64) if task == "regression" else y_pred), None
