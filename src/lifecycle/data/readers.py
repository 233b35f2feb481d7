"""Reading tables: CSV/Parquet files, local or ``s3://``, whole or in chunks, with errors a user can act on.

Every error names the file and says what to change: a missing or empty file, a file that does not parse, a CSV
that parsed into one column because its separator is not the one configured (the message names the right one).
Writing lives in :mod:`lifecycle.io` (atomic writes).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle.errors import DataError
from lifecycle.io import TABLE_SUFFIXES


def is_remote(source: str) -> bool:
    """True for fsspec URLs such as ``s3://bucket/key.csv``."""
    return "://" in source and not source.startswith("file://")


def read_table(source: str | Path, read_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file (local path or ``s3://`` URI) with ``read_options`` for pandas.

    Raises :class:`DataError` naming the file and what to change: an unsupported suffix, a missing file, an empty
    file, a file that does not parse, or a CSV that parsed into one column because its separator is not the one
    configured.
    """
    options = dict(read_options or {})
    src = str(source)
    suffix = Path(src.split("?")[0]).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"{src}: unsupported file type {suffix or '(none)'!r}; "
            f"ingest reads {', '.join(TABLE_SUFFIXES)} files (local paths or s3:// URIs)"
        )
    if not is_remote(src):
        path = Path(src)
        if not path.exists():
            raise DataError(f"{src}: file not found; fix ingest.source in params.yaml or add the file")
        if path.stat().st_size == 0:
            raise DataError(f"{src}: the file is empty (0 bytes); point ingest.source at a file with data")
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(src, **options)
        else:
            df = pd.read_csv(src, **options)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{src}: the file has no header and no rows; point ingest.source at a file with data") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError, TypeError) as exc:
        raise DataError(
            f"{src}: cannot be read as {suffix[1:].upper()} ({type(exc).__name__}: {exc}); "
            "check the file and ingest.read_options (sep, encoding, na_values)"
        ) from exc
    if suffix == ".csv" and df.shape[1] == 1:
        _explain_single_column(src, df, options)
    return df


def _explain_single_column(src: str, df: pd.DataFrame, options: Mapping[str, Any]) -> None:
    """A CSV that parses into one column almost always has another separator: say which."""
    header = str(df.columns[0])
    try:
        guessed = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        return
    configured = options.get("sep", options.get("delimiter", ","))
    if guessed != configured:
        raise DataError(
            f"{src}: parsed into a single column {header[:60]!r} with separator {configured!r}, "
            f"but the header looks separated by {guessed!r}; set ingest.read_options.sep: {guessed!r} "
            "in params.yaml"
        )


def read_parquet(path: str | Path, what: str = "input", *, producer: str = "dvc repro") -> pd.DataFrame:
    """Read a Parquet file written by an earlier stage.

    Raises :class:`DataError` naming the file, ``what`` it is and the command that makes it (``producer``) when it
    is missing, empty or corrupt.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: {what} not found; run `{producer}` to build it")
    try:
        return pd.read_parquet(p)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(
            f"{p}: cannot be read as Parquet ({type(exc).__name__}: {exc}); the file is empty or corrupt, "
            f"rerun `{producer}`"
        ) from exc


def batch_files(incoming: str | Path) -> list[Path]:
    """The files of a batch: ``incoming`` itself if it is a file, else the ``.csv``/``.parquet`` files under it,
    subdirectories included (a directory of Parquet partitions), in path order; names starting with ``.`` or ``_``
    (temporary files, ``_SUCCESS``, ``_metadata``) are skipped.

    Raises :class:`DataError` when ``incoming`` does not exist, holds no such file, or is a file of another type.
    """
    path = Path(incoming)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        found = (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
        visible = (p for p in found if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
        files = sorted(visible, key=lambda p: p.relative_to(path).as_posix())
    else:
        raise DataError(f"{path}: batch not found; put a CSV or Parquet file there (or set paths.incoming)")
    if not files:
        raise DataError(
            f"{path}: no .csv or .parquet file to score; drop a batch there, e.g. "
            f"`python -m lifecycle.data.telemetry --version v2 --rows 5000 --out {path}/batch.parquet`"
        )
    bad = [p for p in files if p.suffix.lower() not in TABLE_SUFFIXES]
    if bad:
        raise DataError(f"{bad[0]}: unsupported file type; score reads {', '.join(TABLE_SUFFIXES)} files")
    return files


def batch_sources(incoming: str | Path, read_options: Mapping[str, Any] | None = None) -> list[str]:
    """The files of a batch as paths or URLs: :func:`lifecycle.data.readers.batch_files` for a local path; for a URL
    (``s3://bucket/prefix``) the object itself, or every ``.csv``/``.parquet`` object under the prefix (Parquet
    partition directories included; names starting with ``.`` or ``_`` skipped), in path order.

    Raises :class:`DataError` when the URL names nothing or no such file, or cannot be listed.
    """
    import fsspec

    source = str(incoming)
    if not is_remote(source):
        return [str(p) for p in batch_files(source)]
    try:
        fs, root = fsspec.core.url_to_fs(source, **dict((read_options or {}).get("storage_options") or {}))
        if fs.isfile(root):
            found = [root]
        elif fs.isdir(root):
            found = [p for p in fs.find(root) if _is_table(p[len(root.rstrip("/")) :])]
        else:
            raise DataError(f"{source}: batch not found; check the URL (bucket and prefix) and the credentials")
    except (OSError, ValueError) as exc:
        raise DataError(f"{source}: cannot list the batch ({type(exc).__name__}: {exc}); check the URL, "
                        "the credentials and ingest.read_options.storage_options") from exc  # fmt: skip
    files = sorted(p for p in found if p.lower().endswith(TABLE_SUFFIXES))
    if not files:
        raise DataError(f"{source}: no .csv or .parquet file to score under this prefix")
    return [fs.unstrip_protocol(p) for p in files]


def _is_table(relative: str) -> bool:
    parts = [p for p in relative.split("/") if p]
    return bool(parts) and not any(p.startswith((".", "_")) for p in parts)


def iter_chunks(
    path: str | Path, chunk_rows: int, read_options: Mapping[str, Any] | None = None
) -> Iterator[pd.DataFrame]:
    """Yield ``path`` (a local path or an fsspec URL such as ``s3://bucket/key.parquet``) as DataFrames of at most
    ``chunk_rows`` rows (Parquet by record batches, CSV with pandas' ``chunksize`` and ``read_options``), so memory
    is bounded by the chunk, not the file. ``read_options["storage_options"]`` goes to fsspec, the rest to pandas.

    Raises :class:`DataError` naming the file when it is empty (0 bytes), has no header, or cannot be parsed.
    """
    import fsspec

    options = {k: v for k, v in (read_options or {}).items() if k not in ("chunksize", "iterator", "storage_options")}
    src = str(path)
    if is_remote(src):
        fs, target = fsspec.core.url_to_fs(src, **dict((read_options or {}).get("storage_options") or {}))
    else:
        fs, target = fsspec.filesystem("file"), src
    suffix = Path(src.split("?")[0]).suffix.lower()
    try:
        if fs.size(target) == 0:
            raise DataError(f"{path}: the file is empty (0 bytes); remove it from the batch or replace it")
        with fs.open(target, "rb") as fh:
            if suffix == ".parquet":
                reader = pq.ParquetFile(fh)
                for batch in reader.iter_batches(batch_size=chunk_rows):
                    yield batch.to_pandas()
            else:
                with pd.read_csv(fh, chunksize=chunk_rows, **options) as reader:
                    yield from reader
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: no header and no rows; remove it from the batch or replace it") from exc
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot be read as {suffix[1:].upper()} ({type(exc).__name__}: {exc}); "
            "fix or remove the file (CSV options come from ingest.read_options)"
        ) from exc


def source_name(source: str | Path) -> str:
    """The file name of a local path or URL: ``s3://lake/2026/06.parquet`` -> ``06.parquet``."""
    return str(source).split("?")[0].rstrip("/").rsplit("/", 1)[-1]
