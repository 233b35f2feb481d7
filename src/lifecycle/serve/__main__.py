"""``python -m lifecycle.serve``: run the API under uvicorn with host, port, workers and log level from settings.

SERVE_PORT=8000 SERVE_WORKERS=2 python -m lifecycle.serve

With more than one worker this launcher follows prometheus-client's multiprocess recipe: it points
``PROMETHEUS_MULTIPROC_DIR`` at a directory that is empty before the workers start (a new private temporary
directory, removed at exit; or the one already set, whose ``*.db`` files from an earlier run it deletes), so every
worker writes its metrics there and ``GET /metrics`` on any of them reports the sums over all workers.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from lifecycle.serve.settings import Settings

log = logging.getLogger(__name__)
# lifecycle.serve.metrics.MULTIPROC_ENV, not imported: prometheus-client must not be imported before it is set
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration plus this package's logger (``lifecycle.*``: the start-up probe, the engine
    choice, fallbacks, the prediction log) at ``level``, to stderr.

    uvicorn applies it in every worker process: with ``SERVE_WORKERS`` > 1 the workers are new interpreters (spawned),
    so the launcher's own ``logging.basicConfig`` does not reach them and their ``lifecycle`` records were lost.
    """
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["lifecycle"] = {"format": LOG_FORMAT}
    config["handlers"]["lifecycle"] = {
        "formatter": "lifecycle",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["lifecycle"] = {"handlers": ["lifecycle"], "level": level.upper(), "propagate": False}
    return config


@contextlib.contextmanager
def multiprocess_metrics(workers: int) -> Iterator[Path | None]:
    """The directory for prometheus-client's multiprocess mode while the server runs (None for one worker without
    ``PROMETHEUS_MULTIPROC_DIR``): set in the environment the workers inherit, empty of metric files at start.

    A directory this function creates (mode 0700) is removed at exit; one the caller named is created if missing
    and only emptied of its ``*.db`` files, never removed.
    """
    named = os.environ.get(MULTIPROC_ENV)
    if not named and workers == 1:
        yield None
        return
    if named:
        directory, created = Path(named), False
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # the recipe: wiped between runs, before the workers start
            stale.unlink()
    else:
        directory, created = Path(tempfile.mkdtemp(prefix="lifecycle-prometheus-")), True
        os.environ[MULTIPROC_ENV] = str(directory)
    log.info("prometheus multiprocess mode: %s=%s (%d workers)", MULTIPROC_ENV, directory, workers)
    try:
        yield directory
    finally:
        if created:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)  # this launcher's own records
    with multiprocess_metrics(settings.workers):
        uvicorn.run(
            "lifecycle.serve.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            log_config=log_config(settings.log_level),
            access_log=False,
            timeout_graceful_shutdown=10,
        )


if __name__ == "__main__":
    main()
