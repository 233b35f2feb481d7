"""Prediction engines behind one small protocol, and the served model that holds them.

``Predictor.predict(records)`` takes validated records (dicts: feature -> number/str/None) and returns
``(y_pred, class probabilities or None)`` as numpy arrays in scikit-learn's form. Two engines:

- :class:`SklearnPredictor` (always available): the fitted ``Pipeline`` from model.joblib, with ``n_jobs=1``,
  predicting through :func:`lifecycle.artifact.predict` (the one predict path of the project);
- :class:`OnnxEngine`: ``lifecycle.onnx.runtime.OnnxPredictor`` on model.onnx, only when the model's metadata says
  its parity check passed and the file's sha256 matches (``lifecycle.onnx.runtime.load_predictor``); tensors come straight
  from the dicts.

:func:`load_served_model` loads the pipeline through :func:`lifecycle.artifact.load_model` (sha256 checked against
model.json before anything is unpickled; a mismatch raises :class:`lifecycle.artifact.ModelIntegrityError`), and
:class:`ServedModel` picks the engine per request size (``SERVE_ENGINE=auto``: ONNX up to ``SERVE_ONNX_MAX_ROWS``
rows, scikit-learn above).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from lifecycle import artifact
from lifecycle.artifact import ModelMetadata
from lifecycle.schema import Schema
from lifecycle.serve.probe import build_probe, compare

log = logging.getLogger(__name__)
Record = Mapping[str, Any]
PLATFORMS = {"onnx": "onnxruntime_onnx", "sklearn": "sklearn"}  # Open Inference model metadata's `platform`


@runtime_checkable
class Predictor(Protocol):
    """What the server needs from an engine."""

    engine: str  # "sklearn" | "onnx"

    def predict(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray | None]:
        """Validated records -> (y_pred, shape (n,); probabilities, shape (n, classes) or None)."""
        ...


class SklearnPredictor:
    """The fitted scikit-learn pipeline; builds one DataFrame of the raw feature columns per call."""

    engine = "sklearn"

    def __init__(self, pipeline: Any, schema: Schema) -> None:
        self.pipeline = pipeline
        self.task = schema.task
        self.numeric, self.categorical = schema.numeric, schema.categorical
        self.datetimes = schema.datetime_features  # the pipeline derives its date features from the raw values
        self.columns = schema.features

    def frame(self, records: Sequence[Record]) -> pd.DataFrame:
        """The raw feature columns, typed once (float64 with NaN for missing numbers; object with NaN for missing
        categories): cheaper than letting pandas infer the dtypes of a list of dicts on every request."""
        data: dict[str, Any] = {}
        for name in self.numeric:
            data[name] = np.array([r[name] for r in records], dtype=np.float64)  # None -> nan
        for name in self.categorical:
            values = np.empty(len(records), dtype=object)
            values[:] = [np.nan if (v := r[name]) is None else v for r in records]
            data[name] = values
        for name in self.datetimes:
            values = np.empty(len(records), dtype=object)
            values[:] = [r.get(name) for r in records]
            data[name] = values
        return pd.DataFrame(data, columns=self.columns, copy=False)

    def predict(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray | None]:
        """See :class:`Predictor`; the prediction is :func:`lifecycle.artifact.predict`'s."""
        return artifact.predict(self.pipeline, self.frame(records), self.task)


class OnnxEngine:
    """Adapter: ``lifecycle.onnx.runtime.OnnxPredictor`` behind :class:`Predictor` (dicts in, no DataFrame for 1 row)."""

    engine = "onnx"

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def predict(self, records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray | None]:
        """See :class:`Predictor`."""
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
    meta: ModelMetadata
    sklearn: SklearnPredictor
    onnx: Predictor | None = None
    onnx_max_rows: int = 1000
    engine_note: str = ""  # why ONNX is not used, when it is not

    @property
    def classes(self) -> list[Any]:
        """The classifier's classes as plain values, in ``classes_`` order; [] for regression."""
        if self.schema.task != "classification":
            return []
        return artifact.model_classes(self.sklearn.pipeline)

    @property
    def engine(self) -> str:
        """The engine small requests get: ``onnx`` when usable, else ``sklearn``."""
        return "onnx" if self.onnx is not None else "sklearn"

    def predictor(self, rows: int) -> Predictor:
        """The engine for a request of ``rows`` rows."""
        if self.onnx is not None and rows <= self.onnx_max_rows:
            return self.onnx
        return self.sklearn

    def engines(self, max_rows: int) -> list[dict[str, Any]]:
        """Which engine answers which request sizes, for requests of 1 to ``max_rows`` rows (SERVE_MAX_ROWS):
        ``[{"engine", "platform", "min_rows", "max_rows"}, ...]``, the same choice as :meth:`predictor`."""
        onnx_rows = min(self.onnx_max_rows, max_rows) if self.onnx is not None else 0
        ranges = [("onnx", 1, onnx_rows), ("sklearn", onnx_rows + 1, max_rows)]
        return [
            {"engine": engine, "platform": PLATFORMS[engine], "min_rows": low, "max_rows": high}
            for engine, low, high in ranges
            if low <= high
        ]


def load_served_model(
    model_path: Path,
    meta: ModelMetadata,
    *,
    meta_path: Path,
    onnx_path: Path | None,
    engine: str,
    name: str,
    role: str = "champion",
    version: str | None = None,
    onnx_max_rows: int = 1000,
    onnx_threads: int = 1,
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> ServedModel:
    """Verify and load one model (``meta`` read from ``meta_path``), tie its ONNX copy to it, choose its engines
    (``engine``: auto | onnx | sklearn) and say why; ``version`` defaults to the first 12 hex digits of the model's
    sha256.

    model.joblib's sha256 is checked before it is unpickled. When model.json says the ONNX graph is usable (whatever
    ``engine``), model.onnx's sha256 is checked too and both engines predict the start-up probe
    (:func:`lifecycle.serve.probe.build_probe`: rows generated within ``limits`` that the pipeline predicts as every
    class); a graph that is not the recorded one, or that disagrees with the pipeline, stops the start. A graph
    that is missing, or that onnxruntime cannot load or run, leaves scikit-learn serving with the reason in
    ``engine_note``.

    Raises :class:`lifecycle.artifact.ModelIntegrityError` when the model file is missing, is not the one ``meta``
    describes, or cannot be unpickled, when model.onnx is not the recorded graph, or when the engines disagree.
    """
    pipeline = single_threaded(artifact.load_model(model_path, meta, source=str(meta_path)))
    schema = meta.training_schema
    served = ServedModel(
        name=name,
        version=version or meta.version,
        role=role,
        schema=schema,
        meta=meta,
        sklearn=SklearnPredictor(pipeline, schema),
        onnx_max_rows=onnx_max_rows if engine == "auto" else (10**12 if engine == "onnx" else 0),
    )
    onnx, served.engine_note = _load_onnx(meta, onnx_path, schema, onnx_threads)
    if onnx is not None:
        served.engine_note = tie(onnx, served, onnx_path, limits or {})
        if served.engine_note:
            onnx = None
    if engine == "sklearn":
        served.engine_note = "SERVE_ENGINE=sklearn" + (" (model.onnx checked)" if onnx is not None else "")
    else:
        served.onnx = onnx
        if onnx is None:
            log.warning(
                "%s model %s: serving with scikit-learn, ONNX unavailable: %s", role, served.version, served.engine_note
            )
    log.info(
        "%s model %s (%s, %s) loaded from %s; engine %s%s",
        role,
        served.version,
        meta.model.family,
        schema.task,
        model_path,
        served.engine,
        f" up to {onnx_max_rows} rows, scikit-learn above" if served.onnx is not None and engine == "auto" else "",
    )
    return served


def tie(onnx: Predictor, served: ServedModel, onnx_path: Path | None, limits: Mapping[str, tuple[float, float]]) -> str:
    """Both engines on the start-up probe (:mod:`lifecycle.serve.probe`): "" when they agree; the reason when the ONNX
    engine cannot run (a runtime problem: scikit-learn serves). Raises :class:`ModelIntegrityError` when they
    disagree: model.onnx and model.joblib are then not the same model.

    Parity was proven at export time on the test split; this catches a pickle or graph swapped since (both hashes
    match their model.json, which can be rewritten with them) and runtime differences. The tolerance is the
    larger of 1e-3 and ten times ``export.max_abs_diff`` recorded in model.json.
    """
    probe = build_probe(served.sklearn, served.schema, limits, served.classes)
    parity = (served.meta.onnx.parity if served.meta.onnx is not None else None) or {}
    tolerance = max(1e-3, 10 * float((parity.get("thresholds") or {}).get("max_abs_diff") or 0.0))
    try:
        disagreement = compare(onnx, served.sklearn, probe.records, tolerance)
    except Exception as exc:  # the ONNX runtime cannot run it: serve scikit-learn and say why
        return f"ONNX engine failed its startup check: {type(exc).__name__}: {str(exc)[:300]}"
    if disagreement:
        raise artifact.ModelIntegrityError(
            f"refusing to start: {onnx_path} and the pipeline in model.joblib disagree on the start-up probe "
            f"({len(probe.records)} generated rows covering classes {probe.covered}): {disagreement}. They are not "
            "the same model (a pickle or graph swapped since export?). Restore both with `dvc checkout` / `dvc pull`, "
            "or rerun `dvc repro`"
        )
    coverage = f"classes {probe.covered}" if probe.classes else "regression"
    if probe.missing:
        coverage += f"; no generated row is predicted as {probe.missing}"
        log.warning(
            "%s model %s: the start-up probe reaches no row of class(es) %s", served.role, served.version, probe.missing
        )
    log.info(
        "%s model %s: ONNX and scikit-learn agree on %d probe rows (%s)",
        served.role,
        served.version,
        len(probe.records),
        coverage,
    )
    return ""


def _load_onnx(
    meta: ModelMetadata, onnx_path: Path | None, schema: Schema, threads: int
) -> tuple[Predictor | None, str]:
    try:
        from lifecycle.onnx.runtime import load_predictor
    except ImportError as exc:  # onnxruntime missing from the image: fall back, and say so
        return None, f"lifecycle.onnx.runtime cannot be imported ({exc})"
    if onnx_path is None:
        return None, "no ONNX path configured"
    predictor, why = load_predictor(meta.to_dict(), onnx_path, schema, threads=threads, strict=True)
    return (OnnxEngine(predictor), "") if predictor is not None else (None, why)
