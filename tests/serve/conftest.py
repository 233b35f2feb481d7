"""Fixtures and helpers for the server tests: small trained models written the way the pipeline writes them.

``trained_models`` fits a champion (HistGradientBoosting, 30 iterations) and a challenger (logistic regression) on
3000 simulated telemetry rows with ``lifecycle.modeling.pipeline``'s ``fit`` and ``model_metadata``, and packages each with the
export stage's ``run`` (ONNX + parity report in model.json). About 5 s, once per session.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.conftest import small_params
from threadpoolctl import threadpool_limits

from lifecycle.artifact import save_model
from lifecycle.data import telemetry
from lifecycle.io import write_bytes, write_json, write_table
from lifecycle.modeling.pipeline import fit, model_metadata
from lifecycle.onnx.convert import package
from lifecycle.schema import coerce_frame, infer_schema
from lifecycle.serve.app import create_app
from lifecycle.serve.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Trained:
    directory: Path
    model: Path
    meta: Path
    onnx: Path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"model_path": self.model, "meta_path": self.meta, "onnx_path": self.onnx} | overrides


def _fit(directory: Path, family: str, df: pd.DataFrame, test: pd.DataFrame, schema: Any) -> Trained:
    params = small_params(model=family)
    directory.mkdir(parents=True, exist_ok=True)
    data_path, test_path, schema_path = (
        directory / "train.parquet",
        directory / "test.parquet",
        directory / "schema.json",
    )
    write_table(df, data_path)
    write_table(test, test_path)
    write_json(schema_path, schema.to_dict())
    pipeline, metrics = fit(df, schema, params)
    model_path = directory / "model.joblib"
    save_model(pipeline, model_path)
    train = model_metadata(model_path, data_path, df, schema, params, metrics)
    onnx_path, meta_path = directory / "model.onnx", directory / "model.json"
    onnx, record = package(pipeline, train, schema, test[schema.features], params.export, seed=params.base.seed)
    write_bytes(onnx_path, onnx or b"")
    record.write(meta_path)
    return Trained(directory, model_path, meta_path, onnx_path)


@pytest.fixture(scope="session")
def telemetry_frames() -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    raw = telemetry.generate(rows=3000, seed=7)
    schema = infer_schema(raw, telemetry.TARGET, "classification", id_columns=telemetry.ID_COLUMNS)
    df = coerce_frame(raw, schema)
    return df.iloc[:2400].reset_index(drop=True), df.iloc[2400:].reset_index(drop=True), schema


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, telemetry_frames: Any) -> dict[str, Trained]:
    train_df, test_df, schema = telemetry_frames
    root = tmp_path_factory.mktemp("models")
    with threadpool_limits(1):  # OpenMP on a busy 2-core machine: 1 thread fits HGB ~20x faster
        return {
            "champion": _fit(root / "champion", "hist_gradient_boosting", train_df, test_df, schema),
            "challenger": _fit(root / "challenger", "logistic_regression", train_df, test_df, schema),
        }


@pytest.fixture(scope="session")
def champion(trained_models: dict[str, Trained]) -> Trained:
    return trained_models["champion"]


@pytest.fixture(scope="session")
def challenger(trained_models: dict[str, Trained]) -> Trained:
    return trained_models["challenger"]


def to_records(df: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON values, null for missing."""
    out = json.loads(df[columns].to_json(orient="records", date_format="iso"))
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in out]


@pytest.fixture(scope="session")
def records(telemetry_frames: Any) -> list[dict[str, Any]]:
    """200 valid request records from the test rows (ids, timestamp and features; no glitches, no target)."""
    _, test_df, schema = telemetry_frames
    ok = pd.Series(True, index=test_df.index)
    for name, (low, high) in telemetry.PHYSICAL_LIMITS.items():
        ok &= test_df[name].isna() | test_df[name].between(low, high)
    columns = [*schema.identifiers, *schema.datetimes, *schema.features]
    return to_records(test_df[ok].head(200), columns)


@pytest.fixture
def make_client(tmp_path: Path, champion: Trained) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)`` -> a started TestClient (lifespan run) on the champion; closed after the test."""
    clients: list[TestClient] = []

    def factory(**overrides: Any) -> TestClient:
        values = champion.settings(prediction_log_dir=tmp_path / "predictions", log_flush_seconds=0.05) | overrides
        client = TestClient(create_app(Settings(**values)), raise_server_exceptions=True)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


# --------------------------------------------------------------------------------------------- helpers
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


def expected(champion, records):
    pipeline = joblib.load(champion.model)
    features = list(pipeline.feature_names_in_)
    X = pd.DataFrame([{k: (np.nan if r[k] is None else r[k]) for k in features} for r in records])
    with threadpool_limits(1):  # HGB's OpenMP threads on a busy machine: 1 is faster
        return pipeline.predict(X).tolist(), pipeline.predict_proba(X)


def assert_rejected(client, response, status, field, rule_part, value=...):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_count"] >= 1
    item = next((e for e in body["errors"] if e["field"] == field), None)
    assert item is not None, f"no error for {field}: {body}"
    assert rule_part in item["rule"], item
    if value is not ...:
        assert item["value"] == value
    assert field in body["error"] or body["error_count"] > 1
    ok = client.post("/predict", json={"records": [client.valid]})  # the server keeps serving
    assert ok.status_code == 200, ok.text


@pytest.fixture
def bad_client(make_client, records):
    client = make_client(max_rows=5, max_body_bytes=4096)
    client.valid = records[0]
    return client
