"""Reading tables: CSV/Parquet files, local or ``s3://``, whole or in chunks, with errors a user can act on.

Every error names the file and says what to change: a missing or empty file, a file that does not parse, a CSV
that parsed into one column because its separator is not the one configured (the message names the right one), a
file in another encoding than the one configured (the message names the line, the column and the encoding to set),
a Parquet page whose CRC checksum does not match its bytes. :func:`check_text_columns` finds text columns that are
numbers or dates pandas did not parse: a decimal comma, thousands separators, a missing-value marker such as ``?``,
dates not written in ISO 8601; it names the columns and the ``ingest.read_options`` that parse them. Writing lives in
:mod:`lifecycle.io` (atomic writes, Parquet with page checksums); every Parquet read here verifies them
(``lifecycle.io.PARQUET_READ_OPTIONS``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle.errors import DataError
from lifecycle.io import PARQUET_READ_OPTIONS, TABLE_SUFFIXES


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
            df = pd.read_parquet(src, **{**PARQUET_READ_OPTIONS, **options})
        else:
            df = pd.read_csv(src, **options)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{src}: the file has no header and no rows; point ingest.source at a file with data") from exc
    except UnicodeDecodeError as exc:
        raise DataError(encoding_message(src, exc, options)) from exc
    except (pd.errors.ParserError, OSError, ValueError, TypeError) as exc:
        if is_checksum_error(exc):
            raise DataError(checksum_message(src, exc, "restore the file from where it came")) from exc
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


def is_checksum_error(exc: BaseException) -> bool:
    """True when ``exc`` is pyarrow's error for a Parquet page whose CRC32 does not match its bytes."""
    return isinstance(exc, OSError) and "CRC checksum verification failed" in str(exc)


def checksum_message(path: str | Path, exc: BaseException, fix: str) -> str:
    """The message for a Parquet file with a corrupt page: the file, pyarrow's page detail, the cause and ``fix``."""
    return (
        f"{path}: a data page fails its CRC checksum ({exc}): the file's bytes changed after it was written (disk, "
        f"memory or copy corruption), so its values cannot be trusted; {fix}"
    )


def read_parquet(
    path: str | Path, what: str = "input", *, producer: str = "dvc repro", columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read a Parquet file written by an earlier stage: every column, or only ``columns`` (those of them the file
    has, in the file's order: a stage reads what it needs and checks for what is absent itself).

    Raises :class:`DataError` naming the file, ``what`` it is and the command that makes it (``producer``) when it
    is missing, empty or corrupt (a page failing its CRC checksum included).
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: {what} not found; run `{producer}` to build it")
    try:
        if columns is not None:
            wanted = set(columns)
            columns = [c for c in pq.read_schema(p).names if c in wanted]
        return pd.read_parquet(p, columns=columns, **PARQUET_READ_OPTIONS)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        if is_checksum_error(exc):
            fix = f"remove it, then `dvc checkout {p}` (or `dvc pull {p}`) restores the recorded bytes; or rerun `{producer}`"
            raise DataError(checksum_message(p, exc, fix)) from exc
        raise DataError(
            f"{p}: cannot be read as Parquet ({type(exc).__name__}: {exc}); the file is empty or corrupt, "
            f"rerun `{producer}`"
        ) from exc


def batch_files(incoming: str | Path | Sequence[str | Path]) -> list[Path]:
    """The files of a batch: for each path of ``incoming`` (one or several, in the order given), the path itself if it
    is a file, else its ``.csv``/``.parquet`` files in name order (a folder that holds none adds nothing).

    Raises :class:`DataError` when a path does not exist, when no path holds such a file (naming each and how to add
    a batch), or for a file of another type.
    """
    paths = [Path(incoming)] if isinstance(incoming, str | Path) else [Path(p) for p in incoming]
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
        else:
            raise DataError(f"{path}: batch not found; put a CSV or Parquet file there (or set paths.incoming)")
    if not files:
        where = " or ".join(str(p) for p in paths)
        raise DataError(
            f"{where}: no .csv or .parquet file to score; add your batch to {paths[0]} and track it "
            f"(`dvc add {paths[0]}/<file>`), or with the built-in telemetry make one, e.g. "
            f"`python -m lifecycle.data.telemetry --fleet v2 --rows 5000 --out {paths[0]}/batch.parquet`"
        )
    bad = [p for p in files if p.suffix.lower() not in TABLE_SUFFIXES]
    if bad:
        raise DataError(f"{bad[0]}: unsupported file type; score reads {', '.join(TABLE_SUFFIXES)} files")
    return files


def iter_chunks(path: Path, chunk_rows: int, read_options: Mapping[str, Any] | None = None) -> Iterator[pd.DataFrame]:
    """Yield ``path`` as DataFrames of at most ``chunk_rows`` rows (Parquet by record batches, CSV with pandas'
    ``chunksize`` and ``read_options``), so memory is bounded by the chunk, not the file.

    Raises :class:`DataError` naming the file when it is empty (0 bytes), has no header, or cannot be parsed.
    """
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); remove it from the batch or replace it")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            reader = pq.ParquetFile(path, **PARQUET_READ_OPTIONS)
            for batch in reader.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        else:
            options = {k: v for k, v in (read_options or {}).items() if k not in ("chunksize", "iterator")}
            with pd.read_csv(path, chunksize=chunk_rows, **options) as reader:
                yield from reader
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: no header and no rows; remove it from the batch or replace it") from exc
    except UnicodeDecodeError as exc:
        raise DataError(encoding_message(str(path), exc, read_options or {})) from exc
    except (pa.ArrowException, pd.errors.ParserError, OSError, ValueError) as exc:
        if is_checksum_error(exc):
            raise DataError(checksum_message(path, exc, "replace it with an intact copy")) from exc
        raise DataError(
            f"{path}: cannot be read as {suffix[1:].upper()} ({type(exc).__name__}: {exc}); "
            "fix or remove the file (CSV options come from ingest.read_options)"
        ) from exc


# --------------------------------------------------------------------------------------------- encodings
def encoding_message(src: str, exc: UnicodeDecodeError, options: Mapping[str, Any]) -> str:
    """One line for a CSV that is not in the configured encoding: where the first undecodable byte is (line and
    column, for a local file) and the ``ingest.read_options.encoding`` that reads it."""
    configured = str(options.get("encoding") or "utf-8")
    path = Path(src)
    raw = path.read_bytes() if not is_remote(src) and path.is_file() else b""
    guess = _guess_encoding(raw) if raw else "latin-1"
    where = f"byte 0x{exc.object[exc.start]:02x}" if exc.object else "a byte"
    if raw:
        try:
            raw.decode(configured)
        except UnicodeDecodeError as err:
            where = f"byte 0x{raw[err.start]:02x} at {_locate(raw, err.start, guess, options)}"
        except LookupError:
            pass
    return (
        f"{src}: not {configured} text ({where}); set ingest.read_options.encoding: {guess} "
        f"(dvc exp run -S '++ingest.read_options.encoding={json.dumps(guess)}')"
    )


def _guess_encoding(raw: bytes) -> str:
    """utf-16 with a byte-order mark; else cp1252 when the file uses its printable 0x80-0x9f characters (Windows
    text: curly quotes, the euro sign); else latin-1, which reads any byte."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if any(0x80 <= b <= 0x9F for b in raw):
        try:
            raw.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            return "latin-1"
    return "latin-1"


def _locate(raw: bytes, pos: int, encoding: str, options: Mapping[str, Any]) -> str:
    """``line 3, column 'city' ('Montréal')``: the line of byte ``pos``, and the header's name of its field."""
    line_start = raw.rfind(b"\n", 0, pos) + 1
    line_end = raw.find(b"\n", pos)
    line_no = raw.count(b"\n", 0, pos) + 1
    text = raw[line_start : len(raw) if line_end < 0 else line_end].decode(encoding, errors="replace").rstrip("\r")
    prefix = raw[line_start:pos].decode(encoding, errors="replace")
    sep = str(options.get("sep") or options.get("delimiter") or ",")
    header_end = raw.find(b"\n")
    header = raw[: len(raw) if header_end < 0 else header_end].decode(encoding, errors="replace").lstrip("\ufeff")
    try:
        names = next(csv.reader([header.rstrip("\r")], delimiter=sep))
        index = len(next(csv.reader([prefix], delimiter=sep))) - 1 if prefix else 0
        fields = next(csv.reader([text], delimiter=sep))
    except (csv.Error, StopIteration):
        return f"line {line_no}"
    column = f", column {names[index]!r}" if 0 <= index < len(names) else ""
    value = f" ({fields[index]!r} read as {encoding})" if 0 <= index < len(fields) else ""
    return f"line {line_no}{column}{value}"


# --------------------------------------------------------------------------------------------- text columns
_PLAIN = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_COMMA_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")  # 1,408  48,334.5
_COMMA_DECIMAL = re.compile(r"[+-]?\d*,\d+")  # 3,75
_DOT_THOUSANDS = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?")  # 1.408,5
_MISSING_WORDS = {"na", "n/a", "n.a.", "nan", "null", "none", "nil", "missing", "unknown", "not available", "#n/a"}
_DMY = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_TIME_PART = re.compile(r"[ T](\d{1,2}:\d{2})(:\d{2})?$")


def check_text_columns(df: pd.DataFrame, source: str, read_options: Mapping[str, Any] | None = None) -> None:
    """Refuse text columns that hold numbers or dates the reader did not parse, naming the columns (as the file
    writes them) and the ``ingest.read_options`` that parse them, in one line:

    - numbers with a decimal comma (``3,75``; ``1.408,5``) -> ``decimal: ","`` (and ``thousands: "."``);
    - numbers with thousands separators (``"1,408"``, ``48,334.5``) -> ``thousands: ","``; ``48,334`` alone could be
      either, and the message says both;
    - numbers with a missing-value marker (``?``, ``-``, ``n.a.``, ``unknown``) -> ``na_values: [...]``;
    - dates written day-first or month-first (``15/03/2021``) -> ``parse_dates`` + ``date_format``.

    Trained as text, such a column would be an identifier or a category and the model would lose a number; read
    with the options, a scoring batch parses the same way (score reads with ``ingest.read_options`` too).
    Raises :class:`DataError`; returns None when no column needs an option.
    """
    options = dict(read_options or {})
    parquet = Path(str(source).split("?")[0]).suffix.lower() == ".parquet"
    fixes: dict[str, Any] = {}
    found: list[str] = []
    for name in df.columns:
        s = df[name]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        values = s.dropna()
        if values.map(lambda v: not isinstance(v, str)).any():
            continue  # mixed Python objects (booleans, numbers): not text read from a file
        values = values.str.strip()
        values = values[values != ""]
        if values.empty:
            continue
        finding = _number_format(values, options) or _missing_markers(values) or _dates(values)
        if finding is None:
            continue
        what, fix = finding
        found.append(f"column {str(name)!r} {what}")
        for key, value in fix.items():
            if key == "na_values":
                fixes.setdefault(key, [])
                fixes[key] += [v for v in value if v not in fixes[key]]
            elif key == "parse_dates":
                fixes.setdefault(key, []).append(str(name))
            else:
                fixes.setdefault(key, value)
    if not found:
        return
    if parquet:
        raise DataError(f"{source}: {'; '.join(found)}; store them as numbers/timestamps in the Parquet file")
    merged = dict(fixes)
    if "na_values" in fixes and isinstance(options.get("na_values"), list):  # keep the markers already set
        merged["na_values"] = list(dict.fromkeys([*options["na_values"], *fixes["na_values"]]))
    shown = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in merged.items())
    flags = " ".join(f"-S '++ingest.read_options.{k}={json.dumps(v, ensure_ascii=False)}'" for k, v in merged.items())
    raise DataError(f"{source}: {'; '.join(found)}; add to ingest.read_options: {{{shown}}} (dvc exp run {flags})")


def _number_format(values: pd.Series, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    plain = values.str.fullmatch(_PLAIN)
    other = values[~plain]
    if other.empty:
        return None
    thousands = other.str.fullmatch(_COMMA_THOUSANDS).all()
    comma = other.str.fullmatch(_COMMA_DECIMAL) | other.str.fullmatch(_DOT_THOUSANDS)
    decimal = comma.all() and not values[plain].str.contains(".", regex=False).any()
    if not (thousands or decimal):
        return None
    example = other.iloc[0]
    if thousands and decimal:  # every separated value is d,ddd: a thousands separator, or a decimal comma
        return (
            f"holds numbers such as {example!r} (thousands: ',' if it means {example.replace(',', '')}; "
            f"decimal: ',' if it means {example.replace(',', '.')})",
            {"thousands": ","},
        )
    if thousands:
        return f"holds numbers with thousands separators such as {example!r}", {"thousands": ","}
    fix: dict[str, Any] = {"decimal": ","}
    if other.str.fullmatch(_DOT_THOUSANDS).any():
        fix["thousands"] = "."
    return f"holds numbers with a decimal comma such as {example!r}", fix


def _missing_markers(values: pd.Series) -> tuple[str, dict[str, Any]] | None:
    numbers = values.str.fullmatch(_PLAIN)
    others = values[~numbers]
    if others.empty or numbers.mean() < 0.5:
        return None
    markers = sorted(set(others))
    is_marker = [not any(ch.isalnum() for ch in m) or m.lower() in _MISSING_WORDS for m in markers]
    if len(markers) > 3 or not all(is_marker):
        return None
    shown = ", ".join(repr(m) for m in markers)
    return f"holds numbers, and {shown} in {len(others)} rows as a missing-value marker", {"na_values": markers}


def _dates(values: pd.Series) -> tuple[str, dict[str, Any]] | None:
    sample = values.head(500)
    parts = sample.str.fullmatch(_DMY)
    if not parts.all():
        return None
    fields = sample.str.extract(_DMY)
    first, second, year = fields[0].astype(int), fields[2].astype(int), fields[3]
    sep = str(fields[1].iloc[0])
    y = "%Y" if year.str.len().eq(4).all() else "%y"
    times = sample.str.extract(_TIME_PART)
    time = ""
    if times[0].notna().all():
        time = " %H:%M:%S" if times[1].notna().all() else " %H:%M"
    example = sample.iloc[0]
    day_first, month_first = f"%d{sep}%m{sep}{y}{time}", f"%m{sep}%d{sep}{y}{time}"
    if (first > 12).any() and (second <= 12).all():
        return f"holds day-first dates such as {example!r}", {"parse_dates": None, "date_format": day_first}
    if (second > 12).any() and (first <= 12).all():
        return f"holds month-first dates such as {example!r}", {"parse_dates": None, "date_format": month_first}
    return (
        f"holds dates such as {example!r} (date_format {day_first!r} if day-first, {month_first!r} if month-first)",
        {"parse_dates": None, "date_format": day_first},
    )
