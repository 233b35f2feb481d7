"""Every GitHub Actions workflow (and the composite action they share) validates against GitHub's schemas (vendored
in check-jsonschema, offline), and the workflows do what the README promises: the report's data step falls back to
`dvc repro` when `dvc pull` cannot get everything (run for real on a scratch DVC repository), the remote comes from
repository variables through one action, releases skip cleanly without them and never push to main, uv's cache is
keyed on uv.lock, and pull requests from forks (read-only token) get no comment attempt."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import run

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
ACTION = ROOT / ".github" / "actions" / "dvc-remote" / "action.yml"
BIN = Path(sys.executable).parent
CHECK_JSONSCHEMA = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with one of its built-in schemas (GitHub's workflow or action schema) on ``path``."""
    return subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", schema, str(path)], capture_output=True, text=True, check=False
    )


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "pr-report.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(path: Path) -> None:
    proc = check_jsonschema("vendor.github-workflows", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check can fail: a job without runs-on/steps and an unknown trigger key are rejected."""
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"name": "x", "on": {"pull_request": {"branchez": ["main"]}}, "jobs": {"a": {}}}))
    proc = check_jsonschema("vendor.github-workflows", bad)
    assert proc.returncode != 0


def test_composite_action_matches_githubs_schema() -> None:
    proc = check_jsonschema("vendor.github-actions", ACTION)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_lints_and_runs_make_test() -> None:
    commands = [step.get("run", "") for step in steps(load("ci.yml"))]
    assert "make lint" in commands
    assert "make test" in commands
    assert "make setup-dev" in commands  # the test tools are a dependency group, not part of `make setup`


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_uv_cache_is_keyed_on_the_lock_file(path: Path) -> None:
    """`cache: pip` caches nothing when uv installs: setup-uv's cache, keyed on uv.lock, in every job."""
    workflow = yaml.safe_load(path.read_text())
    assert "cache: pip" not in path.read_text()
    for name, job in workflow["jobs"].items():
        uv = [s for s in job["steps"] if s.get("uses", "").startswith("astral-sh/setup-uv@")]
        assert len(uv) == 1, f"{path.name}: job {name} has no setup-uv step"
        assert uv[0]["with"]["enable-cache"] is True
        assert uv[0]["with"]["cache-dependency-glob"] == "uv.lock"
        makefile_uv = re.search(r'"uv==([0-9.]+)"', (ROOT / "Makefile").read_text())
        assert makefile_uv and str(uv[0]["with"]["version"]) == makefile_uv.group(1)  # one uv version


def test_remote_settings_come_from_repository_variables_through_one_action() -> None:
    """URL, endpoint and region: repository variables, passed to .github/actions/dvc-remote (which runs `make
    remote`) by every workflow that needs the remote; no workflow configures DVC by itself or takes a setting from
    a secret."""
    users = []
    for path in WORKFLOWS:
        text = path.read_text()
        assert "dvc remote" not in text, f"{path.name} configures the remote itself"
        assert "secrets.AWS_DEFAULT_REGION" not in text and "secrets.DVC_REMOTE" not in text
        for step in steps(yaml.safe_load(text)):
            if step.get("uses") == "./.github/actions/dvc-remote":
                users.append(path.name)
                assert step["with"] == {
                    "url": "${{ vars.DVC_REMOTE_URL }}",
                    "endpoint": "${{ vars.DVC_REMOTE_ENDPOINT }}",
                    "region": "${{ vars.AWS_REGION }}",
                }
    assert sorted(users) == ["pr-report.yml", "release.yml", "retrain.yml"]
    action = yaml.safe_load(ACTION.read_text())
    assert 'make remote URL="$URL" ENDPOINT="$ENDPOINT" REGION="$REGION"' in action["runs"]["steps"][0]["run"]


def _step(workflow: str, name_start: str) -> dict:
    return next(s for s in steps(load(workflow)) if s.get("name", "").startswith(name_start))


def _scratch_project(tmp_path: Path) -> Path:
    """A git + DVC repository with one stage, reproduced and committed, its output and cache then deleted: what
    a runner has after checkout. `.venv` holds this interpreter's tools and fresh stamps (no `make setup`)."""
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo built > a.txt\n    outs:\n      - a.txt\n")
    for name in ("Makefile", "pyproject.toml", "uv.lock"):
        shutil.copy2(ROOT / name, repo / name)
    (repo / ".venv").mkdir()
    (repo / ".venv" / "bin").symlink_to(BIN)
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "repro", "-q"], repo)
    with (repo / ".gitignore").open("a") as ignore:
        ignore.write(".venv/\n")
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "x"], repo)
    (repo / "a.txt").unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    for stamp in (".synced", ".synced-dev"):  # newer than pyproject.toml/uv.lock: make does not sync
        (repo / ".venv" / stamp).touch()
    return repo


def _bash(script: str, repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` as GitHub runs a `run:` step: bash -e -o pipefail."""
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=repo, env=full_env, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("workflow", ["pr-report.yml", "release.yml"])
def test_data_step_rebuilds_what_dvc_pull_cannot_get(workflow: str, tmp_path: Path) -> None:
    """A remote that lacks the outputs (the PR pushed nothing): the step goes on to `dvc repro`, which builds them."""
    repo = _scratch_project(tmp_path)
    (tmp_path / "empty-remote").mkdir()
    run(["dvc", "remote", "add", "--local", "-d", "storage", str(tmp_path / "empty-remote")], repo)
    step = _step(workflow, "Get the pipeline outputs" if workflow == "pr-report.yml" else "Outputs of this commit")
    script = step["run"].replace(".venv/bin/dvc push", "true")  # nothing to push to in this test
    env = {"REMOTE": "true", "AWS_ACCESS_KEY_ID": "x"}
    proc = _bash(script, repo, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / "a.txt").read_text() == "built\n"


def test_remote_action_without_variables_configures_nothing(tmp_path: Path) -> None:
    repo = _scratch_project(tmp_path)
    script = yaml.safe_load(ACTION.read_text())["runs"]["steps"][0]["run"]
    output = tmp_path / "github_output"
    proc = _bash(script, repo, {"URL": "", "ENDPOINT": "", "REGION": "", "GITHUB_OUTPUT": str(output)})
    assert proc.returncode == 0, proc.stderr
    assert output.read_text() == "configured=false\n"
    assert "DVC_REMOTE_URL is not set" in proc.stdout
    assert not (repo / ".dvc" / "config.local").exists()


@pytest.mark.parametrize(("key", "configured"), [("", "false"), ("AKIA-test", "true")])
def test_remote_action_with_variables_runs_make_remote(tmp_path: Path, key: str, configured: str) -> None:
    """With DVC_REMOTE_URL: `make remote` writes the clone's remote; without credentials (a fork's run) nothing is
    pulled or pushed."""
    repo = _scratch_project(tmp_path)
    script = yaml.safe_load(ACTION.read_text())["runs"]["steps"][0]["run"]
    output = tmp_path / "github_output"
    env = {"URL": "s3://team-bucket/lifecycle", "ENDPOINT": "http://127.0.0.1:9000", "REGION": "eu-west-1",
           "GITHUB_OUTPUT": str(output), "AWS_ACCESS_KEY_ID": key}  # fmt: skip
    proc = _bash(script, repo, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert output.read_text() == f"configured={configured}\n"
    local = (repo / ".dvc" / "config.local").read_text()
    assert "url = s3://team-bucket/lifecycle" in local
    assert "endpointurl = http://127.0.0.1:9000" in local
    assert "region = eu-west-1" in local


def test_release_skips_without_a_remote_and_never_pushes_to_main() -> None:
    workflow = load("release.yml")
    job = workflow["jobs"]["release"]
    assert "vars.DVC_REMOTE_URL != ''" in job["if"]  # forks and fresh templates: skipped, not failed
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "HEAD:main" not in runs and not re.search(r"git push origin (main|HEAD)\b", runs)
    assert "gh pr create --base main" in runs  # the champion update is proposed, main may be protected
    assert workflow["permissions"] == {"contents": "write", "pull-requests": "write"}


def test_fork_pull_requests_get_the_summary_not_a_comment() -> None:
    """A fork's pull request runs with a read-only token: no comment attempt; the report goes to the summary."""
    comment = _step("pr-report.yml", "Post or update")
    assert "github.event.pull_request.head.repo.full_name == github.repository" in comment["if"]
    summary = _step("pr-report.yml", "Show the report in the job summary")
    assert "GITHUB_STEP_SUMMARY" in summary["run"] and "if" not in summary


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
    assert "secrets.GITHUB_TOKEN" in secrets
    assert "secrets.AWS_ACCESS_KEY_ID" in str(workflow["env"])
