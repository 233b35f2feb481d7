"""lifecycle.cli: a stage's exit code and message, in a real child process; a stage stops when its parent dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT
from tests.conftest import run as run_in

PROGRAM = """
import sys, logging
from lifecycle import cli
from lifecycle.errors import DataError

def main(argv):
    logging.getLogger("lifecycle.test").info("a log line")
    if sys.argv[1] == "fail":
        raise DataError("data.csv: column x is missing; add it")
    if sys.argv[1] == "interrupt":
        raise KeyboardInterrupt

cli.run(main, name="demo")
"""


def run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=False)


def test_success_exits_zero_and_logs_the_elapsed_time() -> None:
    proc = run("ok")
    assert proc.returncode == 0
    assert "a log line" in proc.stderr and "demo done in" in proc.stderr


def test_a_lifecycle_error_exits_one_with_its_message_and_no_traceback() -> None:
    proc = run("fail")
    assert proc.returncode == 1
    assert "demo failed: data.csv: column x is missing; add it" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_interrupt_exits_130_and_says_outputs_are_unchanged() -> None:
    proc = run("interrupt")
    assert proc.returncode == 130
    assert "outputs are unchanged" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------ a stage dies with its parent
def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def past_stop_with_parent(pid: int) -> bool:
    """True once the stage imports numpy: its package import (lifecycle.stages, which calls stop_with_parent) ran."""
    try:
        return "numpy" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(120)
"""
CHILDREN = {
    "prctl": "import lifecycle.stages, numpy, time; time.sleep(120)",
    # elsewhere than Linux: the watchdog thread (forced here by hiding the platform)
    "watchdog": "import sys; sys.platform = 'other'; from lifecycle import cli; cli.stop_with_parent(); "
    "import numpy, time; time.sleep(120)",
}


@linux_only
@pytest.mark.parametrize("how", sorted(CHILDREN))
def test_a_stage_process_stops_when_its_parent_is_killed(how: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILDREN[how]], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        wait_for(lambda: past_stop_with_parent(child), 60, "the child's imports")
        parent.kill()  # SIGKILL: no chance to clean up its children
        parent.wait()
        wait_for(lambda: not alive(child), 10, f"child {child} to stop")
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


@linux_only
@pytest.mark.slow
def test_kill_9_of_dvc_repro_stops_the_running_stage(tmp_path: Path) -> None:
    """A real `dvc repro` running the real ingest stage (2 million rows: many seconds of work), killed with -9
    while the stage runs: the stage stops at once and writes nothing."""
    repo = tmp_path / "repo"
    repo.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"]["rows"] = 2_000_000
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "dvc.yaml").write_text(
        "stages:\n  ingest:\n    cmd: python -m lifecycle.stages.ingest --out raw.parquet --schema schema.json\n"
        "    params: [ingest]\n    outs: [raw.parquet, schema.json]\n"
    )
    run_in(["git", "init", "-q"], repo)
    run_in(["dvc", "init", "-q"], repo)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    dvc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stage = None
    try:
        stage = wait_for(lambda: next(iter(children(dvc.pid)), None), 120, "dvc to start the stage")
        assert "lifecycle.stages.ingest" in Path(f"/proc/{stage}/cmdline").read_text()  # `sh -c` exec'd it
        wait_for(lambda: past_stop_with_parent(stage), 120, "the stage's imports")
        dvc.kill()
        dvc.wait()
        wait_for(lambda: not alive(stage), 10, f"stage {stage} to stop after `kill -9` of dvc")
    finally:
        dvc.kill()
        if stage is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stage, signal.SIGKILL)
    assert not (repo / "raw.parquet").exists() and not (repo / "schema.json").exists()
    assert not list(repo.glob(".raw.parquet.*.tmp"))
