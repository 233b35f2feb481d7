"""``python -m lifecycle.serve``: run the API under uvicorn with host, port, workers and log level from settings.

SERVE_PORT=8000 SERVE_WORKERS=2 python -m lifecycle.serve
"""

from __future__ import annotations

import logging

import uvicorn

from lifecycle.serve.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "lifecycle.serve.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
