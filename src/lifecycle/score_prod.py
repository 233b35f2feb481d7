"""Score a batch with the production model, outside the pipeline (not a DVC stage).

    python -m lifecycle.score_prod --batch new.parquet --out scored.parquet            # the registry's prod model
    python -m lifecycle.score_prod --batch data/incoming --out scored.parquet --model models/model.joblib

The same chunked validation and prediction as the ``score`` stage (lifecycle.stages.score), with the model the
registry marks ``prod`` (``--stage``; ``lifecycle.registry.resolve_prod`` finds the version in the GTO tags of
``--repo`` and its files come from DVC at that commit) or an explicit ``--model`` file. The model's card (``model.json`` next to
it, or ``--meta``) gives the schema the batch is validated against and the version written next to every
prediction. Rows that fail validation go to ``--quarantine`` (default: ``<out>.quarantine.parquet``). A summary
is printed as JSON on stdout.
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
from lifecycle.config import load_params
from lifecycle.errors import DataError
from lifecycle.io import read_json
from lifecycle.quality import contract_path, load_contract
from lifecycle.schema import Schema, read_schema
from lifecycle.stages.score import batch_files, load_model, model_version, score_with_params

log = logging.getLogger(__name__)


def resolve_model(stage: str, repo: str | Path, dest: str | Path) -> tuple[Path, Path]:
    """The model file and card that the registry (GTO tags in ``repo``) assigns to ``stage``, written into ``dest``.

    ``lifecycle.registry.resolve_prod`` finds the version; its files come from DVC at that version's commit.
    """
    from gto.exceptions import GTOException

    from lifecycle.registry import resolve_prod

    try:
        version = resolve_prod(stage, repo=repo)
    except GTOException as exc:
        raise DataError(
            f"{repo}: the registry has no {stage!r} model ({type(exc).__name__}: {exc}); release one with "
            "`make release`, or score with a model file: --model models/model.joblib"
        ) from exc
    files = version.materialize(dest)
    log.info("registry: stage %s is %s (%s, commit %s)", stage, version.version, version.tag, version.commit[:12])
    return Path(files.model), Path(files.meta)


def card_schema(meta: dict, schema_path: str | None) -> Schema:
    """The schema the model was trained on: ``--schema`` if given, else the one stored in its model.json."""
    if schema_path:
        return read_schema(schema_path)
    if "schema" not in meta:
        raise DataError("model.json holds no schema; pass --schema data/interim/schema.json")
    return Schema.from_dict(meta["schema"])


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
    parser.add_argument("--meta", default=None, help="the model's card (default: model.json next to --model)")
    parser.add_argument("--schema", default=None, help="schema JSON (default: the one in the model card)")
    parser.add_argument("--contract", default=None, help="data contract YAML (default: paths.contracts/<dataset>.yaml)")
    parser.add_argument("--params", default="params.yaml", help="score.* and validate.* thresholds")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="score-prod-") as tmp:
        if args.model:
            model_path = Path(args.model)
            meta_path = Path(args.meta) if args.meta else model_path.with_name("model.json")
        else:
            model_path, meta_path = resolve_model(args.stage, args.repo, tmp)
        score(args, model_path, meta_path)


def score(args: argparse.Namespace, model_path: Path, meta_path: Path) -> None:
    """Validate and score ``args.batch`` with the given model; print the summary."""
    out = Path(args.out)
    if out.suffix.lower() != ".parquet":
        raise DataError(f"--out {out}: scored output is Parquet; end the path in .parquet")
    quarantine = Path(args.quarantine) if args.quarantine else out.with_name(out.stem + ".quarantine.parquet")
    params = load_params(args.params)
    contract = load_contract(args.contract or contract_path(params.paths.contracts, params.ingest.source))
    meta = read_json(meta_path)
    schema = card_schema(meta, args.schema)
    files = batch_files(args.batch)
    model = load_model(model_path)
    version = model_version(meta, model_path)
    log.info("scoring %d file(s) with model %s (%s)", len(files), version, model_path)
    summary = score_with_params(params, files, model, schema, version, out, quarantine, contract)
    json.dump(summary.to_dict() | {"out": str(out), "quarantine": str(quarantine)}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    cli.run(main, name="score_prod")
