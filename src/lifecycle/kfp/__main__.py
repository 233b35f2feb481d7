"""The Kubeflow pipeline's command line (docs/kubeflow.md).

    python -m lifecycle.kfp compile [--out deploy/kfp/pipeline.yaml]          # KFP v2 YAML, offline (`make kfp`)
    python -m lifecycle.kfp katib [--out deploy/kfp/katib-experiment.yaml] [--input train=s3://...]
    python -m lifecycle.kfp trial --spec JSON --metric accuracy --input train=URI --set learning_rate=0.1
                                                                                # one Katib trial (in the image)

compile and katib read dvc.yaml and params.yaml of ``--root`` (default: the current directory).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.errors import LifecycleError

log = logging.getLogger(__name__)
PIPELINE = "deploy/kfp/pipeline.yaml"
EXPERIMENT = "deploy/kfp/katib-experiment.yaml"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lifecycle.kfp", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    comp = sub.add_parser("compile", help="compile the pipeline of dvc.yaml + params.yaml to KFP v2 YAML")
    comp.add_argument("--root", default=".", help="the repository (dvc.yaml, params.yaml, deploy/kserve)")
    comp.add_argument("--out", default=PIPELINE)
    kat = sub.add_parser("katib", help="write the Katib Experiment of train.search_space")
    kat.add_argument("--root", default=".")
    kat.add_argument("--out", default=EXPERIMENT)
    kat.add_argument("--input", action="append", default=[], metavar="ARTIFACT=URI", help="a trial input's URI")
    trial = sub.add_parser("trial", help="run one Katib trial and print METRIC=VALUE")
    trial.add_argument("--spec", required=True, help="the trained stage's spec (JSON; in the Experiment)")
    trial.add_argument("--metric", required=True)
    trial.add_argument("--input", action="append", default=[], metavar="ARTIFACT=URI")
    trial.add_argument("--set", action="append", default=[], metavar="HYPERPARAMETER=VALUE")
    args = parser.parse_args(argv)
    if args.command in ("compile", "katib") and importlib.util.find_spec("kfp") is None:
        raise LifecycleError(
            "the kfp SDK is not installed (it is the `kfp` dependency group, which `make setup` leaves out); "
            "run `make setup-dev` (or `make kfp`), then this command again"
        )

    if args.command == "compile":
        from lifecycle.kfp.pipeline import compile_pipeline

        log.info("wrote %s", compile_pipeline(args.root, args.out))
    elif args.command == "katib":
        from lifecycle.kfp.katib import parse_pairs, write_experiment
        from lifecycle.kfp.pipeline import load

        project, kfp = load(args.root)
        log.info("wrote %s", write_experiment(project, kfp, args.out, parse_pairs(args.input, "--input")))
    else:
        from lifecycle.kfp.katib import parse_pairs, run_trial

        inputs, values = parse_pairs(args.input, "--input"), parse_pairs(args.set, "--set")
        score = run_trial(json.loads(args.spec), inputs, values, args.metric)
        print(f"{args.metric}={score}", flush=True)  # Katib's StdOut collector reads METRIC=VALUE lines


if __name__ == "__main__":
    cli.run(main)
