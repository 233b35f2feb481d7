"""Stage ``ingest``: built-in telemetry or the user's CSV/Parquet/S3 file (+ the labelled batches of ``make retrain``,
by ``retrain.strategy``) -> raw Parquet + inferred schema.

python -m lifecycle.stages.ingest --out data/raw/dataset.parquet --schema data/interim/schema.json --labelled data/labelled

What is read and how the schema is inferred: lifecycle.data.ingest. Under DVC a local ``ingest.source`` must lie
inside ``paths.external`` (a dependency of this stage, so editing the file reruns it); an ``s3://`` source is read
but its content is not tracked (a warning says how to track it): lifecycle.data.tracking.check_source.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.config import load_params
from lifecycle.data.ingest import load_dataset
from lifecycle.data.labelled import read_labelled
from lifecycle.data.tracking import check_inputs, check_source
from lifecycle.io import write_json, write_table

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="raw table (Parquet)")
    parser.add_argument("--schema", required=True, help="inferred schema (JSON)")
    parser.add_argument("--labelled", help="folder of labelled batches added by retrain.strategy (make retrain)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    check_source(params.ingest.source, params.paths.external)
    if args.labelled:
        check_inputs([args.labelled], "labelled batch")  # make retrain dvc-adds each one
    labelled = read_labelled(args.labelled) if args.labelled else None
    df, schema = load_dataset(params.ingest, params.base.seed, labelled, params.retrain, args.labelled or "")
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
