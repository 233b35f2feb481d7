"""Convert the fitted pipeline to ONNX with skl2onnx; :func:`export_pipeline` = convert + the parity report.

:func:`convert` turns the fitted ``Pipeline(ColumnTransformer -> estimator)`` into an ONNX graph with one input per
feature column (numeric columns as ``float64 [N, 1]``, or float32 for decision forests, which compare float32 in
scikit-learn too; categorical columns as ``string [N, 1]``), computing in the precision scikit-learn uses so that
parity holds to ~1e-7 on every family (the skl2onnx workarounds that takes are in
:mod:`lifecycle.onnx.skl2onnx_patches`). :func:`export_pipeline` converts, checks parity
(:func:`lifecycle.onnx.parity.check_parity`) and never raises for a model that cannot be converted or fails
parity: it returns the reason instead, so the export stage records it in model.json and keeps going.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.artifact import ContractSection, ModelMetadata, OnnxSection
from lifecycle.config import Export
from lifecycle.errors import DataError
from lifecycle.onnx import skl2onnx_patches, steps
from lifecycle.onnx.parity import check_parity, parity_sample
from lifecycle.onnx.runtime import META_KEY, describe, plain
from lifecycle.quality.contract import Contract, numeric_bounds
from lifecycle.schema import Schema

ONNX_PACKAGES = ("skl2onnx", "onnx", "onnxruntime")
ML_OPSET = 3  # ai.onnx.ml opset: TreeEnsemble*/OneHotEncoder/Imputer/Scaler/Linear* as onnxruntime runs them


class ConversionError(Exception):
    """The pipeline cannot be converted to ONNX (unsupported step, converter failure)."""


def float32_model(estimator: Any) -> bool:
    """True for estimators that compare float32 inputs in scikit-learn too (decision trees and their forests):
    they get float32 inputs, which makes the graph exact. Every other estimator gets float64 inputs."""
    from sklearn.tree import BaseDecisionTree

    if isinstance(estimator, BaseDecisionTree):
        return True
    members = np.ravel(np.asarray(getattr(estimator, "estimators_", []), dtype=object))
    return bool(len(members)) and all(isinstance(m, BaseDecisionTree) for m in members)


def _metadata(pipeline: Any, schema: Schema, numeric_type: str) -> dict[str, Any]:
    classes = [plain(c) for c in getattr(pipeline, "classes_", [])] if schema.task == "classification" else []
    meta = {
        "task": schema.task,
        "numeric": schema.numeric,
        "numeric_type": numeric_type,
        "categorical": schema.categorical,
        "classes": classes,
    }
    if schema.datetime_features:  # only then: the graphs of schemas without dates keep their bytes
        meta["datetime"] = schema.datetime_features
    return meta


def convert(pipeline: Any, schema: Schema, opset: int) -> bytes:
    """Convert the fitted ``pipeline`` to a serialized ONNX model (deterministic bytes), or raise
    :class:`ConversionError` saying why.

    Inputs: one per feature column, named like the column: numeric ``[N, 1]`` float64 (float32 for decision
    trees and forests, which compare float32 in scikit-learn), categorical ``[N, 1]`` strings, datetime ``[N, 1]``
    float64 epoch seconds (:func:`lifecycle.modeling.features.epoch_seconds`; NaN = missing). Outputs: ``label``
    and ``probabilities`` (classification, no ZipMap) or ``variable`` (regression). ``opset``: the default domain's
    opset (``export.opset``); ai.onnx.ml is :data:`ML_OPSET`. Task, features, input type and classes are stored in
    the model's metadata (``metadata_props["lifecycle"]``), so :class:`~lifecycle.onnx.runtime.OnnxPredictor`
    needs nothing else.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    single = float32_model(estimator)
    numeric_type = FloatTensorType if single else DoubleTensorType
    steps.register_steps()
    numeric, categorical, dates = set(schema.numeric), set(schema.categorical), set(schema.datetime_features)
    initial_types = [
        (
            c,
            numeric_type([None, 1])
            if c in numeric
            else DoubleTensorType([None, 1])
            if c in dates
            else StringTensorType([None, 1]),
        )
        for c in schema.features
        if c in numeric or c in categorical or c in dates
    ]
    options = {id(estimator): {"zipmap": False}} if schema.task == "classification" else None
    with skl2onnx_patches.recording_thresholds(enabled=not single) as thresholds:
        try:
            model = convert_sklearn(
                pipeline,
                initial_types=initial_types,
                target_opset={"": opset, "ai.onnx.ml": ML_OPSET},
                options=options,
                name="lifecycle_pipeline",  # the default is a random uuid: outputs must be byte-identical
            )
        except Exception as exc:  # skl2onnx raises many types (RuntimeError, NotImplementedError, TypeError, ...)
            raise ConversionError(f"skl2onnx cannot convert the pipeline: {describe(exc)}") from exc
    if thresholds is not None:
        try:
            skl2onnx_patches.exact_trees(model, thresholds)
        except ValueError as exc:
            raise ConversionError(str(exc)) from exc
    entry = model.metadata_props.add()
    entry.key = META_KEY
    entry.value = json.dumps(_metadata(pipeline, schema, "float32" if single else "float64"), sort_keys=True)
    # skl2onnx collects the opsets in a set, whose order follows Python's per-process string hashing: sort them
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in opsets:
        model.opset_import.add(domain=domain, version=version)
    return model.SerializeToString(deterministic=True)


def onnx_package_versions() -> dict[str, str]:
    """Installed versions of skl2onnx, onnx and onnxruntime (model.json's ``onnx.packages``)."""
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
    """Convert the fitted ``pipeline`` and check parity on ``X`` (raw feature columns, e.g. the test split).

    Returns ``(onnx_bytes or None, report)``: the bytes only when usable (converted and parity passed); the report
    holds model.json's ``onnx`` fields except ``file``/``sha256``/``bytes``: ``usable``, ``opset``, ``ml_opset``,
    ``inputs``, ``packages``, ``parity`` (:meth:`Parity.to_dict` or None) and ``reason`` ("" when usable).
    Never raises for an unconvertible model or a failed parity (the report says ``usable: false`` and why);
    raises :class:`DataError` when ``X`` has no rows.
    """
    report: dict[str, Any] = {
        "usable": False,
        "opset": opset,
        "ml_opset": ML_OPSET,
        "inputs": {"numeric": "float64", "categorical": "string"},
        "packages": onnx_package_versions(),
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
        report["reason"] = f"onnxruntime cannot run the converted model: {describe(exc)}"
        return None, report
    report["parity"] = parity.to_dict()
    report["reason"] = parity.reason
    report["usable"] = parity.passed
    return (model if parity.passed else None), report


def package(
    pipeline: Any,
    train: ModelMetadata,
    schema: Schema,
    X: pd.DataFrame,
    cfg: Export,
    *,
    seed: int,
    y: pd.Series | None = None,
    contract: Contract | None = None,
    onnx_file: str = "model.onnx",
) -> tuple[bytes | None, ModelMetadata]:
    """The export stage's work, without I/O: :func:`export_pipeline` with the ``export.*`` thresholds on the rows
    of ``X`` (raw feature columns of the test split, shape (n, features); ``y`` its target, shape (n,), optional)
    that :func:`~lifecycle.onnx.parity.parity_sample` draws with ``seed`` (base.seed; ``export.parity_rows`` of
    them plus rows of every class of ``y``, category and missing feature), and model.json's record = ``train``
    plus the ``onnx`` section (named ``onnx_file``, with the graph's sha256 and size when usable; its
    ``parity`` also says how many test rows the sample was drawn from, ``sampled_from``, and the ``seed``) and,
    with ``contract``, the ``contract`` section (its numeric bounds on the features, which the server enforces).

    Returns ``(onnx bytes or None, record)``. Raises :class:`DataError` when ``train`` already has an ``onnx`` or
    ``contract`` section (it is not train's record) or ``X`` has no rows.
    """
    for key in ("onnx", "contract"):
        if getattr(train, key) is not None:
            raise DataError(f"the train metadata already has a key {key!r}; only export writes it into model.json")
    rows = parity_sample(X, schema, cfg.parity_rows, seed, y)
    sample = X if len(rows) == len(X) else X.iloc[rows]
    model, report = export_pipeline(
        pipeline, schema, sample, enabled=cfg.enabled, opset=cfg.opset,
        max_abs_diff=cfg.max_abs_diff, min_label_agreement=cfg.min_label_agreement,
    )  # fmt: skip
    if report["parity"] is not None:
        report["parity"] |= {"sampled_from": len(X), "seed": seed}
    digest = hashlib.sha256(model).hexdigest() if model else None
    onnx = OnnxSection(file=onnx_file, sha256=digest, bytes=len(model or b""), **report)
    limits = None
    if contract is not None:
        limits = ContractSection(
            file=contract.path, dataset=contract.dataset, limits=numeric_bounds(contract, schema.numeric)
        )
    return model, train.model_copy(update={"onnx": onnx, "contract": limits})
