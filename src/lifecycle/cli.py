"""What every command shares: logging set-up, timing, and turning a LifecycleError into a clear exit."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

from lifecycle.errors import LifecycleError

log = logging.getLogger("lifecycle")


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


def run(
    main: Callable[[Sequence[str] | None], None],
    argv: Sequence[str] | None = None,
    name: str = "",
) -> None:
    """Run a stage's ``main``: log its elapsed time; a LifecycleError exits 1 with its message, no traceback.
    A ``KeyboardInterrupt`` exits 130.
    """
    setup_logging()
    started = time.perf_counter()
    label = name or getattr(main, "__module__", "stage")
    try:
        main(argv)
    except LifecycleError as exc:
        log.error("%s failed: %s", label, exc)
        sys.exit(1)
    except KeyboardInterrupt:
        log.error("%s interrupted; outputs are unchanged (writes are atomic)", label)
        sys.exit(130)
    log.info("%s done in %.2f s", label, time.perf_counter() - started)
