"""What every command shares: logging set-up, timing, turning a LifecycleError into a clear exit, and tying a stage's
life to its parent's (:func:`stop_with_parent`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from lifecycle.errors import LifecycleError
from lifecycle.io import storage_error

log = logging.getLogger("lifecycle")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 0.5  # how often the watchdog (systems without prctl) looks at the parent
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


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_with_parent(sig: int = signal.SIGTERM) -> None:
    """Make this process receive ``sig`` (default SIGTERM, whose default action ends it at once) when its parent
    dies, so a stage never outlives the ``dvc`` (or other runner) that started it: after ``kill -9`` of ``dvc`` the
    stage must not go on writing outputs that dvc.lock will never describe.

    On Linux this is ``prctl(PR_SET_PDEATHSIG, sig)`` (prctl(2)), set through ctypes; elsewhere a daemon thread
    polls ``os.getppid()`` every :data:`WATCH_SECONDS`. A parent that died just before the call is caught by
    comparing the parent pid before and after it. Idempotent. The setting lasts for this process only (children
    do not inherit it) and survives ``exec``. Caveat: prctl ties the process to the parent *thread* that forked it
    (dvc forks from its main thread), and a shell between dvc and the stage that does not ``exec`` the command
    (``a && b`` commands) stays the parent; a stage's ``cmd`` here is one command, which ``sh -c`` execs.
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
    if not libc_name:
        threading.Thread(target=_watch_parent, args=(parent,), name="stop-with-parent", daemon=True).start()
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
