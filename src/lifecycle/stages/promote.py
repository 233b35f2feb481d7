"""Stage ``promote``: the promotion gate. Decide promote|reject and write the model card.

    python -m lifecycle.stages.promote --metrics metrics/evaluate/metrics.json --meta models/model.json
        --champion models/champion.json --validation metrics/validate.json --plots metrics/evaluate/plots
        --out models/promotion.json --card reports/model_card.md

The criteria and the decision are lifecycle.promotion's, the card lifecycle.reporting.model_card's
(docs/registry.md). The decision file and the card hold nothing volatile. A reject leaves the champion in place
(nothing here touches the registry); with ``promote.strict: true`` the stage then exits 1 after writing both.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifecycle import cli
from lifecycle.artifact import ModelMetadata
from lifecycle.config import load_params
from lifecycle.errors import GateError
from lifecycle.io import read_json, sha256_file, write_json, write_text
from lifecycle.promotion import decide
from lifecycle.reporting import model_card

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Read the inputs, decide, write the decision file and the model card; return the decision."""
    params = load_params(args.params)
    metrics = read_json(args.metrics)
    meta = ModelMetadata.read(args.meta)
    champion = read_json(args.champion)
    validation = read_json(args.validation)
    report = read_json(args.validation_report) if args.validation_report else None
    log.info("candidate %s, champion %s", args.metrics, champion.get("version") or "none")
    decision = decide(params.promote, metrics, meta, champion, metrics_source=str(args.metrics))
    write_json(args.out, decision)
    card = Path(args.card)
    validation_md = Path(args.validation_report).with_suffix(".md") if args.validation_report else None
    text = model_card.render(
        meta=meta.to_dict(),
        metrics=metrics,
        validation=validation,
        validation_report=report,
        validation_link=model_card.relative_link(validation_md, card) if validation_md else None,
        decision=decision,
        ingest=params.ingest.model_dump(),
        inputs={
            str(p): sha256_file(p)
            for p in (args.metrics, args.meta, args.validation, args.validation_report, args.champion)
            if p
        },
        images=[model_card.relative_link(p, card) for p in model_card.plot_images(Path(args.plots))],
        reliance=model_card.feature_reliance(Path(args.plots)),
    )
    write_text(card, text)
    log.info("wrote %s (%s) and %s", args.out, decision["decision"], args.card)
    return decision


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lifecycle.stages.promote", description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", required=True, help="the candidate's test metrics (dvclive metrics.json)")
    parser.add_argument("--meta", required=True, help="the candidate's metadata (model.json)")
    parser.add_argument("--champion", required=True, help="models/champion.json (committed; `make release`)")
    parser.add_argument("--validation", required=True, help="validate's metrics (validate.json)")
    parser.add_argument("--validation-report", default=None, help="validate's full report (validation.json)")
    parser.add_argument("--plots", required=True, help="evaluate's plots folder (PNG pictures under images/)")
    parser.add_argument("--out", required=True, help="decision file (JSON)")
    parser.add_argument("--card", required=True, help="model card (Markdown)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    decision = run(args)
    if decision["decision"] == "reject":
        reasons = "; ".join(decision["reasons"])
        if decision["strict"]:
            raise GateError(f"promotion rejected: {reasons} (promote.strict is true; see {args.out})")
        log.warning("promotion rejected: %s; the champion stays in place (see %s)", reasons, args.out)
    else:
        log.info("promote: every criterion passed")


if __name__ == "__main__":
    cli.run(main)
