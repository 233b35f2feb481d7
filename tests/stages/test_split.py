"""The split stage shell: train and test tables written where argv says; a bad param leaves the old ones."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lifecycle.errors import DataError
from lifecycle.schema import infer_schema
from lifecycle.stages import split as stage

ROOT = Path(__file__).resolve().parents[2]


def setup(tmp_path: Path, **split: object) -> list[str]:
    df = pd.DataFrame({"x": [float(i) for i in range(40)], "label": ["a", "b"] * 20})
    df.to_parquet(tmp_path / "validated.parquet")
    (tmp_path / "schema.json").write_text(json.dumps(infer_schema(df, "label", "classification").to_dict()))
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["split"].update(split)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    argv = ["--params", str(tmp_path / "params.yaml"), "--data", str(tmp_path / "validated.parquet")]
    return [*argv, "--schema", str(tmp_path / "schema.json"), "--train", "train.parquet", "--test", "test.parquet"]


def test_writes_both_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stage.main(setup(tmp_path, test_size=0.25))
    train, test = pd.read_parquet("train.parquet"), pd.read_parquet("test.parquet")
    assert (len(train), len(test)) == (30, 10)
    assert sorted([*train["x"], *test["x"]]) == [float(i) for i in range(40)]


def test_bad_time_column_leaves_the_previous_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("train.parquet", "test.parquet"):
        (tmp_path / name).write_bytes(b"previous good table")
    with pytest.raises(DataError, match=r"split\.time_column: 'x' is not a datetime column"):
        stage.main(setup(tmp_path, time_column="x"))
    assert (
        (tmp_path / "train.parquet").read_bytes() == (tmp_path / "test.parquet").read_bytes() == b"previous good table"
    )
