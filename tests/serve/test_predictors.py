"""Engines: scikit-learn and ONNX agree, auto picks by size, ONNX is used only when it may be."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import copy_model, settings_for

from lifecycle.serve.app import create_app


def test_predict_single_row_onnx_and_sklearn_agree(make_client, records):
    onnx, sklearn = make_client(engine="onnx"), make_client(engine="sklearn")
    for record in records[:20]:
        a = onnx.post("/predict", json={"records": [record]}).json()
        b = sklearn.post("/predict", json={"records": [record]}).json()
        assert a["model"]["engine"] == "onnx"
        assert b["model"]["engine"] == "sklearn"
        assert a["predictions"] == b["predictions"]
        for c, p in b["probabilities"][0].items():
            assert a["probabilities"][0][c] == pytest.approx(p, abs=1e-4)


def test_auto_engine_sends_large_batches_to_sklearn(make_client, records):
    client = make_client(engine="auto", onnx_max_rows=5)
    assert client.post("/predict", json={"records": records[:5]}).json()["model"]["engine"] == "onnx"
    assert client.post("/predict", json={"records": records[:6]}).json()["model"]["engine"] == "sklearn"


def test_both_engines_implement_the_predictor_protocol(client):
    from lifecycle.serve.predictors import Predictor

    champion = client.app.state.serving.champion
    assert isinstance(champion.sklearn, Predictor)
    assert isinstance(champion.onnx, Predictor)
    assert {champion.sklearn.engine, champion.onnx.engine} == {"sklearn", "onnx"}


def test_onnx_unusable_falls_back_to_sklearn_and_says_so(tmp_path, champion, records, caplog):
    files = copy_model(champion, tmp_path)
    files["model.onnx"].write_bytes(b"")  # e.g. a model that did not convert
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(settings_for(files, engine="onnx", prediction_log_dir=None))) as client:
        r = client.post("/predict", json={"records": records[:1]})
        assert r.json()["model"]["engine"] == "sklearn"
        assert "missing or empty" in client.get("/model").json()["champion"]["engine_note"]
    assert "serving with scikit-learn, ONNX unavailable" in caplog.text


def test_onnx_not_verified_falls_back(tmp_path, champion, records):
    files = copy_model(champion, tmp_path)
    meta = json.loads(files["model.json"].read_text())
    meta["onnx"]["usable"], meta["onnx"]["reason"] = False, "parity failed on the test split: ..."
    files["model.json"].write_text(json.dumps(meta))
    with TestClient(create_app(settings_for(files, prediction_log_dir=None))) as client:
        assert client.post("/predict", json={"records": records[:1]}).json()["model"]["engine"] == "sklearn"
        assert "parity failed" in client.get("/model").json()["champion"]["engine_note"]


def test_onnx_graph_that_disagrees_at_startup_is_not_served(tmp_path, champion, challenger, records, caplog):
    files = copy_model(champion, tmp_path)
    shutil.copy(challenger.onnx, files["model.onnx"])  # a valid graph of another model, its hash "matching"
    meta = json.loads(files["model.json"].read_text())
    meta["onnx"]["sha256"] = json.loads(challenger.meta.read_text())["onnx"]["sha256"]
    files["model.json"].write_text(json.dumps(meta))
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(settings_for(files, prediction_log_dir=None))) as client:
        assert client.post("/predict", json={"records": records[:1]}).json()["model"]["engine"] == "sklearn"
        assert "failed its startup check" in client.get("/model").json()["champion"]["engine_note"]
    assert "failed its startup check" in caplog.text
