"""DVC experiments on the pipeline, in a scratch git repository (a copy of the built one, committed: `dvc exp run`
needs a commit, and queued experiments see only committed or staged files).

Experiments here target `evaluate` (train -> evaluate) or `train`, and the data stages are unchanged (DVC skips
them), to keep the suite fast; without a target the whole pipeline runs, as in docs/experiments.md.
"""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import git_commit, run
from tests.helpers import startup_hook

pytestmark = pytest.mark.slow
ENV = {"OMP_NUM_THREADS": "1"}  # two experiments on two cores: one OpenMP thread each


@pytest.fixture
def repo(built_repo: Path, tmp_path: Path) -> Iterator[Path]:
    dest = tmp_path / "repo"
    shutil.copytree(built_repo, dest, symlinks=True, ignore=shutil.ignore_patterns("tmp"))
    git_commit(dest, "baseline: the built pipeline")
    yield dest
    run(["dvc", "queue", "stop", "--kill"], dest, check=False)  # no worker outlives a failed test


def exp_table(repo: Path, *args: str) -> list[dict[str, str]]:
    out = run(["dvc", "exp", "show", "--csv", *args], repo, env=ENV).stdout
    return list(csv.DictReader(io.StringIO(out)))


def test_exp_run_with_set_params_shows_in_only_changed(repo: Path) -> None:
    sets = ["-S", "train.model=random_forest", "-S", "train.random_forest.n_estimators=15"]
    run(["dvc", "exp", "run", "-n", "rf", *sets, "evaluate"], repo, env=ENV)
    rows = exp_table(repo, "--only-changed")
    columns = set(rows[0])
    assert {"train.model", "train.random_forest.n_estimators", "accuracy"} <= columns
    assert "ingest.rows" not in columns  # unchanged params are hidden
    experiment = next(r for r in rows if r["Experiment"] == "rf")
    assert experiment["train.model"] == "random_forest"
    assert experiment["train.random_forest.n_estimators"] == "15"
    baseline = next(r for r in rows if r["typ"] == "baseline" and r["rev"] != "workspace")
    assert baseline["train.model"] == "hist_gradient_boosting"
    assert experiment["accuracy"] != baseline["accuracy"]


# A barrier at the start of every train stage process (a Python start-up hook, tests.helpers.startup_hook): each one
# announces itself in the shared folder, then waits up to a minute for the other; it records how many train stages it
# saw running. Two experiments run one after the other never see each other, so only concurrency passes.
BARRIER = """
import os, pathlib, time
_folder = os.environ.get("TRAIN_BARRIER_DIR")
if _folder and b"lifecycle.stages.train" in pathlib.Path("/proc/self/cmdline").read_bytes():
    _folder = pathlib.Path(_folder)
    (_folder / f"started-{os.getpid()}").touch()
    _deadline = time.monotonic() + 60
    while len(list(_folder.glob("started-*"))) < 2 and time.monotonic() < _deadline:
        time.sleep(0.1)
    (_folder / f"saw-{os.getpid()}").write_text(str(len(list(_folder.glob("started-*")))))
"""


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="the barrier finds the stage in /proc")
def test_queued_sweep_runs_on_two_workers_at_once(repo: Path, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**ENV, **startup_hook(tmp_path / "hook", BARRIER), "TRAIN_BARRIER_DIR": str(barrier)}
    run(
        ["dvc", "exp", "run", "--queue", "-S", "train.model=logistic_regression,random_forest", "train"],
        repo,
        env=ENV,
    )
    queued = run(["dvc", "queue", "status"], repo).stdout
    assert queued.count("Queued") == 2, queued
    run(["dvc", "queue", "start", "-j", "2"], repo, env=env)
    deadline = time.monotonic() + 420
    status = ""
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert status.count("Success") == 2, status
    saw = sorted(int(p.read_text()) for p in barrier.glob("saw-*"))
    assert saw == [2, 2], f"each train stage should have seen the other one running: {saw}"
    models = sorted(r["train.model"] for r in exp_table(repo) if r["Experiment"])
    assert models == ["logistic_regression", "random_forest"]
