"""The registry's command line (docs/registry.md):

    python -m lifecycle.registry release [--push]        # `make release`: register + assign prod on a promote
    python -m lifecycle.registry show [--stage prod]     # which version is in the stage, its tag and commit
    python -m lifecycle.registry pull --out DIR          # that version's model.joblib + model.json into DIR
    python -m lifecycle.registry reset-champion          # forget the champion (e.g. after changing the task)

Each prints its result as JSON on stdout; an error exits 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from lifecycle import cli
from lifecycle.registry import PROD, fetch, release, reset_champion, resolve_prod


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.registry", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", default=".", help="repository holding the registry tags (default: here)")
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="register + assign prod when models/promotion.json says promote")
    rel.add_argument("--push", action="store_true", help="push the new tags to origin")
    rel.add_argument("--no-check", action="store_true", help="skip the `dvc status` check of the pipeline")
    show = sub.add_parser("show", help="print the version in a stage as JSON")
    show.add_argument("--stage", default=PROD)
    pull = sub.add_parser("pull", help="materialize the version in a stage (or --version) into --out")
    pull.add_argument("--stage", default=PROD)
    pull.add_argument("--version", default=None, help="a registered version (vX.Y.Z) instead of a stage")
    pull.add_argument("--out", required=True)
    sub.add_parser("reset-champion", help="empty models/champion.json")
    args = parser.parse_args(argv)

    if args.command == "release":
        result = release(args.repo, push=args.push, check_pipeline=not args.no_check)
    elif args.command == "show":
        result = resolve_prod(args.stage, args.repo).to_dict()
    elif args.command == "pull":
        version, files = fetch(args.stage, args.repo, args.out, version=args.version, force=True)
        result = version.to_dict() | {"model": str(files.model), "meta": str(files.meta)}
    else:
        result = {"champion": str(reset_champion(args.repo))}
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    cli.run(main, name="registry")
