"""Stage ``score``: validate a batch like the training data, predict it in chunks, write prediction records.

    python -m lifecycle.stages.score --incoming data/incoming --demo data/demo/incoming --model MODEL --meta MODEL.json \
        --schema SCHEMA \
        --contracts data/contracts --out data/scored/predictions.parquet --quarantine data/scored/quarantine.parquet \
        --metrics metrics/score.json [--summary reports/score.json]

``--incoming`` (your DVC-tracked batches) and ``--demo`` (the simulate stage's demo batch) are CSV/Parquet files or
directories whose ``.csv``/``.parquet`` files (name order; yours first) form the batch. Under DVC, a file of yours that
git and DVC do not track is warned about (experiments and clones do not see it), and an experiment that lacks a file
the workspace has stops naming it (lifecycle.data.tracking).
The model is loaded only after its sha256 matched ``--meta`` (lifecycle.artifact.load_model); its version (the
first 12 hex digits of that sha256) is written next to every prediction. The work is lifecycle.batch: chunked
validation with the training data's contract, prediction, and the whole-batch thresholds; a failure leaves the
previous outputs and sends a webhook message (``notify``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.artifact import ModelMetadata, load_model
from lifecycle.batch import score_with_params
from lifecycle.config import load_params
from lifecycle.data.readers import batch_files
from lifecycle.data.tracking import check_inputs
from lifecycle.errors import GateError
from lifecycle.io import write_json
from lifecycle.notify import notify
from lifecycle.quality.contract import dataset_contract
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--incoming", required=True, nargs="+", help="your batches: CSV/Parquet files or folders")
    parser.add_argument("--demo", nargs="*", default=[], help="the demo batch (stage simulate), scored after yours")
    parser.add_argument("--model", required=True)
    parser.add_argument("--meta", required=True, help="model.json: the model's sha256 (integrity and version)")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--contracts", required=True, help="directory of <dataset>.yaml data contracts")
    parser.add_argument("--out", required=True)
    parser.add_argument("--quarantine", required=True)
    parser.add_argument("--metrics", required=True, help="DVC metrics: rows read, scored, quarantined")
    parser.add_argument("--summary", help="the batch's summary: files, model version, reasons, predicted classes")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    schema = read_schema(args.schema)
    contract = dataset_contract(args.contracts, params.ingest.source, schema)
    check_inputs(args.incoming, "batch")  # yours; the demo batch is a stage's output, always there
    files = batch_files([*args.incoming, *args.demo])
    record = ModelMetadata.read(args.meta)
    model = load_model(args.model, record)
    try:
        summary = score_with_params(params, files, model, schema, record.version, args.out, args.quarantine, contract)
    except GateError as exc:
        notify(params.notify, "Batch rejected by validation", [str(exc)], status="failure")
        raise
    write_json(args.metrics, summary.headline())
    if args.summary:
        write_json(args.summary, summary.to_dict())
    log.info("scored %d of %d rows from %d file(s) with model %s -> %s (%d quarantined -> %s)",
             summary.rows_scored, summary.rows_read, len(files), record.version, args.out,
             summary.rows_quarantined, args.quarantine)  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
