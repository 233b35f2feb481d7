"""Stage ``ingest``: built-in telemetry or the user's CSV/Parquet/S3 file -> raw Parquet + inferred schema.

python -m lifecycle.stages.ingest --out data/raw/dataset.parquet --schema data/interim/schema.json
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd

from lifecycle import cli
from lifecycle.config import Ingest, load_params
from lifecycle.data import telemetry
from lifecycle.data.readers import read_table
from lifecycle.errors import DataError
from lifecycle.io import write_json, write_table
from lifecycle.schema import Schema, coerce_frame, infer_schema, normalize_columns

log = logging.getLogger(__name__)


def load_source(ingest: Ingest, seed: int) -> pd.DataFrame:
    """The raw rows: simulated telemetry (``source: telemetry``) or the file/URI ``ingest.source`` names."""
    if ingest.source == "telemetry":
        versions = [ingest.data_version] if isinstance(ingest.data_version, str) else list(ingest.data_version)
        if not versions:
            raise DataError("params.yaml: ingest.data_version is an empty list; name at least one version (v1)")
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
    """Normalize names, drop configured columns, infer the schema and give columns canonical dtypes."""
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="raw table (Parquet)")
    parser.add_argument("--schema", required=True, help="inferred schema (JSON)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    ingest = params.ingest
    source = "telemetry simulator" if ingest.source == "telemetry" else ingest.source
    df, schema = prepare(load_source(ingest, params.base.seed), ingest, source)
    write_table(df, args.out)
    write_json(args.schema, schema.to_dict())
    log.info(
        "wrote %d rows to %s; schema %s: %d numeric, %d categorical, %d datetime, %d identifier; target %r (%s%s)",
        len(df), args.out, args.schema, len(schema.numeric), len(schema.categorical), len(schema.datetimes),
        len(schema.identifiers), schema.target, schema.task,
        f", {len(schema.classes)} classes" if schema.classes else "",
    )  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
