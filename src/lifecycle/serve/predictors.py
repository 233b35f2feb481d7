"""Prediction engines behind one small protocol, and loading a model the server may trust.

``Predictor.predict(records)`` takes validated records (dicts: feature -> number/str/None) and returns
``(labels or values, class probabilities or None)`` as numpy arrays in scikit-learn's form. Two engines:

- :class:`SklearnPredictor` (always available): the fitted ``Pipeline`` from model.joblib, with ``n_jobs=1``;
- :class:`OnnxEngine`: ``lifecycle.onnx.runtime.OnnxPredictor`` on model.onnx, only when model.json says its parity
  check passed and the file's sha256 matches (``lifecycle.onnx.runtime.load_predictor``); tensors come straight from the dicts.

:func:`load_model` checks the model file's sha256 against model.json before anything is unpickled and refuses a
mismatch with :class:`ModelIntegrityError`; :class:`ServedModel` picks the engine per request size
(``SERVE_ENGINE=auto``: ONNX up to ``SERVE_ONNX_MAX_ROWS`` rows, scikit-learn above).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import joblib
import numpy as np
import pandas as pd

from lifecycle.errors import DataError
from lifecycle.io import read_json, sha256_file
from lifecycle.schema import Schema

log = logging.getLogger(__name__)
Record = Mapping[str, Any]


class ModelIntegrityError(DataError):
    """The model file is missing, unreadable, or not the one its model.json describes: the server must not start."""


@runtime_checkable
class Predictor(Protocol):
    """What the server needs from an engine."""

    engine: str  # "sklearn" | "onnx"

    def predict(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray | None]:
        """Validated records -> (labels or predictions, shape (n,); probabilities, shape (n, classes) or None)."""
        ...


class SklearnPredictor:
    """The fitted scikit-learn pipeline; builds one DataFrame of the raw feature columns per call."""

    engine = "sklearn"

    def __init__(self, pipeline: Any, schema: Schema) -> None:
        self.pipeline = pipeline
        self.task = schema.task
        self.numeric, self.categorical = schema.numeric, schema.categorical
        self.columns = schema.features
        self.classification = schema.task == "classification" and hasattr(pipeline, "predict_proba")

    def frame(self, records: Sequence[Record]) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for name in self.numeric:
            data[name] = np.array([r[name] for r in records], dtype=np.float64)  # None -> nan
        for name in self.categorical:
            values = np.empty(len(records), dtype=object)
            values[:] = [np.nan if (v := r[name]) is None else v for r in records]
            data[name] = values
        return pd.DataFrame(data, columns=self.columns, copy=False)

    def predict(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray | None]:
        X = self.frame(records)
        if not self.classification:
            return np.asarray(self.pipeline.predict(X), dtype=np.float64), None
        proba = self.pipeline.predict_proba(X)
        return np.asarray(self.pipeline.classes_)[proba.argmax(axis=1)], proba


class OnnxEngine:
    """Adapter: ``lifecycle.onnx.runtime.OnnxPredictor`` behind :class:`Predictor` (dicts in, no DataFrame for 1 row)."""

    engine = "onnx"

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def predict(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray | None]:
        if len(records) == 1:
            return self.predictor.run_one(records[0])
        return self.predictor.run(records)


def limit_threads(threads: int) -> None:
    """Limit OpenMP/BLAS threads of the calling thread (and the process defaults) to ``threads``.

    HistGradientBoosting predicts with OpenMP and has no ``n_jobs``: with every core's threads per call, a one-row
    prediction on a busy 2-core machine measured 30 ms instead of 2 ms. OpenMP keeps this setting per thread, so
    every thread that predicts calls this once (the event loop at startup, the batch pool and the shadow thread).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def single_threaded(pipeline: Any) -> Any:
    """Set every ``n_jobs`` parameter of the pipeline (estimator, ColumnTransformer) to 1: a server predicts small
    requests, for which process/thread pools cost more than they save, and its workers already use the cores."""
    try:
        params = pipeline.get_params(deep=True)
    except AttributeError:
        return pipeline
    changes = {k: 1 for k in params if k == "n_jobs" or k.endswith("__n_jobs")}
    if changes:
        pipeline.set_params(**changes)
    return pipeline


@dataclasses.dataclass
class ServedModel:
    """One loaded, verified model with its engines."""

    name: str
    version: str
    role: str  # champion | challenger
    schema: Schema
    meta: dict[str, Any]
    sklearn: SklearnPredictor
    onnx: Predictor | None = None
    onnx_max_rows: int = 1000
    engine_note: str = ""  # why ONNX is not used, when it is not

    @property
    def classes(self) -> list[Any]:
        if self.schema.task != "classification":
            return []
        return [c.item() if hasattr(c, "item") else c for c in self.sklearn.pipeline.classes_]

    @property
    def engine(self) -> str:
        return "onnx" if self.onnx is not None else "sklearn"

    def predictor(self, rows: int) -> Predictor:
        if self.onnx is not None and rows <= self.onnx_max_rows:
            return self.onnx
        return self.sklearn


def read_meta(meta_path: Path) -> dict[str, Any]:
    if not meta_path.exists():
        raise ModelIntegrityError(
            f"{meta_path}: model card not found; run `dvc repro` (or `dvc pull`), or set SERVE_META_PATH"
        )
    try:
        meta = read_json(meta_path)
    except Exception as exc:
        raise ModelIntegrityError(f"{meta_path}: not readable JSON ({exc}); rerun `dvc repro`") from exc
    for key in ("model", "schema"):
        if not isinstance(meta.get(key), dict):
            raise ModelIntegrityError(
                f"{meta_path}: no {key!r} section; it is not a model.json written by train/export"
            )
    if not isinstance(meta["model"].get("sha256"), str):
        raise ModelIntegrityError(f"{meta_path}: no model.sha256; rerun `dvc repro train`")
    return meta


def verify(model_path: Path, meta: Mapping[str, Any], meta_path: Path) -> str:
    """The model file's sha256, after checking it is the one model.json describes (else ModelIntegrityError)."""
    if not model_path.exists():
        raise ModelIntegrityError(f"{model_path}: model file not found; run `dvc pull` or `dvc repro`")
    expected = meta["model"]["sha256"]
    actual = sha256_file(model_path)
    if actual != expected:
        raise ModelIntegrityError(
            f"refusing to serve {model_path}: its sha256 {actual[:12]}... does not match {meta_path} "
            f"(model.sha256 {expected[:12]}...); the model and its card come from different runs. "
            "Restore both with `dvc checkout` / `dvc pull`, or rerun `dvc repro`"
        )
    return actual


def load_model(
    model_path: Path,
    meta_path: Path,
    *,
    onnx_path: Path | None,
    engine: str,
    name: str,
    role: str = "champion",
    version: str | None = None,
    onnx_max_rows: int = 1000,
    onnx_threads: int = 1,
    meta: dict[str, Any] | None = None,
    probe: Sequence[Record] = (),
) -> ServedModel:
    """Verify and load one model; choose its engines (``engine``: auto | onnx | sklearn) and say why."""
    meta = read_meta(meta_path) if meta is None else meta
    digest = verify(model_path, meta, meta_path)
    schema = Schema.from_dict(meta["schema"])
    try:
        pipeline = single_threaded(joblib.load(model_path))
    except Exception as exc:
        raise ModelIntegrityError(f"{model_path}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
    served = ServedModel(
        name=name,
        version=version or digest[:12],
        role=role,
        schema=schema,
        meta=meta,
        sklearn=SklearnPredictor(pipeline, schema),
        onnx_max_rows=onnx_max_rows if engine == "auto" else (10**12 if engine == "onnx" else 0),
    )
    if engine == "sklearn":
        served.engine_note = "SERVE_ENGINE=sklearn"
    else:
        served.onnx, served.engine_note = _load_onnx(meta, onnx_path, schema, onnx_threads)
        if served.onnx is not None and probe:
            served.engine_note = self_check(served.onnx, served.sklearn, probe)
            if served.engine_note:
                served.onnx = None
        if served.onnx is None:
            log.warning(
                "%s model %s: serving with scikit-learn, ONNX unavailable: %s", role, served.version, served.engine_note
            )
    log.info(
        "%s model %s (%s, %s) loaded from %s; engine %s%s",
        role,
        served.version,
        meta["model"].get("family", "?"),
        schema.task,
        model_path,
        served.engine,
        f" up to {onnx_max_rows} rows, scikit-learn above" if served.onnx is not None and engine == "auto" else "",
    )
    return served


def self_check(onnx: Predictor, sklearn: Predictor, records: Sequence[Record], tolerance: float = 1e-3) -> str:
    """Run both engines on ``records`` (one at a time and together); "" when ONNX agrees, else why not.

    Parity was proven at export time; this catches what can differ at serving time (another onnxruntime, a graph
    and a ``lifecycle.onnx.runtime`` from different versions).
    """
    try:
        for batch in [*([r] for r in records), list(records)]:
            labels, proba = onnx.predict(batch)
            expected_labels, expected_proba = sklearn.predict(batch)
            if labels.tolist() != expected_labels.tolist():
                return f"ONNX engine failed its startup check: labels {labels.tolist()} != scikit-learn's {expected_labels.tolist()}"
            if proba is not None and expected_proba is not None:
                diff = float(np.max(np.abs(np.asarray(proba) - expected_proba)))
                if not diff <= tolerance:
                    return f"ONNX engine failed its startup check: probabilities differ by {diff:.3g} > {tolerance:g}"
    except Exception as exc:  # any engine error: serve scikit-learn and say why
        return f"ONNX engine failed its startup check: {type(exc).__name__}: {str(exc)[:300]}"
    return ""


def _load_onnx(
    meta: Mapping[str, Any], onnx_path: Path | None, schema: Schema, threads: int
) -> tuple[Predictor | None, str]:
    try:
        from lifecycle.onnx.runtime import load_predictor
    except ImportError as exc:  # onnxruntime missing from the image: fall back, and say so
        return None, f"lifecycle.onnx.runtime cannot be imported ({exc})"
    if onnx_path is None:
        return None, "no ONNX path configured"
    predictor, why = load_predictor(meta, onnx_path, schema, threads=threads)
    return (OnnxEngine(predictor), "") if predictor is not None else (None, why)
