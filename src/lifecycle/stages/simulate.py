"""Stage ``simulate``: the built-in demo batch for score and monitor, made by the telemetry simulator.

    python -m lifecycle.stages.simulate --out data/demo

Writes ``<out>/incoming/telemetry_<fleet>.parquet`` (the rows to score), ``<out>/feedback/telemetry_<fleet>.parquet``
(labels of a share of them) and ``<out>/manifest.json`` (what was made, or why nothing was: ``ingest.source`` is not
the built-in telemetry, or ``simulate.rows`` is 0). Each folder also gets a README.md saying what it is, so it is
never empty (DVC restores the files of an output folder, not empty folders). What is drawn: lifecycle.data.demo.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from lifecycle import cli
from lifecycle.config import load_params
from lifecycle.data.demo import demo_batch
from lifecycle.io import write_json, write_table, write_text

log = logging.getLogger(__name__)
READMES = {
    "incoming": "The demo batch (stage simulate, params `simulate`): scored after your batches in paths.incoming.\n",
    "feedback": "Labels of a share of the demo batch's rows (stage simulate): read by monitor after yours.\n",
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="folder of the demo batch (replaced whole)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    demo = demo_batch(params.simulate, params.ingest)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)  # the folder is the stage's output: rewritten whole, no stale file
    for folder, text in READMES.items():
        write_text(out / folder / "README.md", text)
    if demo.batch is not None and demo.labels is not None:
        write_table(demo.batch, out / "incoming" / f"{demo.name}.parquet")
        write_table(demo.labels, out / "feedback" / f"{demo.name}.parquet")
        log.info("wrote a demo batch of %d rows (fleet %s, seed %d) and %d labels to %s",
                 len(demo.batch), params.simulate.data_version, params.simulate.seed, len(demo.labels), out)  # fmt: skip
    else:
        log.info("no demo batch: %s", demo.manifest["reason"])
    write_json(out / "manifest.json", demo.manifest)


if __name__ == "__main__":
    cli.run(main)
