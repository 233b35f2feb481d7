"""Progress for long steps that report none of their own (a model fit, a cross-validated search).

Library code logs through it; it lives apart from :mod:`lifecycle.cli` because the library never imports the
command-line shells.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def heartbeat(what: str, every: float = 10.0, logger: logging.Logger = log) -> Iterator[None]:
    """Log ``<what>: still running (N s)`` on ``logger`` every ``every`` seconds until the block ends.

    ``every`` is in seconds. A daemon thread does the logging and is joined when the block exits, whether it
    returns or raises; nothing is logged for a block shorter than ``every``.
    """
    done = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not done.wait(every):
            logger.info("%s: still running (%.0f s)", what, time.perf_counter() - started)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
