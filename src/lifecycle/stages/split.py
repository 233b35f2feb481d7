"""Stage ``split``: validated rows -> train and test tables; seeded and stratified, or by time.

python -m lifecycle.stages.split --data VALIDATED --schema SCHEMA --train TRAIN --test TEST
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd
from sklearn.model_selection import train_test_split

from lifecycle import cli
from lifecycle.config import Split, load_params
from lifecycle.data.readers import read_parquet
from lifecycle.errors import DataError
from lifecycle.io import write_table
from lifecycle.schema import Schema, read_schema

log = logging.getLogger(__name__)


def split(df: pd.DataFrame, schema: Schema, cfg: Split, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``test_size`` of the rows: the latest ones when ``time_column`` is set, else a seeded sample
    (stratified by the target for classification when ``stratify`` is true)."""
    if len(df) < 2:
        raise DataError(f"split: {len(df)} row(s) left after validation; at least 2 are needed")
    if cfg.time_column is not None:
        if cfg.time_column not in schema.datetimes:
            raise DataError(
                f"params.yaml: split.time_column: {cfg.time_column!r} is not a datetime column; "
                f"datetime columns in the schema: {schema.datetimes or 'none'} (or set it to null)"
            )
        ordered = df.sort_values(cfg.time_column, kind="stable", na_position="first").reset_index(drop=True)
        cut = len(ordered) - max(1, round(len(ordered) * cfg.test_size))
        train, test = ordered.iloc[:cut], ordered.iloc[cut:]
        log.info("time split on %s at %s", cfg.time_column, test[cfg.time_column].iloc[0])
        return train.reset_index(drop=True), test.reset_index(drop=True)
    stratify = None
    if cfg.stratify and schema.task == "classification":
        counts = df[schema.target].value_counts()
        rare = counts[counts < 2]
        if not rare.empty:
            raise DataError(
                f"split: class(es) {rare.index.tolist()} of target {schema.target!r} have fewer than 2 rows, "
                "too few to stratify; set split.stratify: false or add rows"
            )
        stratify = df[schema.target]
    train, test = train_test_split(df, test_size=cfg.test_size, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


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
    log.info(
        "split %d rows into %d train (%s) and %d test (%s)",
        len(df),
        len(train),
        args.train,
        len(test),
        args.test,
    )


if __name__ == "__main__":
    cli.run(main)
