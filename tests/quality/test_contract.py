"""lifecycle.quality.contract: the contract files, their parsing, and the errors that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from lifecycle.data import telemetry
from lifecycle.errors import DataError
from lifecycle.quality.contract import contract_path, dataset_key, load_contract, numeric_bounds, parse_contract

ROOT = Path(__file__).resolve().parents[2]


def test_telemetry_contract_holds_the_physical_limits_and_value_sets(contract) -> None:
    for name, (lo, hi) in telemetry.PHYSICAL_LIMITS.items():
        rule = contract.column(name)
        assert (rule.type, rule.min, rule.max) == ("float", lo, hi), name
    for name, values in (
        ("charge_mode", telemetry.CHARGE_MODES),
        ("chemistry", telemetry.CHEMISTRIES),
        ("climate_zone", telemetry.CLIMATE_ZONES),
    ):
        assert set(contract.column(name).values) == set(values)
    assert contract.target == telemetry.TARGET and set(contract.classes) == set(telemetry.CLASSES)
    assert contract.row_id == "reading_id"
    assert contract.names == list(telemetry.COLUMNS)
    window = contract.column(telemetry.DATETIME_COLUMN)
    assert (window.min, window.max) == (pd.Timestamp("2025-01-01"), pd.Timestamp("2027-01-01"))


def test_dataset_key_and_contract_path() -> None:
    assert dataset_key("telemetry") == "telemetry"
    assert dataset_key("data/external/winequality-red.csv") == "winequality_red"
    assert dataset_key("s3://bucket/fleet/Batch 7.parquet") == "batch_7"
    assert contract_path("data/contracts", "telemetry") == Path("data/contracts/telemetry.yaml")


def test_wine_contract_exists_for_the_documented_wine_params() -> None:
    path = contract_path(ROOT / "data/contracts", "data/external/winequality-red.csv")
    contract = load_contract(path)
    assert contract.target == "quality" and contract.classes == (3, 4, 5, 6, 7, 8)
    assert contract.duplicates == "keep"  # wine samples have no id: identical measurements are legitimate


def test_numeric_bounds_are_the_features_min_and_max(contract) -> None:
    bounds = numeric_bounds(contract, ["state_of_health_pct", "charge_mode", "recorded_at"])
    assert bounds == {"state_of_health_pct": [0.0, 100.0]}  # text and datetime columns have no numeric bounds


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"colums": {}}, "unknown key(s) ['colums']"),
        ({"columns": {"a": {"type": "float64"}}}, "columns.a.type: 'float64'; use one of float, int"),
        ({"columns": {"a": {"type": "float", "min": 5, "max": 1}}}, "columns.a: min 5 is greater than max 1"),
        ({"columns": {"a": {"type": "float", "mn": 0}}}, "columns.a: unknown key(s) ['mn']"),
        ({"columns": {"a": {"type": "str", "min": 0}}}, "min/max apply to float, int and datetime"),
        ({"columns": {"a": {"type": "datetime", "min": "soon"}}}, "'soon' is not an ISO date/time"),
        ({"target": "b"}, "target: 'b' is not one of the contract's columns"),
        ({"duplicates": "drop"}, "duplicates: 'drop'; use quarantine, fail or keep"),
    ],
)
def test_contract_errors_name_the_key_and_the_fix(change: dict, fragment: str) -> None:
    raw = {"dataset": "d", "columns": {"a": {"type": "float"}}} | change
    with pytest.raises(DataError) as err:
        parse_contract(raw, "c.yaml")
    assert fragment in str(err.value)


def test_missing_contract_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no data contract for this dataset; generate a starter with `make suite`"):
        load_contract(tmp_path / "mine.yaml")


def test_yaml_booleans_in_text_value_sets_stay_text() -> None:
    contract = parse_contract(yaml.safe_load("columns: {flag: {type: str, values: [yes, no]}}"), "c.yaml")
    assert contract.column("flag").values == ("True", "False")
