"""Ingest: the raw rows of ``ingest.source`` (the telemetry simulator, or a CSV/Parquet path or ``s3://`` URI) and
the table the rest of the pipeline reads, with its inferred schema."""

from __future__ import annotations

import logging

import pandas as pd

from lifecycle.config import Ingest, Retrain
from lifecycle.data import telemetry
from lifecycle.data.labelled import training_rows
from lifecycle.data.readers import check_text_columns, read_table
from lifecycle.errors import DataError
from lifecycle.schema import Schema, coerce_frame, infer_schema, normalize_columns, normalize_name, resolve_column

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
    None or empty: the source's rows alone (``recent`` then fails, naming ``labelled_source``). Their column names
    are normalized (as :func:`lifecycle.data.labelled.label_batches` writes them); they take the source's headers as
    written, so :func:`prepare` sees the source's own header (params may name columns either way).
    """
    source = "telemetry simulator" if ingest.source == TELEMETRY else ingest.source
    df = load_source(ingest, seed)
    if retrain is not None:
        extra = pd.DataFrame() if labelled is None else labelled
        if ingest.normalize_columns and not extra.empty:
            normalize_columns(df)  # two headers that normalize alike: the same error prepare would raise
            extra = extra.rename(columns={normalize_name(c): str(c) for c in df.columns})
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
    """Check the text columns (:func:`~lifecycle.data.readers.check_text_columns`), normalize column names
    (``ingest.normalize_columns``), drop ``ingest.drop_columns``, infer the schema and give every column its
    canonical dtype.

    Columns named in params (``target``, ``drop_columns``, ``id_columns``) may be written as the file's header
    writes them or normalized. Dates are learned from through ``ingest.datetime_features``, except in the
    simulator's data (``source`` = ``telemetry simulator``): its ``recorded_at`` says when a reading was taken, which
    its sensors already carry (season: ambient temperature; pack age: charge cycles), and its fleet v2 is a year
    later, where elapsed time only extrapolates.

    Returns ``(table, schema)``: the table holds exactly the schema's columns, in its order. ``source`` names the
    data in errors. Raises :class:`~lifecycle.errors.DataError` for a params column that does not exist, for text
    columns that hold numbers or dates pandas did not parse (naming the ``read_options`` fix), and for everything
    :func:`lifecycle.schema.infer_schema` refuses (missing target, single class, all-null column, ...).
    """
    simulated = ingest.source == TELEMETRY
    if not simulated:
        check_text_columns(df, source, ingest.read_options)
    written = {str(c): str(c) for c in df.columns}
    if ingest.normalize_columns:
        written = {normalize_name(c): str(c) for c in df.columns}
        df = normalize_columns(df)
    dropped = [resolve_column(c, df.columns, "ingest.drop_columns", source, written) for c in ingest.drop_columns]
    df = df.drop(columns=dropped)
    schema = infer_schema(
        df,
        target=ingest.target,
        task=ingest.task,
        id_columns=ingest.id_columns,
        max_categories=ingest.max_categories,
        source=source,
        min_category_rows=ingest.min_category_rows,
        datetime_features=() if simulated else ingest.datetime_features,
        written=written,
    )
    df = coerce_frame(df, schema)
    return df[[c.name for c in schema.columns]], schema
