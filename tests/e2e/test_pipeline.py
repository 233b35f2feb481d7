"""The real pipeline with real DVC, in scratch git repositories: reproduction, no-op, targeted reruns,
recovery from a killed stage, and users' own data (wine quality) as classification and regression."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.conftest import BIN, ROOT, git_commit, run, set_params

pytestmark = pytest.mark.slow


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w@.-]+)'", output)


def test_noop_repro_is_up_to_date(built_repo: Path) -> None:
    proc = run(["dvc", "repro"], built_repo)
    assert ran_stages(proc.stdout) == []
    assert "Data and pipelines are up to date" in proc.stdout
    status = run(["dvc", "status", "--json"], built_repo)
    assert json.loads(status.stdout) == {}


def test_changing_a_train_param_reruns_only_train_and_downstream(repo_factory) -> None:
    repo = repo_factory()
    run(["dvc", "repro", "--quiet"], repo)
    git_commit(repo, "pipeline outputs")
    set_params(repo, {"train": {"hist_gradient_boosting": {"max_iter": 12}}})
    proc = run(["dvc", "repro"], repo)
    stages = ran_stages(proc.stdout)
    assert {"train", "evaluate"} <= set(stages), proc.stdout
    assert not {"ingest", "validate", "split"} & set(stages), proc.stdout


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git history")
def test_fresh_clone_reproduces_the_committed_lock_byte_for_byte(tmp_path: Path) -> None:
    """A fresh clone (no DVC cache) rebuilds every output; dvc.lock's md5s, the committed metrics and the
    model bytes all come out identical."""
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(ROOT), str(clone)], tmp_path)
    lock_before = (clone / "dvc.lock").read_text()
    proc = run(["dvc", "repro"], clone)
    assert "Running stage 'train'" in proc.stdout
    assert (clone / "dvc.lock").read_text() == lock_before, run(["git", "diff", "dvc.lock"], clone).stdout
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], clone).stdout == ""
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout) == {}


def test_killed_stage_leaves_no_partial_output_and_repro_recovers(repo_factory) -> None:
    repo = repo_factory({"ingest": {"rows": 20000}, "train": {"hist_gradient_boosting": {"max_iter": 400}}})
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["dvc", "repro"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = []
    deadline = time.monotonic() + 240
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if "fitting hist_gradient_boosting" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert any("fitting" in line for line in seen), "".join(seen)
    models = repo / "models"
    assert not (models / "model.joblib").exists()  # DVC removed the old output; nothing half-written took its place
    assert not list(models.glob(".*.tmp"))
    again = run(["dvc", "repro"], repo)
    assert "Running stage 'train'" in again.stdout
    assert json.loads(run(["dvc", "status", "--json"], repo).stdout) == {}


@pytest.mark.parametrize(("task", "metric"), [("classification", "accuracy"), ("regression", "rmse")])
def test_wine_quality_trains_as(repo_factory, task: str, metric: str) -> None:
    """The README's wine example: only -S flags, the task switched by one of them (issue 13 item 8)."""
    repo = repo_factory()
    wine = [
        "-S", "ingest.source=data/external/winequality-red.csv", "-S", "+ingest.read_options.sep=';'",
        "-S", "ingest.target=quality", "-S", "validate.min_class_rows=5", "-S", f"ingest.task={task}",
    ]  # fmt: skip
    run(["dvc", "exp", "run", "-n", f"wine-{task}", *wine, "promote"], repo, env={"OMP_NUM_THREADS": "1"})
    metrics = json.loads((repo / "metrics/evaluate/metrics.json").read_text())
    assert metric in metrics
    if task == "classification":
        assert metrics["accuracy"] > 0.5  # 6 imbalanced classes; majority class alone is ~0.43
    else:
        assert metrics["rmse"] < 0.8 and metrics["r2"] > 0.2
    meta = json.loads((repo / "models/train.json").read_text())
    assert meta["schema"]["target"] == "quality"
    assert meta["data"]["rows"] > 1000
    decision = json.loads((repo / "models/promotion.json").read_text())
    assert decision["gates"] == f"promote.{task}"  # the task's own thresholds, from the same params.yaml
    gates = yaml.safe_load((repo / "params.yaml").read_text())["promote"][task]
    assert {c["metric"] for c in decision["criteria"]} == {m for kind in gates.values() for m in kind}
    assert decision["decision"] in {"promote", "reject"}
    if task == "regression":
        assert decision["decision"] == "promote", decision["reasons"]  # r2 >= 0.25, no champion yet
    card = (repo / "reports/model_card.md").read_text()
    assert f"Thresholds are `promote.{task}.*` in params.yaml" in card


def test_stage_module_runs_outside_dvc_with_paths_from_argv(built_repo: Path, tmp_path: Path) -> None:
    """Nothing is hard-coded: the split stage writes wherever it is told."""
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.split", "--params", str(built_repo / "params.yaml"),
         "--data", str(built_repo / "data/interim/validated.parquet"), "--schema", str(built_repo / "data/interim/schema.json"),
         "--train", str(tmp_path / "a.parquet"), "--test", str(tmp_path / "b.parquet")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.parquet").read_bytes() == (built_repo / "data/processed/train.parquet").read_bytes()
