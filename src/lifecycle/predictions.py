"""The prediction record: one Arrow schema for every predicted row, written by batch scoring and by the server's
prediction log, read by monitoring.

A record holds the row's identifiers (the schema's identifier columns, or ``row_number`` when it has none), its
datetime and feature columns, the ``prediction`` (label or value), one ``proba_<class>`` per class
(classification) and the ``model_version``. The server's log puts a request header in front (``time``,
``request_id``, ``endpoint``, ``model_name``, ``model_role``, ``served``, ``engine``, ``row``); the batch scorer's
quarantine file has the row columns and a ``reason`` instead of the prediction.

Types are fixed by the training schema, never by the data, so every chunk and every log file appends to the same
table: identifiers text (``row_number`` int64), datetimes ``timestamp[ns]`` (naive, UTC), numeric features float64,
categorical features text, and the label typed by :func:`label_type`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from lifecycle.errors import DataError
from lifecycle.io import PARQUET_READ_OPTIONS
from lifecycle.schema import Schema

PREDICTION = "prediction"
VERSION = "model_version"
REASON = "reason"
ROW_NUMBER = "row_number"  # the row id when the schema has no identifier column
LOG_HEADER: tuple[tuple[str, pa.DataType], ...] = (
    ("time", pa.timestamp("us", tz="UTC")),
    ("request_id", pa.string()),
    ("endpoint", pa.string()),
    ("model_name", pa.string()),
    ("model_role", pa.string()),
    ("served", pa.bool_()),
    ("engine", pa.string()),
    ("row", pa.int32()),
)
Kind = Literal["scored", "quarantine", "log"]


def proba_column(cls: Any) -> str:
    """The column of one class's probability: ``proba_<class>``."""
    return f"proba_{cls}"


def id_columns(schema: Schema) -> list[str]:
    """The columns that identify a row: the schema's identifiers, or ``row_number``."""
    return schema.identifiers or [ROW_NUMBER]


def row_columns(schema: Schema) -> list[str]:
    """Identifiers, datetimes and features: the input columns every record carries, in record order."""
    return [*id_columns(schema), *schema.datetimes, *(c for c in schema.features if c not in schema.datetimes)]


def label_type(task: str, classes: Sequence[Any]) -> pa.DataType:
    """The Arrow type of ``prediction``: float64 for regression; for classification bool, int64 or float64 when
    every class is one, else text."""
    if task != "classification":
        return pa.float64()
    if classes and all(isinstance(v, bool | np.bool_) for v in classes):
        return pa.bool_()
    if classes and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in classes):
        return pa.int64()
    if classes and all(isinstance(v, float | np.floating | int | np.integer) for v in classes):
        return pa.float64()
    return pa.string()


def arrow_schema(schema: Schema, classes: Sequence[Any], kind: Kind = "scored") -> pa.Schema:
    """The record's Arrow schema for ``kind``: ``scored`` (batch output), ``quarantine`` (rows + ``reason``) or
    ``log`` (the server's header + the scored record)."""
    fields = [pa.field(c, pa.int64() if c == ROW_NUMBER else pa.string()) for c in id_columns(schema)]
    fields += [pa.field(c, pa.timestamp("ns")) for c in schema.datetimes]
    fields += [pa.field(c, pa.float64()) for c in schema.numeric]
    fields += [pa.field(c, pa.string()) for c in schema.categorical]
    if kind == "quarantine":
        return pa.schema([*fields, pa.field(REASON, pa.string())])
    fields.append(pa.field(PREDICTION, label_type(schema.task, classes)))
    if schema.task == "classification":
        fields += [pa.field(proba_column(c), pa.float64()) for c in classes]
    fields.append(pa.field(VERSION, pa.string()))
    if kind == "log":
        fields = [pa.field(name, kind_) for name, kind_ in LOG_HEADER] + fields
    return pa.schema(fields)


def read_records(path: str | Path, *, served_only: bool = True, what: str = "prediction records") -> pd.DataFrame:
    """Prediction records from a Parquet file or a directory of them (the server's log: files in name order;
    hidden files, still being written, are skipped). ``served_only`` drops the log's shadow predictions (rows a
    challenger predicted but did not answer). An empty directory gives an empty frame.

    A log written by another server may also be CSV or JSON Lines (``.csv``, ``.jsonl``, ``.ndjson``, ``.json``:
    one object per line, whose inputs may be nested under ``features``, ``inputs`` or ``instance``; they are
    flattened next to ``prediction``). Such files are read as they are, not cast to :func:`arrow_schema`.

    Raises :class:`DataError` naming ``what`` and the path when it does not exist, or a file that cannot be read.
    """
    p = Path(path)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(
            f
            for f in p.rglob("*")
            if f.is_file() and not f.name.startswith((".", "_")) and f.suffix.lower() in (".parquet", *_TEXT_LOGS)
        )
    else:
        raise DataError(f"{p}: {what} not found; expected a Parquet file or a directory of prediction records")
    frames = [_read_file(f) for f in files]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    if served_only and "served" in out.columns:
        out = out[out["served"].astype(bool)].reset_index(drop=True)
    return out


_TEXT_LOGS = (".csv", ".jsonl", ".ndjson", ".json")
_NESTED = ("features", "inputs", "instance")  # where a JSON-Lines log may nest a row's inputs


def _read_file(f: Path) -> pd.DataFrame:
    suffix = f.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(f)
        if suffix in _TEXT_LOGS:
            records = pd.read_json(f, lines=True)
            for nested in _NESTED:
                if nested in records.columns:
                    flat = pd.json_normalize(records[nested].tolist())
                    records = pd.concat([records.drop(columns=[nested]), flat], axis=1)
            return records
        return pd.read_parquet(f, **PARQUET_READ_OPTIONS)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid and pandas' parser errors are ValueErrors
        kind = "CSV" if suffix == ".csv" else "JSON Lines" if suffix in _TEXT_LOGS else "Parquet"
        raise DataError(f"{f}: cannot be read as {kind} ({type(exc).__name__}: {exc})") from exc
