"""The README as a new user reads it: the DAG is what `dvc dag --mermaid` prints for this dvc.yaml, and every make
target is listed with the words `make help` prints."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.conftest import run

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_shows_the_dag_dvc_draws() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 1, "README.md: one ```mermaid block with `dvc dag --mermaid`'s output"
    dag = run([sys.executable, "-m", "dvc", "dag", "--mermaid"], ROOT).stdout
    assert blocks[0].split() == dag.split(), "README.md's DAG is stale: paste `dvc dag --mermaid` again"
    stages = ("check_params", "ingest", "validate", "split", "train", "evaluate", "export", "simulate", "score")
    for stage in (*stages, "monitor", "promote"):
        assert f'["{stage}"]' in blocks[0]


def test_readme_lists_every_make_target() -> None:
    help_text = re.sub(r"\x1b\[[0-9;]*m", "", run(["make", "--no-print-directory", "help"], ROOT).stdout)
    for line in filter(str.strip, help_text.splitlines()):
        name, description = line.strip().split(None, 1)
        assert f"| `make {name}` | {description.replace('|', chr(92) + '|')} |" in README, name
