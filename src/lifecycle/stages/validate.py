"""Stage ``validate``: Great Expectations checks of schema, nulls and row counts before anything learns.

python -m lifecycle.stages.validate --data RAW --schema SCHEMA --out VALIDATED --quarantine Q --metrics M
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from lifecycle import cli
from lifecycle.errors import GateError
from lifecycle.io import read_parquet, write_json, write_table
from lifecycle.params import Validate, load_params
from lifecycle.schema import Schema, read_schema

log = logging.getLogger(__name__)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def build_expectations(schema: Schema, cfg: Validate) -> list[Any]:
    import great_expectations as gx

    exps: list[Any] = [gx.expectations.ExpectTableRowCountToBeBetween(min_value=cfg.min_rows, max_value=cfg.max_rows)]
    for col in schema.columns:
        exps.append(gx.expectations.ExpectColumnToExist(column=col.name))
        if col.role == "target":
            exps.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=col.name))
        elif col.role in ("numeric", "categorical"):
            exps.append(
                gx.expectations.ExpectColumnValuesToNotBeNull(column=col.name, mostly=1 - cfg.max_null_fraction)
            )
    return exps


def run_checks(df: pd.DataFrame, schema: Schema, cfg: Validate) -> dict[str, Any]:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("pandas")
        .add_dataframe_asset("data")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="data_contract", expectations=build_expectations(schema, cfg)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="validate", data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    return result.to_json_dict()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--quarantine", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)

    cfg = load_params(args.params).validate
    schema = read_schema(args.schema)
    df = read_parquet(args.data, "raw data")
    result = run_checks(df, schema, cfg)
    failed = [r for r in result["results"] if not r["success"]]
    metrics = {"success": not failed, "rows_checked": len(df), "rows_quarantined": 0}
    write_json(args.metrics, metrics)
    if failed:
        lines = [f"{r['expectation_config']['type']} {r['expectation_config']['kwargs']}" for r in failed]
        raise GateError(f"{args.data}: {len(failed)} expectation(s) failed: " + "; ".join(lines))
    write_table(df.iloc[0:0], args.quarantine)
    write_table(df, args.out)
    log.info("validated %d rows of %s -> %s", len(df), args.data, args.out)


if __name__ == "__main__":
    cli.run(main)
