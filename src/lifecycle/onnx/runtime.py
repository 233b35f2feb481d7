"""Run a verified model.onnx with onnxruntime; answers in scikit-learn's form, from dicts or DataFrames.

:class:`OnnxPredictor` runs the graph that :func:`lifecycle.onnx.convert.convert` wrote. ``run_one(record)`` builds
the input tensors straight from a validated record dict (no DataFrame); ``run(rows)`` takes a DataFrame or a list of
dicts. Labels come back as the fitted pipeline's ``classes_`` values (strings for telemetry, integers for wine
quality), probabilities as float64 columns in ``classes_`` order, regression predictions as float64: the form
:func:`lifecycle.artifact.predict` returns. :func:`load_predictor` is the server's gate: the ONNX engine only when
model.json says parity passed and the file's sha256 matches the one recorded there, otherwise ``None`` and why.

A missing or unknown category encodes as all zeros in both engines (``OneHotEncoder(handle_unknown="ignore")``
in scikit-learn, ``OneHotEncoder(zeros=1)`` in ONNX); the predictor feeds a missing category as a sentinel
string that is not a known category, so it takes that same all-zeros path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from lifecycle.artifact import ModelIntegrityError, ModelMetadata
from lifecycle.errors import DataError
from lifecycle.schema import Schema

MISSING = "\x00missing"  # fed for a missing category: never a known category, so it encodes as all zeros
META_KEY = "lifecycle"  # ONNX metadata_props key holding task, features, input type and classes as JSON
Rows = pd.DataFrame | Sequence[Mapping[str, Any]]


def describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception (at most 300 characters), without memory addresses: a reason that
    model.json can record deterministically."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (other values unchanged)."""
    return value.item() if hasattr(value, "item") else value


def _classes_array(classes: Sequence[Any]) -> np.ndarray:
    """The classes as scikit-learn keeps them: int64 for integer labels, bool for booleans, else object."""
    if classes and all(isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=bool)
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    if classes and all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.float64)
    return np.asarray(list(classes), dtype=object)


def _seconds(values: Any) -> np.ndarray:
    """A datetime feature's tensor, shape (n, 1): float64 epoch seconds, NaN where missing, converted exactly as the
    pipeline's step converts them (:func:`lifecycle.modeling.features.epoch_seconds`)."""
    from lifecycle.modeling.features import epoch_seconds  # only models with datetime features need it

    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    return epoch_seconds(series).reshape(-1, 1)


class OnnxPredictor:
    """onnxruntime on a verified model.onnx; scikit-learn's output form from dicts or DataFrames.

    ``threads``: onnxruntime intra-op threads. 1 is fastest for single rows and leaves the cores to the server's
    workers; large batches may gain from more. Raises :class:`DataError` for a missing or empty file, a graph not
    exported by this project (no ``lifecycle`` metadata), or one exported for another task or feature set than
    ``schema``; onnxruntime's own errors for bytes that are not an ONNX model.
    """

    def __init__(self, onnx_path: str | Path, schema: Schema, threads: int = 1) -> None:
        path = Path(onnx_path)
        if not path.exists() or path.stat().st_size == 0:
            raise DataError(f"{path}: no ONNX model (missing or empty); see onnx.reason in model.json")
        self._init(path.read_bytes(), schema, threads, str(path))

    @classmethod
    def from_bytes(cls, model: bytes, schema: Schema, threads: int = 1, source: str = "ONNX model") -> OnnxPredictor:
        """The predictor for a serialized ONNX model (``source`` names it in errors)."""
        self = cls.__new__(cls)
        self._init(model, schema, threads, source)
        return self

    def _init(self, model: bytes, schema: Schema, threads: int, source: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise DataError(f"{source}: not exported by this project (no '{META_KEY}' metadata); rerun `dvc repro`")
        meta = json.loads(raw)
        self.task: str = meta["task"]
        self.numeric: list[str] = meta["numeric"]
        self.numeric_dtype = np.float32 if meta.get("numeric_type") == "float32" else np.float64
        self.categorical: list[str] = meta["categorical"]
        self.datetime: list[str] = meta.get("datetime", [])  # fed as float64 epoch seconds
        if (self.task, set(self.numeric), set(self.categorical), set(self.datetime)) != (
            schema.task,
            set(schema.numeric),
            set(schema.categorical),
            set(schema.datetime_features),
        ):
            raise DataError(
                f"{source}: exported for task {self.task!r} with features "
                f"{self.numeric + self.categorical + self.datetime}, but the schema says {schema.task!r} with "
                f"{schema.numeric + schema.categorical + schema.datetime_features}; rerun `dvc repro`"
            )
        self.features = self.numeric + self.categorical + self.datetime
        self.classes_ = _classes_array(meta["classes"]) if self.task == "classification" else None
        self._index = {plain(c): i for i, c in enumerate(meta["classes"])}
        self._outputs = [o.name for o in self.session.get_outputs()]
        # A missing category must take the all-zeros path: the sentinel must not be a known category.
        known = {v for c in schema.categorical for v in schema.column(c).categories}
        if MISSING in known:  # pragma: no cover - a category named like the sentinel
            raise DataError(f"a categorical column has the reserved category {MISSING!r}; rename it")

    # ----------------------------------------------------------------------------------------- inputs
    def feed_one(self, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Input tensors for one validated record (feature name -> value; None or NaN = missing)."""
        feed: dict[str, np.ndarray] = {}
        try:
            for name in self.numeric:
                value = record[name]
                feed[name] = np.array([[np.nan if value is None else value]], dtype=self.numeric_dtype)
            for name in self.categorical:
                value = record[name]
                missing = value is None or (isinstance(value, float) and value != value)
                feed[name] = np.array([[MISSING if missing else str(value)]], dtype=object)
            for name in self.datetime:
                feed[name] = _seconds([record.get(name)])
        except KeyError as exc:
            raise DataError(f"record has no feature {exc.args[0]!r}; send every feature of the schema") from exc
        except (TypeError, ValueError) as exc:
            raise DataError(f"record feature {name!r}: {record.get(name)!r} is not a number ({exc})") from exc
        return feed

    def feed(self, rows: Rows) -> dict[str, np.ndarray]:
        """Input tensors for a DataFrame (raw feature columns) or a list of record dicts (no DataFrame built)."""
        if not isinstance(rows, pd.DataFrame):
            return self._feed_records(rows)
        df = rows
        absent = [c for c in self.features if c not in df.columns]
        if absent:
            raise DataError(f"rows have no feature column(s) {absent}; send every feature of the schema")
        feed: dict[str, np.ndarray] = {}
        for name in self.numeric:
            try:
                values = pd.to_numeric(df[name], errors="raise")
            except (TypeError, ValueError) as exc:
                raise DataError(f"feature column {name!r} is not numeric ({exc})") from exc
            feed[name] = values.to_numpy(dtype=self.numeric_dtype, na_value=np.nan).reshape(-1, 1)
        for name in self.categorical:
            column = df[name]
            values = column.astype(object).where(column.notna(), MISSING).map(str)
            feed[name] = values.to_numpy(dtype=object).reshape(-1, 1)
        for name in self.datetime:
            feed[name] = _seconds(df[name])
        return feed

    def _feed_records(self, records: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        name = ""
        try:
            for name in self.numeric:
                values = [np.nan if (v := r[name]) is None else v for r in records]
                feed[name] = np.array(values, dtype=self.numeric_dtype).reshape(-1, 1)
            for name in self.categorical:
                texts = [
                    MISSING if (v := r[name]) is None or (isinstance(v, float) and v != v) else str(v) for r in records
                ]
                feed[name] = np.array(texts, dtype=object).reshape(-1, 1)
            for name in self.datetime:
                feed[name] = _seconds([r.get(name) for r in records])
        except KeyError as exc:
            raise DataError(f"a record has no feature {exc.args[0]!r}; send every feature of the schema") from exc
        except (TypeError, ValueError) as exc:
            raise DataError(f"feature {name!r} is not numeric in every record ({exc})") from exc
        return feed

    # ----------------------------------------------------------------------------------------- outputs
    def _finish(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.task != "classification":
            return outputs[0].reshape(-1).astype(np.float64), None
        raw = outputs[0].reshape(-1)
        try:
            idx = np.fromiter((self._index[plain(v)] for v in raw), dtype=np.intp, count=len(raw))
        except KeyError as exc:  # pragma: no cover - the graph's labels are the pipeline's classes
            raise DataError(f"onnx returned label {exc.args[0]!r}, not one of {list(self._index)}") from exc
        assert self.classes_ is not None
        return self.classes_[idx], outputs[1].astype(np.float64)

    def run_one(self, record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """One record -> (labels or predictions, shape (1,); class probabilities, shape (1, n_classes) or None)."""
        return self._finish(self.session.run(self._outputs, self.feed_one(record)))

    def run(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        """Many rows -> (labels or predictions, shape (n,); class probabilities, shape (n, n_classes) or None)."""
        return self._finish(self.session.run(self._outputs, self.feed(rows)))

    # scikit-learn's names, for code written against the pipeline
    def predict(self, rows: Rows) -> np.ndarray:
        """Labels (classification) or predictions (regression), shape (n,)."""
        return self.run(rows)[0]

    def predict_proba(self, rows: Rows) -> np.ndarray:
        """Class probabilities, shape (n, n_classes) in ``classes_`` order; AttributeError for a regressor."""
        if self.task != "classification":
            raise AttributeError("predict_proba: the model is a regressor")
        proba = self.run(rows)[1]
        assert proba is not None
        return proba


def load_predictor(
    model_meta: ModelMetadata | Mapping[str, Any],
    onnx_path: str | Path,
    schema: Schema,
    threads: int = 1,
    *,
    strict: bool = False,
) -> tuple[OnnxPredictor | None, str]:
    """The gate for a server: ``(OnnxPredictor, "")`` only if model.json's ``onnx`` section says usable (parity
    passed) and the sha256 of ``onnx_path``'s bytes matches the one recorded there; else ``(None, why)`` so the
    caller falls back to scikit-learn and says so. Never raises for a bad or missing graph, except with ``strict``
    (the server): a file whose sha256 is not the recorded one then raises
    :class:`~lifecycle.artifact.ModelIntegrityError`, because model.onnx and model.joblib are one model and a graph
    that is not the exported one means the files were mixed or tampered with.

    ``model_meta``: the model's metadata, as a :class:`~lifecycle.artifact.ModelMetadata` or model.json's mapping.
    The bytes that are hashed are the bytes that are loaded (the file is read once).
    """
    if isinstance(model_meta, ModelMetadata):
        section = model_meta.onnx.model_dump() if model_meta.onnx is not None else None
    else:
        section = model_meta.get("onnx")
    if not isinstance(section, Mapping):
        return None, "model.json has no 'onnx' section (the export stage did not run); using scikit-learn"
    if not section.get("usable"):
        return None, f"ONNX model not usable: {section.get('reason') or 'no reason recorded'}"
    path = Path(onnx_path)
    if not path.exists() or path.stat().st_size == 0:
        return None, f"{path}: missing or empty although model.json says usable; run `dvc pull` or `dvc repro`"
    model = path.read_bytes()
    digest = hashlib.sha256(model).hexdigest()
    if digest != section.get("sha256"):
        why = f"{path}: sha256 {digest[:12]}... does not match model.json's onnx.sha256 {str(section.get('sha256'))[:12]}..."
        if strict:
            raise ModelIntegrityError(
                f"refusing to start: {why}; model.onnx and model.joblib must come from the same export. Restore both "
                "with `dvc checkout` / `dvc pull`, or rerun `dvc repro`"
            )
        return None, why
    try:
        return OnnxPredictor.from_bytes(model, schema, threads=threads, source=str(path)), ""
    except Exception as exc:  # a broken runtime must not stop the server: it falls back and says so
        return None, f"{path}: onnxruntime cannot load it: {describe(exc)}"
