"""lifecycle.data.ingest: the raw rows of ingest.source and the table with its inferred schema, in memory.

The stage shell on real files, and each kind of bad file, is tests/stages/test_ingest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lifecycle.config import Ingest, load_params
from lifecycle.data.ingest import load_dataset, load_source, prepare
from lifecycle.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def ingest_params(**changes: Any) -> Ingest:
    params = load_params(ROOT / "params.yaml")
    return params.ingest.__class__(**{**params.ingest.__dict__, "rows": 2000, **changes})


def test_telemetry_schema_roles() -> None:
    ingest = ingest_params()
    df, schema = prepare(load_source(ingest, seed=1), ingest, "telemetry")
    assert schema.identifiers == ["reading_id", "vehicle_id"]
    assert schema.datetimes == ["recorded_at"]
    assert set(schema.categorical) == {"charge_mode", "chemistry", "climate_zone"}
    assert schema.classes == ("cell_imbalance", "degradation", "none", "overheating")
    assert pd.api.types.is_datetime64_any_dtype(df["recorded_at"])


def test_fleet_versions_are_concatenated_with_consecutive_seeds() -> None:
    one = load_source(ingest_params(rows=300, data_version="v1"), seed=1)
    two = load_source(ingest_params(rows=300, data_version=["v1", "v2"]), seed=1)
    assert len(two) == 2 * len(one)
    pd.testing.assert_frame_equal(two.iloc[: len(one)], one)


def test_unknown_dropped_column_names_the_source() -> None:
    with pytest.raises(
        DataError, match=r"telemetry simulator: ingest\.drop_columns lists 'nope', which is not a column"
    ):
        load_dataset(ingest_params(rows=300, drop_columns=["nope"]), seed=1)
