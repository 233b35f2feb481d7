"""lifecycle.data.readers: batches of files, and Parquet inputs that are missing or corrupt."""

from __future__ import annotations

import pytest

from lifecycle.data.readers import batch_files, read_parquet
from lifecycle.errors import DataError


def test_no_batch_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / ".gitkeep").touch()
    with pytest.raises(DataError, match=r"no \.csv or \.parquet file to score"):
        batch_files(tmp_path / "incoming")
    with pytest.raises(DataError, match=r"batch not found"):
        batch_files(tmp_path / "nowhere")


def test_a_batch_is_the_files_of_several_folders_in_the_order_given(tmp_path) -> None:
    mine, demo = tmp_path / "incoming", tmp_path / "demo"
    mine.mkdir()
    demo.mkdir()
    (mine / ".gitkeep").touch()
    (demo / "telemetry_v2.parquet").write_bytes(b"x")
    assert batch_files([mine, demo]) == [demo / "telemetry_v2.parquet"]  # an empty folder of yours adds nothing
    for name in ("b.csv", "a.parquet", "notes.txt"):
        (mine / name).write_bytes(b"x")
    assert batch_files([mine, demo]) == [mine / "a.parquet", mine / "b.csv", demo / "telemetry_v2.parquet"]
    (demo / "telemetry_v2.parquet").unlink()
    (mine / "a.parquet").unlink()
    (mine / "b.csv").unlink()
    with pytest.raises(DataError, match=r"incoming or .*demo: no \.csv or \.parquet file to score; .*`dvc add "):
        batch_files([mine, demo])


def test_a_missing_or_corrupt_parquet_input_names_the_file_and_the_command(tmp_path) -> None:
    with pytest.raises(DataError, match=r"raw\.parquet: raw data not found; run `dvc repro ingest` to build it"):
        read_parquet(tmp_path / "raw.parquet", "raw data", producer="dvc repro ingest")
    (tmp_path / "raw.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(
        DataError, match=r"raw\.parquet: cannot be read as Parquet .* empty or corrupt, rerun `dvc repro`"
    ):
        read_parquet(tmp_path / "raw.parquet")
