"""The continuous-training loop end to end, in a scratch git + DVC repository (small rows):

on a fresh clone the reference model scores the demo v2 batch (stage simulate) and monitor asks for retraining; half
the demo's labels arrived, enough to retrain on (exit 0, the branch trains on the demo's labelled rows); a drifted
labelled batch arrives (DVC-tracked batch + feedback labels) -> ``python -m
lifecycle.retrain`` trains the candidate as a DVC experiment and writes ``retrain.branch`` (exit 0) whose model
differs, whose PR body lists the drift reasons and the gate's verdict, and whose dvc.lock a fresh clone of the branch
reproduces from its data alone; the workspace is left as it was. A second run, after a fresh reference-like batch
replaced the drifted one (and the demo batch is turned off: it drifts on purpose), says no retrain is needed
(exit 3) and changes nothing. In between, the same data against a stricter gate is rejected (exit 4) and leaves the
accepted branch alone; before it all, drift with too few labels yet (exit 5) changes nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.conftest import run

from lifecycle.data import telemetry

pytestmark = pytest.mark.slow
BRANCH = "retrain/auto"


@pytest.fixture
def repo(built_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the built repository (git history, DVC cache and outputs included), with a git identity
    for the experiment's commit."""
    dest = tmp_path / "repo"
    shutil.copytree(built_repo, dest, symlinks=True)
    run(["git", "config", "user.name", "t"], dest)
    run(["git", "config", "user.email", "t@example.com"], dest)
    return dest


def retrain(repo: Path) -> tuple[int, dict]:
    proc = run([sys.executable, "-m", "lifecycle.retrain"], repo, check=False)
    summary_file = repo / "reports" / "pr" / "retrain.json"
    assert summary_file.is_file(), proc.stderr
    summary = json.loads(summary_file.read_text())
    assert summary["code"] == proc.returncode, proc.stderr
    return proc.returncode, summary


def state(repo: Path) -> tuple[str, str, list[str]]:
    """What must not change: git status, the branches, the files in the labelled folder."""
    return (
        run(["git", "status", "--porcelain", "--untracked-files=all", "--", ".", ":!reports/pr"], repo).stdout,
        run(["git", "branch", "--list"], repo).stdout,
        sorted(p.name for p in (repo / "data" / "labelled").iterdir()),
    )


def arrive(repo: Path, name: str, batch: pd.DataFrame, labels: bool) -> None:
    """A batch (and its labels) arrives: files in data/incoming and data/feedback, tracked with DVC, committed."""
    (repo / "data" / "incoming" / f"{name}.parquet").parent.mkdir(parents=True, exist_ok=True)
    batch.drop(columns=["fault"]).to_parquet(repo / "data" / "incoming" / f"{name}.parquet", index=False)
    files = [f"data/incoming/{name}.parquet"]
    if labels:
        batch[["reading_id", "fault"]].to_parquet(repo / "data" / "feedback" / f"{name}.parquet", index=False)
        files.append(f"data/feedback/{name}.parquet")
    run(["dvc", "add", *files], repo)
    tracked = [f"{f}.dvc" for f in files] + sorted({str(Path(f).parent / ".gitignore") for f in files})
    run(["git", "add", "-f", *tracked], repo)
    run(["git", "commit", "-qm", f"batch {name}"], repo)
    run(["dvc", "repro", "--quiet", "monitor"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", f"scored {name}"], repo)


def fleet(version: str, seed: int, prefix: str, rows: int = 1500) -> pd.DataFrame:
    batch = telemetry.generate(rows=rows, version=version, seed=seed)
    return batch.assign(reading_id=prefix + batch["reading_id"].str[3:])


def lock_md5(lock: dict, stage: str, path: str) -> str:
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == path)


def test_drift_with_labels_opens_a_branch_and_a_stable_batch_changes_nothing(repo: Path, tmp_path: Path) -> None:
    # -1. drift, but too few labels yet (5 % of the demo batch): exit 5, the minimum named, nothing changed
    status = run(["git", "status", "--porcelain", "--", ".", ":!reports/pr"], repo).stdout
    params_text = (repo / "params.yaml").read_text()
    few = yaml.safe_load(params_text)
    few["simulate"]["feedback_fraction"] = 0.05
    (repo / "params.yaml").write_text(yaml.safe_dump(few, sort_keys=False))
    run(["dvc", "repro", "--quiet", "monitor"], repo)
    before = state(repo)
    code, summary = retrain(repo)
    assert code == 5, summary
    assert "fewer than retrain.min_labelled_rows=500" in summary["message"] and summary["branch"] is None
    assert state(repo) == before and not (repo / "reports" / "pr" / "retrain.md").exists()
    (repo / "params.yaml").write_text(params_text)
    run(["dvc", "repro", "--quiet", "monitor"], repo)
    assert run(["git", "status", "--porcelain", "--", ".", ":!reports/pr"], repo).stdout == status  # as it was

    # 0. a fresh clone: the demo v2 batch drifted and half its labels arrived; they are enough to retrain on
    assert json.loads((repo / "metrics" / "monitor.json").read_text())["retrain"] is True
    demo_labels = pd.concat(map(pd.read_parquet, sorted((repo / "data" / "demo" / "feedback").glob("*.parquet"))))
    assert len(demo_labels) >= 500  # retrain.min_labelled_rows
    before = state(repo)
    code, summary = retrain(repo)
    assert code == 0, summary
    assert summary["labelled_rows"] == demo_labels["reading_id"].nunique()
    assert summary["trigger"]["kind"].startswith("data drift")
    assert state(repo)[0] == before[0] and state(repo)[2] == before[2]
    run(["git", "branch", "-D", BRANCH], repo)

    # 1. a drifted batch arrives with its labels (it replaces the shipped one)
    if (repo / "data" / "incoming" / "telemetry_v2.csv").exists():
        run(["git", "rm", "-q", "data/incoming/telemetry_v2.csv"], repo)
    arrive(repo, "2026-06", fleet("v2", seed=11, prefix="b2-"), labels=True)
    monitor = json.loads((repo / "reports" / "drift.json").read_text())
    assert monitor["retrain"] is True and monitor["drifted_features"]
    main_lock = yaml.safe_load((repo / "dvc.lock").read_text())
    before = state(repo)

    code, summary = retrain(repo)
    assert code == 0, summary
    assert summary["branch"] == BRANCH and summary["labelled_rows"] >= 1400 + len(demo_labels)  # yours + the demo's
    assert summary["trigger"]["kind"].startswith("data drift")
    assert state(repo)[0] == before[0] and state(repo)[2] == before[2]  # the workspace is as it was
    accepted_branches = state(repo)[1]
    assert BRANCH in accepted_branches

    # the branch: one commit on main with the labelled batch (DVC-tracked), a new model and the gate's verdict
    assert run(["git", "rev-parse", f"{BRANCH}~1"], repo).stdout == run(["git", "rev-parse", "HEAD"], repo).stdout
    changed = run(["git", "diff", "--name-only", "HEAD", BRANCH], repo).stdout.split()
    labelled_dvc = [f for f in changed if f.startswith("data/labelled/") and f.endswith(".parquet.dvc")]
    assert len(labelled_dvc) == 1 and "dvc.lock" in changed and "models/promotion.json" in changed
    branch_lock = yaml.safe_load(run(["git", "show", f"{BRANCH}:dvc.lock"], repo).stdout)
    assert lock_md5(branch_lock, "train", "models/model.joblib") != lock_md5(main_lock, "train", "models/model.joblib")
    verdict = json.loads(run(["git", "show", f"{BRANCH}:models/promotion.json"], repo).stdout)
    assert verdict["decision"] == "promote"

    # the pull-request body: the drift reasons, the gate's verdict, the PR report against the current model
    body = (repo / "reports" / "pr" / "retrain.md").read_text()
    assert "## Why retraining started: data drift" in body
    for reason in monitor["reasons"]:
        assert f"- {reason}" in body
    assert "## Promotion gate: **promote**" in body
    assert "feedback metrics below (the monitor's, on those same labels) are not held out" in body
    assert "# Pipeline report: this PR vs" in body and "retrain.strategy" not in body.split("# Pipeline report")[1]

    # the same data against a stricter gate: rejected (exit 4); the accepted branch and the workspace stay as they were
    accepted = run(["git", "rev-parse", BRANCH], repo).stdout
    params_text = (repo / "params.yaml").read_text()
    strict = yaml.safe_load(params_text)
    strict["promote"]["classification"]["min"]["accuracy"] = 0.99
    (repo / "params.yaml").write_text(yaml.safe_dump(strict, sort_keys=False))
    code, summary = retrain(repo)
    (repo / "params.yaml").write_text(params_text)
    assert code == 4, summary
    assert "accuracy" in summary["message"] and summary["branch"] is None
    assert run(["git", "rev-parse", BRANCH], repo).stdout == accepted
    assert state(repo) == (before[0], accepted_branches, before[2])
    assert "## Promotion gate: **reject**" in (repo / "reports" / "pr" / "retrain.md").read_text()

    # 2. a fresh clone of the branch gets its data (the cache stands in for the remote: `dvc pull`), and every stage
    # rerun from it (--force) reproduces the branch's dvc.lock and metrics byte for byte
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", "-b", BRANCH, str(repo), str(clone)], tmp_path)
    run(["dvc", "cache", "dir", "--local", str(repo / ".dvc" / "cache")], clone)
    run(["dvc", "checkout"], clone)
    assert run(["dvc", "status"], clone).stdout.strip() == "Data and pipelines are up to date."
    run(["dvc", "repro", "--quiet", "--force"], clone)
    assert run(["git", "status", "--porcelain"], clone).stdout == ""

    # 3. a fresh reference-like batch replaces the drifted one, and no demo batch: no retraining, nothing changes
    run(["git", "rm", "-q", "data/incoming/2026-06.parquet.dvc"], repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["simulate"]["rows"] = 0
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    arrive(repo, "2026-07", fleet("v1", seed=12, prefix="b1-", rows=3000), labels=False)
    assert json.loads((repo / "metrics" / "monitor.json").read_text())["retrain"] is False
    before = state(repo)
    code, summary = retrain(repo)
    assert code == 3, summary
    assert state(repo) == before
    assert not (repo / "reports" / "pr" / "retrain.md").exists()
