"""params.yaml's ``split.stratify`` and ``split.time_column`` reach the split stage and decide which rows are held out:
the stage's tables are exactly scikit-learn's stratified or plain split (base.seed), or the latest rows by time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.model_selection import train_test_split

from lifecycle.data import telemetry as tel
from lifecycle.schema import coerce_frame, infer_schema
from lifecycle.stages import split as stage

ROOT = Path(__file__).resolve().parents[2]
SEED = yaml.safe_load((ROOT / "params.yaml").read_text())["base"]["seed"]


def run_stage(tmp_path: Path, df: pd.DataFrame, schema, **split: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    df.to_parquet(tmp_path / "validated.parquet")
    (tmp_path / "schema.json").write_text(json.dumps(schema.to_dict()))
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["split"].update(split)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    stage.main([
        "--params", str(tmp_path / "params.yaml"), "--data", str(tmp_path / "validated.parquet"),
        "--schema", str(tmp_path / "schema.json"), "--train", str(tmp_path / "train.parquet"),
        "--test", str(tmp_path / "test.parquet"),
    ])  # fmt: skip
    return pd.read_parquet(tmp_path / "train.parquet"), pd.read_parquet(tmp_path / "test.parquet")


def test_stratify_true_and_false_are_sklearns_two_splits(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [float(i) for i in range(200)], "label": ["a"] * 20 + ["b"] * 180})
    schema = infer_schema(df, "label", "classification")
    (tmp_path / "s").mkdir(), (tmp_path / "p").mkdir()
    strat_train, strat_test = run_stage(tmp_path / "s", df, schema, stratify=True, test_size=0.25, time_column=None)
    plain_train, plain_test = run_stage(tmp_path / "p", df, schema, stratify=False, test_size=0.25, time_column=None)
    want_strat = train_test_split(df, test_size=0.25, random_state=SEED, stratify=df["label"])[1]
    want_plain = train_test_split(df, test_size=0.25, random_state=SEED)[1]
    assert strat_test["x"].tolist() == want_strat["x"].tolist()
    assert plain_test["x"].tolist() == want_plain["x"].tolist()
    assert strat_test["label"].value_counts().to_dict() == {"b": 45, "a": 5}  # 1:9, as in the whole table
    assert sorted(strat_test["x"]) != sorted(plain_test["x"])  # the key changes the held-out rows
    for train, test in ((strat_train, strat_test), (plain_train, plain_test)):
        assert sorted([*train["x"], *test["x"]]) == df["x"].tolist()


@pytest.mark.parametrize("test_size", [0.1, 0.25])
def test_time_column_holds_out_the_latest_readings(tmp_path: Path, test_size: float) -> None:
    raw = tel.generate(600, "v1", 3, 0.0, 0.0, 0.0)
    schema = infer_schema(raw, tel.TARGET, "classification", id_columns=tel.ID_COLUMNS)
    df = coerce_frame(raw, schema)
    assert "recorded_at" in schema.datetimes
    train, test = run_stage(tmp_path, df, schema, time_column="recorded_at", test_size=test_size, stratify=True)
    latest = df.sort_values("recorded_at", kind="stable").tail(len(test))
    assert len(test) == round(test_size * len(df))  # 60 and 150 of 600 rows
    assert sorted(test["reading_id"]) == sorted(latest["reading_id"])
    assert train["recorded_at"].max() <= test["recorded_at"].min()
    (tmp_path / "random").mkdir()
    _, random_test = run_stage(tmp_path / "random", df, schema, time_column=None, test_size=test_size)
    assert sorted(random_test["reading_id"]) != sorted(test["reading_id"])  # without the key: a random sample
