"""lifecycle.io: Parquet written with page checksums and verified on every read (bit flips are errors, not wrong
values), and writes that run out of room (a file size limit, RLIMIT_FSIZE, in a real child process) end in one
line naming the file and the cause, with the previous output kept."""

from __future__ import annotations

import io
import random
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lifecycle.data.readers import iter_chunks, read_parquet, read_table
from lifecycle.errors import DataError
from lifecycle.io import PARQUET_READ_OPTIONS, to_parquet, write_table
from tests.conftest import ROOT

LIMIT = 256 * 1024  # RLIMIT_FSIZE of the child processes below: larger than the code writes, smaller than the data


def frame(rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "cell_temp_max_c": rng.normal(35, 8, rows).round(2),
            "charge_cycles": rng.integers(0, 3000, rows),
            "charge_mode": rng.choice(["slow", "normal", "fast"], rows),
        }
    )


def flips_in_data_pages(path: Path, n: int, seed: int = 0) -> list[int]:
    """``n`` byte offsets inside the column chunks' pages (past the first page header), from the file's footer."""
    meta = pq.ParquetFile(path).metadata
    rng = random.Random(seed)
    offsets = []
    for i in range(n):
        col = meta.row_group(0).column(i % meta.num_columns)
        start = col.dictionary_page_offset or col.data_page_offset
        offsets.append(start + rng.randrange(64, col.total_compressed_size))
    return offsets


def flipped(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def test_every_parquet_output_carries_page_checksums(tmp_path: Path) -> None:
    write_table(frame(), tmp_path / "t.parquet")
    to_parquet(frame(), tmp_path / "u.parquet")
    for name in ("t.parquet", "u.parquet"):
        pd.testing.assert_frame_equal(read_parquet(tmp_path / name), frame())
        # a flip in any page is caught: proof the pages carry a CRC (without one pyarrow would not notice)
        data = (tmp_path / name).read_bytes()
        offset = flips_in_data_pages(tmp_path / name, 1)[0]
        with pytest.raises(OSError, match="CRC checksum verification failed"):
            pd.read_parquet(io.BytesIO(flipped(data, offset, 0)), **PARQUET_READ_OPTIONS)


def test_bit_flips_in_data_pages_are_errors_naming_the_file_never_wrong_values(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    write_table(frame(), good)
    data = good.read_bytes()
    bad = tmp_path / "data/raw/dataset.parquet"
    bad.parent.mkdir(parents=True)
    rng = random.Random(1)
    for offset in flips_in_data_pages(good, 40, seed=2):
        bad.write_bytes(flipped(data, offset, rng.randrange(8)))
        with pytest.raises(DataError, match=r"dataset\.parquet: a data page fails its CRC checksum .*dvc checkout"):
            read_parquet(bad, "raw data", producer="dvc repro ingest")
    # the same reader paths: a whole user file, and chunk by chunk (score)
    with pytest.raises(DataError, match=r"dataset\.parquet: a data page fails its CRC checksum"):
        read_table(bad)
    with pytest.raises(DataError, match=r"dataset\.parquet: a data page fails its CRC checksum"):
        list(iter_chunks(bad, 1000))


def test_without_checksums_flips_decode_silently_into_wrong_values(tmp_path: Path) -> None:
    """Why the checksums: the same flips in a file written without them mostly decode, into other values."""
    plain = tmp_path / "plain.parquet"
    frame().to_parquet(plain, index=False, compression="zstd")
    data = plain.read_bytes()
    silent = 0
    for offset in flips_in_data_pages(plain, 40, seed=2):
        try:
            back = pd.read_parquet(io.BytesIO(flipped(data, offset, 3)), **PARQUET_READ_OPTIONS)
        except (OSError, ValueError):
            continue
        silent += not back.equals(frame())
    assert silent >= 10
    # a file without checksums (a user's) is still read: there is nothing to verify
    pd.testing.assert_frame_equal(read_table(plain), frame())


# ------------------------------------------------------------------------------------------------ out of room
def limited(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python args`` in ``cwd`` with a file size limit of :data:`LIMIT` bytes (writes past it fail, EFBIG)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False, preexec_fn=limit
    )


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], path: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Error writing bytes to file" not in proc.stderr, proc.stderr
    assert f"{path}: cannot be written: File too large (errno EFBIG): the file size limit of this process is " in (
        proc.stderr
    )
    assert "ulimit -f unlimited" in proc.stderr and "the previous output, if any, is kept" in proc.stderr


def test_a_stage_out_of_room_names_the_file_and_keeps_the_previous_output(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    out = tmp_path / "data/raw/dataset.parquet"
    out.parent.mkdir(parents=True)
    out.write_bytes(b"the last good output")
    proc = limited(["-m", "lifecycle.stages.ingest", "--out", str(out), "--schema", "schema.json"], tmp_path)
    assert_one_clear_line(proc, str(out))
    assert out.read_bytes() == b"the last good output"
    assert sorted(p.name for p in out.parent.iterdir()) == ["dataset.parquet"]  # no temporary file left


WRITERS = {
    "json": "from lifecycle.io import write_json; write_json(OUT, list(range(100_000)))",
    "joblib": "import numpy as np; from lifecycle.artifact import save_model; "
    "save_model(np.random.default_rng(0).normal(size=100_000), OUT)",
    "parquet-writer": "import pyarrow as pa, pyarrow.parquet as pq; from lifecycle.io import atomic_path, "
    "PARQUET_WRITE_OPTIONS\nwith atomic_path(OUT) as tmp, pq.ParquetWriter(tmp, pa.schema([('x', pa.float64())]), "
    "**PARQUET_WRITE_OPTIONS) as w:\n    w.write_table(pa.table({'x': __import__('numpy').arange(1e5)}))",
    "unmanaged": "open(OUT, 'wb').write(bytes(300_000))",  # a write outside lifecycle.io: lifecycle.cli names it too
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_writer_out_of_room_ends_in_one_line(tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"out.{kind}"
    program = (
        "from lifecycle import cli\nOUT = " + repr(str(out)) + "\ndef main(argv):\n"
        + "".join(f"    {line}\n" for line in WRITERS[kind].splitlines())
        + "cli.run(main, name='writer')\n"
    )  # fmt: skip
    proc = limited(["-c", program], tmp_path)
    assert_one_clear_line(proc, str(out) if kind != "unmanaged" else "a file")
    if kind != "unmanaged":
        assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing half-written, no temporary file


def test_other_os_errors_pass_unchanged(tmp_path: Path) -> None:
    from lifecycle.io import atomic_path

    with pytest.raises(PermissionError), atomic_path(tmp_path / "x.json"):
        raise PermissionError(13, "Permission denied", "elsewhere")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_names_the_file_the_filesystem_and_its_free_space(tmp_path: Path) -> None:
    """A real ENOSPC: a 200 KiB tmpfs mounted in a user + mount namespace (`unshare -rm`, no root needed)."""
    probe = (
        subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (unshare -rm: user namespaces are not available)")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "data/raw").mkdir(parents=True)
    stage = f"{sys.executable} -m lifecycle.stages.ingest --out data/raw/dataset.parquet --schema schema.json"
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=200k tmpfs data/raw && {stage}"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Error writing bytes to file" not in proc.stderr, proc.stderr
    assert (
        "data/raw/dataset.parquet: cannot be written: No space left on device (errno ENOSPC) on the filesystem of "
        "data/raw (" in proc.stderr
    )
    assert "free of 200 KiB); free space on that filesystem (`df -h data/raw`" in proc.stderr
