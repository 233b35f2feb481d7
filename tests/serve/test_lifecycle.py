"""Startup (hash check, sources, settings), engines, the challenger (shadow, canary) and the prediction log."""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from lifecycle.artifact import ModelIntegrityError
from lifecycle.errors import DataError, LifecycleError
from lifecycle.predictions import read_records
from lifecycle.schema import Schema
from lifecycle.serve.app import create_app
from lifecycle.serve.challenger import canary_hit
from lifecycle.serve.predlog import Entry, PredictionLog
from lifecycle.serve.settings import Settings


def copy_model(trained, dest: Path) -> dict[str, Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("model.joblib", "model.json", "model.onnx"):
        shutil.copy(trained.directory / name, dest / name)
        out[name] = dest / name
    return out


def settings_for(files: dict[str, Path], **extra) -> Settings:
    return Settings(
        model_path=files["model.joblib"], meta_path=files["model.json"], onnx_path=files["model.onnx"], **extra
    )


# --------------------------------------------------------------------------------------------- refusing to start
def test_refuses_to_start_when_the_model_hash_does_not_match(tmp_path, champion, caplog):
    files = copy_model(champion, tmp_path)
    meta = json.loads(files["model.json"].read_text())
    meta["model"]["sha256"] = "0" * 64
    files["model.json"].write_text(json.dumps(meta))
    app = create_app(settings_for(files, prediction_log_dir=None))
    refusal = r"refusing to load .*model.joblib: its sha256 .* does not match"
    with pytest.raises(ModelIntegrityError, match=refusal), TestClient(app):
        pass
    assert "cannot start serving" in caplog.text


def test_refuses_to_start_when_the_model_file_is_missing(tmp_path, champion):
    files = copy_model(champion, tmp_path)
    files["model.joblib"].unlink()
    with pytest.raises(ModelIntegrityError, match="model.joblib: model not found"), TestClient(create_app(settings_for(files))):
        pass


def test_refuses_to_build_without_a_model_card(tmp_path, champion):
    files = copy_model(champion, tmp_path)
    files["model.json"].unlink()
    with pytest.raises(ModelIntegrityError, match="model metadata not found"):
        create_app(settings_for(files))


def test_registry_source_without_a_prod_model_says_so(tmp_path):
    run = functools.partial(subprocess.run, cwd=tmp_path, check=True, capture_output=True)
    run(["git", "init", "-q"])
    run(["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty", "-m", "x"])
    with pytest.raises(LifecycleError, match=r"registry's 'prod' model|no version of 'model' is in stage 'prod'"):
        create_app(Settings(model_source="registry", registry_repo=tmp_path))


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SERVE_MAX_ROWS", "7")
    monkeypatch.setenv("SERVE_ENGINE", "sklearn")
    monkeypatch.setenv("SERVE_NUMERIC_LIMITS", '{"charge_cycles": [0, 5000]}')
    s = Settings()
    assert (s.max_rows, s.engine, s.numeric_limits) == (7, "sklearn", {"charge_cycles": (0.0, 5000.0)})
    monkeypatch.setenv("SERVE_ENGINE", "gpu")
    with pytest.raises(ValidationError, match="engine"):
        Settings()


def test_challenger_mode_needs_its_files():
    with pytest.raises(ValidationError, match="SERVE_CHALLENGER_MODEL_PATH"):
        Settings(challenger_mode="shadow")


def test_numeric_limits_must_name_numeric_features(champion):
    with pytest.raises(ValueError, match="not numeric features"):
        create_app(Settings(**champion.settings(numeric_limits={"charge_mode": (0, 1)})))


def test_custom_numeric_limits_are_enforced(make_client, records):
    client = make_client(numeric_limits={"charge_cycles": (0, 100)})
    r = client.post("/predict", json={"records": [dict(records[0], charge_cycles=150.0)]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["rule"] == "out of range: must be <= 100.0"


def test_the_data_contracts_bounds_in_model_json_are_enforced(tmp_path, champion, records):
    """What a user's own dataset gets: the bounds its contract held the training rows to (model.json's
    ``contract.limits``, written by export) apply with the built-in telemetry limits off; an open side (null) is
    not checked; SERVE_NUMERIC_LIMITS still wins."""
    files = copy_model(champion, tmp_path)
    meta = json.loads(files["model.json"].read_text())
    meta["contract"] = {
        "file": "c.yaml",
        "dataset": "x",
        "limits": {"charge_cycles": [0, 100], "ambient_temp_c": [None, 30]},
    }
    files["model.json"].write_text(json.dumps(meta))
    row = dict(records[0], charge_cycles=50.0, ambient_temp_c=-500.0)
    with TestClient(create_app(settings_for(files, builtin_limits=False, prediction_log_dir=None))) as client:
        assert client.post("/predict", json={"records": [row]}).status_code == 200  # no lower bound on ambient
        r = client.post("/predict", json={"records": [dict(row, charge_cycles=150.0)]})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"].endswith("charge_cycles")
        assert r.json()["errors"][0]["rule"] == "out of range: must be <= 100.0"
        r = client.post("/predict", json={"records": [dict(row, ambient_temp_c=31.0)]})
        assert r.json()["errors"][0]["rule"] == "out of range: must be <= 30.0"
    override = settings_for(
        files, builtin_limits=False, numeric_limits={"charge_cycles": (0, 1000)}, prediction_log_dir=None
    )
    with TestClient(create_app(override)) as client:
        assert client.post("/predict", json={"records": [dict(row, charge_cycles=150.0)]}).status_code == 200


# --------------------------------------------------------------------------------------------- engines
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


# --------------------------------------------------------------------------------------------- challenger
def read_log(directory: Path) -> pd.DataFrame:
    return read_records(directory, served_only=False)


def test_shadow_challenger_predicts_every_request_but_is_not_returned(
    tmp_path, make_client, champion, challenger, records
):
    client = make_client(
        challenger_mode="shadow", challenger_model_path=challenger.model, challenger_meta_path=challenger.meta
    )
    ids = [f"shadow-{i}" for i in range(5)]
    for rid in ids:
        body = client.post("/predict", json={"records": records[:3]}, headers={"x-request-id": rid}).json()
        assert body["model"]["role"] == "champion"
    info = client.get("/model").json()
    assert info["challenger"]["family"] == "logistic_regression"
    assert info["challenger_mode"] == "shadow"
    client.__exit__(None, None, None)  # drain the shadow queue and the log
    log = read_log(tmp_path / "predictions")
    assert sorted(log[log.model_role == "champion"].request_id.unique()) == ids
    shadow = log[log.model_role == "challenger"]
    assert sorted(shadow.request_id.unique()) == ids
    assert not shadow.served.any()
    assert log[log.model_role == "champion"].served.all()
    assert len(shadow) == 15


def test_canary_answers_a_deterministic_share(make_client, challenger, records):
    client = make_client(
        challenger_mode="canary",
        canary_percent=30,
        challenger_model_path=challenger.model,
        challenger_meta_path=challenger.meta,
    )
    roles = {}
    for i in range(200):
        rid = f"req-{i}"
        body = client.post("/predict", json={"records": records[:1]}, headers={"x-request-id": rid}).json()
        roles[rid] = body["model"]["role"]
        assert body["model"]["role"] == ("challenger" if canary_hit(rid, 30) else "champion")
    share = sum(r == "challenger" for r in roles.values()) / len(roles)
    assert 0.2 < share < 0.4
    again = client.post("/predict", json={"records": records[:1]}, headers={"x-request-id": "req-7"}).json()
    assert again["model"]["role"] == roles["req-7"]


def test_canary_bounds():
    ids = [f"id-{i}" for i in range(1000)]
    assert not any(canary_hit(i, 0) for i in ids)
    assert all(canary_hit(i, 100) for i in ids)


def test_challenger_with_another_schema_is_refused(tmp_path, champion, challenger):
    files = copy_model(challenger, tmp_path / "challenger")
    meta = json.loads(files["model.json"].read_text())
    meta["schema"]["columns"] = [c for c in meta["schema"]["columns"] if c["name"] != "chemistry"]
    files["model.json"].write_text(json.dumps(meta))
    s = Settings(**champion.settings(prediction_log_dir=None, challenger_mode="canary",
                                     challenger_model_path=files["model.joblib"], challenger_meta_path=files["model.json"]))  # fmt: skip
    with pytest.raises(DataError, match=r"different schema .*chemistry"), TestClient(create_app(s)):
        pass


# --------------------------------------------------------------------------------------------- prediction log
def test_prediction_log_holds_inputs_outputs_version_id_and_time(tmp_path, make_client, champion, records):
    client = make_client(log_rotate_rows=5)
    r = client.post("/predict", json={"records": records[:3]}, headers={"x-request-id": "log-1"}).json()
    client.post("/v1/models/lifecycle:predict", json={"instances": records[3:7]}, headers={"x-request-id": "log-2"})
    client.__exit__(None, None, None)
    files = sorted((tmp_path / "predictions").glob("*.parquet"))
    assert files  # rotated after 5 rows, the rest published at shutdown
    assert not list((tmp_path / "predictions").glob(".inprogress-*"))
    assert len(pd.read_parquet(tmp_path / "predictions")) == 7  # the directory reads as one table
    log = read_log(tmp_path / "predictions")
    assert len(log) == 7
    first = log[log.request_id == "log-1"].sort_values("row")
    assert first.prediction.tolist() == r["predictions"]
    assert first.reading_id.tolist() == [x["reading_id"] for x in records[:3]]
    assert first.state_of_health_pct.tolist() == pytest.approx([x["state_of_health_pct"] for x in records[:3]])
    assert (first.model_version == r["model"]["version"]).all()
    np.testing.assert_allclose(first.proba_none, [p["none"] for p in r["probabilities"]])
    assert set(log.endpoint) == {"/predict", "/v1/models/:predict"}
    assert pd.to_datetime(log.time, utc=True).notna().all()


def test_prediction_log_never_blocks_a_full_queue_drops_and_counts(tmp_path, champion):
    dropped = []
    schema = Schema.from_dict(json.loads(champion.meta.read_text())["schema"])
    log = PredictionLog(tmp_path, schema, queue_size=1, on_drop=dropped.append)  # not started: nothing drains it
    entry = Entry(time.time(), "r", "/predict", "m", "v", "champion", True, "sklearn", [{"a": 1.0}],
                  np.array(["x"]), None, [])  # fmt: skip
    assert log.submit(entry)
    started = time.perf_counter()
    assert not log.submit(entry)
    assert time.perf_counter() - started < 0.01
    assert dropped == [1]
    assert log.dropped == 1


def test_prediction_log_flushes_by_time_while_serving(tmp_path, make_client, records):
    client = make_client(log_flush_seconds=0.05)
    client.post("/predict", json={"records": records[:2]})
    deadline = time.monotonic() + 5
    log = client.app.state.serving.log
    while time.monotonic() < deadline and log.written < 2:
        time.sleep(0.05)
    assert log.written == 2  # written while the server runs, not only at shutdown
    assert list((tmp_path / "predictions").glob(".inprogress-predictions-*.parquet"))


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
