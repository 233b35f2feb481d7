"""The built-in demo batch (lifecycle.data.demo and the simulate stage): drawn from params, the same bytes every time,
no target in the batch, labels for a share of its rows, and none at all for your own data (issue 13 item 10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.conftest import small_params

from lifecycle.data import telemetry
from lifecycle.data.demo import demo_batch
from lifecycle.errors import ParamsError

ROOT = Path(__file__).resolve().parents[2]


def cfg(**changes):
    params = small_params()
    return params.simulate.model_copy(update=changes), params.ingest


def test_the_batch_has_no_target_and_labels_for_a_share_of_its_rows() -> None:
    simulate, ingest = cfg(rows=800, feedback_fraction=0.25)
    demo = demo_batch(simulate, ingest)
    assert demo.batch is not None and demo.labels is not None
    assert len(demo.batch) == 800
    assert telemetry.TARGET not in demo.batch.columns
    assert list(demo.labels.columns) == ["reading_id", telemetry.TARGET]
    assert demo.labels["reading_id"].is_unique
    assert set(demo.labels["reading_id"]) <= set(demo.batch["reading_id"])
    assert len(demo.labels) == round(0.25 * demo.batch["reading_id"].nunique())
    assert demo.batch["reading_id"].str.startswith(f"{simulate.data_version}-").all()
    assert demo.manifest == {"data_version": "v2", "rows": 800, "labelled_rows": len(demo.labels), "seed": 7}
    assert demo.name == "telemetry_v2"
    # the labels are the simulator's own for those rows
    truth = telemetry.generate(800, "v2", 7, ingest.missing_rate, ingest.glitch_rate, ingest.duplicate_rate)
    joined = demo.labels.merge(truth.drop_duplicates("reading_id"), on="reading_id", suffixes=("", "_truth"))
    assert (joined[telemetry.TARGET] == joined[f"{telemetry.TARGET}_truth"]).all()


def test_same_params_same_batch_other_seed_other_batch() -> None:
    one, two = demo_batch(*cfg(rows=300)), demo_batch(*cfg(rows=300))
    pd.testing.assert_frame_equal(one.batch, two.batch)
    pd.testing.assert_frame_equal(one.labels, two.labels)
    other = demo_batch(*cfg(rows=300, seed=8))
    assert not other.batch.equals(one.batch)
    v1 = demo_batch(*cfg(rows=300, data_version="v1"))
    assert v1.batch["reading_id"].str.startswith("v1-").all()


def test_no_demo_batch_for_your_own_data_or_zero_rows() -> None:
    simulate, ingest = cfg()
    mine = demo_batch(simulate, ingest.model_copy(update={"source": "data/external/winequality-red.csv"}))
    assert mine.batch is None and mine.labels is None
    assert "not the built-in telemetry" in mine.manifest["reason"]
    none = demo_batch(*cfg(rows=0))
    assert none.batch is None and none.manifest["reason"] == "simulate.rows is 0"
    assert demo_batch(*cfg(rows=50, feedback_fraction=0.0)).labels.empty


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("data_version", "v3", r"simulate\.data_version: 'v3' is not a simulator fleet version; use one of: v1, v2"),
        ("rows", -1, r"simulate\.rows: -1 is out of range; use a value >= 0 \(0 = no demo batch\)"),
        ("seed", 2**32, r"simulate\.seed: 4294967296 is out of range"),
        ("feedback_fraction", 1.5, r"simulate\.feedback_fraction: 1\.5 is out of range; use a value in \[0, 1\]"),
    ],
)
def test_simulate_params_are_checked_at_load(key: str, value: object, message: str) -> None:
    from lifecycle.config import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["simulate"][key] = value
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)


def run_stage(tmp_path: Path, **changes: object) -> subprocess.CompletedProcess[str]:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw[section][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "lifecycle.stages.simulate", "--out", "demo"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)


def test_the_stage_writes_the_batch_its_labels_and_a_manifest_byte_for_byte(tmp_path: Path) -> None:
    assert run_stage(tmp_path, simulate__rows=500).returncode == 0
    files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "demo").rglob("*") if p.is_file())
    assert files == [
        "demo/feedback/README.md", "demo/feedback/telemetry_v2.parquet", "demo/incoming/README.md",
        "demo/incoming/telemetry_v2.parquet", "demo/manifest.json",
    ]  # fmt: skip
    first = {name: (tmp_path / name).read_bytes() for name in files}
    (tmp_path / "demo" / "incoming" / "stale.csv").write_text("old")  # the folder is rewritten whole
    assert run_stage(tmp_path, simulate__rows=500).returncode == 0
    assert {name: (tmp_path / name).read_bytes() for name in files} == first
    assert not (tmp_path / "demo" / "incoming" / "stale.csv").exists()
    assert pd.read_parquet(tmp_path / files[3]).shape[0] == 500


def test_the_stage_writes_empty_folders_and_says_why_for_your_own_data(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, ingest__source="data/external/winequality-red.csv")
    assert proc.returncode == 0, proc.stderr
    assert "no demo batch: ingest.source is 'data/external/winequality-red.csv'" in proc.stderr
    for folder in ("incoming", "feedback"):  # never empty (DVC does not restore empty folders): a README only
        assert [p.name for p in (tmp_path / "demo" / folder).iterdir()] == ["README.md"]
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert manifest["rows"] == 0 and "reason" in manifest
