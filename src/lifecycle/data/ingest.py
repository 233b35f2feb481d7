"""Ingest: the raw rows of ``ingest.source`` (the telemetry simulator, or a CSV/Parquet path or ``s3://`` URI) and
the table the rest of the pipeline reads, with its inferred schema."""

from __future__ import annotations

import logging

import pandas as pd

from lifecycle.config import Ingest, Retrain
from lifecycle.data import telemetry
from lifecycle.data.labelled import training_rows
from lifecycle.data.readers import read_table
from lifecycle.errors import DataError
from lifecycle.schema import Schema, coerce_frame, infer_schema, normalize_columns

log = logging.getLogger(__name__)
TELEMETRY = "telemetry"  # ingest.source of the built-in simulator


def load_dataset(
    ingest: Ingest,
    seed: int,
    labelled: pd.DataFrame | None = None,
    retrain: Retrain | None = None,
    labelled_source: str = "paths.labelled",
) -> tuple[pd.DataFrame, Schema]:
    """:func:`prepare` of :func:`load_source`: the table and its schema from params.yaml's ``ingest`` section
    (``seed``: base.seed). Errors name the file or URI, or the ``telemetry simulator``.

    ``labelled``: the labelled batches (:func:`lifecycle.data.labelled.read_labelled` of ``labelled_source``), added
    to or replacing the source's rows by ``retrain.strategy`` (:func:`lifecycle.data.labelled.training_rows`);
    None or empty: the source's rows alone (``recent`` then fails, naming ``labelled_source``).
    """
    source = "telemetry simulator" if ingest.source == TELEMETRY else ingest.source
    df = load_source(ingest, seed)
    if retrain is not None:
        if ingest.normalize_columns:
            df = normalize_columns(df)
        extra = pd.DataFrame() if labelled is None else labelled
        df = training_rows(df, extra, retrain.strategy, retrain.min_labelled_rows, labelled_source)
        if not extra.empty:
            source = f"{source} + {labelled_source}"
    return prepare(df, ingest, source)


def load_source(ingest: Ingest, seed: int) -> pd.DataFrame:
    """The raw rows: simulated telemetry (``source: telemetry``) or the file/URI ``ingest.source`` names.

    Telemetry: ``ingest.rows`` rows per fleet version of ``ingest.data_version`` (one name or a list), the i-th
    version generated with ``seed + i``, concatenated. A file is read with ``ingest.read_options`` (passed to
    pandas). Raises :class:`~lifecycle.errors.DataError` for a simulator argument out of range, or a missing, empty or unreadable file (the message names the file or key and the fix).
    """
    if ingest.source == TELEMETRY:
        versions = [ingest.data_version] if isinstance(ingest.data_version, str) else list(ingest.data_version)
        frames = []
        for i, version in enumerate(versions):
            try:
                frames.append(
                    telemetry.generate(
                        rows=ingest.rows,
                        version=version,
                        seed=seed + i,
                        missing_rate=ingest.missing_rate,
                        glitch_rate=ingest.glitch_rate,
                        duplicate_rate=ingest.duplicate_rate,
                    )
                )
            except ValueError as exc:
                raise DataError(f"params.yaml: ingest: {exc}") from exc
            log.info("generated %d telemetry rows of fleet version %s (seed %d)", ingest.rows, version, seed + i)
        return pd.concat(frames, ignore_index=True)
    df = read_table(ingest.source, ingest.read_options)
    log.info("read %d rows x %d columns from %s", len(df), df.shape[1], ingest.source)
    return df


def prepare(df: pd.DataFrame, ingest: Ingest, source: str) -> tuple[pd.DataFrame, Schema]:
    """Normalize column names (``ingest.normalize_columns``), drop ``ingest.drop_columns``, infer the schema and
    give every column its canonical dtype.

    Returns ``(table, schema)``: the table holds exactly the schema's columns, in its order. ``source`` names the
    data in errors. Raises :class:`~lifecycle.errors.DataError` for a dropped column that does not exist and for
    everything :func:`lifecycle.schema.infer_schema` refuses (missing target, single class, null target, ...).
    """
    if ingest.normalize_columns:
        df = normalize_columns(df)
    missing = [c for c in ingest.drop_columns if c not in df.columns]
    if missing:
        raise DataError(f"{source}: ingest.drop_columns lists {missing}, not columns of the data")
    df = df.drop(columns=list(ingest.drop_columns))
    schema = infer_schema(
        df,
        target=ingest.target,
        task=ingest.task,
        id_columns=ingest.id_columns,
        max_categories=ingest.max_categories,
        source=source,
    )
    df = coerce_frame(df, schema)
    return df[[c.name for c in schema.columns]], schema
