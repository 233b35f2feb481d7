"""The server under real uvicorn (`python -m lifecycle.serve`): it starts, answers, logs, and stops cleanly; it
refuses to start on a model whose hash does not match its card."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.helpers import free_port

from lifecycle.predictions import read_records

pytestmark = pytest.mark.slow


def start(env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lifecycle.serve"],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("server not ready in time")


def test_real_server_serves_logs_and_stops(tmp_path, champion, records):
    port = free_port()
    env = {
        "SERVE_PORT": str(port),
        "SERVE_MODEL_PATH": str(champion.model),
        "SERVE_META_PATH": str(champion.meta),
        "SERVE_ONNX_PATH": str(champion.onnx),
        "SERVE_PREDICTION_LOG_DIR": str(tmp_path / "predictions"),
    }
    proc = start(env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        with httpx.Client(base_url=url, timeout=10) as client:
            r = client.post("/predict", json={"records": records[:5]})
            assert r.status_code == 200, r.text
            assert len(r.json()["predictions"]) == 5
            assert (
                client.post("/predict", content=b"{", headers={"content-type": "application/json"}).status_code == 400
            )
            assert client.post("/v1/models/lifecycle:predict", json={"instances": records[:2]}).status_code == 200
            assert "lifecycle_requests_total" in client.get("/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal after a clean shutdown
    assert "Application shutdown complete" in output
    assert len(read_records(tmp_path / "predictions")) == 7


def test_real_server_refuses_a_tampered_model(tmp_path, champion):
    for name in ("model.joblib", "model.json"):
        shutil.copy(champion.directory / name, tmp_path / name)
    with (tmp_path / "model.joblib").open("ab") as f:
        f.write(b"tampered")
    env = {
        "SERVE_PORT": str(free_port()),
        "SERVE_MODEL_PATH": str(tmp_path / "model.joblib"),
        "SERVE_META_PATH": str(tmp_path / "model.json"),
        "SERVE_PREDICTION_LOG_DIR": "",
    }
    proc = start(env, tmp_path)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "refusing to load" in output
    assert "does not match" in output
