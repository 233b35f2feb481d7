"""Write a starter data contract for ``ingest.source`` from its schema and data (``make suite``).

    python -m lifecycle.quality suggest [--params params.yaml] [--data RAW] [--schema SCHEMA] [--out YAML] [--force]

Defaults come from params.yaml: ``paths.raw``, ``paths.schema`` and ``paths.contracts/<dataset>.yaml``. An existing
contract is never overwritten without ``--force``. Review the result (docs/data-quality.md) and commit it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from lifecycle import cli
from lifecycle.config import load_params
from lifecycle.data.readers import read_parquet
from lifecycle.quality.contract import contract_path, dataset_key
from lifecycle.quality.suggest import suggest_contract, write_suggestion
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.quality", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("suggest", help="write a starter contract from the schema and the data's profile")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--data", help="raw table (default: paths.raw)")
    p.add_argument("--schema", help="schema JSON (default: paths.schema)")
    p.add_argument("--out", help="contract YAML (default: paths.contracts/<dataset>.yaml)")
    p.add_argument("--dataset", help="dataset name (default: from ingest.source)")
    p.add_argument("--margin", type=float, default=0.1, help="widen numeric bounds by this share of the spread")
    p.add_argument("--force", action="store_true", help="overwrite an existing contract")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    dataset = args.dataset or dataset_key(params.ingest.source)
    out = Path(args.out) if args.out else contract_path(params.paths.contracts, params.ingest.source)
    data = args.data or params.paths.raw
    schema = read_schema(args.schema or params.paths.schema)
    df = read_parquet(data, "raw data", producer="dvc repro ingest")
    write_suggestion(suggest_contract(df, schema, dataset, params.validate, args.margin), out, force=args.force)
    log.info("wrote a starter contract for %s (%d columns, from %d rows of %s) to %s; review it and commit it",
             dataset, len(schema.columns), len(df), data, out)  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
