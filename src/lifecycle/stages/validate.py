"""Stage ``validate``: the data quality gate. The dataset's contract, checked with Great Expectations.

    python -m lifecycle.stages.validate --data RAW --schema SCHEMA --contracts DIR --out VALIDATED \
        --quarantine Q --metrics M --report-json reports/validation.json --report-md reports/validation.md

The contract is ``<contracts>/<dataset>.yaml`` for ``ingest.source`` (``telemetry.yaml`` for the built-in data;
see docs/data-quality.md); without one, the checks that need no review run (lifecycle.quality.contract.
inferred_contract) and the stage says loudly that no reviewed contract exists. Rows that break a row-level rule go
to ``--quarantine`` with a ``reason`` (rows without a target as ``unlabeled``); the clean rows to ``--out``. On a
table-level failure, or when more than ``validate.max_bad_row_fraction`` of the rows were quarantined (or more than
``validate.max_unlabeled_fraction`` are unlabeled), the stage sends the failed rules to ``notify.webhook_url`` (when
set), exits 1 with every failed rule in the message and leaves ``--out`` and ``--quarantine`` as they were; the
metrics and both reports are written either way.
The pandas phase and the Parquet writes (to temporary files) run while Great Expectations is still being
imported (lifecycle.quality.gx_import); the files are renamed into place only after the gate passed.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.config import load_params
from lifecycle.data.readers import read_parquet
from lifecycle.io import atomic_path, to_parquet, write_json
from lifecycle.notify import notify
from lifecycle.quality.contract import dataset_contract
from lifecycle.quality.gx import judge
from lifecycle.quality.gx_import import prefetch_gx
from lifecycle.quality.report import write_reports
from lifecycle.quality.rules import split_rows
from lifecycle.schema import label_series, read_schema

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="raw table (Parquet)")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--contracts", required=True, help="directory of <dataset>.yaml data contracts")
    parser.add_argument("--out", required=True, help="clean rows (Parquet)")
    parser.add_argument("--quarantine", required=True, help="quarantined rows + reason (Parquet)")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--report-json", required=True, help="Great Expectations results + the decision")
    parser.add_argument("--report-md", required=True, help="readable report")
    args = parser.parse_args(argv)

    importing = prefetch_gx()  # overlaps the ~2 s import with reading and checking the data
    try:
        params = load_params(args.params)
        schema = read_schema(args.schema)
        df = read_parquet(args.data, "raw data", producer="dvc repro ingest")
        contract = dataset_contract(args.contracts, params.ingest.source, schema, df)
        against = contract.path if contract.reviewed else "the checks inferred from the schema"
        log.info("checking %d rows x %d columns of %s against %s", len(df), df.shape[1], args.data, against)
        split = split_rows(df, contract)
        if schema.task == "classification" and schema.target in split.clean.columns:  # labeled: Int64 -> int64
            target = schema.column(schema.target)
            split.clean[schema.target] = label_series(split.clean[schema.target], target.dtype)
        hint = f"full result: {args.report_json}; report: {args.report_md}"
        with atomic_path(args.out) as tmp_out, atomic_path(args.quarantine) as tmp_q:
            for frame, tmp in ((split.clean, tmp_out), (split.quarantined, tmp_q)):
                to_parquet(frame, tmp)
            result = judge(split, schema, contract, params.validate, source=args.data)
            write_json(args.metrics, result.metrics)
            write_reports(result, args.report_json, args.report_md, args.quarantine)
            if not result.success:
                notify(
                    params.notify, "Data quality gate failed: the last good data stays in place",
                    result.summary().splitlines(), status="failure", link=args.report_md,
                )  # fmt: skip
            result.raise_if_failed(hint)  # raising here deletes both temporary files: the last good outputs stay
    finally:
        importing.join()  # never exit while the import thread runs (it may still write warnings)
    if result.contract_reviewed:
        log.info("%s", result.summary(hint))
    else:
        log.warning("%s", result.summary(hint))
    log.info("wrote %d clean rows -> %s, %d quarantined -> %s", len(result.clean), args.out,
             len(result.quarantined), args.quarantine)  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
