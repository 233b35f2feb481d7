"""File I/O for every stage: atomic writes, and CSV/Parquet/S3 readers with errors a user can act on.

Every writer goes through :func:`atomic_path`: the bytes land in a temporary file next to the target, are
fsynced, then renamed over it. A stage killed half-way leaves the previous output (or none), never half a
file.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lifecycle.errors import DataError

TABLE_SUFFIXES = (".csv", ".parquet")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a writer killed with -9
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, target)
        with contextlib.suppress(OSError):  # persist the rename itself
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Serialize deterministically: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as deterministic JSON, atomically."""
    write_text(path, dumps_json(obj))


def read_json(path: str | Path) -> Any:
    """Read a JSON file, naming the file in any error."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found; run the stage that writes it (`dvc repro`) first")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: not valid JSON ({exc}); delete it and run `dvc repro`") from exc


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as CSV or Parquet (by suffix), atomically and deterministically."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{target}: unsupported table format {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    with atomic_path(target) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def is_remote(source: str) -> bool:
    """True for fsspec URLs such as ``s3://bucket/key.csv``."""
    return "://" in source and not source.startswith("file://")


def read_table(source: str | Path, read_options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file (local path or ``s3://`` URI) with ``read_options`` for pandas.

    Errors name the file and say what to change: a missing file, an empty file, a file that does not
    parse, or a CSV that parsed into one column because its separator is not the one configured.
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


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_parquet(path: str | Path, what: str = "input") -> pd.DataFrame:
    """Read a Parquet file written by an earlier stage, naming it if it is missing."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: {what} not found; run `dvc repro` to build it")
    return pd.read_parquet(p)
