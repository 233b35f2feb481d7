"""lifecycle.modeling.features: the preprocessor keeps only features and accepts raw rows as they come; dates become
hour/day/month/elapsed features, rare and unseen categories one infrequent column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifecycle.modeling.features import (
    INFREQUENT,
    DatetimeFeatures,
    GroupInfrequent,
    build_preprocessor,
    datetime_part,
    epoch_seconds,
)
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


# --------------------------------------------------------------------------------------------- datetimes (item 6)
def test_datetime_parts_equal_pandas_calendar_on_any_date() -> None:
    """hour, day of week and month from float arithmetic (what ONNX repeats) equal pandas' calendar, 1700-2200,
    at midnights and a nanosecond before them."""
    rng = np.random.default_rng(5)
    ns = rng.integers(pd.Timestamp("1700-01-01").value, pd.Timestamp("2200-01-01").value, 20000)
    midnights = pd.date_range("1969-12-25", periods=20, freq="D").as_unit("ns").asi8
    stamps = pd.Series(pd.to_datetime(np.r_[ns, midnights, midnights - 1]))
    seconds = epoch_seconds(stamps)
    assert (datetime_part(seconds, "hour") == stamps.dt.hour).all()
    assert (datetime_part(seconds, "day_of_week") == stamps.dt.day_of_week).all()
    assert (datetime_part(seconds, "month") == stamps.dt.month).all()


def test_datetime_features_accept_text_aware_and_missing_values_alike() -> None:
    fitted = DatetimeFeatures(["hour", "day_of_week", "elapsed_days"]).fit(
        pd.DataFrame({"at": pd.to_datetime(["2025-01-06 09:00", "2025-01-10 18:30"])})
    )
    assert list(fitted.get_feature_names_out()) == ["at_hour", "at_day_of_week", "at_elapsed_days"]
    rows = pd.DataFrame(
        {"at": ["2025-01-08T10:15:00+01:00", pd.Timestamp("2025-01-08 09:15", tz="UTC"), "2025-01-08 09:15", None]},
        dtype=object,
    )
    out = fitted.transform(rows)
    assert out[:3].tolist() == [[9.0, 2.0, 2.0 + 9.25 / 24]] * 3  # one instant, written three ways (Wednesday)
    assert np.isnan(out[3]).all()


def test_a_pipeline_learns_from_dates_and_imputes_a_missing_one() -> None:
    n = 300
    at = pd.Series(pd.date_range("2025-01-01", periods=n, freq="47min"))
    frame = pd.DataFrame({"at": at, "x": np.arange(n, dtype=float), "y": np.where(at.dt.hour < 12, "am", "pm")})
    schema = infer_schema(frame, "y", "classification", datetime_features=["hour", "month"])
    pre = build_preprocessor(schema).fit(frame)
    assert list(pre.get_feature_names_out()) == ["x", "at_hour", "at_month"]
    out = pre.transform(frame.assign(at=pd.NaT).iloc[:1])
    assert out[0, 1] == np.median(at.dt.hour) and out[0, 2] == 1.0  # imputed with the training medians


# --------------------------------------------------------------------------------------------- many categories (5)
def test_rare_and_unseen_values_share_the_infrequent_column_missing_is_all_zeros() -> None:
    frame = pd.DataFrame(
        {"town": ["a"] * 6 + ["b"] * 6 + ["c", "d", "e"] + [None], "x": np.arange(16.0), "y": [0, 1] * 8}
    )
    schema = infer_schema(frame, "y", "classification", max_categories=2, min_category_rows=5)
    assert schema.column("town").categories == ("a", "b") and schema.column("town").infrequent
    pre = build_preprocessor(schema).fit(frame)
    assert list(pre.get_feature_names_out()) == ["x", "town_a", "town_b", f"town_{INFREQUENT}"]
    rows = pd.DataFrame({"town": ["a", "c", "never seen", None], "x": [0.0] * 4})
    assert pre.transform(rows)[:, 1:].tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]]
    assert GroupInfrequent([["a"]]).fit(rows[["town"]]).transform(rows[["town"]]).ravel().tolist()[:3] == [
        "a", INFREQUENT, INFREQUENT,
    ]  # fmt: skip
