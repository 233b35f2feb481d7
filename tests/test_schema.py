"""lifecycle.schema: the inferred data contract (column roles, classes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifecycle.errors import DataError
from lifecycle.schema import (
    Schema,
    coerce_frame,
    infer_schema,
    normalize_name,
    parse_datetimes,
    resolve_column,
)


def test_regression_needs_numeric_target() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]})
    with pytest.raises(DataError, match="regression needs numbers"):
        infer_schema(frame, "label", "regression")


def test_schema_round_trips_through_its_dict() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"], "label": ["a", "b", "a"]})
    schema = infer_schema(frame, "label", "classification")
    assert schema.numeric == ["x"] and schema.categorical == ["colour"] and schema.classes == ("a", "b")
    assert Schema.from_dict(schema.to_dict()) == schema


# --------------------------------------------------------------------------------------------- names (item 1)
@pytest.mark.parametrize("name", ["Fixed Acidity", "fixed acidity", "fixed_acidity", " FIXED-ACIDITY "])
def test_a_column_may_be_named_as_the_header_writes_it_or_normalized(name: str) -> None:
    written = {"fixed_acidity": "Fixed Acidity", "quality": "Quality"}
    assert resolve_column(name, ["fixed_acidity", "quality"], "ingest.target", "f.csv", written) == "fixed_acidity"


def test_an_unknown_column_lists_the_headers_as_written_with_a_guess() -> None:
    written = {"survived": "Survived", "pclass": "Pclass"}
    with pytest.raises(DataError) as err:
        resolve_column("Survive", ["survived", "pclass"], "ingest.target", "titanic.csv", written)
    assert str(err.value) == (
        "titanic.csv: ingest.target: column 'Survive' not found (did you mean 'Survived' (or survived)?); "
        "set ingest.target to one of: 'Survived' (or survived), 'Pclass' (or pclass)"
    )
    with pytest.raises(DataError, match=r"ingest\.id_columns lists 'nope', which is not a column; columns: "):
        resolve_column("nope", ["survived"], "ingest.id_columns", "titanic.csv", written)


def test_params_names_as_written_reach_every_key() -> None:
    frame = pd.DataFrame(
        {"Passenger Id": ["a", "b", "c", "d"], "Fare": [1.0, 2.0, 3.0, 4.0], "Survived": [0, 1, 0, 1]}
    ).rename(columns=normalize_name)
    written = {"passenger_id": "Passenger Id", "fare": "Fare", "survived": "Survived"}
    schema = infer_schema(frame, "Survived", "classification", id_columns=["Passenger Id"], written=written)
    assert schema.target == "survived" and schema.identifiers == ["passenger_id"]


# --------------------------------------------------------------------------------------------- roles
def test_text_timestamps_are_dates_before_they_could_be_identifiers() -> None:
    """Unique text timestamps used to be classed as an identifier (so split.time_column refused them)."""
    n = 120
    stamps = pd.date_range("2025-01-01", periods=n, freq="37min")
    frame = pd.DataFrame(
        {
            "created": stamps.strftime("%Y-%m-%d %H:%M:%S"),  # per-row unique text
            "event_id": stamps.strftime("%Y-%m-%dT%H:%M:%S+01:00"),  # named like an id, still a date
            "x": range(n),
            "y": ["a", "b"] * (n // 2),
        }
    )
    schema = infer_schema(frame, "y", "classification", datetime_features=["hour", "month"])
    assert schema.datetimes == ["created", "event_id"] and schema.identifiers == []
    assert schema.column("created").parts == ("hour", "month") and "created" in schema.features
    coerced = coerce_frame(frame, schema)
    assert coerced["event_id"].iloc[0] == pd.Timestamp("2024-12-31 23:00:00")  # +01:00 -> UTC, naive
    assert str(coerced["created"].dtype) == "datetime64[ns]"
    assert infer_schema(frame, "y", "classification", datetime_features=[]).features == ["x"]


def test_timezone_aware_datetimes_become_naive_utc() -> None:
    aware = pd.Series(pd.date_range("2025-03-30 00:30", periods=4, freq="h", tz="Europe/Berlin"))
    utc = parse_datetimes(aware)
    assert str(utc.dtype) == "datetime64[ns]" and utc.dt.tz is None
    assert utc.tolist() == [pd.Timestamp("2025-03-29 23:30") + pd.Timedelta(hours=h) for h in range(4)]
    mixed = parse_datetimes(pd.Series(["2025-01-01T10:00:00+02:00", "2025-01-01 08:00:00Z", "2025-01-01 08:00", None]))
    assert mixed.iloc[:3].nunique() == 1 and pd.isna(mixed.iloc[3])


def test_many_text_values_keep_the_frequent_ones_and_unique_text_is_an_identifier() -> None:
    rng = np.random.default_rng(0)
    n = 400
    frequent = [f"f{i}" for i in range(8)]
    town = np.where(rng.random(n) < 0.6, rng.choice(frequent, n), [f"rare{i}" for i in range(n)])
    frame = pd.DataFrame(
        {"town": town, "comment": [f"free text {i}" for i in range(n)], "x": rng.normal(size=n), "y": [0, 1] * (n // 2)}
    )
    schema = infer_schema(frame, "y", "classification", max_categories=5, min_category_rows=10)
    town_col = schema.column("town")
    assert town_col.role == "categorical" and town_col.infrequent
    counts = pd.Series(town).value_counts()
    assert len(town_col.categories) == 5 and set(town_col.categories) <= set(counts.index[:8])  # the most frequent
    assert schema.column("comment").role == "identifier"
    assert Schema.from_dict(schema.to_dict()) == schema
    assert schema.to_dict()["columns"][0]["infrequent"] is True
    few = infer_schema(frame, "y", "classification", max_categories=50, min_category_rows=1000)
    assert few.column("town").role == "identifier"  # no value is frequent enough to learn from


# --------------------------------------------------------------------------------------------- targets
def test_unlabeled_rows_stay_and_the_classes_come_from_the_labeled_ones() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": [1.0, np.nan, 0.0, 1.0, np.nan]})
    schema = infer_schema(frame, "y", "classification")
    assert schema.classes == (0, 1) and schema.column("y").dtype == "int"
    coerced = coerce_frame(frame, schema)
    assert str(coerced["y"].dtype) == "Int64" and coerced["y"].isna().sum() == 2
    boolean = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": pd.Series([True, None, False], dtype=object)})
    schema = infer_schema(boolean, "y", "classification")
    assert schema.classes == (False, True) and schema.column("y").dtype == "bool"
    assert str(coerce_frame(boolean, schema)["y"].dtype) == "boolean"
    with pytest.raises(DataError, match=r"target column 'y' has no values \(all 2 rows are null\)"):
        infer_schema(pd.DataFrame({"x": [1.0, 2.0], "y": [None, None]}), "y", "classification")


def test_a_continuous_target_for_classification_says_regression() -> None:
    frame = pd.DataFrame({"x": np.arange(200.0), "price": np.linspace(10.5, 99.5, 200)})
    with pytest.raises(
        DataError, match=r"'price' holds 200 distinct numbers in 200 rows, .* set ingest\.task: regression"
    ):
        infer_schema(frame, "price", "classification")


def test_regression_on_an_integer_target_and_numbers_as_float() -> None:
    frame = pd.DataFrame({"n": pd.array([1, None, 3, 4], dtype="Int64"), "count": [3, 5, 8, 13]})
    schema = infer_schema(frame, "count", "regression")
    assert schema.numeric == ["n"] and schema.column("n").dtype == "float"
    assert str(coerce_frame(frame, schema)["n"].dtype) == "float64"  # a blank integer is a null, not a type change
