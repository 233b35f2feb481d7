"""Engines: scikit-learn and ONNX agree, auto picks by size, ONNX is used only when it may be."""

from __future__ import annotations

import json
import logging
import shutil

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import copy_model, settings_for

from lifecycle.artifact import ModelIntegrityError, save_model
from lifecycle.io import sha256_file
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


def test_onnx_graph_of_another_model_refuses_to_start(tmp_path, champion, challenger):
    files = copy_model(champion, tmp_path)
    shutil.copy(challenger.onnx, files["model.onnx"])  # a valid graph of another model, its hash "matching"
    meta = json.loads(files["model.json"].read_text())
    meta["onnx"]["sha256"] = json.loads(challenger.meta.read_text())["onnx"]["sha256"]
    files["model.json"].write_text(json.dumps(meta))
    for engine in ("auto", "sklearn"):  # the pair is checked whichever engine serves
        app = create_app(settings_for(files, engine=engine, prediction_log_dir=None))
        with pytest.raises(ModelIntegrityError, match="disagree on the start-up probe"), TestClient(app):
            pass


def test_onnx_file_that_is_not_the_recorded_graph_refuses_to_start(tmp_path, champion, challenger):
    files = copy_model(champion, tmp_path)
    shutil.copy(challenger.onnx, files["model.onnx"])  # model.json still names the champion's graph
    app = create_app(settings_for(files, prediction_log_dir=None))
    refusal = r"model\.onnx: sha256 .* does not match model\.json's onnx\.sha256"
    with pytest.raises(ModelIntegrityError, match=refusal), TestClient(app):
        pass


def swapped_classes(champion, dest, order):
    """A pickle whose classes_ are permuted (same probabilities, other names), recorded in its model.json as an
    attacker or a mix-up would: sha256 and size updated, model.onnx and its hash untouched."""
    files = copy_model(champion, dest)
    pipeline = joblib.load(files["model.joblib"])
    estimator = pipeline.steps[-1][1]
    estimator.classes_ = estimator.classes_[list(order)]
    save_model(pipeline, files["model.joblib"])
    meta = json.loads(files["model.json"].read_text())
    meta["model"]["sha256"] = sha256_file(files["model.joblib"])
    meta["model"]["bytes"] = files["model.joblib"].stat().st_size
    files["model.json"].write_text(json.dumps(meta))
    return files


@pytest.mark.parametrize("order", [(0, 1, 3, 2), (2, 1, 0, 3), (1, 2, 0, 3), (3, 2, 1, 0)])
def test_pickle_with_swapped_classes_refuses_to_start(tmp_path, champion, order):
    files = swapped_classes(champion, tmp_path, order)
    app = create_app(settings_for(files, prediction_log_dir=None))
    with pytest.raises(ModelIntegrityError, match=r"ONNX predicts .* where scikit-learn predicts"), TestClient(app):
        pass


@pytest.mark.parametrize("which", ["champion", "challenger"])
def test_startup_probe_exercises_every_class(trained_models, which):
    from lifecycle.artifact import ModelMetadata, load_model
    from lifecycle.serve.predictors import SklearnPredictor
    from lifecycle.serve.probe import build_probe

    trained = trained_models[which]
    meta = ModelMetadata.read(trained.meta)
    pipeline = load_model(trained.model, meta)
    predictor = SklearnPredictor(pipeline, meta.training_schema)
    classes = [str(c) for c in pipeline.classes_]
    for limits in ({}, {"cell_temp_max_c": (-40.0, 90.0), "state_of_health_pct": (0.0, 100.0)}):
        probe = build_probe(predictor, meta.training_schema, limits, classes)
        assert probe.covered == classes
        labels, _ = predictor.predict(probe.records)
        assert sorted(labels.tolist()) == sorted(classes)  # each row is predicted as the class it stands for
        for record in probe.records:  # rows within the limits the server enforces
            for name, (low, high) in limits.items():
                assert record[name] is None or low <= record[name] <= high
        assert build_probe(predictor, meta.training_schema, limits, classes) == probe  # deterministic


class _Fixed:
    def __init__(self, values):
        self.values = values

    def predict(self, records):
        return np.asarray(self.values[: len(records)], dtype=np.float64), None


def test_compare_regression_predictions_relative_tolerance():
    from lifecycle.serve.probe import compare

    records = [{"x": 1.0}, {"x": 2.0}]
    assert compare(_Fixed([1000.0, 1.0]), _Fixed([1000.5, 1.0]), records, 1e-3) == ""
    assert "differ by" in compare(_Fixed([1.0, 1.0]), _Fixed([1.01, 1.0]), records, 1e-3)
