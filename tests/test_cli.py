"""lifecycle.cli: exit codes, and the fast exit that skips the interpreter's teardown."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import atexit, sys, logging
from lifecycle import cli
from lifecycle.errors import DataError

def main(argv):
    atexit.register(lambda: print("atexit ran"))
    print("stdout line", end="")  # no newline: still buffered when main returns
    logging.getLogger("lifecycle.test").info("a log line")
    if sys.argv[1] == "fail":
        raise DataError("data.csv: column x is missing; add it")

cli.run(main, skip_teardown=True)
"""


def run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=False)


def test_skip_teardown_flushes_output_and_exits_zero_without_atexit() -> None:
    proc = run("ok")
    assert proc.returncode == 0
    assert proc.stdout == "stdout line"  # flushed, and the atexit handler did not run
    assert "a log line" in proc.stderr and "done in" in proc.stderr


def test_skip_teardown_leaves_failures_to_the_normal_exit() -> None:
    proc = run("fail")
    assert proc.returncode == 1
    assert "column x is missing; add it" in proc.stderr
    assert proc.stdout == "stdout lineatexit ran\n"  # a failure exits normally: atexit handlers run
