"""Stage ``check_params``: the first stage; params.yaml as a whole checked by lifecycle.config.

    python -m lifecycle.stages.check_params --out data/interim/params_check.json

DVC reruns a stage only when the params keys it declares change, so a misspelt section (``dvc exp run -S
'+trian.model=ridge'``) reran nothing and was recorded as an experiment. This stage declares the whole file
(``params.yaml:`` in dvc.yaml), so any change to it reruns the stage, and :func:`lifecycle.config.load_params`
refuses an unknown section or key there (every other stage checks the file too, but reruns only on its own keys).
No stage depends on its output, so in Kubeflow, where it reruns on any parameter, no other task's cache is lost. The output records the sections that were checked (their names only, never values: it stays the same
bytes while params change, so nothing downstream reruns because of it).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.config import load_params, sections
from lifecycle.io import write_json

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="the record that params.yaml passed (JSON)")
    args = parser.parse_args(argv)

    load_params(args.params)  # raises ParamsError, one line per problem, naming each key
    checked = list(sections())
    write_json(args.out, {"checked_by": "lifecycle.config", "sections": checked})
    log.info("params.yaml: %d sections checked (%s)", len(checked), ", ".join(checked))


if __name__ == "__main__":
    cli.run(main)
