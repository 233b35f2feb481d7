"""lifecycle.schema: the inferred data contract (column roles, classes)."""

from __future__ import annotations

import pandas as pd
import pytest

from lifecycle.errors import DataError
from lifecycle.schema import Schema, infer_schema


def test_regression_needs_numeric_target() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]})
    with pytest.raises(DataError, match="regression needs numbers"):
        infer_schema(frame, "label", "regression")


def test_schema_round_trips_through_its_dict() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"], "label": ["a", "b", "a"]})
    schema = infer_schema(frame, "label", "classification")
    assert schema.numeric == ["x"] and schema.categorical == ["colour"] and schema.classes == ("a", "b")
    assert Schema.from_dict(schema.to_dict()) == schema
