"""Batch scoring on Dask (``score.engine: dask``): the pandas engine's rules and outputs, partitions in parallel.

Every partition (:class:`lifecycle.data.partitions.Piece`) goes through the same functions as a chunk of the
pandas engine (:func:`lifecycle.batch.validate_raw`, hence :func:`lifecycle.quality.rules.split_rows`, the one
row-rule evaluator, and Great Expectations on every file's first partition; then
:func:`lifecycle.batch.predict_chunk`), on the workers. What one process cannot see from one partition is
distributed:

- **Row numbers** (a schema without identifier): from the partitions' row counts (Parquet footers, or a counting
  pass over CSV partitions), so ``row_number`` is the row's position in the batch, as in the pandas engine.
- **Rows repeated across partitions** (``duplicates: quarantine``): the pandas engine quarantines a clean row when a
  clean row with the same :func:`lifecycle.quality.rules.row_hashes` hash came *earlier in the batch* (file order,
  then row order; :class:`lifecycle.quality.rules.SeenRows`), as ``duplicate of row <row_id of that first row>``.
  Here a first pass validates every partition and emits ``(hash, partition, position)`` of its clean rows (within a
  partition the contract's own rule has already removed repeats); Dask shuffles them by hash (its peer-to-peer
  shuffle: memory bounded, spilled to disk) and each hash keeps its row in the lowest partition: the earliest in
  batch order. Every other clean row with that hash is quarantined in the scoring pass, after the partition's other
  quarantined rows, with the same reason text. Without a ``row_id`` in the contract, the pandas engine names the
  first row by its position among the batch's clean, first-seen rows; so does this (from the shuffle's counts).
- **Writing**: the scored and quarantined rows come back to this process one partition at a time, in partition
  order, at most ``2 x worker threads`` partitions in flight (:func:`lifecycle.cluster.ordered_results`), and are
  appended to the same two Parquet files, in the :func:`lifecycle.predictions.arrow_schema` record, as the pandas
  engine writes. Files whose partitions equal the pandas engine's chunks (Parquet row groups of ``score.chunk_rows``
  rows) give byte-identical outputs; otherwise the same rows in the same batch order (the quarantine grouped by
  partition instead of by chunk).

The whole-batch thresholds are the pandas engine's (:func:`lifecycle.batch.check_batch`) on the merged counts, and
a failure leaves the previous outputs. The workers must be able to read the batch: ``s3://`` URLs, or local paths on
a volume they share (a local cluster always can; :class:`lifecycle.cluster.ClusterError` otherwise).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle.artifact import model_classes
from lifecycle.batch import (
    BatchSummary,
    ChunkResult,
    check_batch,
    predict_chunk,
    scoring_contract,
    validate_raw,
)
from lifecycle.cluster import ClusterError, ordered_results, total_threads, workers_see
from lifecycle.config import Validate
from lifecycle.data.partitions import Piece, number, plan_file, read_piece
from lifecycle.data.readers import is_remote, source_name
from lifecycle.io import PARQUET_WRITE_OPTIONS, atomic_path
from lifecycle.predictions import REASON, arrow_schema, row_columns
from lifecycle.quality.contract import Contract
from lifecycle.quality.rules import row_hashes
from lifecycle.schema import Schema

log = logging.getLogger(__name__)

HASHES = pd.DataFrame(
    {
        "hash": pd.Series(dtype="uint64"),
        "part": pd.Series(dtype="int32"),
        "pos": pd.Series(dtype="int32"),
        "id": pd.Series(dtype=object),
    }
)
REPEATS = pd.DataFrame(
    {
        "part": pd.Series(dtype="int32"),
        "pos": pd.Series(dtype="int32"),
        "keeper_part": pd.Series(dtype="int32"),
        "keeper_pos": pd.Series(dtype="int32"),
        "keeper_id": pd.Series(dtype=object),
    }
)


@dataclasses.dataclass(frozen=True)
class Task:
    """One partition's work: the piece, its first row's position in the batch, and its cross-partition repeats."""

    piece: Piece
    offset: int = 0
    validated: bool = False  # the first pass ran Great Expectations on it already
    repeat_pos: tuple[int, ...] = ()  # positions among the partition's clean rows, ascending
    repeat_reasons: tuple[str, ...] = ()


@dataclasses.dataclass
class Scored:
    """What a worker sends back for one partition: Arrow tables in the record schemas, and its counts."""

    scored: pa.Table | None
    quarantined: pa.Table | None
    summary: BatchSummary


# --------------------------------------------------------------------------------------------- planning
def plan(client: Any, sources: Sequence[str], rows: int, read_options: Mapping[str, Any] | None) -> list[Piece]:
    """The batch's pieces in batch order, planned on the workers (one task per file: footers read in parallel).

    Raises :class:`ClusterError` when the workers cannot read a local file of the batch (a remote cluster without a
    shared volume), :class:`lifecycle.errors.DataError` for a file that is missing, empty or unreadable.
    """
    local = [s for s in sources if not is_remote(s)]
    for source in local[:1] + local[-1:]:
        if not workers_see(client, source):
            raise ClusterError(
                f"{source}: the Dask workers cannot read this file; put the batch where they can (an s3:// URI as "
                "paths.incoming, or a volume mounted at the same path on the workers, docs/scale.md), or use a "
                "local cluster (dask.scheduler: null)"
            )
    futures = client.map(plan_file, sources, rows=rows, read_options=read_options, pure=False)
    return number([p for pieces in client.gather(futures) for p in pieces])


def count_rows(task: Task, read_options: Mapping[str, Any] | None) -> int:
    """Rows of a partition whose count its file does not store (CSV): it is read and parsed."""
    return len(read_piece(task.piece, read_options))


# --------------------------------------------------------------------------------------------- repeated rows
def hash_piece(
    task: Task,
    schema: Schema,
    contract: Contract,
    validate: Validate,
    read_options: Mapping[str, Any] | None,
    normalize: bool,
) -> pd.DataFrame:
    """First pass over a partition: validate it (Great Expectations on a file's first partition, which raises
    :class:`lifecycle.errors.GateError` as the pandas engine does) and return ``hash, part, pos, id`` of its clean
    rows: the contract's row hash, the partition, the row's position among its clean rows, and its ``row_id``."""
    piece = task.piece
    _, result = validate_raw(
        read_piece(piece, read_options), schema, contract, validate, normalize=normalize, offset=task.offset,
        source=piece.source, first=piece.first, gx=piece.first,
    )  # fmt: skip
    clean = result.clean
    ids = clean[contract.row_id].astype(str).to_numpy(dtype=object) if contract.row_id in clean.columns else None
    return pd.DataFrame(
        {
            "hash": row_hashes(clean, contract.names),
            "part": np.full(len(clean), piece.index, dtype=np.int32),
            "pos": np.arange(len(clean), dtype=np.int32),
            "id": ids if ids is not None else np.full(len(clean), None, dtype=object),
        }
    )


def find_repeats(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of one hash bucket that repeat a row of an earlier partition: for each hash the row of the lowest
    partition is kept (a partition holds at most one clean row per hash); the others are returned with the kept
    row's partition, position and id (``REPEATS``' columns)."""
    rows = rows.sort_values(["hash", "part"], kind="stable")
    first = ~rows["hash"].duplicated().to_numpy()
    keepers = rows[first].set_index("hash")
    repeats = rows[~first]
    keeper = keepers.loc[repeats["hash"].to_numpy()]
    return pd.DataFrame(
        {
            "part": repeats["part"].to_numpy(dtype=np.int32),
            "pos": repeats["pos"].to_numpy(dtype=np.int32),
            "keeper_part": keeper["part"].to_numpy(dtype=np.int32),
            "keeper_pos": keeper["pos"].to_numpy(dtype=np.int32),
            "keeper_id": keeper["id"].to_numpy(dtype=object),
        }
    )


def cross_partition_repeats(
    client: Any,
    tasks: Sequence[Task],
    schema: Schema,
    contract: Contract,
    validate: Validate,
    read_options: Mapping[str, Any] | None,
    normalize: bool,
) -> dict[int, tuple[tuple[int, ...], tuple[str, ...]]]:
    """Partition index -> (positions among its clean rows, reasons) of the clean rows that repeat a clean row of an
    earlier partition, found by shuffling the rows' hashes (see the module's docstring); logs partitions done."""
    import dask.dataframe as dd
    from distributed import as_completed

    futures = [
        client.submit(hash_piece, t, schema, contract, validate, read_options, normalize, pure=False) for t in tasks
    ]
    counts = [client.submit(len, f, pure=False) for f in futures]
    hashes = dd.from_delayed(futures, meta=HASHES, verify_meta=False)
    found = client.compute(hashes.shuffle("hash", npartitions=max(len(tasks), 1)).map_partitions(find_repeats,
                                                                                                 meta=REPEATS))  # fmt: skip
    del futures, hashes  # the shuffle holds them only until it has taken them
    last = time.perf_counter()
    for done, _ in enumerate(as_completed(counts), start=1):
        if done == len(counts) or time.perf_counter() - last >= 5.0:
            log.info("partitions validated (repeated rows): %d/%d", done, len(counts))
            last = time.perf_counter()
    clean = np.asarray(client.gather(counts), dtype=np.int64)
    repeats = found.result().sort_values(["part", "pos"], kind="stable")
    log.info("%d clean row(s) repeat a row of an earlier partition", len(repeats))
    if contract.row_id is None:  # the pandas engine names the first row by its rank among the remembered rows
        per_part = np.bincount(repeats["part"].to_numpy(), minlength=len(tasks))
        remembered_before = np.concatenate([[0], np.cumsum(clean - per_part)[:-1]])
        names = []
        for kp, kpos in zip(repeats["keeper_part"].to_numpy(), repeats["keeper_pos"].to_numpy(), strict=True):
            in_part = repeats["pos"].to_numpy()[repeats["part"].to_numpy() == kp]
            names.append(str(int(remembered_before[kp] + kpos - np.count_nonzero(in_part < kpos))))
        repeats = repeats.assign(keeper_id=names)
    out: dict[int, tuple[tuple[int, ...], tuple[str, ...]]] = {}
    for part, group in repeats.groupby("part", sort=True):
        reasons = tuple(f"duplicate of row {i}" for i in group["keeper_id"])
        out[int(part)] = (tuple(int(p) for p in group["pos"]), reasons)
    return out


# --------------------------------------------------------------------------------------------- scoring
def score_piece(
    task: Task,
    model: Any,
    schema: Schema,
    contract: Contract | None,
    validate: Validate,
    version: str,
    read_options: Mapping[str, Any] | None,
    normalize: bool,
    out_schema: pa.Schema,
    q_schema: pa.Schema,
) -> Scored:
    """Validate and predict one partition (its cross-partition repeats moved to the quarantine, after the others),
    as Arrow tables in the record schemas, with its counts."""
    piece = task.piece
    rows, result = validate_raw(
        read_piece(piece, read_options), schema, contract, validate, normalize=normalize, offset=task.offset,
        source=piece.source, first=piece.first, gx=piece.first and not task.validated,
    )  # fmt: skip
    if task.repeat_pos:
        result = _quarantine_repeats(result, task, schema)
    scored = predict_chunk(model, result.clean, schema, version) if len(result.clean) else None
    summary = BatchSummary(files=[])
    summary.add(rows, result, scored, schema.features)
    return Scored(
        scored=pa.Table.from_pandas(scored, schema=out_schema, preserve_index=False) if scored is not None else None,
        quarantined=(
            pa.Table.from_pandas(result.quarantined, schema=q_schema, preserve_index=False)
            if len(result.quarantined)
            else None
        ),
        summary=summary,
    )


def _quarantine_repeats(result: ChunkResult, task: Task, schema: Schema) -> ChunkResult:
    positions = np.asarray(task.repeat_pos, dtype=np.int64)
    if positions.size and positions.max() >= len(result.clean):
        raise RuntimeError(f"{task.piece.source}: partition {task.piece.index} changed between the two passes")
    keep = np.ones(len(result.clean), dtype=bool)
    keep[positions] = False
    columns = row_columns(schema)
    repeated = result.clean.iloc[positions][columns].assign(**{REASON: list(task.repeat_reasons)})
    quarantined = pd.concat([result.quarantined, repeated], ignore_index=True) if len(result.quarantined) else repeated
    return ChunkResult(clean=result.clean[keep].reset_index(drop=True), quarantined=quarantined)


def score_on_dask(
    client: Any,
    sources: Sequence[str | Path],
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
    """:func:`lifecycle.batch.score_batch` on the cluster of ``client``: the same arguments, rules, outputs and
    errors (see the module's docstring for what is distributed); partitions of about ``chunk_rows`` rows.

    Raises :class:`lifecycle.errors.DataError` / :class:`lifecycle.errors.GateError` as the pandas engine does, and
    :class:`lifecycle.cluster.ClusterError` when the workers cannot read the batch; the previous outputs stay.
    """
    classes = model_classes(model) if schema.task == "classification" else []
    if contract is not None:
        contract = scoring_contract(contract, schema)
    sources = [str(s) if is_remote(str(s)) else str(Path(s).resolve()) for s in sources]
    summary = BatchSummary(files=[source_name(s) for s in sources], model_version=version)
    pieces = plan(client, sources, chunk_rows, read_options)
    log.info("scoring %d file(s) in %d partition(s) of about %d rows", len(sources), len(pieces), chunk_rows)
    tasks = [Task(p) for p in pieces]
    if not schema.identifiers:  # row_number is the row's position in the batch
        rows = [p.rows for p in pieces]
        if any(r is None for r in rows):
            window = 2 * total_threads(client)
            rows = list(
                ordered_results(client, count_rows, tasks, read_options, window=window, what="partitions counted")
            )
        offsets = np.concatenate([[0], np.cumsum(np.asarray(rows, dtype=np.int64))[:-1]])
        tasks = [dataclasses.replace(t, offset=int(o)) for t, o in zip(tasks, offsets, strict=True)]
    elif contract is not None and contract.duplicates == "quarantine":
        repeats = cross_partition_repeats(client, tasks, schema, contract, validate, read_options, normalize)
        tasks = [
            dataclasses.replace(t, validated=True, repeat_pos=repeats.get(i, ((), ()))[0],
                                repeat_reasons=repeats.get(i, ((), ()))[1])
            for i, t in enumerate(tasks)
        ]  # fmt: skip
    out_schema = arrow_schema(schema, classes)
    q_schema = arrow_schema(schema, classes, kind="quarantine")
    model_future = client.scatter(model, broadcast=True, hash=False)
    window = 2 * total_threads(client)
    with atomic_path(out) as tmp_out, atomic_path(quarantine) as tmp_q, contextlib.ExitStack() as stack:
        writer = stack.enter_context(pq.ParquetWriter(tmp_out, out_schema, **PARQUET_WRITE_OPTIONS))
        q_writer = stack.enter_context(pq.ParquetWriter(tmp_q, q_schema, **PARQUET_WRITE_OPTIONS))
        results = ordered_results(
            client, score_piece, tasks, model_future, schema, contract, validate, version, read_options, normalize,
            out_schema, q_schema, window=window, what="partitions scored",
        )  # fmt: skip
        for part in results:
            summary.merge(part.summary)
            if part.quarantined is not None:
                q_writer.write_table(part.quarantined)
            if part.scored is not None:
                writer.write_table(part.scored)
        stack.close()  # finish both Parquet footers before the renames
        check_batch(summary, schema, min_rows, validate)
    return summary
