"""The ONNX fast path: convert the fitted pipeline with skl2onnx, prove parity with onnxruntime, predict from dicts.

Three parts, used by the ``export`` stage and by the server:

- :func:`convert` turns the fitted ``Pipeline(ColumnTransformer -> estimator)`` into an ONNX graph with one input
  per feature column (numeric columns as ``float64 [N, 1]``, or float32 for decision forests, which compare
  float32 in scikit-learn too; categorical columns as ``string [N, 1]``), computing in the precision
  scikit-learn uses so that parity holds to ~1e-7 on every family.
- :func:`check_parity` runs scikit-learn and onnxruntime on the same rows and compares labels and class
  probabilities (classification) or predictions (regression) against ``export.*`` thresholds.
  :func:`export_pipeline` does both and never raises for a model that cannot be converted: it returns the
  reason instead, so the stage can record it in model.json and keep going.
- :class:`OnnxPredictor` runs the verified graph. ``run_one(record)`` builds the input tensors straight from a
  validated record dict (no DataFrame); ``run(rows)`` takes a DataFrame or a list of dicts. Labels come back as
  the fitted pipeline's ``classes_`` values (strings for telemetry, integers for wine quality), probabilities
  as float64 columns in ``classes_`` order, regression predictions as float64: the form scikit-learn returns.
  :class:`SklearnPredictor` offers the same methods around the joblib pipeline, so a caller can switch engines.
  :func:`load_predictor` is the gate for a server: the ONNX engine only when model.json says parity passed and
  the file's sha256 matches, otherwise ``None`` and the reason.

A missing or unknown category encodes as all zeros in both engines (``OneHotEncoder(handle_unknown="ignore")``
in scikit-learn, ``OneHotEncoder(zeros=1)`` in ONNX); the predictor feeds a missing category as a sentinel
string that is not a known category, so it takes that same all-zeros path.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from lifecycle.errors import DataError
from lifecycle.io import sha256_file
from lifecycle.schema import Schema

log = logging.getLogger(__name__)

ONNX_PACKAGES = ("skl2onnx", "onnx", "onnxruntime")
ML_OPSET = 3  # ai.onnx.ml opset: TreeEnsemble*/OneHotEncoder/Imputer/Scaler/Linear* as onnxruntime runs them
MISSING = "\x00missing"  # fed for a missing category: never a known category, so it encodes as all zeros
META_KEY = "lifecycle"  # ONNX metadata_props key holding task, features and classes as JSON
Rows = pd.DataFrame | Sequence[Mapping[str, Any]]


class ConversionError(Exception):
    """The pipeline cannot be converted to ONNX (unsupported step, converter failure)."""


# --------------------------------------------------------------------------------------------- conversion
_CAPTURE: list[list[float]] | None = None  # exact float64 tree thresholds, recorded while convert() runs


def float32_model(estimator: Any) -> bool:
    """True for estimators that compare float32 inputs in scikit-learn too (decision trees and their forests):
    they get float32 inputs, which makes the graph exact. Every other estimator gets float64 inputs."""
    from sklearn.tree import BaseDecisionTree

    if isinstance(estimator, BaseDecisionTree):
        return True
    members = np.ravel(np.asarray(getattr(estimator, "estimators_", []), dtype=object))
    return bool(len(members)) and all(isinstance(m, BaseDecisionTree) for m in members)


@functools.cache
def _patch_skl2onnx() -> None:
    """Adapt skl2onnx 1.20 to what this pipeline needs (each change is checked by the parity test):

    - HistGradientBoosting leaves pass ``False`` (a bool) into the int attribute
      ``nodes_missing_value_tracks_true``, which protobuf >= 6 rejects ("Expected an int, got a boolean"): cast
      it to int. While :func:`convert` runs, also record each float64 split threshold (see :func:`_exact_trees`).
    - ``SimpleImputer`` on float64 inputs: skl2onnx emits ``Imputer``, which onnxruntime runs only for float32;
      emit ``Where(IsNaN(x), medians, x)`` in float64 instead.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common import tree_ensemble
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.proto import onnx_proto
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    original = tree_ensemble.add_node

    @functools.wraps(original)
    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:  # HistGradientBoosting
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        if _CAPTURE is not None:
            attr_pairs = args[0]
            if not _CAPTURE or len(_CAPTURE[-1]) != len(attr_pairs["nodes_values"]):
                _CAPTURE.append([])  # a new estimator: its attr_pairs start empty
            _CAPTURE[-1].append(float(args[7]))
        return original(*args, **kwargs)

    tree_ensemble.add_node = add_node

    def convert_imputer(scope: Any, operator: Any, container: Any) -> None:
        if not isinstance(operator.inputs[0].type, DoubleTensorType):
            convert_sklearn_imputer(scope, operator, container)
            return
        op = operator.raw_operator
        if not (isinstance(op.missing_values, float) and math.isnan(op.missing_values)):
            raise NotImplementedError(f"SimpleImputer(missing_values={op.missing_values!r}) on float64 inputs")
        x = concatenate_variables(scope, operator.inputs, container)
        fill = scope.get_unique_variable_name("fill")
        container.add_initializer(fill, onnx_proto.TensorProto.DOUBLE, [op.statistics_.size], op.statistics_.tolist())
        isnan = scope.get_unique_variable_name("isnan")
        container.add_node("IsNaN", [x], [isnan], name=scope.get_unique_operator_name("IsNaN"))
        container.add_node(
            "Where", [isnan, fill, x], [operator.outputs[0].full_name], name=scope.get_unique_operator_name("Where")
        )

    update_registered_converter(
        SimpleImputer, "SklearnSimpleImputer", calculate_sklearn_imputer_output_shapes, convert_imputer
    )


def _exact_trees(model: Any, thresholds: list[list[float]]) -> None:
    """Make float64 tree ensembles compare in float64, as scikit-learn does.

    skl2onnx 1.20 writes tree thresholds as float32 ``nodes_values`` even for float64 inputs, so an input within
    one float32 ulp of a threshold (``5.7`` vs ``5.699999999999999``, or a continuous reading 1e-5 from a split)
    takes the other branch: one red-wine row differed by 0.40 in probability, a telemetry row by 2e-4. Replace
    them with the exact ``nodes_values_as_tensor`` (ai.onnx.ml opset 3), and cast the ensemble's float32 scores
    to float64 for the float64 nodes after it.
    """
    from onnx import TensorProto, helper, numpy_helper

    trees = [n for n in model.graph.node if n.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor")]
    if not trees:
        return
    if len(trees) != len(thresholds):
        raise ConversionError(f"found {len(trees)} tree ensembles but recorded {len(thresholds)} threshold lists")
    nodes = list(model.graph.node)
    for tree, values in zip(trees, thresholds, strict=True):
        keep = [a for a in tree.attribute if a.name != "nodes_values"]
        (old,) = [a for a in tree.attribute if a.name == "nodes_values"]
        if len(old.floats) != len(values):
            raise ConversionError(f"tree thresholds: {len(old.floats)} in the graph, {len(values)} recorded")
        exact = numpy_helper.from_array(np.asarray(values, dtype=np.float64))
        del tree.attribute[:]
        tree.attribute.extend([*keep, helper.make_attribute("nodes_values_as_tensor", exact)])
        scores = 1 if tree.op_type == "TreeEnsembleClassifier" else 0  # label (if any) comes first
        name = tree.output[scores]
        tree.output[scores] = f"{name}_float32"
        cast = helper.make_node("Cast", [f"{name}_float32"], [name], to=TensorProto.DOUBLE, name=f"{name}_to_double")
        nodes.insert(nodes.index(tree) + 1, cast)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    for entry in model.opset_import:
        if entry.domain == "ai.onnx.ml":
            entry.version = max(entry.version, ML_OPSET)


def _metadata(pipeline: Any, schema: Schema, numeric_type: str) -> dict[str, Any]:
    classes = [_plain(c) for c in getattr(pipeline, "classes_", [])] if schema.task == "classification" else []
    return {
        "task": schema.task,
        "numeric": schema.numeric,
        "numeric_type": numeric_type,
        "categorical": schema.categorical,
        "classes": classes,
    }


def convert(pipeline: Any, schema: Schema, opset: int) -> bytes:
    """Convert the fitted ``pipeline`` to a serialized ONNX model, or raise :class:`ConversionError` saying why.

    Inputs: one per feature column, named like the column: numeric ``[N, 1]`` float64 (float32 for decision
    trees and forests, which compare float32 in scikit-learn), categorical ``[N, 1]`` strings. Outputs: ``label``
    and ``probabilities`` (classification, no ZipMap) or ``variable`` (regression). Task, features, input type and
    classes are stored in the model's metadata, so :class:`OnnxPredictor` needs nothing else.
    """
    global _CAPTURE
    _patch_skl2onnx()
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    single = float32_model(estimator)
    numeric_type = FloatTensorType if single else DoubleTensorType
    numeric, categorical = set(schema.numeric), set(schema.categorical)
    initial_types = [
        (c, numeric_type([None, 1]) if c in numeric else StringTensorType([None, 1]))
        for c in schema.features
        if c in numeric or c in categorical
    ]
    options = {id(estimator): {"zipmap": False}} if schema.task == "classification" else None
    _CAPTURE = [] if not single else None
    try:
        model = convert_sklearn(
            pipeline,
            initial_types=initial_types,
            target_opset={"": opset, "ai.onnx.ml": ML_OPSET},
            options=options,
            name="lifecycle_pipeline",  # the default is a random uuid: outputs must be byte-identical
        )
        thresholds = _CAPTURE
    except Exception as exc:  # skl2onnx raises many types (RuntimeError, NotImplementedError, TypeError, ...)
        raise ConversionError(f"skl2onnx cannot convert the pipeline: {_describe(exc)}") from exc
    finally:
        _CAPTURE = None
    if thresholds is not None:
        _exact_trees(model, thresholds)
    entry = model.metadata_props.add()
    entry.key = META_KEY
    entry.value = json.dumps(_metadata(pipeline, schema, "float32" if single else "float64"), sort_keys=True)
    # skl2onnx collects the opsets in a set, whose order follows Python's per-process string hashing: sort them
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in opsets:
        model.opset_import.add(domain=domain, version=version)
    return model.SerializeToString(deterministic=True)


def _describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception, without memory addresses (model.json must be deterministic)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------- parity
@dataclasses.dataclass(frozen=True)
class Parity:
    """scikit-learn vs onnxruntime on the same rows."""

    rows: int
    label_agreement: float | None  # classification only
    max_abs_diff: float  # class probabilities (classification) or predictions (regression)
    max_abs_diff_threshold: float
    min_label_agreement_threshold: float | None
    passed: bool
    reason: str  # "" when passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "label_agreement": self.label_agreement,
            "max_abs_diff": self.max_abs_diff,
            "thresholds": {
                "max_abs_diff": self.max_abs_diff_threshold,
                "min_label_agreement": self.min_label_agreement_threshold,
            },
            "passed": self.passed,
        }


def _sig(x: float) -> float:
    """Round to 4 significant digits: the report keeps its meaning and stays stable across CPUs."""
    return float(f"{x:.4g}") if math.isfinite(x) else x


def check_parity(
    pipeline: Any,
    model: bytes,
    X: pd.DataFrame,
    schema: Schema,
    max_abs_diff: float,
    min_label_agreement: float,
) -> Parity:
    """Compare scikit-learn and onnxruntime on the rows of ``X`` (raw feature columns) against the thresholds."""
    if X.empty:
        raise DataError("parity needs rows; the test split is empty (check split.test_size)")
    predictor = OnnxPredictor.from_bytes(model, schema, threads=1)  # one thread: the same sums on every machine
    labels, proba = predictor.run(X)
    classification = schema.task == "classification"
    if classification:
        expected_proba = pipeline.predict_proba(X)
        expected = pipeline.predict(X)
        agreement = _sig(float(np.mean(np.asarray(labels) == np.asarray(expected))))
        diff = float(np.max(np.abs(np.asarray(proba) - expected_proba)))
    else:
        agreement = None
        diff = float(np.max(np.abs(np.asarray(labels, dtype=np.float64) - pipeline.predict(X))))
    diff = _sig(diff) if math.isfinite(diff) else float("inf")
    failures = []
    if not diff <= max_abs_diff:
        what = "class probability" if classification else "prediction"
        failures.append(f"largest |sklearn - onnx| {what} difference {diff:g} > export.max_abs_diff {max_abs_diff:g}")
    if agreement is not None and agreement < min_label_agreement:
        failures.append(f"label agreement {agreement:g} < export.min_label_agreement {min_label_agreement:g}")
    return Parity(
        rows=len(X),
        label_agreement=agreement,
        max_abs_diff=diff if math.isfinite(diff) else 1e308,
        max_abs_diff_threshold=max_abs_diff,
        min_label_agreement_threshold=min_label_agreement if classification else None,
        passed=not failures,
        reason="parity failed on the test split: " + "; ".join(failures) if failures else "",
    )


def package_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ONNX_PACKAGES}


def export_pipeline(
    pipeline: Any,
    schema: Schema,
    X: pd.DataFrame,
    *,
    enabled: bool,
    opset: int,
    max_abs_diff: float,
    min_label_agreement: float,
) -> tuple[bytes | None, dict[str, Any]]:
    """Convert and check parity. Returns the ONNX bytes when usable (else ``None``) and the report for model.json.

    Never raises for an unconvertible model or a failed parity: the report says ``usable: false`` and why.
    """
    report: dict[str, Any] = {
        "usable": False,
        "opset": opset,
        "ml_opset": ML_OPSET,
        "inputs": {"numeric": "float64", "categorical": "string"},
        "packages": package_versions(),
        "parity": None,
        "reason": "",
    }
    if not enabled:
        report["reason"] = "export.enabled is false in params.yaml; serving uses scikit-learn"
        return None, report
    if X.empty:
        raise DataError("parity needs rows; the test split is empty (check split.test_size)")
    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if float32_model(estimator):
        report["inputs"]["numeric"] = "float32"
    try:
        model = convert(pipeline, schema, opset)
        parity = check_parity(pipeline, model, X, schema, max_abs_diff, min_label_agreement)
    except ConversionError as exc:
        report["reason"] = str(exc)
        return None, report
    except Exception as exc:  # onnxruntime cannot load or run the converted graph, or it answers off-contract
        report["reason"] = f"onnxruntime cannot run the converted model: {_describe(exc)}"
        return None, report
    report["parity"] = parity.to_dict()
    report["reason"] = parity.reason
    report["usable"] = parity.passed
    return (model if parity.passed else None), report


# --------------------------------------------------------------------------------------------- predictors
def _classes_array(classes: Sequence[Any]) -> np.ndarray:
    """The classes as scikit-learn keeps them: int64 for integer labels, bool for booleans, else object."""
    if classes and all(isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=bool)
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    if classes and all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.float64)
    return np.asarray(list(classes), dtype=object)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class OnnxPredictor:
    """onnxruntime on a verified model.onnx; scikit-learn's output form from dicts or DataFrames.

    ``threads``: onnxruntime intra-op threads. 1 is fastest for single rows and leaves the cores to the server's
    workers; large batches may gain from more.
    """

    def __init__(self, onnx_path: str | Path, schema: Schema, threads: int = 1) -> None:
        path = Path(onnx_path)
        if not path.exists() or path.stat().st_size == 0:
            raise DataError(f"{path}: no ONNX model (missing or empty); see onnx.reason in model.json")
        self._init(path.read_bytes(), schema, threads, str(path))

    @classmethod
    def from_bytes(cls, model: bytes, schema: Schema, threads: int = 1) -> OnnxPredictor:
        self = cls.__new__(cls)
        self._init(model, schema, threads, "ONNX model")
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
        if (self.task, set(self.numeric), set(self.categorical)) != (
            schema.task,
            set(schema.numeric),
            set(schema.categorical),
        ):
            raise DataError(
                f"{source}: exported for task {self.task!r} with features {self.numeric + self.categorical}, "
                f"but the schema says {schema.task!r} with {schema.numeric + schema.categorical}; rerun `dvc repro`"
            )
        self.features = self.numeric + self.categorical
        self.classes_ = _classes_array(meta["classes"]) if self.task == "classification" else None
        self._index = {_plain(c): i for i, c in enumerate(meta["classes"])}
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
            idx = np.fromiter((self._index[_plain(v)] for v in raw), dtype=np.intp, count=len(raw))
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
        return self.run(rows)[0]

    def predict_proba(self, rows: Rows) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba: the model is a regressor")
        proba = self.run(rows)[1]
        assert proba is not None
        return proba


class SklearnPredictor:
    """The same interface as :class:`OnnxPredictor` around the fitted scikit-learn pipeline (the fallback)."""

    def __init__(self, pipeline: Any, schema: Schema) -> None:
        self.pipeline = pipeline
        self.task = schema.task
        self.numeric, self.categorical = schema.numeric, schema.categorical
        self.features = schema.features
        self.classes_ = np.asarray(pipeline.classes_) if schema.task == "classification" else None

    def _frame(self, rows: Rows) -> pd.DataFrame:
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
        absent = [c for c in self.features if c not in df.columns]
        if absent:
            raise DataError(f"rows have no feature column(s) {absent}; send every feature of the schema")
        df = df[self.features].copy()
        for name in self.numeric:
            df[name] = pd.to_numeric(df[name], errors="coerce").astype(np.float64)
        for name in self.categorical:  # as the ONNX path sees them: text, missing = NaN (encodes as all zeros)
            column = df[name].astype(object)
            df[name] = column.where(column.isna(), column.map(str)).where(column.notna(), np.nan)
        return df

    def run(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        X = self._frame(rows)
        if self.task != "classification":
            return np.asarray(self.pipeline.predict(X), dtype=np.float64), None
        proba = self.pipeline.predict_proba(X)
        return self.pipeline.classes_[np.argmax(proba, axis=1)], proba

    def run_one(self, record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        return self.run([record])

    def predict(self, rows: Rows) -> np.ndarray:
        return self.run(rows)[0]

    def predict_proba(self, rows: Rows) -> np.ndarray:
        proba = self.run(rows)[1]
        if proba is None:
            raise AttributeError("predict_proba: the model is a regressor")
        return proba


def load_predictor(
    model_meta: Mapping[str, Any], onnx_path: str | Path, schema: Schema, threads: int = 1
) -> tuple[OnnxPredictor | None, str]:
    """The gate for a server: ``(OnnxPredictor, "")`` only if model.json's ``onnx`` section says usable (parity
    passed) and ``onnx_path``'s sha256 matches it; else ``(None, why)`` so the caller falls back and says so."""
    section = model_meta.get("onnx")
    if not isinstance(section, Mapping):
        return None, "model.json has no 'onnx' section (the export stage did not run); using scikit-learn"
    if not section.get("usable"):
        return None, f"ONNX model not usable: {section.get('reason') or 'no reason recorded'}"
    path = Path(onnx_path)
    if not path.exists() or path.stat().st_size == 0:
        return None, f"{path}: missing or empty although model.json says usable; run `dvc pull` or `dvc repro`"
    digest = sha256_file(path)
    if digest != section.get("sha256"):
        return None, f"{path}: sha256 {digest[:12]}... does not match model.json's {str(section.get('sha256'))[:12]}..."
    try:
        return OnnxPredictor(path, schema, threads=threads), ""
    except Exception as exc:  # a broken runtime must not stop the server: it falls back and says so
        return None, f"{path}: onnxruntime cannot load it: {_describe(exc)}"
