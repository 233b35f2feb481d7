"""Every GitHub Actions workflow validates against GitHub's workflow schema (vendored in check-jsonschema, offline),
and the two this repository depends on do what the README promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
CHECK_JSONSCHEMA = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "pr-report.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(path: Path) -> None:
    proc = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check can fail: a job without runs-on/steps and an unknown trigger key are rejected."""
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"name": "x", "on": {"pull_request": {"branchez": ["main"]}}, "jobs": {"a": {}}}))
    proc = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0


def test_ci_lints_and_runs_make_test() -> None:
    commands = [step.get("run", "") for step in steps(load("ci.yml"))]
    assert "make lint" in commands
    assert "make test" in commands


def test_pr_report_posts_one_updated_comment() -> None:
    workflow = load("pr-report.yml")
    all_steps = steps(workflow)
    checkout = next(s for s in all_steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the base branch's history for the diffs
    assert any(s.get("uses", "").startswith("actions/setup-python@") for s in all_steps)
    assert any(s.get("uses", "").startswith("iterative/setup-cml@") for s in all_steps)
    runs = "\n".join(s.get("run", "") for s in all_steps)
    assert "make setup" in runs
    assert "dvc pull" in runs and "dvc repro" in runs
    assert "make report" in runs
    assert "cml comment update" in runs  # one comment, updated on every push
    assert "cml comment create" not in runs
    assert workflow["permissions"]["pull-requests"] == "write"
    secrets = "\n".join(str(s.get("env", {})) for s in all_steps)
    assert "secrets.AWS_ACCESS_KEY_ID" in secrets
    assert "secrets.GITHUB_TOKEN" in secrets
