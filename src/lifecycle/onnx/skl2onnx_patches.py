"""Workarounds inside skl2onnx 1.20.0 (pinned exactly in pyproject.toml), all in this one module.

They reach into skl2onnx's internals: the module function ``skl2onnx.common.tree_ensemble.add_node`` (replaced by a
wrapper; its positional parameters ``attr_pairs`` (0) and ``value`` (7) are read) and the registered converter of
``SimpleImputer`` (replaced). tests/onnx/test_skl2onnx_patches.py fails when skl2onnx changes what they rely on,
and also when a workaround stops being needed (then drop it). Each one's gain, measured with skl2onnx 1.20.0,
protobuf 7 and onnxruntime 1.32:

- HistGradientBoosting cannot be converted at all: skl2onnx passes ``False`` (a bool) into the int attribute
  ``nodes_missing_value_tracks_true``, which protobuf >= 6 rejects ("Expected an int, got a boolean").
  :func:`patch_skl2onnx` casts it to int.
- ``SimpleImputer`` on float64 inputs becomes an ``Imputer`` node, which onnxruntime runs only for float32
  ("Could not find an implementation for Imputer(1)"). :func:`patch_skl2onnx` registers a float64 converter:
  ``Where(IsNaN(x), statistics_, x)``.
- Tree thresholds are written as float32 ``nodes_values`` even for float64 inputs, so an input within one float32
  ulp of a split takes the other branch (a red-wine row differed by 0.40 in probability, a telemetry row by 2e-4).
  :func:`recording_thresholds` records the exact float64 thresholds while the graph is built and
  :func:`exact_trees` writes them back as ``nodes_values_as_tensor`` (ai.onnx.ml opset 3).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

SKL2ONNX_VERSION = "1.20.0"  # the version these workarounds were written and tested against (pyproject pins it)
TENSOR_THRESHOLDS_ML_OPSET = 3  # the ai.onnx.ml opset that introduced ``nodes_values_as_tensor``
TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")

_recorded: list[list[float]] | None = None  # exact float64 thresholds, one list per tree ensemble, while recording


@functools.cache
def patch_skl2onnx() -> None:
    """Install both converter changes (once per process; idempotent).

    - wrap ``tree_ensemble.add_node``: cast ``nodes_missing_value_tracks_true`` to int, and, inside
      :func:`recording_thresholds`, record each node's float64 ``value`` (position 7);
    - register :func:`_convert_imputer` for ``SimpleImputer`` (float64 inputs; float32 keeps skl2onnx's converter).
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common import tree_ensemble
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    original = tree_ensemble.add_node

    @functools.wraps(original)
    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:  # HistGradientBoosting
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        if _recorded is not None:
            attr_pairs = args[0]
            if not _recorded or len(_recorded[-1]) != len(attr_pairs["nodes_values"]):
                _recorded.append([])  # a new estimator: its attr_pairs start empty
            _recorded[-1].append(float(args[7]))
        return original(*args, **kwargs)

    tree_ensemble.add_node = add_node
    update_registered_converter(
        SimpleImputer, "SklearnSimpleImputer", calculate_sklearn_imputer_output_shapes, _convert_imputer
    )


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for ``SimpleImputer``: float64 inputs get ``Where(IsNaN(x), statistics_, x)``."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.proto import onnx_proto

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


@contextlib.contextmanager
def recording_thresholds(enabled: bool = True) -> Iterator[list[list[float]] | None]:
    """While the block runs ``convert_sklearn``, record every tree node's exact float64 threshold (leaves record
    0.0, as skl2onnx writes them), one list per tree ensemble in graph order. Yields that list (filled when the
    block ends), or None when ``enabled`` is false. Not thread-safe: one conversion at a time per process."""
    global _recorded
    patch_skl2onnx()
    _recorded = [] if enabled else None
    try:
        yield _recorded
    finally:
        _recorded = None


def exact_trees(model: Any, thresholds: list[list[float]]) -> None:
    """Make the float64 tree ensembles of ``model`` (an ``onnx.ModelProto``, changed in place) compare in float64,
    as scikit-learn does: replace each ensemble's float32 ``nodes_values`` with the exact ``thresholds`` (from
    :func:`recording_thresholds`) as ``nodes_values_as_tensor``, cast its float32 scores to float64 for the
    float64 nodes after it, and raise the ai.onnx.ml opset to 3 if it is lower.

    Raises ValueError when the recorded thresholds do not line up with the graph's ensembles or nodes.
    """
    from onnx import TensorProto, helper, numpy_helper

    trees = [n for n in model.graph.node if n.op_type in TREE_OPS]
    if not trees:
        return
    if len(trees) != len(thresholds):
        raise ValueError(f"found {len(trees)} tree ensembles but recorded {len(thresholds)} threshold lists")
    nodes = list(model.graph.node)
    for tree, values in zip(trees, thresholds, strict=True):
        keep = [a for a in tree.attribute if a.name != "nodes_values"]
        (old,) = [a for a in tree.attribute if a.name == "nodes_values"]
        if len(old.floats) != len(values):
            raise ValueError(f"tree thresholds: {len(old.floats)} in the graph, {len(values)} recorded")
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
            entry.version = max(entry.version, TENSOR_THRESHOLDS_ML_OPSET)
