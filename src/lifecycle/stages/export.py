"""Stage ``export``: package the trained model; convert it to ONNX and prove parity on a sample of the test split.

    python -m lifecycle.stages.export --model MODEL.joblib --train-meta TRAIN.json --data TEST --schema SCHEMA
        --onnx MODEL.onnx --meta MODEL.json [--contracts DIR]

Writes MODEL.json = TRAIN.json (its keys unchanged) plus an ``onnx`` section (``lifecycle.artifact.OnnxSection``:
file, usable, sha256, bytes, opsets, package versions, the parity report and the reason when not usable) and, with
``--contracts``, a ``contract`` section: the data contract's file and its numeric bounds on the features, which
the server enforces on requests. Parity is checked on ``export.parity_rows`` test rows drawn with ``base.seed``,
plus rows of every class, category and missing feature (lifecycle.onnx.parity.parity_sample). MODEL.onnx is
always written (DVC needs every output): the graph when it
converted and passed parity, else an empty file. A model that cannot be converted or fails parity does not fail
the stage: serving falls back to scikit-learn and says why.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from lifecycle import cli
from lifecycle.artifact import ModelMetadata, load_model
from lifecycle.config import Export, load_params
from lifecycle.data.readers import read_parquet
from lifecycle.errors import DataError
from lifecycle.io import write_bytes
from lifecycle.onnx.convert import package
from lifecycle.quality.contract import Contract, dataset_contract
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def run(
    model_path: Path,
    train_meta_path: Path,
    data: Path,
    schema_path: Path,
    onnx_path: Path,
    meta: Path,
    cfg: Export,
    *,
    seed: int,
    contract: Contract | None = None,
) -> ModelMetadata:
    """Read the inputs, :func:`lifecycle.onnx.convert.package` them (parity sample drawn with ``seed``), write
    model.onnx and model.json."""
    train = ModelMetadata.read(train_meta_path)
    pipeline = load_model(model_path, train, source=str(train_meta_path))
    schema = read_schema(schema_path)
    df = read_parquet(data, "test split", columns=[*schema.features, schema.target])
    if df.empty:
        raise DataError(f"{data}: test split has no rows, parity cannot be checked; rerun `dvc repro split`")
    absent = [c for c in schema.features if c not in df.columns]
    if absent:
        raise DataError(f"{data}: test split lacks feature column(s) {absent}; rerun `dvc repro split`")
    y = df[schema.target] if schema.target in df.columns else None
    log.info("exporting %s; parity on a sample of the %d test rows of %s", model_path, len(df), data)
    model, record = package(
        pipeline, train, schema, df[schema.features], cfg, seed=seed, y=y, contract=contract,
        onnx_file=onnx_path.name,
    )  # fmt: skip
    write_bytes(onnx_path, model or b"")
    record.write(meta)
    if model is None:
        log.warning(
            "ONNX not usable (%s): wrote an empty %s; serving will use scikit-learn", record.onnx.reason, onnx_path
        )
    else:
        log.info("wrote %s (%d bytes); parity %s", onnx_path, len(model), record.onnx.parity)
    log.info("wrote %s", meta)
    return record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    for flag in ("--model", "--train-meta", "--data", "--schema", "--onnx", "--meta"):
        parser.add_argument(flag, required=True, type=Path)
    parser.add_argument("--contracts", type=Path, help="directory of <dataset>.yaml data contracts (numeric bounds)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    contract = None
    if args.contracts:  # an unreviewed (inferred) contract has no bounds to record
        found = dataset_contract(args.contracts, params.ingest.source, read_schema(args.schema))
        contract = found if found.reviewed else None
    run(
        args.model, args.train_meta, args.data, args.schema, args.onnx, args.meta, params.export,
        seed=params.base.seed, contract=contract,
    )  # fmt: skip


if __name__ == "__main__":
    cli.run(main)
