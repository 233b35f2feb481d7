"""Batch scoring: validate a batch like the training data, predict it in chunks, write prediction records.

Used by the ``score`` stage and by production scoring (``python -m lifecycle.score_prod``); it loads nothing
itself (the caller passes the model loaded with :func:`lifecycle.artifact.load_model`). The batch is one file or
the ``.csv``/``.parquet`` files of a directory (:func:`lifecycle.data.readers.batch_files`), read ``chunk_rows``
rows at a time (:func:`lifecycle.data.readers.iter_chunks`), so memory is bounded by the chunk, not the file.
Each chunk:

1. gets the schema's types (:func:`validate_chunk`): a row is quarantined when an identifier is missing, a numeric
   feature holds text that is not a number, or every feature is missing;
2. is checked with the training data's contract without the target (:func:`scoring_contract`) by THE row-rule
   evaluator, :func:`lifecycle.quality.rules.split_rows`: out-of-range values, unknown categories, timestamps
   outside the window, and rows repeated within the chunk or in any earlier chunk or file (one
   :class:`~lifecycle.quality.rules.SeenRows` per batch) are quarantined with a ``reason``. Great Expectations
   (:func:`lifecycle.quality.gx.judge`) also runs on the first chunk of every file (about a second per call);
3. is predicted with :func:`lifecycle.artifact.predict` and appended to Parquet in the
   :func:`lifecycle.predictions.arrow_schema` record (``scored``; bad rows: ``quarantine``).

Table-level totals (``validate.max_bad_row_fraction``, ``validate.max_null_fraction``, ``score.min_rows``) are
checked over the whole batch (:func:`check_batch`) before both files are renamed into place: a corrupt, empty or
too dirty batch raises and leaves the previous outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle.artifact import model_classes, predict
from lifecycle.config import Params, Validate
from lifecycle.data.readers import iter_chunks
from lifecycle.errors import DataError, GateError
from lifecycle.io import PARQUET_WRITE_OPTIONS, atomic_path
from lifecycle.predictions import (
    PREDICTION,
    REASON,
    ROW_NUMBER,
    VERSION,
    arrow_schema,
    id_columns,
    proba_column,
    row_columns,
)
from lifecycle.quality.contract import ColumnRule, Contract
from lifecycle.quality.gx import judge
from lifecycle.quality.rules import SeenRows, split_rows
from lifecycle.schema import Schema, normalize_name, parse_datetimes

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- validation
@dataclasses.dataclass
class ChunkResult:
    """One chunk, validated: the rows to predict and the quarantined ones."""

    clean: pd.DataFrame  # lifecycle.predictions.row_columns(schema)
    quarantined: pd.DataFrame  # the same columns + REASON


def check_columns(df: pd.DataFrame, schema: Schema, source: str) -> None:
    """The batch must carry every feature column of the schema (table-level: the whole batch fails).

    Raises :class:`DataError` naming ``source`` and the missing columns.
    """
    missing = [c for c in schema.features if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing feature column(s) {missing}; a batch needs the training schema's columns "
            f"({', '.join(schema.features)})"
        )


def prepare_chunk(df: pd.DataFrame, schema: Schema, normalize: bool, offset: int) -> pd.DataFrame:
    """Normalize column names as ingest does, and add ``row_number`` (``offset`` + position in the chunk) when the
    schema has no identifier."""
    if normalize:
        df = df.rename(columns={c: normalize_name(c) for c in df.columns})
    if not schema.identifiers:
        df = df.assign(**{ROW_NUMBER: np.arange(offset, offset + len(df), dtype=np.int64)})
    return df


def scoring_contract(contract: Contract, schema: Schema) -> Contract:
    """The training data's contract without the target (a batch to score has no labels yet); with the
    ``row_number`` column when the schema has no identifier."""
    columns = tuple(c for c in contract.columns if c.name != schema.target)
    if not schema.identifiers:
        columns += (ColumnRule(ROW_NUMBER, "int", nullable=False),)
    return dataclasses.replace(contract, columns=columns, target=None)


def validate_chunk(
    df: pd.DataFrame,
    schema: Schema,
    contract: Contract | None = None,
    cfg: Validate | None = None,
    source: str = "batch",
    gx: bool = True,
    seen: SeenRows | None = None,
) -> ChunkResult:
    """Validate one chunk: coerce types to the schema's, quarantine rows that cannot be scored, then apply the
    data contract (when one is given) with :func:`lifecycle.quality.rules.split_rows`.

    Missing single values are kept (the model imputes them). ``gx=True`` also runs Great Expectations' verdict
    (:func:`lifecycle.quality.gx.judge`, without the table totals, which :func:`check_batch` checks over the whole
    batch); ``gx=False`` checks the contract's columns and types in pandas only. ``seen``: the batch's earlier rows
    (repeats of them are quarantined). Raises :class:`GateError` for a missing or unexpected column, a wrong type,
    or a repeated row under ``duplicates: fail``.
    """
    pre = _basic_checks(df, schema, contract)
    if contract is None or pre.clean.empty:
        return pre
    split = split_rows(pre.clean, contract, seen=seen)
    if gx:
        result = judge(split, schema, contract, cfg, source=source, table_checks=False)  # type: ignore[arg-type]
        if not result.success:
            raise GateError(result.summary())
    elif split.missing or split.mistyped:
        raise GateError(
            f"{source}: data contract {contract.path}: missing column(s) {split.missing}, wrong type in "
            f"{split.mistyped}; fix the batch or the contract"
        )
    elif contract.duplicates == "fail" and split.masks["rows.unique"].any():
        raise GateError(f"{source}: data contract {contract.path}: repeated rows (contract duplicates: fail)")
    columns = row_columns(schema)
    quarantined = split.quarantined[[*columns, REASON]]
    if len(pre.quarantined):
        quarantined = pd.concat([pre.quarantined, quarantined], ignore_index=True)
    return ChunkResult(clean=split.clean[columns], quarantined=quarantined)


def _basic_checks(df: pd.DataFrame, schema: Schema, contract: Contract | None) -> ChunkResult:
    """Types coerced to the schema's (the contract's for numbers); rows that cannot be used are quarantined."""
    ids = id_columns(schema)
    out = pd.DataFrame(index=df.index)
    reason = pd.Series("", index=df.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        hit = mask & (reason == "")
        reason[hit] = why

    # an identifier the contract lets be null (free text such as a cabin, mostly blank in the training data) is
    # carried along; a row is unusable only without any identifying value, or with a null the contract refuses
    may_be_null = {r.name for r in contract.columns if r.nullable} if contract is not None else set()
    present = [c for c in ids if c in df.columns and c != ROW_NUMBER]
    if len(present) > 1:
        flag(df[present].isna().all(axis=1), f"missing identifier {', '.join(present)}")
    for c in ids:
        if c == ROW_NUMBER:
            out[c] = df[c]
        elif c in df.columns:
            values = df[c]
            out[c] = values.astype(str).where(values.notna())
            if c not in may_be_null and (contract is not None or len(present) == 1):
                flag(values.isna(), f"missing identifier {c}")
        else:
            out[c] = pd.Series(pd.NA, index=df.index, dtype=object)
            flag(pd.Series(True, index=df.index), f"missing identifier {c}")
    for c in schema.datetimes:
        if c in df.columns:
            out[c] = parse_datetimes(df[c])  # as ingest: time zones to UTC, naive values as UTC
        else:
            out[c] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    int_columns = {r.name for r in contract.columns if r.type == "int"} if contract is not None else set()
    for c in schema.numeric:
        raw = df[c]
        values = pd.to_numeric(raw, errors="coerce")
        if c not in int_columns:
            values = values.astype("float64")
        flag(values.isna() & raw.notna(), f"not a number in {c}")
        out[c] = values
    for c in schema.categorical:
        values = df[c]
        out[c] = values.astype(str).where(values.notna())
    if schema.features:
        flag(out[schema.features].isna().all(axis=1), "every feature missing")
    bad = reason != ""
    return ChunkResult(clean=out[~bad], quarantined=out[bad].assign(**{REASON: reason[bad]}))


# --------------------------------------------------------------------------------------------- prediction
def predict_chunk(model: Any, clean: pd.DataFrame, schema: Schema, version: str) -> pd.DataFrame:
    """Prediction records of ``clean`` (validated rows): its row columns, ``prediction``, one ``proba_<class>`` per
    class (classification) and ``model_version``, from :func:`lifecycle.artifact.predict` (raw rows in)."""
    out = clean[row_columns(schema)].copy()
    y_pred, proba = predict(model, clean[schema.features], schema.task)
    out[PREDICTION] = y_pred
    if proba is not None:
        for i, c in enumerate(model_classes(model)):
            out[proba_column(c)] = proba[:, i]
    out[VERSION] = version
    return out


# --------------------------------------------------------------------------------------------- batch
@dataclasses.dataclass
class BatchSummary:
    """Counts over a scored batch: the scoring summary (:meth:`to_dict`), its DVC metrics (:meth:`headline`) and
    :func:`check_batch`'s input."""

    files: list[str]
    rows_read: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    reasons: Counter = dataclasses.field(default_factory=Counter)  # rule_of(reason) -> rows
    predictions: Counter = dataclasses.field(default_factory=Counter)  # predicted label -> rows
    nulls: Counter = dataclasses.field(default_factory=Counter)  # feature -> missing values in clean rows
    model_version: str = ""

    def headline(self) -> dict[str, int | float]:
        """The batch's numbers worth a column in ``dvc metrics show`` / ``dvc exp show`` (metrics/score.json): rows
        read, scored and quarantined, and the quarantined fraction. File names, reasons and prediction counts are in
        :meth:`to_dict`."""
        full = self.to_dict()
        return {k: full[k] for k in ("rows_read", "rows_scored", "rows_quarantined", "quarantine_fraction")}

    def to_dict(self) -> dict[str, Any]:
        """The scoring summary (reports/score.json; deterministic order): files, model version, counts, the
        quarantine reasons and the predicted classes."""
        return {
            "files": self.files,
            "model_version": self.model_version,
            "rows_read": self.rows_read,
            "rows_scored": self.rows_scored,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_fraction": round(self.rows_quarantined / self.rows_read, 6) if self.rows_read else 0.0,
            "quarantine_reasons": dict(sorted(self.reasons.items())),
            "prediction_counts": {str(k): v for k, v in sorted(self.predictions.items(), key=lambda kv: str(kv[0]))},
        }


def rule_of(reason: str) -> str:
    """The rule a row broke, without the row's value or id, so metrics count rules, not rows:
    ``"cell_temp_max_c=999.0 outside [-40.0, 90.0]"`` -> ``"cell_temp_max_c outside [-40.0, 90.0]"``."""
    if reason.startswith("duplicate"):
        return "duplicate row"
    column, sep, rest = reason.partition("=")
    for verb in (" outside ", " not in "):
        if sep and verb in rest:
            return column + verb + rest.split(verb, 1)[1]
    return reason


def score_batch(
    files: Sequence[Path],
    model: Any,
    schema: Schema,
    version: str,
    out: str | Path,
    quarantine: str | Path,
    chunk_rows: int,
    min_rows: int,
    validate: Validate,
    read_options: Mapping[str, Any] | None = None,
    normalize: bool = True,
    contract: Contract | None = None,
) -> BatchSummary:
    """Score every file of the batch chunk by chunk into ``out`` (and bad rows into ``quarantine``), both Parquet.

    ``model``: the fitted pipeline; ``version``: written next to every prediction; ``contract``: the training
    data's contract (:func:`scoring_contract` drops its target). Raises :class:`DataError` for an unreadable file,
    a missing feature column or too few clean rows, :class:`GateError` for a contract or threshold failure
    (:func:`check_batch`); either way the previous outputs stay untouched.
    """
    classes = model_classes(model) if schema.task == "classification" else []
    if contract is not None:
        contract = scoring_contract(contract, schema)
    summary = BatchSummary(files=[p.name for p in files], model_version=version)
    seen = SeenRows(contract.row_id) if contract is not None and contract.duplicates == "quarantine" else None
    out_schema = arrow_schema(schema, classes)
    q_schema = arrow_schema(schema, classes, kind="quarantine")
    with atomic_path(out) as tmp_out, atomic_path(quarantine) as tmp_q, contextlib.ExitStack() as stack:
        writer = stack.enter_context(pq.ParquetWriter(tmp_out, out_schema, **PARQUET_WRITE_OPTIONS))
        q_writer = stack.enter_context(pq.ParquetWriter(tmp_q, q_schema, **PARQUET_WRITE_OPTIONS))
        for path in files:
            first = True  # the first chunk of a file: columns checked, Great Expectations run
            for raw in iter_chunks(path, chunk_rows, read_options):
                chunk = prepare_chunk(raw, schema, normalize, summary.rows_read)
                if first:
                    check_columns(chunk, schema, str(path))
                if schema.target in chunk.columns:  # labels in a batch to score are not used
                    chunk = chunk.drop(columns=[schema.target])
                result = validate_chunk(chunk, schema, contract, validate, source=str(path), gx=first, seen=seen)
                first = False
                summary.rows_read += len(chunk)
                summary.rows_quarantined += len(result.quarantined)
                summary.reasons.update(rule_of(r) for text in result.quarantined[REASON] for r in text.split("; "))
                if len(result.quarantined):
                    q_writer.write_table(
                        pa.Table.from_pandas(result.quarantined, schema=q_schema, preserve_index=False)
                    )
                if len(result.clean):
                    scored = predict_chunk(model, result.clean, schema, version)
                    summary.rows_scored += len(scored)
                    summary.predictions.update(scored[PREDICTION].tolist())
                    summary.nulls.update(result.clean[schema.features].isna().sum().to_dict())
                    writer.write_table(pa.Table.from_pandas(scored, schema=out_schema, preserve_index=False))
            log.info("read %s: %d rows so far", path, summary.rows_read)
        stack.close()  # finish both Parquet footers before the renames
        check_batch(summary, schema, min_rows, validate)
    return summary


def score_with_params(
    params: Params,
    files: Sequence[Path],
    model: Any,
    schema: Schema,
    version: str,
    out: str | Path,
    quarantine: str | Path,
    contract: Contract | None,
) -> BatchSummary:
    """:func:`score_batch` with params.yaml's knobs (``score.*``, ``validate.*``, ingest's read options and column
    normalization): what the stage and ``python -m lifecycle.score_prod`` both run."""
    return score_batch(
        files,
        model,
        schema,
        version,
        out,
        quarantine,
        chunk_rows=params.score.chunk_rows,
        min_rows=params.score.min_rows,
        validate=params.validate,
        read_options=params.ingest.read_options,
        normalize=params.ingest.normalize_columns,
        contract=contract,
    )


def check_batch(summary: BatchSummary, schema: Schema, min_rows: int, validate: Validate) -> None:
    """Whole-batch rules: at least one row read and ``min_rows`` scored, at most ``validate.max_bad_row_fraction``
    quarantined, each feature missing in at most ``validate.max_null_fraction`` of the scored rows.

    Raises :class:`DataError` (no or too few rows) or :class:`GateError` (a threshold), naming the files.
    """
    where = ", ".join(summary.files)
    if summary.rows_read == 0:
        raise DataError(f"{where}: the batch has a header but no rows; nothing to score")
    if summary.rows_scored < min_rows:
        raise DataError(
            f"{where}: {summary.rows_scored} clean row(s) of {summary.rows_read}, fewer than score.min_rows="
            f"{min_rows}; quarantine reasons: {dict(summary.reasons.most_common(3))}"
        )
    fraction = summary.rows_quarantined / summary.rows_read
    if fraction > validate.max_bad_row_fraction:
        raise GateError(
            f"{where}: {summary.rows_quarantined} of {summary.rows_read} rows ({fraction:.1%}) failed row checks, "
            f"more than validate.max_bad_row_fraction={validate.max_bad_row_fraction}; most common: "
            f"{dict(summary.reasons.most_common(3))}. Fix the source or raise the threshold"
        )
    for feature in schema.features:
        null_fraction = summary.nulls.get(feature, 0) / summary.rows_scored
        if null_fraction > validate.max_null_fraction:
            raise GateError(
                f"{where}: column {feature!r} is missing in {null_fraction:.1%} of the rows, more than "
                f"validate.max_null_fraction={validate.max_null_fraction}; fix the source or raise the threshold"
            )
