"""The ingest stage on users' own files: real wine-quality data in, and each kind of bad input refused
with a message naming the file/column/key and the fix, leaving the previous outputs untouched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
WINE_RED = ROOT / "data/external/winequality-red.csv"
GOOD = {"out": b"previous good table", "schema": b'{"previous": "schema"}\n'}


def write_params(tmp_path: Path, **ingest: object) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["ingest"].update(ingest)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_ingest(tmp_path: Path, **ingest: object) -> subprocess.CompletedProcess[str]:
    """Run the stage as DVC does, over outputs that hold 'previous good' bytes."""
    (tmp_path / "out.parquet").write_bytes(GOOD["out"])
    (tmp_path / "schema.json").write_bytes(GOOD["schema"])
    params = write_params(tmp_path, **ingest)
    return subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.ingest", "--params", str(params), "--out", "out.parquet",
         "--schema", "schema.json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip


def assert_refused(proc: subprocess.CompletedProcess[str], tmp_path: Path, *fragments: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, f"{fragment!r} not in:\n{proc.stderr}"
    assert (tmp_path / "out.parquet").read_bytes() == GOOD["out"]
    assert (tmp_path / "schema.json").read_bytes() == GOOD["schema"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_wine_quality_classification_schema(tmp_path: Path) -> None:
    proc = run_ingest(tmp_path, source=str(WINE_RED), read_options={"sep": ";"}, target="quality")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((tmp_path / "schema.json").read_text())
    df = pd.read_parquet(tmp_path / "out.parquet")
    assert len(df) == 1599
    assert schema["classes"] == [3, 4, 5, 6, 7, 8]
    numeric = [c["name"] for c in schema["columns"] if c["role"] == "numeric"]
    assert "fixed_acidity" in numeric and len(numeric) == 11  # "fixed acidity" normalized
    assert "wrote 1599 rows" in proc.stderr


def test_missing_target_column(tmp_path: Path) -> None:
    proc = run_ingest(tmp_path, source=str(WINE_RED), read_options={"sep": ";"}, target="grade")
    assert_refused(
        proc, tmp_path, "winequality-red.csv", "ingest.target: column 'grade' not found", "set ingest.target to one of",
        "'fixed acidity' (or fixed_acidity)",
    )  # fmt: skip


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    proc = run_ingest(tmp_path, source=str(tmp_path / "empty.csv"), target="quality")
    assert_refused(proc, tmp_path, "empty.csv", "the file is empty")


def test_header_only_file(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("a,b,quality\n")
    proc = run_ingest(tmp_path, source=str(tmp_path / "header.csv"), target="quality")
    assert_refused(proc, tmp_path, "header.csv", "no rows to learn from")


def test_wrong_separator_names_the_right_one(tmp_path: Path) -> None:
    proc = run_ingest(tmp_path, source=str(WINE_RED), read_options={}, target="quality")
    assert_refused(proc, tmp_path, "winequality-red.csv", "separated by ';'", "ingest.read_options.sep")


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet at all")
    proc = run_ingest(tmp_path, source=str(tmp_path / "broken.parquet"), target="quality")
    assert_refused(proc, tmp_path, "broken.parquet", "cannot be read as PARQUET")


def test_missing_file(tmp_path: Path) -> None:
    proc = run_ingest(tmp_path, source=str(tmp_path / "nope.csv"), target="quality")
    assert_refused(proc, tmp_path, "nope.csv", "file not found", "ingest.source")


def test_target_with_one_class(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "a", "a"]}).to_csv(tmp_path / "one.csv", index=False)
    proc = run_ingest(tmp_path, source=str(tmp_path / "one.csv"), target="label")
    assert_refused(
        proc, tmp_path, "one.csv", "target column 'label' has a single class ('a')", "ingest.task: regression"
    )


def test_all_null_feature(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "empty": [None] * 4, "label": ["a", "b", "a", "b"]})
    frame.to_csv(tmp_path / "null.csv", index=False)
    proc = run_ingest(tmp_path, source=str(tmp_path / "null.csv"), target="label")
    assert_refused(proc, tmp_path, "null.csv", "column 'empty' is empty", "ingest.drop_columns")


def test_unlabeled_rows_go_on_to_validate_and_a_target_without_values_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "label": ["a", None, "a", "b"]})
    frame.to_csv(tmp_path / "nan.csv", index=False)
    proc = run_ingest(tmp_path, source=str(tmp_path / "nan.csv"), target="label")
    assert proc.returncode == 0, proc.stderr
    assert "1 of 4 rows have no label (unlabeled); validate quarantines them" in proc.stderr
    assert pd.read_parquet(tmp_path / "out.parquet")["label"].isna().sum() == 1
    frame.assign(label=None).to_csv(tmp_path / "none.csv", index=False)
    proc = run_ingest(tmp_path, source=str(tmp_path / "none.csv"), target="label")
    assert_refused(proc, tmp_path, "none.csv", "target column 'label' has no values (all 4 rows are null)")


def test_unknown_params_key(tmp_path: Path) -> None:
    proc = run_ingest(tmp_path, sorce="data.csv")
    assert_refused(proc, tmp_path, "ingest.sorce: unknown key", "did you mean 'ingest.source'")
