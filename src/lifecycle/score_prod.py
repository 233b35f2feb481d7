"""Score a batch with the production model, outside the pipeline (not a DVC stage).

    python -m lifecycle.score_prod --batch new.parquet --out scored.parquet            # the registry's prod model
    python -m lifecycle.score_prod --batch data/incoming --out scored.parquet --model models/model.joblib

The same chunked validation and prediction as the ``score`` stage (lifecycle.batch), with the model the registry
assigns to ``--stage`` (default ``prod``; lifecycle.registry.fetch resolves it in the GTO tags of ``--repo`` and
materializes its files from DVC) or an explicit ``--model`` file. The model's metadata (``model.json`` next to it,
or ``--meta``) gives the schema the batch is validated against and the version written next to every prediction;
the model is loaded only after its sha256 matched. Rows that fail validation go to ``--quarantine`` (default:
``<out>.quarantine.parquet``). A summary is printed as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lifecycle import cli
from lifecycle.artifact import ModelMetadata, load_model
from lifecycle.batch import score_with_params
from lifecycle.config import load_params
from lifecycle.data.readers import batch_files
from lifecycle.errors import DataError
from lifecycle.quality.contract import dataset_contract, load_contract
from lifecycle.registry import RegistryError, fetch
from lifecycle.schema import read_schema

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.score_prod", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", required=True, help="a CSV/Parquet file or a directory of them")
    parser.add_argument("--out", required=True, help="scored rows (Parquet)")
    parser.add_argument("--quarantine", default=None, help="rows that failed validation (Parquet)")
    parser.add_argument("--stage", default="prod", help="registry stage whose model scores the batch (default prod)")
    parser.add_argument("--repo", default=".", help="git repository holding the registry tags (default: here)")
    parser.add_argument("--model", default=None, help="score with this model file instead of the registry's")
    parser.add_argument("--meta", default=None, help="the model's metadata (default: model.json next to --model)")
    parser.add_argument("--schema", default=None, help="schema JSON (default: the one in the model's metadata)")
    parser.add_argument("--contract", default=None, help="data contract YAML (default: paths.contracts/<dataset>.yaml)")
    parser.add_argument("--params", default="params.yaml", help="score.* and validate.* thresholds")
    args = parser.parse_args(argv)

    out = Path(args.out)
    if out.suffix.lower() != ".parquet":
        raise DataError(f"--out {out}: scored output is Parquet; end the path in .parquet")
    quarantine = Path(args.quarantine) if args.quarantine else out.with_name(out.stem + ".quarantine.parquet")
    with tempfile.TemporaryDirectory(prefix="score-prod-") as tmp:
        if args.model:
            model_path = Path(args.model)
            meta_path = Path(args.meta) if args.meta else model_path.with_name("model.json")
        else:
            try:
                version, files = fetch(args.stage, args.repo, tmp)
            except RegistryError as exc:
                raise RegistryError(f"{exc}; or score with a model file: --model models/model.joblib") from exc
            log.info("registry: stage %s is %s (%s, commit %s)", args.stage, version.version, version.tag,
                     version.commit[:12])  # fmt: skip
            model_path, meta_path = files.model, files.meta
        params = load_params(args.params)
        record = ModelMetadata.read(meta_path)
        schema = read_schema(args.schema) if args.schema else record.training_schema
        if args.contract:
            contract = load_contract(args.contract)
        else:
            contract = dataset_contract(params.paths.contracts, params.ingest.source, schema)
        batch = batch_files(args.batch)
        model = load_model(model_path, record)
        log.info("scoring %d file(s) with model %s (%s)", len(batch), record.version, model_path)
        summary = score_with_params(params, batch, model, schema, record.version, out, quarantine, contract)
    json.dump(summary.to_dict() | {"out": str(out), "quarantine": str(quarantine)}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    cli.run(main, name="score_prod")
