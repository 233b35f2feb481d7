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


# --------------------------------------------------------------------------------------------- item 3: a property
def generated_frame(seed: int) -> pd.DataFrame:
    """A user's file as ingest reads it: numbers with glitches and blanks, integers with blanks, a text column that is
    mostly null (77 %), many-valued and per-row-unique text, booleans, dates, a few unlabeled rows, repeats."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 900))
    frame = pd.DataFrame(
        {
            "Passenger Id": np.arange(n) + int(rng.integers(1, 1000)),
            "Age": np.where(rng.random(n) < 0.2, np.nan, rng.normal(30, 12, n).round(1)),
            "Siblings": pd.array(np.where(rng.random(n) < 0.05, None, rng.integers(0, 6, n)), dtype="Int64"),
            "Fare": rng.lognormal(3, 1, n),
            "Cabin": np.where(rng.random(n) < 0.77, None, rng.choice([f"C{i}" for i in range(150)], n)),
            "Ticket": rng.choice([f"T{i}" for i in range(n // 2)], n),
            "Town": rng.choice([f"town{i}" for i in range(90)], n, p=np.r_[0.5, np.full(89, 0.5 / 89)]),
            "Name": [f"person {i}" for i in range(n)],
            "Member": rng.choice([True, False], n),
            "Joined": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s"),
            "Survived": rng.choice([0, 1], n).astype(float),
        }
    )
    frame.loc[rng.choice(n, 3, replace=False), "Fare"] = 1e6  # glitches
    frame.loc[rng.random(n) < 0.05, "Survived"] = np.nan  # unlabeled (under validate.max_unlabeled_fraction)
    repeats = frame.sample(int(rng.integers(0, n // 50 + 1)), random_state=seed)
    return pd.concat([frame, repeats], ignore_index=True)


@pytest.mark.parametrize("seed", range(6))
def test_a_suggested_contract_passes_the_data_it_was_derived_from(seed: int, cfg) -> None:
    params = load_params(ROOT / "params.yaml")
    ingest = params.ingest.model_copy(update={"source": "own.csv", "target": "Survived"})
    df, schema = prepare(generated_frame(seed), ingest, "own.csv")
    text = suggest_contract(df, schema, "own", cfg)
    contract = parse_contract(yaml.safe_load(text), "own.yaml")
    assert "nullable: false" not in text.split("cabin:")[1].splitlines()[0]  # 77 % null: nullable, with its limit
    assert contract.column("cabin").max_null_fraction >= df["cabin"].isna().mean()
    assert contract.column("siblings").type == "float"  # a blank integer is a null, not a type error
    result = validate_frame(df, schema, contract, cfg, source="own.csv")
    assert result.success, result.summary()
    assert result.metrics["rows_unlabeled"] == int(df["survived"].isna().sum())


def test_one_blank_integer_does_not_refuse_a_scoring_batch(cfg) -> None:
    from lifecycle.batch import scoring_contract, validate_chunk

    params = load_params(ROOT / "params.yaml")
    ingest = params.ingest.model_copy(update={"source": "own.csv", "target": "Survived"})
    df, schema = prepare(generated_frame(0), ingest, "own.csv")
    contract = scoring_contract(parse_contract(yaml.safe_load(suggest_contract(df, schema, "own", cfg)), "c"), schema)
    batch = df.drop(columns="survived").head(50).astype({"siblings": "float64"})
    batch.loc[3, "siblings"] = np.nan  # a CSV batch: integers read as int64, or float64 with one blank
    for frame in (batch, batch.dropna(subset=["siblings"]).astype({"siblings": "int64"})):
        result = validate_chunk(frame, schema, contract, cfg, gx=False)
        assert len(result.clean) == len(frame) - int(result.quarantined.shape[0]) and len(result.clean) >= 45
