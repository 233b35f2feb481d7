"""lifecycle.quality on small frames: the contract file, the GE suites, the quarantine mask, reports, suggest."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lifecycle.config import Validate, load_params
from lifecycle.data import telemetry
from lifecycle.data.ingest import prepare
from lifecycle.errors import DataError, GateError
from lifecycle.io import dumps_json
from lifecycle.quality import (
    REASON,
    contract_path,
    dataset_key,
    gx_context,
    load_contract,
    parse_contract,
    report_json,
    report_markdown,
    suggest_contract,
    validate_frame,
)

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY = ROOT / "data/contracts/telemetry.yaml"


@pytest.fixture(scope="module")
def cfg() -> Validate:
    return load_params(ROOT / "params.yaml").validate


@pytest.fixture(scope="module")
def messy():
    """Telemetry as ingest writes it, with the simulator's glitches and duplicates (raised so every rule fires)."""
    params = load_params(ROOT / "params.yaml")
    raw = telemetry.generate(4000, seed=11, missing_rate=0.01, glitch_rate=0.01, duplicate_rate=0.01)
    return prepare(raw, params.ingest, "telemetry")


@pytest.fixture(scope="module")
def contract():
    return load_contract(TELEMETRY)


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


def test_gx_context_is_ephemeral_without_progress_bars_or_analytics() -> None:
    context = gx_context()
    assert type(context).__name__ == "EphemeralDataContext"
    assert context.variables.progress_bars.globally is False
    assert context.variables.analytics_enabled is False


def test_gx_import_leaves_scipy_stats_unexecuted_until_used() -> None:
    """In a fresh interpreter, as the stage runs: GE imports without executing scipy.stats (~1 s), and a real use
    still works (the module loads then)."""
    code = (
        "import sys, importlib.util\n"
        "from lifecycle.quality import defer_imports\n"
        "print(defer_imports())\n"
        "import great_expectations\n"
        "print(type(sys.modules['scipy.stats']).__name__)\n"
        "from scipy import stats\n"
        "print(round(float(stats.entropy([0.5, 0.5])), 4), type(sys.modules['scipy.stats']).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["['scipy.stats']", "_LazyModule", "0.6931 module"]


def test_messy_telemetry_quarantines_exactly_the_bad_rows(messy, contract, cfg) -> None:
    df, schema = messy
    result = validate_frame(df, schema, contract, cfg, source="messy")
    assert result.success, result.summary()
    q, clean = result.quarantined, result.clean
    assert len(q) + len(clean) == len(df) and len(q) > 40
    for name, (lo, hi) in telemetry.PHYSICAL_LIMITS.items():
        assert clean[name].dropna().between(lo, hi).all(), name
    assert not clean.duplicated().any()
    assert q[REASON].str.len().gt(0).all()
    assert q[REASON].str.contains("outside").any() and q[REASON].str.contains("duplicate of row v1-").any()
    m = result.metrics
    assert m["rows_checked"] == len(df) and m["rows_quarantined"] == len(q)
    assert m["quarantine_fraction"] == pytest.approx(len(q) / len(df), abs=1e-6)
    assert m["unexpected_percent"]["pack_voltage_v.between"] > 0
    # the GE result JSON has both suites, rule ids in meta, nothing volatile
    text = dumps_json(result.gx_result)
    assert "run_time" not in text and "validation_time" not in text and '"id"' not in text
    rules = {r["expectation_config"]["meta"]["rule"] for r in result.gx_result["rows"]["results"]}
    assert "state_of_health_pct.between" in rules and "rows.unique" in rules


def test_great_expectations_on_every_row_agrees_with_the_mask(messy, contract, cfg) -> None:
    """row_expectations_on: all makes GE count every rule over every row; the gate checks they equal the mask's."""
    df, schema = messy
    flagged = validate_frame(df, schema, contract, cfg)
    every = validate_frame(df, schema, contract, cfg.model_copy(update={"row_expectations_on": "all"}))
    assert every.success, every.summary()
    assert every.gx_result["rows_evaluated_by_gx"] == len(df) > flagged.gx_result["rows_evaluated_by_gx"]
    assert every.metrics == flagged.metrics
    for res in every.gx_result["rows"]["results"]:
        rule = res["expectation_config"]["meta"]["rule"]
        assert res["result"]["unexpected_count"] == round(every.metrics["unexpected_percent"][rule] * len(df) / 100)
    pd.testing.assert_frame_equal(every.quarantined, flagged.quarantined)


def test_multiple_broken_rules_on_one_row_are_all_named(messy, contract, cfg) -> None:
    df, schema = messy
    df = df.copy()
    df.loc[0, ["state_of_health_pct", "chemistry"]] = [250.0, "NaS"]
    result = validate_frame(df, schema, contract, cfg)
    reason = result.quarantined.set_index("reading_id").loc[df.loc[0, "reading_id"], REASON]
    assert reason == "state_of_health_pct=250.0 outside [0.0, 100.0]; chemistry='NaS' not in {'NMC', 'LFP'}"


def test_datetime_window_quarantines_timestamps_outside(messy, contract, cfg) -> None:
    df, schema = messy
    df = df.copy()
    df.loc[3, "recorded_at"] = pd.Timestamp("1970-01-01")
    result = validate_frame(df, schema, contract, cfg)
    assert "recorded_at=1970-01-01 outside [2025-01-01, 2027-01-01]" in result.quarantined[REASON].tolist()


def test_failure_raises_a_gate_error_naming_rule_column_count_examples_threshold(messy, contract, cfg) -> None:
    df, schema = messy
    df = df.copy()
    df.loc[df.index[:400], "state_of_charge_pct"] = 255.0
    result = validate_frame(df, schema, contract, cfg, source="batch.parquet")
    assert not result.success and result.metrics["success"] is False
    with pytest.raises(GateError) as err:
        result.raise_if_failed("see reports/validation.md")
    msg = str(err.value)
    for fragment in (
        "batch.parquet: data quality gate FAILED",
        "expect_column_values_to_be_between on state_of_charge_pct",
        "break [0.0, 100.0]; e.g. 255.0",
        "more than validate.max_bad_row_fraction=0.05",
        "see reports/validation.md",
    ):
        assert fragment in msg
    md = report_markdown(result)
    assert "**FAILED**" in md and "## Why it failed" in md


def test_duplicates_fail_policy_fails_instead_of_quarantining(messy, contract, cfg) -> None:
    df, schema = messy
    strict = dataclasses.replace(contract, duplicates="fail")
    result = validate_frame(df, schema, strict, cfg)
    assert not result.success
    assert any("contract duplicates: fail" in f for f in result.table_failures)
    assert not result.quarantined[REASON].str.contains("duplicate").any()


def test_reports_are_deterministic(messy, contract, cfg) -> None:
    df, schema = messy
    a, b = (validate_frame(df, schema, contract, cfg, source="x") for _ in range(2))
    assert dumps_json(report_json(a)) == dumps_json(report_json(b))
    assert report_markdown(a) == report_markdown(b)


def test_chunk_mode_skips_table_totals(messy, contract, cfg) -> None:
    df, schema = messy
    result = validate_frame(df.head(10), schema, contract, cfg, table_checks=False)
    assert result.success, result.summary()  # 10 rows < validate.min_rows, a class missing: not checked per chunk
    # nor the bad-row fraction: a chunk that is all glitches is the caller's (whole batch's) total to judge
    bad = df.head(10).assign(cell_temp_max_c=999.0)
    result = validate_frame(bad, schema, contract, cfg, table_checks=False)
    assert result.success and len(result.quarantined) == 10, result.summary()
    whole = validate_frame(bad, schema, contract, cfg)
    assert not whole.success
    assert any("more than validate.max_bad_row_fraction" in f for f in whole.table_failures), whole.summary()


# --------------------------------------------------------------------------------------------- contract file
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


# --------------------------------------------------------------------------------------------- suggest
def test_suggested_contract_loads_leaves_glitches_out_and_passes_its_own_data(messy, cfg) -> None:
    df, schema = messy
    text = suggest_contract(df, schema, "telemetry")
    contract = parse_contract(yaml.safe_load(text), "suggested.yaml")
    assert "outlier(s) left out (glitches?)" in text
    soh = contract.column("state_of_health_pct")
    assert soh.min >= 0 and soh.max < 250  # the 250 % glitches are outside the suggested range
    assert set(contract.column("charge_mode").values) == set(telemetry.CHARGE_MODES)
    assert contract.row_id is None  # the duplicated rows repeat their reading_id: not unique, not suggested
    first = validate_frame(df, schema, contract, cfg)
    assert first.success and first.quarantined[REASON].str.contains("state_of_health_pct=250.0").any()
    again = validate_frame(first.clean, schema, contract, cfg)
    assert again.success and len(again.quarantined) == 0


def test_suggest_on_wine_quality(cfg) -> None:
    params = load_params(ROOT / "params.yaml")
    ingest = params.ingest.model_copy(update={"source": "x", "target": "quality"})
    raw = pd.read_csv(ROOT / "data/external/winequality-red.csv", sep=";")
    df, schema = prepare(raw, ingest, "wine")
    contract = parse_contract(yaml.safe_load(suggest_contract(df, schema, "wine")), "wine.yaml")
    assert contract.duplicates == "keep" and contract.classes == (3, 4, 5, 6, 7, 8)
    result = validate_frame(df, schema, contract, cfg.model_copy(update={"min_class_rows": 5}))
    assert result.success, result.summary()
    assert len(result.quarantined) == 0
    assert np.isclose(result.metrics["quarantine_fraction"], 0.0)


def test_duplicate_masks_match_pandas_duplicated() -> None:
    from lifecycle.quality import duplicate_masks

    df = pd.DataFrame(
        {
            "x": [1.0, np.nan, 1.0, np.nan, 2.0, 1.0, 1.0],
            "s": pd.array(["a", None, "a", None, "a", "b", "a"], dtype="str"),
        }
    )
    for cols in (["x", "s"], ["s"]):
        every, repeats, first_of = duplicate_masks(df, cols)
        assert every.tolist() == df.duplicated(cols, keep=False).tolist()
        assert repeats.tolist() == df.duplicated(cols, keep="first").tolist()
    every, repeats, first_of = duplicate_masks(df, ["x", "s"])
    assert first_of.to_dict() == {2: 0, 3: 1, 6: 0}
