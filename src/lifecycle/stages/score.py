"""Stage ``score``: validate a batch like the training data, predict in chunks, write Parquet with ids and version.

    python -m lifecycle.stages.score --incoming data/incoming --model MODEL --meta MODEL.json --schema SCHEMA \
        --contracts data/contracts --out data/scored/predictions.parquet --quarantine data/scored/quarantine.parquet --metrics metrics/score.json

``--incoming`` is a CSV/Parquet file or a directory whose ``.csv``/``.parquet`` files (name order) form the batch.
Rows are read ``score.chunk_rows`` at a time (Parquet by record batches, CSV with ``chunksize``), validated
with the training data's contract (``lifecycle.quality``, without the target), predicted and appended to a
Parquet writer, so memory is bounded by the chunk, not the file. Rows that fail a row-level rule go to the
quarantine file with a ``reason``. Both outputs are written to temporary files and
renamed only when the whole batch passed, so a corrupt, empty or too dirty batch leaves the previous outputs.

The output holds the schema's identifier columns (the row id, e.g. ``reading_id``), its datetime and feature
columns (the monitor compares them with the training reference), ``prediction``, one ``proba_<class>`` column
per class (classification) and ``model_version`` (the first 12 hex digits of the model's sha256 in model.json).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle import cli
from lifecycle.config import Params, Validate, load_params
from lifecycle.errors import DataError, GateError
from lifecycle.io import TABLE_SUFFIXES, atomic_path, read_json, sha256_file, write_json
from lifecycle.notify import notify
from lifecycle.quality import (
    ColumnRule,
    Contract,
    contract_path,
    dtype_matches,
    load_contract,
    row_rules,
    validate_frame,
)
from lifecycle.schema import Schema, normalize_name, read_schema

log = logging.getLogger(__name__)
PREDICTION = "prediction"
VERSION = "model_version"
REASON = "reason"
ROW_NUMBER = "row_number"  # the row id when the schema has no identifier column


# --------------------------------------------------------------------------------------------- inputs
def batch_files(incoming: str | Path) -> list[Path]:
    """The batch: ``incoming`` itself if it is a file, else its ``.csv``/``.parquet`` files in name order."""
    path = Path(incoming)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
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


def iter_chunks(path: Path, chunk_rows: int, read_options: Mapping[str, Any] | None = None) -> Iterator[pd.DataFrame]:
    """Yield ``path`` as DataFrames of at most ``chunk_rows`` rows; unreadable files raise a DataError naming them."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); remove it from the batch or replace it")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            reader = pq.ParquetFile(path)
            for batch in reader.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        else:
            options = {k: v for k, v in (read_options or {}).items() if k not in ("chunksize", "iterator")}
            with pd.read_csv(path, chunksize=chunk_rows, **options) as reader:
                yield from reader
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: no header and no rows; remove it from the batch or replace it") from exc
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot be read as {suffix[1:].upper()} ({type(exc).__name__}: {exc}); "
            "fix or remove the file (CSV options come from ingest.read_options)"
        ) from exc


def model_version(meta: Mapping[str, Any], model_path: str | Path) -> str:
    """The model's version: the first 12 hex digits of its sha256, after checking the file matches model.json."""
    try:
        expected = str(meta["model"]["sha256"])
    except (KeyError, TypeError) as exc:
        raise DataError("model.json has no model.sha256; rerun `dvc repro train`") from exc
    actual = sha256_file(model_path)
    if actual != expected:
        raise DataError(
            f"{model_path}: sha256 {actual[:12]} does not match model.json ({expected[:12]}); the model file and "
            "its card disagree, rerun `dvc repro train` (or `dvc checkout`)"
        )
    return expected[:12]


# --------------------------------------------------------------------------------------------- validation
@dataclasses.dataclass
class ChunkResult:
    clean: pd.DataFrame
    quarantined: pd.DataFrame  # with a REASON column
    row_hashes: np.ndarray | None = None  # the duplicate rule's hash of each clean row, when already computed


def check_columns(df: pd.DataFrame, schema: Schema, source: str) -> None:
    """The batch must carry every feature column of the schema (table-level: the whole batch fails)."""
    missing = [c for c in schema.features if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing feature column(s) {missing}; a batch needs the training schema's columns "
            f"({', '.join(schema.features)})"
        )


def prepare_chunk(df: pd.DataFrame, schema: Schema, normalize: bool, offset: int) -> pd.DataFrame:
    """Normalize column names as ingest does, and add ``row_number`` when the schema has no identifier."""
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
) -> ChunkResult:
    """Validate one chunk: coerce types to the schema's, quarantine rows that cannot be scored, then apply the
    data contract with ``lifecycle.quality.validate_frame`` (the training data's gate) when one is given.

    Before the contract, a row is quarantined when an identifier is missing, a numeric feature holds text that is
    not a number, or every feature is missing. The contract then quarantines out-of-range values, unknown
    categories, timestamps outside its window and repeated rows (within the chunk), and fails the batch on a
    missing or unexpected column or a wrong type. Missing single values are kept (the model imputes them).
    Table-level totals (row count, null fractions, the bad-row fraction) are checked over the whole batch by
    :func:`check_batch`, not per chunk.

    ``gx=False`` evaluates the same contract rules (``lifecycle.quality.row_rules``, the objects the GE suites are
    built from) as vectorized pandas only, without running Great Expectations: :func:`score_batch` runs GE on
    the first chunk of each file and this fast path on the rest, as GE costs about a second per call.
    """
    pre = _basic_checks(df, schema, contract)
    if contract is None or pre.clean.empty:
        return pre
    if not gx:
        return _merge(pre, _contract_masks(pre.clean, contract, source), schema)
    result = validate_frame(pre.clean, schema, contract, cfg, source=source, table_checks=False)  # type: ignore[arg-type]
    if not result.success:
        raise GateError(result.summary())
    return _merge(pre, ChunkResult(result.clean, result.quarantined), schema)


def _merge(pre: ChunkResult, checked: ChunkResult, schema: Schema) -> ChunkResult:
    columns = output_columns(schema)
    quarantined = checked.quarantined[[*columns, REASON]]
    if len(pre.quarantined):
        quarantined = pd.concat([pre.quarantined, quarantined], ignore_index=True)
    return ChunkResult(clean=checked.clean[columns], quarantined=quarantined, row_hashes=checked.row_hashes)


def _contract_masks(df: pd.DataFrame, contract: Contract, source: str) -> ChunkResult:
    """The contract's column/type rules and row rules as pandas masks (what ``validate_frame`` quarantines)."""
    missing = [c for c in contract.names if c not in df.columns]
    wrong = [c.name for c in contract.columns if c.name in df.columns and not dtype_matches(df[c.name], c.type)]
    if missing or wrong:
        raise GateError(
            f"{source}: data contract {contract.path}: missing column(s) {missing}, wrong type in {wrong}; "
            "fix the batch or the contract"
        )
    df = df.reset_index(drop=True)
    reason = pd.Series("", index=df.index, dtype=object)
    row_hashes = None
    for rule in row_rules(contract):
        if rule.kind == "unique_rows":
            if contract.duplicates != "quarantine":
                continue
            hashes = pd.util.hash_pandas_object(df[list(rule.columns)], index=False)
            row_hashes = hashes.to_numpy()
            hit = hashes.duplicated(keep="first").to_numpy()
            if not hit.any():
                continue
            first = pd.Series(np.arange(len(df)), index=hashes.to_numpy())[~hashes.duplicated(keep="first").to_numpy()]
            firsts = first.loc[hashes.to_numpy()[hit]].to_numpy()
            ids = df[contract.row_id].to_numpy()[firsts] if contract.row_id else firsts
            text = pd.Series([f"duplicate of row {i}" for i in ids], index=df.index[hit])
        else:
            hit = rule.mask(df).to_numpy()
            if not hit.any():
                continue
            text = rule.reasons(df[hit])
        current = reason[hit]
        reason[hit] = np.where(current == "", text, current + "; " + text)
    bad = (reason != "").to_numpy()
    return ChunkResult(
        clean=df[~bad].reset_index(drop=True),
        quarantined=df[bad].assign(**{REASON: reason[bad]}),
        row_hashes=None if row_hashes is None else row_hashes[~bad],
    )


def _basic_checks(df: pd.DataFrame, schema: Schema, contract: Contract | None) -> ChunkResult:
    """Types coerced to the schema's (the contract's for numbers); rows that cannot be used are quarantined."""
    ids = id_columns(schema)
    out = pd.DataFrame(index=df.index)
    reason = pd.Series("", index=df.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        hit = mask & (reason == "")
        reason[hit] = why

    for c in ids:
        if c == ROW_NUMBER:
            out[c] = df[c]
        elif c in df.columns:
            values = df[c]
            out[c] = values.astype(str).where(values.notna())
            flag(values.isna(), f"missing identifier {c}")
        else:
            out[c] = pd.Series(pd.NA, index=df.index, dtype=object)
            flag(pd.Series(True, index=df.index), f"missing identifier {c}")
    for c in schema.datetimes:
        if c in df.columns:
            out[c] = pd.to_datetime(df[c], errors="coerce", format="ISO8601")
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


def id_columns(schema: Schema) -> list[str]:
    return schema.identifiers or [ROW_NUMBER]


# --------------------------------------------------------------------------------------------- prediction
def output_columns(schema: Schema) -> list[str]:
    return [*id_columns(schema), *schema.datetimes, *schema.features]


def arrow_schema(schema: Schema, classes: Sequence[Any], quarantine: bool = False) -> pa.Schema:
    """Fixed Arrow types of the output, so every chunk appends to the same Parquet file."""
    fields = [pa.field(c, pa.int64() if c == ROW_NUMBER else pa.string()) for c in id_columns(schema)]
    fields += [pa.field(c, pa.timestamp("ns")) for c in schema.datetimes]
    fields += [pa.field(c, pa.float64()) for c in schema.numeric]
    fields += [pa.field(c, pa.string()) for c in schema.categorical]
    if quarantine:
        return pa.schema([*fields, pa.field(REASON, pa.string())])
    if schema.task == "classification":
        fields.append(pa.field(PREDICTION, _arrow_type(classes)))
        fields += [pa.field(f"proba_{c}", pa.float64()) for c in classes]
    else:
        fields.append(pa.field(PREDICTION, pa.float64()))
    return pa.schema([*fields, pa.field(VERSION, pa.string())])


def _arrow_type(values: Sequence[Any]) -> pa.DataType:
    if values and all(isinstance(v, bool | np.bool_) for v in values):
        return pa.bool_()
    if values and all(isinstance(v, int | np.integer) for v in values):
        return pa.int64()
    if values and all(isinstance(v, float | np.floating | int | np.integer) for v in values):
        return pa.float64()
    return pa.string()


def predict_chunk(model: Any, clean: pd.DataFrame, schema: Schema, version: str) -> pd.DataFrame:
    """Predictions of ``model`` (the fitted pipeline, raw rows in) next to the chunk's output columns."""
    out = clean[output_columns(schema)].copy()
    X = clean[schema.features]
    if schema.task == "classification" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        out[PREDICTION] = np.asarray(model.classes_)[proba.argmax(axis=1)]
        for i, c in enumerate(classes):
            out[f"proba_{c}"] = proba[:, i]
    else:
        out[PREDICTION] = model.predict(X)
    out[VERSION] = version
    return out


class SeenRows:
    """Rows of the earlier chunks (and files) of the batch, so that a row repeated in a later chunk is quarantined
    as training's gate does over its whole file ("duplicate of row <id>"; within a chunk the contract's own rule
    finds it). Keeps the sorted 64-bit hashes of the duplicate rule's columns, where each first row is, and its id
    in Arrow arrays: the peak at 10M telemetry rows went from 1.18 to 1.61 GB (the arrays are copied as they
    grow), against 6.2 GB for reading the whole file.
    Only clean rows are remembered: a repeat of a row quarantined for another reason is quarantined for that
    same reason, without the "duplicate" note."""

    def __init__(self, columns: Sequence[str], row_id: str | None) -> None:
        self.columns, self.row_id = list(columns), row_id
        self.hashes = np.empty(0, dtype=np.uint64)
        self.first = np.empty(0, dtype=np.int64)  # batch position of the first row with each hash
        self.ids: list[pa.Array] = []  # the remembered rows' ids, one array per chunk
        self.starts: list[int] = []  # batch position of each array's first row
        self.count = 0

    def _id(self, position: int) -> Any:
        k = int(np.searchsorted(self.starts, position, side="right")) - 1
        return self.ids[k][position - self.starts[k]].as_py()

    @classmethod
    def for_contract(cls, contract: Contract | None) -> SeenRows | None:
        rule = next((r for r in row_rules(contract) if r.kind == "unique_rows"), None) if contract else None
        if contract is None or rule is None or contract.duplicates != "quarantine":
            return None
        return cls(rule.columns, contract.row_id)

    def split(self, result: ChunkResult, schema: Schema) -> ChunkResult:
        """Move the clean rows seen in an earlier chunk to the quarantine; remember the rest."""
        clean = result.clean
        if clean.empty:
            return result
        columns = [c for c in self.columns if c in clean.columns]
        hashes = result.row_hashes if len(columns) == len(self.columns) else None  # same columns, same hash
        if hashes is None:  # e.g. the first chunk of a file (checked by Great Expectations): hash it here
            hashes = pd.util.hash_pandas_object(clean[columns], index=False).to_numpy()
        order = np.argsort(hashes, kind="stable")
        at_sorted = np.searchsorted(self.hashes, hashes[order])  # sorted queries: one pass over the array
        at = np.empty_like(at_sorted)
        at[order] = at_sorted
        hit = np.zeros(len(hashes), dtype=bool)
        if len(self.hashes):
            inside = at < len(self.hashes)
            hit[inside] = self.hashes[at[inside]] == hashes[inside]
        if hit.any():
            reasons = [f"duplicate of row {self._id(int(i))}" for i in self.first[at[hit]]]
            repeated = clean[hit].assign(**{REASON: reasons})[[*output_columns(schema), REASON]]
            quarantined = (
                pd.concat([result.quarantined, repeated], ignore_index=True) if len(result.quarantined) else repeated
            )
            clean = clean[~hit].reset_index(drop=True)
            result = ChunkResult(clean=clean, quarantined=quarantined.reset_index(drop=True))
        keep = order[~hit[order]]  # the new rows, in hash order
        rank = np.cumsum(~hit) - 1  # each new row's position among the new rows (batch order)
        self.first = np.insert(self.first, at[keep], self.count + rank[keep])
        self.hashes = np.insert(self.hashes, at[keep], hashes[keep])
        if self.row_id in clean.columns:
            self.ids.append(pa.array(clean[self.row_id]))
        else:  # no id column: the row's position in the batch's clean rows
            self.ids.append(pa.array(np.arange(self.count, self.count + len(clean))))
        self.starts.append(self.count)
        self.count += len(clean)
        return result


# --------------------------------------------------------------------------------------------- batch
@dataclasses.dataclass
class BatchSummary:
    files: list[str]
    rows_read: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    reasons: Counter = dataclasses.field(default_factory=Counter)
    predictions: Counter = dataclasses.field(default_factory=Counter)
    nulls: Counter = dataclasses.field(default_factory=Counter)  # feature -> missing values in clean rows
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
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


def model_classes(model: Any, schema: Schema) -> list[Any]:
    if schema.task != "classification":
        return []
    classes = getattr(model, "classes_", None)
    return [c.item() if hasattr(c, "item") else c for c in (classes if classes is not None else schema.classes)]


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
    """Score every file of the batch chunk by chunk into ``out`` (and bad rows into ``quarantine``).

    ``contract`` is the training data's contract (lifecycle.quality); :func:`scoring_contract` drops its target.
    Table-level rules (the same thresholds as training's validation: ``validate.max_bad_row_fraction`` and
    ``validate.max_null_fraction``, plus ``score.min_rows``) are checked over the whole batch before the two
    files are renamed into place; a failure raises and leaves the previous outputs untouched.
    """
    if chunk_rows < 1:
        raise DataError(f"params.yaml: score.chunk_rows: {chunk_rows} must be >= 1")
    classes = model_classes(model, schema)
    if contract is not None:
        contract = scoring_contract(contract, schema)
    summary = BatchSummary(files=[p.name for p in files], model_version=version)
    seen = SeenRows.for_contract(contract)
    out_schema = arrow_schema(schema, classes)
    q_schema = arrow_schema(schema, classes, quarantine=True)
    with (
        atomic_path(out) as tmp_out,
        atomic_path(quarantine) as tmp_q,
        contextlib.ExitStack() as stack,
    ):
        writer = stack.enter_context(pq.ParquetWriter(tmp_out, out_schema, compression="zstd"))
        q_writer = stack.enter_context(pq.ParquetWriter(tmp_q, q_schema, compression="zstd"))
        for path in files:
            first = True  # the first chunk of a file: columns checked, Great Expectations run
            for raw in iter_chunks(path, chunk_rows, read_options):
                chunk = prepare_chunk(raw, schema, normalize, summary.rows_read)
                if first:
                    check_columns(chunk, schema, str(path))
                if schema.target in chunk.columns:  # labels in a batch to score are not used
                    chunk = chunk.drop(columns=[schema.target])
                result = validate_chunk(chunk, schema, contract, validate, source=str(path), gx=first)
                if seen is not None:
                    result = seen.split(result, schema)
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
    """Whole-batch rules; raising here keeps the previous outputs."""
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


def load_model(path: str | Path) -> Any:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: model not found; run `dvc repro train` first")
    return joblib.load(p)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--incoming", required=True, help="a CSV/Parquet file or a directory of them")
    parser.add_argument("--model", required=True)
    parser.add_argument("--meta", required=True, help="model.json (its model.sha256 gives the model version)")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--contracts", required=True, help="directory of <dataset>.yaml data contracts")
    parser.add_argument("--out", required=True)
    parser.add_argument("--quarantine", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    schema = read_schema(args.schema)
    contract = load_contract(contract_path(args.contracts, params.ingest.source))
    files = batch_files(args.incoming)
    model = load_model(args.model)
    version = model_version(read_json(args.meta), args.model)
    try:
        summary = score_with_params(params, files, model, schema, version, args.out, args.quarantine, contract)
    except GateError as exc:
        notify(params.notify, "Batch rejected by validation", [str(exc)], status="failure")
        raise
    write_json(args.metrics, summary.to_dict())
    log.info(
        "scored %d of %d rows from %d file(s) with model %s -> %s (%d quarantined -> %s)",
        summary.rows_scored,
        summary.rows_read,
        len(files),
        version,
        args.out,
        summary.rows_quarantined,
        args.quarantine,
    )


if __name__ == "__main__":
    cli.run(main)
