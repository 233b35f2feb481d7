"""The serving state: where the model comes from, and the request path every protocol shares."""

from __future__ import annotations

import functools
import subprocess

import pytest

from lifecycle.errors import LifecycleError
from lifecycle.serve.app import create_app
from lifecycle.serve.settings import Settings


def test_registry_source_without_a_prod_model_says_so(tmp_path):
    run = functools.partial(subprocess.run, cwd=tmp_path, check=True, capture_output=True)
    run(["git", "init", "-q"])
    run(["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "x"])
    with pytest.raises(LifecycleError, match=r"registry's 'prod' model|no version of 'model' is in stage 'prod'"):
        create_app(Settings(model_source="registry", registry_repo=tmp_path))


class BrokenEngine:
    engine = "onnx"

    def predict(self, records):
        raise RuntimeError("onnxruntime: unexpected input data type")


def test_engine_failure_on_valid_input_is_answered_by_sklearn(make_client, records):
    client = make_client()
    client.app.state.serving.champion.onnx = BrokenEngine()
    r = client.post("/predict", json={"records": records[:2]})
    assert r.status_code == 200, r.text
    assert r.json()["model"]["engine"] == "sklearn"
    assert 'lifecycle_engine_fallbacks_total{engine="onnx",role="champion"} 1.0' in client.get("/metrics").text
