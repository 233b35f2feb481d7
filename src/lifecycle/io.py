"""File I/O for every stage: atomic writes, deterministic JSON, file hashes (table readers: lifecycle.data.readers).

Every writer goes through :func:`atomic_path`: the bytes land in a temporary file next to the target, are
fsynced, then renamed over it. A stage killed half-way leaves the previous output (or none), never half a
file. A write that fails for lack of room (a full disk or quota, a file over the size limit) raises
:class:`~lifecycle.errors.StorageError` naming the file and the cause (:func:`storage_error`), and the previous
output stays in place.

Parquet is written with a CRC32 checksum in every page header (:data:`PARQUET_WRITE_OPTIONS`) and every reader
verifies them (:data:`PARQUET_READ_OPTIONS`), so a bit flip on disk or in a copy is an error naming the file
instead of values that decode silently wrong (files without checksums, e.g. users' own, are read unverified).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lifecycle.errors import DataError, StorageError

if TYPE_CHECKING:  # pandas is imported by the callers that pass frames; lifecycle.cli imports this module cheaply
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet")
# pyarrow.parquet.write_table / ParquetWriter / DataFrame.to_parquet keywords of every Parquet output
PARQUET_WRITE_OPTIONS: Mapping[str, Any] = MappingProxyType({"compression": "zstd", "write_page_checksum": True})
# pyarrow.parquet.read_table / ParquetFile / pandas.read_parquet keywords of every Parquet reader
PARQUET_READ_OPTIONS: Mapping[str, Any] = MappingProxyType({"page_checksum_verification": True})
_UMASK = os.umask(0o022)
os.umask(_UMASK)
# errno values that mean "no room for these bytes"; the hint says what to do about each
_NO_ROOM = {
    errno.ENOSPC: "free space on that filesystem (`df -h {dir}`; `dvc gc` drops cache entries no commit uses) "
    "and rerun",
    errno.EDQUOT: "free space within your quota there (`quota -s`) and rerun",
    errno.EFBIG: "raise the limit (`ulimit -f unlimited` in the shell that runs the stage) and rerun",
}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def storage_error(exc: BaseException, path: str | Path | None = None) -> StorageError | None:
    """A :class:`StorageError` describing ``exc`` when it is an ``OSError`` for lack of room (ENOSPC: no space left
    on device, EDQUOT: quota exceeded, EFBIG: file larger than the size limit, RLIMIT_FSIZE), else None.

    The message names the file (``path``, else the exception's own file name), the cause with its errno, the free
    space of the filesystem (or the size limit) and the fix. pyarrow's "Error writing bytes to file" carries the
    errno too, so Parquet writes are recognised as well.
    """
    if not isinstance(exc, OSError) or exc.errno not in _NO_ROOM:
        return None
    where = Path(path) if path is not None else Path(exc.filename) if exc.filename else None
    folder = where.parent if where is not None else Path.cwd()
    cause = f"{os.strerror(exc.errno)} (errno {errno.errorcode[exc.errno]})"
    if exc.errno == errno.EFBIG:
        import resource  # POSIX only, like EFBIG from a size limit

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        cause += f": the file size limit of this process is {_size(limit)}" if limit != resource.RLIM_INFINITY else ""
    else:
        with contextlib.suppress(OSError):
            usage = shutil.disk_usage(folder)
            cause += f" on the filesystem of {folder} ({_size(usage.free)} free of {_size(usage.total)})"
    name = str(where) if where is not None else "a file"
    return StorageError(
        f"{name}: cannot be written: {cause}; {_NO_ROOM[exc.errno].format(dir=folder)}. "
        "Nothing was replaced: the previous output, if any, is kept"
    )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it over ``path``.

    Raises :class:`StorageError` (naming ``path``, the cause and the fix) when the body or the fsync fails for lack
    of room; the temporary file is removed and ``path`` keeps its previous content. Other errors pass unchanged.
    """
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
            os.fsync(fh.fileno())  # a full disk may only show here (delayed allocation)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, target)
        with contextlib.suppress(OSError):  # persist the rename itself
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        no_room = storage_error(exc, target)
        if no_room is None:
            raise
        raise no_room from exc
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


def to_parquet(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` (no index) to ``path`` as Parquet with :data:`PARQUET_WRITE_OPTIONS` (zstd, page checksums);
    not atomic by itself: for a path from :func:`atomic_path` (or use :func:`write_table`)."""
    df.to_parquet(path, index=False, engine="pyarrow", **PARQUET_WRITE_OPTIONS)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as CSV or Parquet (by suffix, Parquet with page checksums), atomically and deterministically."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{target}: unsupported table format {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    with atomic_path(target) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            to_parquet(df, tmp)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
