"""The pull-request report's command line (the library is lifecycle.reporting.pr_report):

    python -m lifecycle.reporting --base origin/main --out reports/pr/report.md

Exit 1 with the reason (no traceback) when the params file, the base revision or a DVC command fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lifecycle import cli
from lifecycle.reporting import pr_report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.reporting",
        description=pr_report.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", required=True, help="git revision to compare with, e.g. origin/main or HEAD~1")
    parser.add_argument(
        "--out", default="reports/pr/report.md", help="Markdown file; PNG plots are written beside it (%(default)s)"
    )
    parser.add_argument("--repo", default=".", help="repository root (%(default)s)")
    parser.add_argument("--params", default="params.yaml", help="params file, relative to --repo (%(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument("--quiet", action="store_true", help="do not print the report")
    args = parser.parse_args(argv)
    text = pr_report.build_report(Path(args.repo), args.base, Path(args.out), args.params, plots=not args.no_plots)
    if not args.quiet:
        sys.stdout.write(text)


if __name__ == "__main__":
    cli.run(main, name="pr report")
