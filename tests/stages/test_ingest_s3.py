"""ingest.source as an s3:// URI, read from a real S3 endpoint on loopback (moto's server mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from tests.helpers import CREDENTIALS, moto_s3

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with moto_s3() as server:
        yield server.endpoint


def test_ingest_reads_csv_from_s3(s3_endpoint: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="lake")
    s3.upload_file(str(ROOT / "data/external/winequality-white.csv"), "lake", "wine/white.csv")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["ingest"].update(
        source="s3://lake/wine/white.csv",
        target="quality",
        read_options={"sep": ";", "storage_options": {"client_kwargs": {"endpoint_url": s3_endpoint}}},
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.ingest", "--out", "raw.parquet", "--schema", "schema.json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((tmp_path / "schema.json").read_text())
    assert schema["classes"] == [3, 4, 5, 6, 7, 8, 9]
    assert "read 4898 rows x 12 columns from s3://lake/wine/white.csv" in proc.stderr


def test_missing_s3_object_is_a_clear_error(s3_endpoint: str, tmp_path: Path) -> None:
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="lake")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["ingest"].update(
        source="s3://lake/nothing.csv",
        target="quality",
        read_options={"storage_options": {"client_kwargs": {"endpoint_url": s3_endpoint}}},
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.ingest", "--out", "raw.parquet", "--schema", "schema.json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "s3://lake/nothing.csv: cannot be read as CSV" in proc.stderr
    assert not (tmp_path / "raw.parquet").exists()
