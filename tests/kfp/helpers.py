"""Shared pieces of the Kubeflow pipeline tests: a loopback webhook and DVC's own view of the DAG."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PIPELINE_YAML = ROOT / "deploy" / "kfp" / "pipeline.yaml"
EXPERIMENT_YAML = ROOT / "deploy" / "kfp" / "katib-experiment.yaml"


class Webhook:
    """A loopback HTTP server that records every POSTed JSON body."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kfp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dvc_dag_edges(dvc_yaml: Path, params_yaml: Path, tmp: Path) -> set[tuple[str, str]]:
    """The stage edges DVC itself draws (`dvc dag --dot`) for ``dvc_yaml``, in a scratch DVC repository."""
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(dvc_yaml, tmp / "dvc.yaml")
    shutil.copy(params_yaml, tmp / "params.yaml")
    dvc = str(BIN / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=tmp, check=True, capture_output=True)
    dot = subprocess.run([dvc, "dag", "--dot"], cwd=tmp, check=True, capture_output=True, text=True).stdout
    return set(re.findall(r'"([^"]+)" -> "([^"]+)"', dot))
