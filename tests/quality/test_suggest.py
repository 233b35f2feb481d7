"""lifecycle.quality.suggest and its command line: a starter contract that loads and passes its own data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lifecycle.config import load_params
from lifecycle.data import telemetry
from lifecycle.data.ingest import prepare
from lifecycle.errors import DataError
from lifecycle.io import write_json
from lifecycle.quality.__main__ import main as quality_cli
from lifecycle.quality.contract import load_contract, parse_contract
from lifecycle.quality.gx import validate_frame
from lifecycle.quality.rules import REASON
from lifecycle.quality.suggest import suggest_contract

ROOT = Path(__file__).resolve().parents[2]


def test_suggested_contract_loads_leaves_glitches_out_and_passes_its_own_data(messy, cfg) -> None:
    df, schema = messy
    text = suggest_contract(df, schema, "telemetry", cfg)
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
    contract = parse_contract(yaml.safe_load(suggest_contract(df, schema, "wine", cfg)), "wine.yaml")
    assert contract.duplicates == "keep" and contract.classes == (3, 4, 5, 6, 7, 8)
    result = validate_frame(df, schema, contract, cfg.model_copy(update={"min_class_rows": 5}))
    assert result.success, result.summary()
    assert len(result.quarantined) == 0
    assert np.isclose(result.metrics["quarantine_fraction"], 0.0)


def test_suggest_command_writes_a_contract_and_never_overwrites_one(messy, tmp_path) -> None:
    df, schema = messy
    df.to_parquet(tmp_path / "raw.parquet", index=False)
    write_json(tmp_path / "schema.json", schema.to_dict())
    argv = ["suggest", "--params", str(ROOT / "params.yaml"), "--data", str(tmp_path / "raw.parquet"),
            "--schema", str(tmp_path / "schema.json"), "--out", str(tmp_path / "c.yaml")]  # fmt: skip
    quality_cli(argv)
    assert load_contract(tmp_path / "c.yaml").dataset == "telemetry"
    with pytest.raises(DataError, match=r"c\.yaml: a contract exists already; .* --force"):
        quality_cli(argv)
    quality_cli([*argv, "--force", "--dataset", "fleet"])
    assert load_contract(tmp_path / "c.yaml").dataset == "fleet"
