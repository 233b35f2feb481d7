"""Stage ``export``: package the trained model; convert it to ONNX and prove parity on the test split.

    python -m lifecycle.stages.export --model MODEL.joblib --train-meta TRAIN.json --data TEST --schema SCHEMA
        --onnx MODEL.onnx --meta MODEL.json [--contracts DIR]

Writes MODEL.json = TRAIN.json (unchanged keys: model.sha256, data, packages, schema, metrics) plus an ``onnx``
section: file, usable, sha256, bytes, opsets, package versions, the parity report (rows, label agreement,
largest absolute difference, the ``export.*`` thresholds, passed) and the reason when not usable; with
``--contracts``, a ``contract`` section: the data contract's file and the numeric bounds of the features
(``limits``: ``{column: [min, max]}``), which the server enforces on requests (values the quality gate would have
quarantined from the training data get a 422, not a prediction).

MODEL.onnx is always written (DVC needs every output): the ONNX graph when it converted and passed parity, else
an empty file (0 bytes) with ``onnx.usable: false`` and the reason in MODEL.json. A model that cannot be converted
or fails parity does not fail the stage: serving falls back to scikit-learn and says why.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib

from lifecycle import cli
from lifecycle.config import Export, load_params
from lifecycle.data.readers import read_parquet
from lifecycle.errors import DataError
from lifecycle.io import read_json, sha256_file, write_bytes, write_json
from lifecycle.onnx_engine import export_pipeline
from lifecycle.quality.contract import Contract, contract_path, load_contract, numeric_bounds
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def load_model(model_path: Path, train_meta: dict[str, Any]) -> Any:
    """Load the joblib pipeline, refusing one whose sha256 is not the one train recorded."""
    if not model_path.exists():
        raise DataError(f"{model_path}: model not found; run `dvc repro train` first")
    expected = train_meta.get("model", {}).get("sha256")
    actual = sha256_file(model_path)
    if actual != expected:
        raise DataError(
            f"{model_path}: sha256 {actual[:12]}... does not match model.sha256 {str(expected)[:12]}... in the "
            "train metadata; the two files come from different runs, rerun `dvc repro train`"
        )
    return joblib.load(model_path)


def package(
    train_meta: dict[str, Any],
    onnx_path: Path,
    model: bytes | None,
    report: dict[str, Any],
    contract: dict[str, Any] | None = None,
) -> dict:
    """model.json: the train metadata, untouched, plus the ``onnx`` section (and ``contract``, when given)."""
    for key in ("onnx", "contract"):
        if key in train_meta:
            raise DataError(f"the train metadata already has a key {key!r}; only export writes it into model.json")
    section = {"file": onnx_path.name, "sha256": None, "bytes": 0} | report
    if model is not None:
        section["sha256"] = sha256_file(onnx_path)
        section["bytes"] = onnx_path.stat().st_size
    return train_meta | {"onnx": section} | ({"contract": contract} if contract is not None else {})


def contract_section(contract: Contract, features: list[str]) -> dict[str, Any]:
    """model.json's ``contract``: which contract the training data passed, and its bounds on the numeric features."""
    return {"file": contract.path, "dataset": contract.dataset, "limits": numeric_bounds(contract, features)}


def run(
    model_path: Path,
    train_meta_path: Path,
    data: Path,
    schema_path: Path,
    onnx_path: Path,
    meta: Path,
    cfg: Export,
    *,
    contract: Contract | None = None,
) -> dict[str, Any]:
    """Read the inputs, export, write model.onnx and model.json; return model.json's content."""
    train_meta = read_json(train_meta_path)
    schema = read_schema(schema_path)
    pipeline = load_model(model_path, train_meta)
    df = read_parquet(data, "test split")
    if df.empty:
        raise DataError(f"{data}: test split has no rows, parity cannot be checked; rerun `dvc repro split`")
    absent = [c for c in schema.features if c not in df.columns]
    if absent:
        raise DataError(f"{data}: test split lacks feature column(s) {absent}; rerun `dvc repro split`")
    log.info("exporting %s; parity on %d test rows from %s", model_path, len(df), data)
    model, report = export_pipeline(
        pipeline,
        schema,
        df[schema.features],
        enabled=cfg.enabled,
        opset=cfg.opset,
        max_abs_diff=cfg.max_abs_diff,
        min_label_agreement=cfg.min_label_agreement,
    )
    write_bytes(onnx_path, model if model is not None else b"")
    section = contract_section(contract, schema.numeric) if contract is not None else None
    content = package(train_meta, onnx_path, model, report, section)
    write_json(meta, content)
    if model is None:
        log.warning(
            "ONNX not usable (%s): wrote an empty %s; serving will use scikit-learn", report["reason"], onnx_path
        )
    else:
        log.info("wrote %s (%d bytes); parity %s", onnx_path, len(model), report["parity"])
    log.info("wrote %s", meta)
    return content


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--train-meta", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--schema", required=True, type=Path)
    parser.add_argument("--onnx", required=True, type=Path)
    parser.add_argument("--meta", required=True, type=Path)
    parser.add_argument("--contracts", type=Path, help="directory of <dataset>.yaml data contracts (numeric bounds)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    contract = load_contract(contract_path(args.contracts, params.ingest.source)) if args.contracts else None
    run(args.model, args.train_meta, args.data, args.schema, args.onnx, args.meta, params.export, contract=contract)


if __name__ == "__main__":
    cli.run(main)
