"""Open Inference V2 datatypes (issue 13 item 12): one mapping for model metadata and inference responses, checked
through the API on models of a boolean, an integer-class and a text target, and an integer-valued regression."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import Trained, _fit
from tests.serve.test_open_inference_v2 import v2_body
from threadpoolctl import threadpool_limits

from lifecycle.data import telemetry
from lifecycle.schema import coerce_frame, infer_schema
from lifecycle.serve.app import create_app
from lifecycle.serve.schemas import output_datatype, v2_datatype
from lifecycle.serve.settings import Settings

FAULT_CODES = {name: i for i, name in enumerate(telemetry.CLASSES)}
TARGETS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]] = {
    # name -> (task, target from the telemetry rows)
    "boolean": ("classification", lambda df: df[telemetry.TARGET] != "none"),  # any fault: True/False
    "integer": ("classification", lambda df: df[telemetry.TARGET].map(FAULT_CODES).astype("int64")),  # 0..3
    "text": ("classification", lambda df: df[telemetry.TARGET]),
    "regression": ("regression", lambda df: df["state_of_charge_pct"].round().astype("int64")),  # integer values
}
EXPECTED = {"boolean": ("BOOL", bool), "integer": ("INT64", int), "text": ("BYTES", str), "regression": ("FP64", float)}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    raw = telemetry.generate(rows=1500, seed=11, missing_rate=0.0, duplicate_rate=0.0, glitch_rate=0.0)
    out = {}
    with threadpool_limits(1):
        for name, (task, target) in TARGETS.items():
            df = raw.drop(columns=[telemetry.TARGET]).assign(y=target(raw))
            if task == "regression":
                df = df.drop(columns=["state_of_charge_pct"])
            schema = infer_schema(df, "y", task, id_columns=telemetry.ID_COLUMNS)
            df = coerce_frame(df, schema)
            out[name] = _fit(tmp_path_factory.mktemp(name), "hist_gradient_boosting", df[:1200], df[1200:], schema)
    return out


@pytest.fixture(scope="module")
def clients(models: dict[str, Trained], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    started = {}
    for name, trained in models.items():
        settings = Settings(**trained.settings(prediction_log_dir=tmp_path_factory.mktemp(f"log-{name}")))
        started[name] = TestClient(create_app(settings)).__enter__()
    yield started
    for client in started.values():
        client.__exit__(None, None, None)


def request_records(client: TestClient) -> list[dict[str, Any]]:
    raw = telemetry.generate(rows=40, version="v1", seed=3, missing_rate=0.0, glitch_rate=0.0, duplicate_rate=0.0)
    names = [i["name"] for i in client.get("/v2/models/lifecycle").json()["inputs"]]
    return [{k: r[k] for k in names} for r in raw.to_dict(orient="records")][:20]


@pytest.mark.parametrize("name", list(TARGETS))
def test_metadata_and_response_declare_the_same_datatype_as_the_values(clients, name) -> None:
    client = clients[name]
    datatype, kind = EXPECTED[name]
    meta = client.get("/v2/models/lifecycle").json()
    first = meta["outputs"][0]
    assert first["name"] == ("prediction" if name == "regression" else "label")
    assert first["datatype"] == datatype, meta["outputs"]
    assert {i["datatype"] for i in meta["inputs"]} <= {"FP64", "BYTES"}

    r = client.post("/v2/models/lifecycle/infer", json=v2_body(client, request_records(client)))
    assert r.status_code == 200, r.text
    output = r.json()["outputs"][0]
    assert output["datatype"] == datatype  # the response says what the metadata says
    assert output["data"] and all(type(v) is kind for v in output["data"]), output["data"][:5]
    if name == "boolean":
        assert set(output["data"]) <= {True, False}
    if name != "regression":
        probabilities = r.json()["outputs"][1]
        assert probabilities["datatype"] == "FP64"
        assert all(type(c) is kind for c in probabilities["parameters"]["classes"])


@pytest.mark.parametrize(
    ("values", "datatype"),
    [
        ([False, True], "BOOL"),
        (np.array([True, False]), "BOOL"),
        (np.array([True, False], dtype=object), "BOOL"),
        ([3, 4, 5], "INT64"),  # True is an int in Python, but a bool is never INT64 here, nor an int BOOL
        (np.array([3, 4], dtype=np.int32), "INT64"),
        ([0.5, 1], "FP64"),
        (np.array([1.0, 2.0]), "FP64"),
        (["none", "overheating"], "BYTES"),
        (np.array(["a", "b"], dtype=object), "BYTES"),
        (["1", 2], "BYTES"),
    ],
)
def test_one_mapping_from_values_to_v2_datatypes(values, datatype) -> None:
    assert v2_datatype(values) == datatype
    assert output_datatype("classification", values) == datatype
    assert output_datatype("regression", values) == "FP64"


def test_metadata_of_the_champion_is_unchanged_for_text_classes(client) -> None:
    outputs = client.get("/v2/models/lifecycle").json()["outputs"]
    assert [(o["name"], o["datatype"]) for o in outputs] == [("label", "BYTES"), ("probabilities", "FP64")]
