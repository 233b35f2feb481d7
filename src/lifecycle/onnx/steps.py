"""skl2onnx converters for the project's own pipeline steps (:mod:`lifecycle.modeling.features`), registered with
skl2onnx's public ``update_registered_converter``.

- :class:`~lifecycle.modeling.features.DatetimeFeatures`: its input is the datetime column as float64 epoch seconds
  (NaN = missing; the feed converts with :func:`~lifecycle.modeling.features.epoch_seconds`, as the step does), and
  the graph repeats :func:`~lifecycle.modeling.features.datetime_part` operation for operation in float64 (Div,
  Floor, Mul, Sub, Add), so both engines compute the same bits.
- :class:`~lifecycle.modeling.features.GroupInfrequent`: an ``ai.onnx.ml`` ``LabelEncoder`` (string -> string)
  mapping each kept category to itself, the runtime's missing-value sentinel to itself (a missing category stays
  missing: all zeros after one-hot) and every other string to ``infrequent_sklearn``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from lifecycle.modeling.features import (
    INFREQUENT,
    SECONDS_PER_DAY,
    UNIX_EPOCH_WEEKDAY,
    DatetimeFeatures,
    GroupInfrequent,
)
from lifecycle.onnx.runtime import MISSING


@functools.cache
def register_steps() -> None:
    """Register both converters with skl2onnx (once per process)."""
    from skl2onnx import update_registered_converter

    update_registered_converter(DatetimeFeatures, "LifecycleDatetimeFeatures", _datetime_shape, _convert_datetime)
    update_registered_converter(GroupInfrequent, "LifecycleGroupInfrequent", _group_shape, _convert_group)


def _datetime_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    op = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([n, op.n_features_in_ * len(op.parts)])


def _convert_datetime(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    op = operator.raw_operator
    if not all(isinstance(v.type, DoubleTensorType) for v in operator.inputs):
        raise NotImplementedError("DatetimeFeatures needs float64 epoch-second inputs (the export feeds them)")
    x = concatenate_variables(scope, operator.inputs, container)

    def const(value: Any, name: str) -> str:
        array = np.asarray(value, dtype=np.float64)
        out = scope.get_unique_variable_name(name)
        container.add_initializer(out, onnx_proto.TensorProto.DOUBLE, list(array.shape), array.ravel().tolist())
        return out

    def node(kind: str, *inputs: str, output: str | None = None) -> str:
        out = output or scope.get_unique_variable_name(kind.lower())
        container.add_node(kind, list(inputs), [out], name=scope.get_unique_operator_name(kind))
        return out

    def floor_div(a: str, b: float) -> str:  # np.floor(a / b)
        return node("Floor", node("Div", a, const(b, "c")))

    def times(a: str, b: float) -> str:
        return node("Mul", const(b, "c"), a)

    day = floor_div(x, SECONDS_PER_DAY)
    outputs = []
    for part in op.parts:
        if part == "hour":
            value = floor_div(node("Sub", x, times(day, SECONDS_PER_DAY)), 3600.0)
        elif part == "day_of_week":
            shifted = node("Add", day, const(UNIX_EPOCH_WEEKDAY, "c"))
            value = node("Sub", shifted, times(floor_div(shifted, 7.0), 7.0))
        elif part == "month":
            z = node("Add", day, const(719468.0, "c"))
            era = floor_div(z, 146097.0)
            doe = node("Sub", z, times(era, 146097.0))
            inner = node("Sub", doe, floor_div(doe, 1460.0))
            inner = node("Add", inner, floor_div(doe, 36524.0))
            inner = node("Sub", inner, floor_div(doe, 146096.0))
            yoe = floor_div(inner, 365.0)
            years = node("Sub", node("Add", times(yoe, 365.0), floor_div(yoe, 4.0)), floor_div(yoe, 100.0))
            doy = node("Sub", doe, years)
            mp = floor_div(node("Add", times(doy, 5.0), const(2.0, "c")), 153.0)
            value = node("Sub", node("Add", mp, const(3.0, "c")), times(floor_div(mp, 10.0), 12.0))
        elif part == "elapsed_days":
            value = node("Div", node("Sub", x, const(op.origin_.reshape(1, -1), "origin")), const(SECONDS_PER_DAY, "c"))
        else:  # pragma: no cover - fit refuses unknown parts
            raise NotImplementedError(f"datetime part {part!r}")
        outputs.append(value)
    container.add_node(
        "Concat", outputs, [operator.outputs[0].full_name], name=scope.get_unique_operator_name("Concat"), axis=1
    )


def _group_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import StringTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = StringTensorType([n, operator.raw_operator.n_features_in_])


def _convert_group(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    if len(op.categories) != 1 or len(operator.inputs) != 1:
        raise NotImplementedError("GroupInfrequent converts one column at a time (the preprocessor builds it so)")
    kept = [str(v) for v in op.categories[0]]
    keys = [*kept, MISSING]
    container.add_node(
        "LabelEncoder",
        [operator.inputs[0].full_name],
        [operator.outputs[0].full_name],
        op_domain="ai.onnx.ml",
        op_version=2,
        name=scope.get_unique_operator_name("LabelEncoder"),
        keys_strings=keys,
        values_strings=keys,
        default_string=INFREQUENT,
    )
