"""Labelled batches: incoming rows joined with the feedback labels that arrived for them, the data a retrained model
learns from beyond ``ingest.source``.

``make retrain`` (lifecycle.retrain) writes the new ones, one Parquet file per retrain, into ``paths.labelled``
(``data/labelled``) and tracks them with DVC; the ingest stage reads every file there and, by ``retrain.strategy``,
appends them to the rows of ``ingest.source`` (``combined``) or trains on them alone (``recent``). On a repository
that never retrained the folder holds no table and ingest reads ``ingest.source`` alone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lifecycle.data.readers import batch_files, read_table
from lifecycle.errors import DataError
from lifecycle.io import TABLE_SUFFIXES
from lifecycle.schema import normalize_columns

log = logging.getLogger(__name__)
STRATEGIES = ("combined", "recent")


def label_batches(
    batches: Sequence[Path],
    labels: pd.DataFrame,
    id_column: str,
    target: str,
    columns: Sequence[str],
    read_options: Mapping[str, Any] | None = None,
    normalize: bool = True,
) -> pd.DataFrame:
    """The rows of ``batches`` (CSV/Parquet files, read in order with ``read_options``) that have a label.

    ``labels``: two columns, ``id_column`` (text) and ``target``, one row per id (as
    :func:`lifecycle.monitoring.feedback.read_feedback` returns them). A batch that carries the target column itself
    keeps its own non-null labels; a feedback label wins for the same id (it arrived later). Column names are
    normalized like ingest does (``normalize``). A row id repeated across or within batches keeps its last row.

    Returns a frame with exactly ``columns`` (the training schema's columns, target included), in the batches' row
    order; empty when no row has a label. Raises :class:`DataError` naming the file that lacks the id column or one
    of ``columns``.
    """
    frames = []
    for path in batches:
        df = read_table(path, read_options)
        if normalize:
            df = normalize_columns(df)
        missing = [c for c in columns if c not in df.columns and c != target]
        if id_column not in df.columns or missing:
            need = sorted({id_column, *missing} - set(df.columns))
            raise DataError(
                f"{path}: column(s) {need} missing; a batch needs the training schema's columns to be trained on "
                "(fix the file, or move it out of the incoming folder)"
            )
        if target not in df.columns:
            df[target] = pd.NA
        frames.append(df[list(columns)].assign(**{id_column: df[id_column].astype(str)}))
    if not frames:
        return pd.DataFrame(columns=list(columns))
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(id_column, keep="last")
    if not labels.empty:
        late = labels.set_index(id_column)[target]
        from_feedback = rows[id_column].map(late)
        rows[target] = from_feedback.where(from_feedback.notna(), rows[target])
    labelled = rows[rows[target].notna()].reset_index(drop=True)
    log.info(
        "%d of %d batch rows have a label (%d feedback labels; batches: %s)",
        len(labelled), len(rows), len(labels), ", ".join(p.name for p in batches) or "none",
    )  # fmt: skip
    return labelled


def read_labelled(folder: str | Path) -> pd.DataFrame:
    """Every labelled batch in ``folder`` (``.csv``/``.parquet`` files, name order), concatenated; an empty frame
    when there is none (or no folder). Raises :class:`DataError` naming an unreadable file."""
    p = Path(folder)
    if not p.is_dir() or not any(f.suffix.lower() in TABLE_SUFFIXES for f in p.iterdir()):
        return pd.DataFrame()
    frames = [read_table(f) for f in batch_files(p)]
    return pd.concat(frames, ignore_index=True)


def known_ids(folder: str | Path, id_column: str) -> set[str]:
    """The row ids already in the labelled batches of ``folder`` (none when it holds no table)."""
    df = read_labelled(folder)
    return set(df[id_column].astype(str)) if id_column in df.columns else set()


def training_rows(
    source: pd.DataFrame, labelled: pd.DataFrame, strategy: str, min_rows: int, where: str = "paths.labelled"
) -> pd.DataFrame:
    """The rows ingest trains on: ``source`` (ingest.source's rows, column names normalized) and the ``labelled``
    batches, by ``strategy``: ``combined`` = source then labelled, ``recent`` = labelled alone.

    The labelled rows keep the source's columns (a source column they lack is null in them). Raises
    :class:`DataError` for an unknown strategy, labelled batches with a column the source does not have (they were
    built for another dataset: ``where`` names the folder), or ``recent`` with fewer than ``min_rows`` labelled rows.
    """
    if strategy not in STRATEGIES:
        raise DataError(f"retrain.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if labelled.empty:
        if strategy == "recent":
            raise DataError(
                f"retrain.strategy is 'recent' but {where} holds no labelled rows (at least retrain.min_labelled_rows"
                f"={min_rows} are needed); run `make retrain` once labels arrived, or use strategy 'combined'"
            )
        return source
    extra = [c for c in labelled.columns if c not in source.columns]
    if extra:
        raise DataError(
            f"{where}: column(s) {extra} are not in ingest.source's data: these labelled batches belong to another "
            "dataset; remove them (git rm the .dvc files) or point ingest.source back at their data"
        )
    if strategy == "recent":
        if len(labelled) < min_rows:
            raise DataError(
                f"retrain.strategy 'recent' trains on {where} alone, which holds {len(labelled)} rows, fewer than "
                f"retrain.min_labelled_rows={min_rows}; wait for more labels or use strategy 'combined'"
            )
        log.info("strategy recent: training on %d labelled rows only (%s)", len(labelled), where)
        return labelled.reindex(columns=source.columns).reset_index(drop=True)
    log.info("strategy combined: %d source rows + %d labelled rows (%s)", len(source), len(labelled), where)
    return pd.concat([source, labelled.reindex(columns=source.columns)], ignore_index=True)


def batch_name(labelled: pd.DataFrame, id_column: str, target: str) -> str:
    """A stable file stem for a new labelled batch: ``labelled-`` + 12 hex digits of the sha256 of its ids and
    labels, so the same rows always get the same name (no dates: outputs hold nothing volatile)."""
    digest = hashlib.sha256()
    for rid, label in zip(labelled[id_column].astype(str), labelled[target].astype(str), strict=True):
        digest.update(f"{rid}\x1f{label}\x1e".encode())
    return f"labelled-{digest.hexdigest()[:12]}"
