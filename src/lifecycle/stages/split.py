"""Stage ``split``: validated rows -> train and test tables; seeded and stratified, or by time.

python -m lifecycle.stages.split --data VALIDATED --schema SCHEMA --train TRAIN --test TEST

How the rows are held out: lifecycle.data.split.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.config import load_params
from lifecycle.data.readers import read_parquet
from lifecycle.data.split import split
from lifecycle.io import write_table
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    df = read_parquet(args.data, "validated data")
    train, test = split(df, read_schema(args.schema), params.split, params.base.seed)
    write_table(train, args.train)
    write_table(test, args.test)
    log.info("split %d rows into %d train (%s) and %d test (%s)", len(df), len(train), args.train, len(test), args.test)


if __name__ == "__main__":
    cli.run(main)
