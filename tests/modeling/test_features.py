"""lifecycle.modeling.features: the preprocessor keeps only features and accepts raw rows as they come."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifecycle.modeling.features import build_preprocessor
from lifecycle.schema import infer_schema

FRAME = pd.DataFrame(
    {
        "reading_id": [f"r{i}" for i in range(6)],
        "temp": [10.0, np.nan, 30.0, 40.0, 50.0, 60.0],
        "mode": ["slow", "fast", "slow", None, "fast", "slow"],
        "label": ["a", "b", "a", "b", "a", "b"],
    }
)


def test_identifiers_are_dropped_missing_numbers_imputed_categories_one_hot() -> None:
    schema = infer_schema(FRAME, "label", "classification", id_columns=["reading_id"])
    pre = build_preprocessor(schema).fit(FRAME)
    assert list(pre.get_feature_names_out()) == ["temp", "mode_fast", "mode_slow"]
    out = pre.transform(FRAME)
    assert out[1, 0] == 40.0  # the median of the observed temperatures
    assert list(out[3, 1:]) == [0.0, 0.0]  # a missing category encodes as all zeros


def test_unknown_category_at_prediction_time_encodes_as_zeros() -> None:
    schema = infer_schema(FRAME, "label", "classification", id_columns=["reading_id"])
    pre = build_preprocessor(schema, scale_numeric=True).fit(FRAME)
    row = FRAME.iloc[:1].assign(mode="turbo")
    assert list(pre.transform(row)[0, 1:]) == [0.0, 0.0]
