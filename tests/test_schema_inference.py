"""lifecycle.schema.infer_schema, rule by rule: each column's role and dtype from its dtype, name and cardinality;
the classes of the target; and what no model can learn from, refused with the column and the fix."""

from __future__ import annotations

import pandas as pd
import pytest

from lifecycle.errors import DataError
from lifecycle.schema import infer_schema


def table(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "reading_id": [f"r-{i}" for i in range(n)],  # a text column named like an id
            "sensor_id": list(range(n)),  # integers named like an id, mostly distinct
            "vehicle_id": ["v1", "v2"] * (n // 2),  # named like an id, whatever its cardinality
            "recorded_at": pd.date_range("2026-01-01", periods=n, freq="h"),
            "logged": [f"2026-02-{1 + i % 28:02d} 10:00" for i in range(n)],  # dates as text
            "temp_c": [20.5 + i for i in range(n)],
            "cycles": [i % 7 for i in range(n)],  # integers, not an id by name
            "mode": ["slow", "fast", None] * (n // 3),  # first seen: slow
            "cooled": [True, False] * (n // 2),
            "fault": ["none", "overheating", "none", "cell_imbalance"] * (n // 4),
        }
    )


def test_each_column_gets_its_role_and_dtype() -> None:
    schema = infer_schema(table(), "fault", "classification")
    roles = {c.name: (c.role, c.dtype) for c in schema.columns}
    assert roles == {
        "reading_id": ("identifier", "str"),
        "sensor_id": ("identifier", "str"),  # carried as text: never learned from
        "vehicle_id": ("identifier", "str"),
        "recorded_at": ("datetime", "datetime"),
        "logged": ("datetime", "datetime"),
        "temp_c": ("numeric", "float"),
        "cycles": ("numeric", "float"),  # numeric features are float: a blank in a scoring batch is not a type error
        "mode": ("categorical", "str"),
        "cooled": ("categorical", "str"),
        "fault": ("target", "str"),
    }
    categories = {c.name: c.categories for c in schema.columns if c.role == "categorical"}
    assert categories == {"mode": ("fast", "slow"), "cooled": ("False", "True")}  # sorted, nulls left out
    assert schema.classes == ("cell_imbalance", "none", "overheating")  # sorted
    assert schema.features == ["temp_c", "cycles", "mode", "cooled"]


def test_explicit_id_columns_win_over_the_inferred_role() -> None:
    schema = infer_schema(table(), "fault", "classification", id_columns=["cycles"])
    assert {c.name: c.role for c in schema.columns}["cycles"] == "identifier"
    with pytest.raises(DataError, match=r"ingest\.id_columns lists 'nope', which is not a column"):
        infer_schema(table(), "fault", "classification", id_columns=["nope"])


def test_integer_classes_sort_as_numbers_and_regression_targets_are_float() -> None:
    df = table().assign(fault=[3, 10, 2, 10] * 15)
    assert infer_schema(df, "fault", "classification").classes == (2, 3, 10)
    regression = infer_schema(df, "fault", "regression")
    assert regression.classes == () and {c.name: c.dtype for c in regression.columns}["fault"] == "float"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.iloc[0:0], r"no rows to learn from"),
        (
            lambda df: df.drop(columns="fault"),
            r"ingest\.target: column 'fault' not found; set ingest\.target to one of",
        ),
        (lambda df: df.assign(temp_c=None), r"column 'temp_c' is empty \(all 60 values are null\)"),
        (lambda df: df.assign(fault="none"), r"target column 'fault' has a single class \('none'\)"),
        (lambda df: df.assign(fault=None), r"target column 'fault' has no values \(all 60 rows are null\)"),
        (
            lambda df: df[["reading_id", "recorded_at", "fault"]],
            r"no feature columns besides the target 'fault' \(every other column is an identifier or a date not learned "
            r"from\); list fewer columns in ingest\.id_columns or ingest\.drop_columns",
        ),
    ],
)
def test_what_no_model_can_learn_from_is_refused(change, message: str) -> None:
    with pytest.raises(DataError, match=r"^data/raw/x\.csv: " + message):
        infer_schema(change(table()), "fault", "classification", max_categories=5, source="data/raw/x.csv")


def test_unlabeled_rows_stay_and_many_valued_text_keeps_its_frequent_values() -> None:
    """Issue 13: a row without a target is not refused here (validate quarantines it as unlabeled); text with more
    than ``max_categories`` values keeps the ones seen in ``min_category_rows`` rows and groups the rest."""
    df = table().assign(fault=[None, *table()["fault"][1:]])
    assert infer_schema(df, "fault", "classification").classes == ("cell_imbalance", "none", "overheating")
    modes = [f"m{i % 8}" for i in range(56)] + ["rare1", "rare2", "rare3", "rare4"]  # 8 values x 7 rows + 4 singles
    column = {c.name: c for c in infer_schema(table().assign(mode=modes), "fault", "classification", max_categories=5)
              .columns}["mode"]  # fmt: skip
    assert column.role == "categorical" and column.infrequent and len(column.categories) == 5
    assert not {"rare1", "rare2", "rare3", "rare4"} & set(column.categories)
