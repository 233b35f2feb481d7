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

from lifecycle import cli
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


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... (Linux /proc), nearest first."""
    found, frontier = [], [pid]
    while frontier:
        below = [child for parent in frontier for child in children(parent)]
        found += below
        frontier = below
    return found


def python_descendant(pid: int) -> int | None:
    """The first descendant of ``pid`` running Python (the stage, below any shell that did not exec it)."""
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            if "python" in os.path.basename(os.readlink(f"/proc/{child}/exe")):
                return child
    return None


def kill_runner_then_wait(runner: subprocess.Popen, pids: list[int]) -> None:
    """``kill -9`` of ``runner`` (no chance to clean up its children), then each of ``pids`` must stop within 10 s."""
    runner.kill()
    runner.wait()
    for pid in pids:
        wait_for(lambda pid=pid: not alive(pid), 10, f"process {pid} to stop after `kill -9` of {runner.args[0]}")


def clean_up(runner: subprocess.Popen, stage: int | None) -> None:
    """Whatever a failed test left running."""
    runner.kill()
    if stage is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stage, signal.SIGKILL)


PARENT = """
import shlex, subprocess, sys, time
command = [sys.executable, "-c", sys.argv[1]]
if sys.argv[2] == "shell":  # a shell between parent and child that does not exec it (`; true` after it)
    command = ["/bin/sh", "-ec", shlex.join(command) + "; true"]  # `-c` among other options
subprocess.Popen(command)
time.sleep(120)
"""
CHILDREN = {
    "prctl": ("import lifecycle.stages, numpy, time; time.sleep(120)", "direct"),
    # elsewhere than Linux: the watchdog thread (forced here by hiding the platform)
    "watchdog": (
        "import sys; sys.platform = 'other'; from lifecycle import cli; cli.stop_with_parent(); "
        "import numpy, time; time.sleep(120)",
        "direct",
    ),
    # a shell between: the shell outlives the parent, so the stage watches the chain shell -> parent
    "shell-between": ("import lifecycle.stages, numpy, time; time.sleep(120)", "shell"),
}


@linux_only
@pytest.mark.parametrize("how", sorted(CHILDREN))
def test_a_stage_process_stops_when_its_parent_is_killed(how: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *CHILDREN[how]])
    child = None
    try:
        child = wait_for(lambda: python_descendant(parent.pid), 60, "the child to start")
        wait_for(lambda: past_stop_with_parent(child), 60, "the child's imports")
        between = [pid for pid in descendants(parent.pid) if pid != child]
        assert len(between) == (1 if how == "shell-between" else 0), between
        kill_runner_then_wait(parent, [child, *between])
    finally:
        clean_up(parent, child)


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("shell", ["/bin/bash", None], ids=["SHELL=bash", "SHELL-unset"])
def test_kill_9_of_dvc_repro_stops_the_running_stage(tmp_path: Path, shell: str | None) -> None:
    """A real `dvc repro` running the real ingest stage (2 million rows: many seconds of work), killed with -9
    while the stage runs: the stage stops at once and writes nothing. DVC runs the cmd with ``$SHELL -c``: bash
    execs it; with SHELL unset, /bin/sh (Debian's dash) stays between dvc and the stage and must stop too."""
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
    env = {key: value for key, value in os.environ.items() if key != "SHELL"}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    if shell:
        env["SHELL"] = shell
    dvc = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stage = None
    try:
        stage = wait_for(lambda: python_descendant(dvc.pid), 120, "dvc to start the stage")
        assert "lifecycle.stages.ingest" in Path(f"/proc/{stage}/cmdline").read_text()
        wait_for(lambda: past_stop_with_parent(stage), 120, "the stage's imports")
        between = [pid for pid in descendants(dvc.pid) if pid != stage and pid not in descendants(stage)]
        kill_runner_then_wait(dvc, [stage, *between])
    finally:
        clean_up(dvc, stage)
    assert not (repo / "raw.parquet").exists() and not (repo / "schema.json").exists()
    assert not list(repo.glob(".raw.parquet.*.tmp"))


@linux_only
@pytest.mark.parametrize(
    ("argv", "running_c"),
    [
        (["/bin/sh", "-c", "sleep 5; true"], True),  # DVC with SHELL unset
        (["/bin/bash", "--noprofile", "--norc", "-c", "sleep 5; true"], True),  # DVC with SHELL=bash
        (["/bin/sh", "-ec", "sleep 5; true"], True),
        (["/bin/sh", "-e", "-c", "sleep 5; true"], True),
        (["/bin/sh", "-e"], False),  # reads its commands from stdin
        ([sys.executable, "-c", "import time; time.sleep(5)"], False),  # not a shell
    ],
)
def test_a_shell_running_a_command_is_recognised_by_its_arguments(argv: list[str], running_c: bool) -> None:
    """Real processes: the shells that may sit between a runner and a stage (lifecycle.cli.shells_and_runner)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
    try:
        wait_for(lambda: Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(argv[0].encode()), 10, "exec")
        assert cli._is_shell_running_c(proc.pid) is running_c
    finally:
        proc.kill()
        proc.wait()
