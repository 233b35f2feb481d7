"""`make serve WORKERS=2` for real: two uvicorn workers, /metrics aggregated over both (prometheus-client's
multiprocess mode, set up and cleaned by `python -m lifecycle.serve`), and what clients do wrong at the socket level
(a body that stops half-way, a non-JSON POST) ends without a server error or a traceback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifecycle.predictions import read_records

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text`` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_two_workers_aggregate_metrics_and_survive_bad_clients(tmp_path, champion, records):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {
        "OMP_NUM_THREADS": "1",
        "SERVE_PORT": str(port),
        "SERVE_WORKERS": "2",
        "SERVE_MODEL_PATH": str(champion.model),
        "SERVE_META_PATH": str(champion.meta),
        "SERVE_ONNX_PATH": str(champion.onnx),
        "SERVE_PREDICTION_LOG_DIR": str(tmp_path / "predictions"),
        "SERVE_LOG_FLUSH_SECONDS": "0.1",
    }
    output = tmp_path / "server.log"
    with output.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lifecycle.serve"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while output.read_text().count("Application startup complete") < 2:
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.3)
        directory = Path(re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", output.read_text()).group(1))
        assert directory.is_dir()

        # One request per connection until both workers have answered some (each writes counter_<pid>.db).
        sent = 0
        while len(list(directory.glob("counter_*.db"))) < 2 or sent < 20:
            assert sent < 300, "the kernel gave every connection to one worker"
            r = httpx.post(f"{url}/predict", json={"records": records[sent % 50 : sent % 50 + 1]}, timeout=30)
            assert r.status_code == 200, r.text
            sent += 1
        for _ in range(6):  # whichever worker answers the scrape reports both workers' counts
            text = httpx.get(f"{url}/metrics", timeout=30).text
            assert sample(text, "lifecycle_requests_total", route="/predict", method="POST", status="200") == sent
            assert sample(text, "lifecycle_predicted_rows_total", role="champion") == sent
            assert sample(text, "lifecycle_request_duration_seconds_count", route="/predict") == sent
            assert sample(text, "lifecycle_model_info", role="champion") == 1

        # A non-JSON POST: 415. A client that sends half its body and leaves: 499, not 500.
        r = httpx.post(f"{url}/predict", content=b"records=1", headers={"content-type": "text/plain"}, timeout=30)
        assert r.status_code == 415
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(
                    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 5000\r\n\r\n{"records": [{"state_of'
                )
                time.sleep(0.2)
        time.sleep(1.0)
        text = httpx.get(f"{url}/metrics", timeout=30).text
        assert sample(text, "lifecycle_requests_total", route="/predict", method="POST", status="415") == 1
        assert sample(text, "lifecycle_requests_total", route="/predict", method="POST", status="499") == 3
        assert 'status="500"' not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    log = output.read_text()
    assert "Traceback" not in log, log
    assert "Application shutdown complete" in log
    # Each worker's own records reach the output (the launcher's basicConfig does not reach spawned workers).
    assert (
        len(re.findall(r"INFO lifecycle\.serve\.predictors: champion model \S+: ONNX and scikit-learn agree", log)) == 2
    ), log
    assert not directory.exists()  # the launcher's directory is removed at exit
    rows = read_records(tmp_path / "predictions")
    assert len(rows) == sent
    pids = {p.name.split("-")[2] for p in (tmp_path / "predictions").glob("predictions-*.parquet")}
    assert len(pids) == 2, pids
