"""What every command shares: logging set-up, timing, turning a LifecycleError into a clear exit, and tying a stage's
life to its parent's (:func:`stop_with_parent`)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lifecycle.errors import LifecycleError
from lifecycle.io import storage_error

log = logging.getLogger("lifecycle")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 0.5  # how often the watchdog looks at the parent (no prctl) or the shells up to the runner
_stopping_with: int | None = None  # the parent pid this process is tied to, once stop_with_parent() ran


def setup_logging(level: str | None = None) -> None:
    """Log to stderr as ``HH:MM:SS LEVEL module: message``; level from ``LOG_LEVEL`` or the argument."""
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL") or "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("great_expectations", "matplotlib", "PIL", "urllib3", "botocore", "s3fs", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox"})  # what may run a stage's `cmd`


def _proc_ppid(pid: int) -> int | None:
    """The parent pid of ``pid`` from /proc/<pid>/stat (Linux), or None once ``pid`` is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[1])


def _is_shell_running_c(pid: int) -> bool:
    """True when ``pid`` is a shell started as ``<shell> [options] -c <command>`` (how DVC runs a stage's cmd; the
    ``c`` may share its dash with other options, as in ``sh -ec``)."""
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return False
    if os.path.basename(argv[0]).lstrip("-") not in SHELLS:
        return False
    for arg in argv[1:]:
        if arg.startswith("--"):
            continue  # long options: DVC runs `bash --noprofile --norc -c cmd`, `zsh --no-rcs -c cmd`
        if not arg.startswith("-"):
            return False  # options end at the first operand (a script file, or the command itself)
        if "c" in arg[1:]:
            return True
    return False


def shells_and_runner(parent: int) -> tuple[list[int], int]:
    """Walk up from ``parent`` through the shells that run ``-c`` commands (Linux /proc): returns
    ``(shells, runner)``, the shell pids nearest first and the first ancestor that is not such a shell.

    DVC runs a stage's ``cmd`` as ``$SHELL -c cmd`` (``/bin/sh`` when SHELL is unset). bash and zsh ``exec`` a
    single command, so the stage's parent is dvc itself; Debian's dash (``/bin/sh`` there) does not, so the parent
    is a shell that outlives a ``kill -9`` of dvc. Elsewhere than Linux: ``([], parent)``.
    """
    shells: list[int] = []
    pid = parent
    while sys.platform.startswith("linux") and len(shells) < 8 and _is_shell_running_c(pid):
        above = _proc_ppid(pid)
        if above is None or above <= 1:
            break
        shells.append(pid)
        pid = above
    return shells, pid


def _watch_parent(parent: int, shells: Sequence[int], runner: int) -> None:
    """Poll every :data:`WATCH_SECONDS`: the direct parent (systems without prctl) and, through any shells between,
    the runner. Once either is gone, stop the shells (so they run nothing after this stage) and this process."""

    def connected() -> bool:
        if os.getppid() != parent:
            return False
        chain = [*shells, runner]
        return all(_proc_ppid(below) == above for below, above in itertools.pairwise(chain))

    while connected():
        time.sleep(WATCH_SECONDS)
    for shell in shells:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(shell, signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_with_parent(sig: int = signal.SIGTERM) -> None:
    """Make this process receive ``sig`` (default SIGTERM, whose default action ends it at once) when the runner
    that started it dies, so a stage never outlives the ``dvc`` (or other runner) that started it: after
    ``kill -9`` of ``dvc`` the stage must not go on writing outputs that dvc.lock will never describe.

    On Linux the direct parent is watched by ``prctl(PR_SET_PDEATHSIG, sig)`` (prctl(2)), set through ctypes;
    elsewhere a daemon thread polls ``os.getppid()`` every :data:`WATCH_SECONDS`. When the parent is a shell running
    ``-c`` that did not ``exec`` the command (Debian's dash as ``/bin/sh``, or ``a && b`` commands), that shell
    survives the runner's death, so the thread also watches the chain shell(s) -> runner
    (:func:`shells_and_runner`) and, once it breaks, stops the shells and this process. A parent that died just
    before the call is caught by comparing the parent pid before and after it. Idempotent. The setting lasts for
    this process only (children do not inherit it) and survives ``exec``. Caveat: prctl ties the process to the
    parent *thread* that forked it (dvc forks from its main thread).
    """
    global _stopping_with
    parent = os.getppid()
    if _stopping_with == parent:
        return
    libc_name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            err = ctypes.get_errno()
            log.warning("prctl(PR_SET_PDEATHSIG) failed (%s); watching the parent instead", os.strerror(err))
            libc_name = None
    shells, runner = shells_and_runner(parent)
    if shells or not libc_name:
        args = (parent, shells, runner)
        threading.Thread(target=_watch_parent, args=args, name="stop-with-parent", daemon=True).start()
    _stopping_with = parent
    if os.getppid() != parent:  # the parent died between the two calls: the signal will not come
        os.kill(os.getpid(), sig)


def run(
    main: Callable[[Sequence[str] | None], None],
    argv: Sequence[str] | None = None,
    name: str = "",
) -> None:
    """Run a stage's ``main``: log its elapsed time; a LifecycleError exits 1 with its message, no traceback, and so
    does an ``OSError`` for lack of room (a full disk or quota, a file over the size limit:
    :func:`lifecycle.io.storage_error` names the file and the cause). A ``KeyboardInterrupt`` exits 130.
    """
    setup_logging()
    started = time.perf_counter()
    label = name or getattr(main, "__module__", "stage")
    try:
        main(argv)
    except LifecycleError as exc:
        log.error("%s failed: %s", label, exc)
        sys.exit(1)
    except OSError as exc:
        no_room = storage_error(exc)
        if no_room is None:
            raise
        log.error("%s failed: %s", label, no_room)
        sys.exit(1)
    except KeyboardInterrupt:
        log.error("%s interrupted; outputs are unchanged (writes are atomic)", label)
        sys.exit(130)
    log.info("%s done in %.2f s", label, time.perf_counter() - started)
