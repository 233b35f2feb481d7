"""A batch as partitions: its files (local or ``s3://``), cut into pieces that one task reads on its own.

The Dask engine (lifecycle.batch_dask, lifecycle.monitoring.dask_analysis) reads a batch as :class:`Piece` s, in
batch order (files in path order, then rows in file order):

- a Parquet file: runs of whole row groups of about ``rows`` rows (a row group is never split, so a partition holds
  at least one; files written with row groups of ``score.chunk_rows`` rows give partitions equal to the pandas
  engine's chunks); their row counts come from the footer;
- a CSV file: byte ranges of about ``rows`` rows (the size per row estimated from the file's first 64 KiB), cut at
  line ends (``fsspec.utils.read_block``) and parsed with the header line and ``ingest.read_options``; a CSV row
  must therefore fit on one line (no quoted line breaks). Their row counts are known only once parsed.

Paths are local paths or fsspec URLs; ``read_options["storage_options"]`` (ingest.read_options) goes to fsspec, the
other options to pandas. Every error names the file and the fix; Parquet page checksums are verified
(``lifecycle.io.PARQUET_READ_OPTIONS``) and a CSV in another encoding gets the readers' encoding message.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle.data.readers import checksum_message, encoding_message, is_checksum_error, is_remote
from lifecycle.errors import DataError
from lifecycle.io import PARQUET_READ_OPTIONS

SAMPLE_BYTES = 64 * 1024  # bytes read from a CSV file's start to estimate its bytes per row


@dataclasses.dataclass(frozen=True)
class Piece:
    """One partition of a batch: which file, which part of it, and where it stands in the batch."""

    source: str  # local path or URL
    kind: Literal["parquet", "csv"]
    first: bool  # the file's first piece: its columns are checked (and Great Expectations runs on it)
    row_groups: tuple[int, ...] = ()  # parquet: the row groups, consecutive
    start: int = 0  # csv: byte range [start, start + length), extended to line ends
    length: int = 0
    header: bytes = b""  # csv: the header line, put in front of every piece but the first
    rows: int | None = None  # known for parquet (footer); None for csv until read
    index: int = 0  # position in the batch (set by :func:`number`)

    @property
    def name(self) -> str:
        """The file's name (metrics/score.json lists them)."""
        return self.source.rstrip("/").rsplit("/", 1)[-1]


def storage_options(read_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """fsspec's options in ``ingest.read_options`` (``storage_options``: endpoint, credentials)."""
    return dict((read_options or {}).get("storage_options") or {})


def pandas_options(read_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``ingest.read_options`` for ``pandas.read_csv``: without fsspec's and the chunked reader's keys."""
    drop = ("storage_options", "chunksize", "iterator")
    return {k: v for k, v in (read_options or {}).items() if k not in drop}


def _fs(source: str, read_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    if not is_remote(source):
        return fsspec.filesystem("file"), str(Path(source).resolve())
    return fsspec.core.url_to_fs(source, **storage_options(read_options))


def plan_file(source: str, rows: int, read_options: Mapping[str, Any] | None = None) -> list[Piece]:
    """The pieces of one file, of about ``rows`` rows each (see the module's docstring); none for a Parquet file
    without rows. Runs wherever the file can be read (on a worker, for many files at once).

    Raises :class:`DataError` naming the file when it is missing, empty (0 bytes) or not a readable Parquet file.
    """
    fs, path = _fs(source, read_options)
    try:
        size = fs.size(path)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"{source}: not found ({type(exc).__name__}); remove it from the batch or replace it") from exc
    if size == 0:
        raise DataError(f"{source}: the file is empty (0 bytes); remove it from the batch or replace it")
    if source.lower().endswith(".parquet"):
        try:
            with fs.open(path, "rb") as fh:
                meta = pq.ParquetFile(fh, **PARQUET_READ_OPTIONS).metadata
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{source}: cannot be read as PARQUET ({type(exc).__name__}: {exc}); fix or remove the "
                            "file") from exc  # fmt: skip
        pieces: list[Piece] = []
        group: list[int] = []
        count = 0
        for i in range(meta.num_row_groups):
            group.append(i)
            count += meta.row_group(i).num_rows
            if count >= rows or i == meta.num_row_groups - 1:
                if count:
                    pieces.append(Piece(source, "parquet", not pieces, row_groups=tuple(group), rows=count))
                group, count = [], 0
        return pieces
    with fs.open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    header, _, body = sample.partition(b"\n")
    lines = max(body.count(b"\n"), 1)
    per_row = max(len(body) / lines, 1.0) if body else max(len(header), 1)
    block = max(int(rows * per_row), SAMPLE_BYTES)
    starts = range(0, size, block)
    return [
        Piece(source, "csv", i == 0, start=s, length=min(block, size - s), header=header + b"\n")
        for i, s in enumerate(starts)
    ]


def number(pieces: Sequence[Piece]) -> list[Piece]:
    """The pieces with ``index`` = their position in the batch."""
    return [dataclasses.replace(p, index=i) for i, p in enumerate(pieces)]


def read_piece(piece: Piece, read_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The rows of ``piece`` as pandas reads them (Parquet row groups, or the CSV lines with ``read_options``).

    Raises :class:`DataError` naming the file when it cannot be read or parsed.
    """
    from fsspec.utils import read_block

    fs, path = _fs(piece.source, read_options)
    try:
        with fs.open(path, "rb") as fh:
            if piece.kind == "parquet":
                return pq.ParquetFile(fh, **PARQUET_READ_OPTIONS).read_row_groups(list(piece.row_groups)).to_pandas()
            data = read_block(fh, piece.start, piece.length, delimiter=b"\n")
        if piece.start > 0:
            data = piece.header + data
        return pd.read_csv(io.BytesIO(data), **pandas_options(read_options))
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{piece.source}: no header and no rows; remove it from the batch or replace it") from exc
    except UnicodeDecodeError as exc:
        raise DataError(encoding_message(piece.source, exc, pandas_options(read_options))) from exc
    except (pa.ArrowException, pd.errors.ParserError, OSError, ValueError) as exc:
        if is_checksum_error(exc):
            raise DataError(checksum_message(piece.source, exc, "replace it with an intact copy")) from exc
        raise DataError(
            f"{piece.source}: cannot be read as {piece.kind.upper()} ({type(exc).__name__}: {exc}); fix or remove the "
            "file (CSV options come from ingest.read_options)"
        ) from exc
