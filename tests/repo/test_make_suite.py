"""`make suite` as the README gives it, in a scratch clone: it refuses to overwrite a reviewed contract and names
`FORCE=1`; `make suite FORCE=1` (the Makefile's `--force`) writes a starter contract that parses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import BIN, run

from lifecycle.quality.contract import load_contract

pytestmark = pytest.mark.slow
REVIEWED = "# reviewed by hand: keep\n"


def with_venv(repo: Path) -> Path:
    """The clone's .venv is this project's (symlinked, so Python finds its pyvenv.cfg and packages), its sync stamp
    newer than the copied pyproject.toml and uv.lock (copies keep their times), so `make` installs nothing."""
    venv = BIN.parent
    assert (venv / ".synced").stat().st_mtime >= (repo / "uv.lock").stat().st_mtime, "run `make setup` first"
    (repo / ".venv").symlink_to(venv)
    return repo


def test_make_suite_refuses_to_overwrite_then_force_rewrites(repo_factory) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = with_venv(repo_factory())
    contract = repo / "data" / "contracts" / "telemetry.yaml"
    contract.write_text(REVIEWED + contract.read_text())

    refused = run(["make", "suite"], repo, check=False)
    assert refused.returncode != 0
    assert "a contract exists already; review it by hand, or pass --force (make suite FORCE=1)" in refused.stderr
    assert contract.read_text().startswith(REVIEWED)  # nothing was overwritten

    forced = run(["make", "suite", "FORCE=1"], repo)
    assert "lifecycle.quality suggest --force" in forced.stdout  # the command line the Makefile ran
    assert not contract.read_text().startswith(REVIEWED)
    assert load_contract(contract).dataset == "telemetry"
