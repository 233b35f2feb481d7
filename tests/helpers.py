"""Helpers the tests share: free loopback ports, the moto S3 server and its credentials, Python start-up hooks.

Fixtures live in tests/conftest.py (``one_thread``, the scratch repositories); plain functions and classes here.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# moto accepts any credentials; these keep boto3 and DVC from looking for real ones
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoS3:
    """A moto S3 server on 127.0.0.1 that a test can stop and start again on the same port (state survives:
    moto's backend lives in this process, like the data of a real store during an outage)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: Any = None  # moto.server.ThreadedMotoServer while running

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **boto_credentials())

    def objects(self, bucket: str) -> list[str]:
        """Every key in ``bucket``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@contextlib.contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """A running :class:`MotoS3`, stopped on exit."""
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def boto_credentials() -> dict[str, str]:
    """:data:`CREDENTIALS` as boto3.client keywords."""
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def startup_hook(folder: Path, code: str) -> dict[str, str]:
    """Write ``code`` as ``folder``/sitecustomize.py and return the environment that makes every Python process
    started with it (DVC, its stages, queue workers) run that code at start-up: ``{"PYTHONPATH": folder}``.

    The way to stop a real stage at a chosen point (inside a write, at a barrier) without changing the code under
    test; the hook should act only when its own environment variable is set."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": str(folder)}


def use_this_venv(repo: Path) -> None:
    """Make ``repo``'s Makefile run with this interpreter's tools: ``repo``/.venv/bin links to them, and fresh
    setup stamps (.venv/.synced, .venv/.synced-dev, newer than pyproject.toml and uv.lock) keep make from syncing."""
    venv = repo / ".venv"
    venv.mkdir(exist_ok=True)
    (venv / "bin").symlink_to(Path(sys.executable).parent)
    for stamp in (".synced", ".synced-dev"):
        (venv / stamp).touch()


# A tiny search space per model family: enough to exercise train.search without a long fit (train, search tests).
SMALL_SPACE = {
    "hist_gradient_boosting": {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [7, 15]},
    "random_forest": {"max_depth": [None, 6]},
    "logistic_regression": {"C": [0.1, 1.0]},
    "ridge": {"alpha": [0.1, 1.0]},
}
