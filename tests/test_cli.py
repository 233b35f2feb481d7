"""lifecycle.cli: a stage's exit code and message, in a real child process."""

from __future__ import annotations

import subprocess
import sys

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
