"""Open Inference V2: column tensors or one positional tensor, metadata, health; bad tensors get the same error contract."""

from __future__ import annotations

import numpy as np
import pytest
from tests.serve.conftest import assert_rejected, expected


def v2_body(client, records, nested=False):
    meta = client.get("/v2/models/lifecycle").json()
    inputs = []
    for spec in meta["inputs"]:
        data = [r[spec["name"]] for r in records]
        inputs.append(
            {
                "name": spec["name"],
                "datatype": spec["datatype"],
                "shape": [len(records), 1] if nested else [len(records)],
                "data": [[v] for v in data] if nested else data,
            }
        )
    return {"id": "req-1", "inputs": inputs}


def test_v2_infer_per_column_tensors(client, champion, records):
    labels, proba = expected(champion, records[:7])
    r = client.post("/v2/models/lifecycle/infer", json=v2_body(client, records[:7]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == "lifecycle"
    out = {o["name"]: o for o in body["outputs"]}
    assert out["label"]["data"] == labels
    assert out["label"]["shape"] == [7]
    assert out["probabilities"]["shape"] == [7, 4]
    np.testing.assert_allclose(np.reshape(out["probabilities"]["data"], (7, 4)), proba, atol=1e-4)
    nested = client.post("/v2/models/lifecycle/infer", json=v2_body(client, records[:7], nested=True)).json()
    assert {o["name"]: o for o in nested["outputs"]}["label"]["data"] == labels


def test_v2_infer_one_positional_tensor_and_version_route(client, champion, records):
    labels, _ = expected(champion, records[:3])
    features = [i["name"] for i in client.get("/v2/models/lifecycle").json()["inputs"]]
    body = {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "BYTES",
                "shape": [3, len(features)],
                "data": [[r[f] for f in features] for r in records[:3]],
            }
        ],
        "outputs": [{"name": "label"}],
    }
    version = client.get("/v2/models/lifecycle").json()["versions"][0]
    r = client.post(f"/v2/models/lifecycle/versions/{version}/infer", json=body)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["label"]
    assert r.json()["outputs"][0]["data"] == labels
    assert client.post("/v2/models/lifecycle/versions/nope/infer", json=body).status_code == 404


def test_v2_metadata_and_health(client):
    meta = client.get("/v2/models/lifecycle").json()
    assert meta["name"] == "lifecycle"
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["charge_mode"] == "BYTES"
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert client.get(f"/v2/models/lifecycle/versions/{meta['versions'][0]}").status_code == 200
    assert client.get("/v2/models/lifecycle/ready").json() == {"name": "lifecycle", "ready": True}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "lifecycle"
    assert client.get("/v2/models/other").status_code == 404


def v2(client, records, **change):
    meta = client.get("/v2/models/lifecycle").json()
    inputs = [
        {"name": i["name"], "datatype": i["datatype"], "shape": [len(records)], "data": [r[i["name"]] for r in records]}
        for i in meta["inputs"]
    ]
    for name, patch in change.items():
        tensor = next(t for t in inputs if t["name"] == name)
        if patch is None:
            inputs.remove(tensor)
        else:
            tensor.update(patch)
    return {"inputs": inputs}


def test_v2_bad_value(bad_client, records):
    body = v2(bad_client, records[:2], cell_temp_max_c={"data": [30.0, 400.0]})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs.cell_temp_max_c.data[1]", "out of range", 400.0)


def test_v2_missing_tensor(bad_client, records):
    r = bad_client.post("/v2/models/lifecycle/infer", json=v2(bad_client, records[:2], climate_zone=None))
    assert_rejected(bad_client, r, 400, "inputs.climate_zone", "required")


def test_v2_unknown_tensor(bad_client, records):
    body = v2(bad_client, records[:1])
    body["inputs"].append({"name": "fault", "datatype": "BYTES", "shape": [1], "data": ["none"]})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs[11].name", "unknown input", "fault")


def test_v2_wrong_datatype(bad_client, records):
    body = v2(bad_client, records[:1], charge_mode={"datatype": "FP32"})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs.charge_mode.datatype", "use BYTES", "FP32")


def test_v2_shape_mismatch(bad_client, records):
    body = v2(bad_client, records[:2], ambient_temp_c={"shape": [3]})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs.ambient_temp_c.shape", "N values", [3])


def test_v2_rows_differ_between_tensors(bad_client, records):
    body = v2(bad_client, records[:2], ambient_temp_c={"shape": [1], "data": [20.0]})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs.ambient_temp_c.shape", "same number of rows")


def test_v2_too_many_rows(bad_client, records):
    r = bad_client.post("/v2/models/lifecycle/infer", json=v2(bad_client, [records[0]] * 6))
    assert_rejected(bad_client, r, 400, "inputs", "at most 5 per request")


def test_v2_unknown_output(bad_client, records):
    body = v2(bad_client, records[:1]) | {"outputs": [{"name": "logits"}]}
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "outputs", "unknown output", ["logits"])


def test_v2_bad_datatype_name(bad_client, records):
    body = v2(bad_client, records[:1], chemistry={"datatype": "STRING"})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs[9].datatype", "", "STRING")


def positional(client, records, datatype="BYTES", shape=None):
    features = [i["name"] for i in client.get("/v2/models/lifecycle").json()["inputs"]]
    data = [[r[f] for f in features] for r in records]
    return {
        "inputs": [{"name": "x", "datatype": datatype, "shape": shape or [len(records), len(features)], "data": data}]
    }


def test_v2_request_id_is_length_limited(bad_client, records, tmp_path):
    ok = bad_client.post("/v2/models/lifecycle/infer", json=v2(bad_client, records[:1]) | {"id": "a" * 128})
    assert ok.status_code == 200, ok.text
    assert ok.json()["id"] == "a" * 128
    for size in (129, 1 << 20):
        body = v2(bad_client, records[:1]) | {"id": "a" * size}
        r = bad_client.post("/v2/models/lifecycle/infer", json=body)
        assert_rejected(bad_client, r, 400 if size < 4000 else 413, "id" if size < 4000 else "body", "at most")


def test_v2_positional_tensor_keeps_the_row_limits(bad_client, records):
    r = bad_client.post("/v2/models/lifecycle/infer", json=positional(bad_client, [records[0]] * 6))
    assert_rejected(bad_client, r, 400, "inputs", "at most 5 per request (SERVE_MAX_ROWS)", 6)
    r = bad_client.post("/v2/models/lifecycle/infer", json=positional(bad_client, [], shape=[0, 11]))
    assert_rejected(bad_client, r, 400, "inputs", "no rows", 0)
    r = bad_client.post("/v2/models/lifecycle/infer", json=positional(bad_client, [], shape=[140000, 11]))
    assert_rejected(bad_client, r, 400, "inputs", "at most 5", 140000)  # refused before the data is looked at


def test_v2_positional_tensor_is_validated_like_columns(bad_client, records):
    body = positional(bad_client, records[:2])
    body["inputs"][0]["data"][1][0] = 250.0  # state_of_health_pct
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs.x[1].state_of_health_pct", "out of range", 250.0)
    r = bad_client.post("/v2/models/lifecycle/infer", json=positional(bad_client, records[:2], datatype="FP64"))
    assert_rejected(bad_client, r, 400, "inputs[0].datatype", "use BYTES", "FP64")
    body = positional(bad_client, records[:2])
    body["inputs"][0]["data"][1] = body["inputs"][0]["data"][1][:5]
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs[0].data", "needs 22 values", 16)


def test_v2_zero_rows_refused_on_column_tensors(bad_client, records):
    body = v2(bad_client, [])
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 400, "inputs", "no rows", 0)


@pytest.mark.parametrize(
    ("name", "datatype", "value", "rule"),
    [
        ("charge_cycles", "INT64", 12.5, "INT64 tensor: values must be JSON integers"),
        ("charge_cycles", "FP64", True, "FP64 tensor: values must be JSON numbers"),
        ("cell_temp_max_c", "FP32", "41.5", "FP32 tensor: values must be JSON numbers"),
        ("charge_mode", "BYTES", 3, "BYTES tensor: values must be JSON strings"),
    ],
)
def test_v2_values_must_fit_their_datatype(bad_client, records, name, datatype, value, rule):
    data = [int(records[0][name]) if datatype == "INT64" else records[0][name], value]
    r = bad_client.post(
        "/v2/models/lifecycle/infer", json=v2(bad_client, records[:2], **{name: {"datatype": datatype, "data": data}})
    )
    assert_rejected(bad_client, r, 400, f"inputs.{name}.data[1]", rule, value)


def test_v2_integer_tensor_for_a_numeric_feature(client, champion, records):
    rows = [dict(r, charge_cycles=int(r["charge_cycles"] or 0)) for r in records[:3]]
    body = v2(client, rows, charge_cycles={"datatype": "INT64"})
    r = client.post("/v2/models/lifecycle/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == expected(champion, rows)[0]


def test_v2_version_ready_route(client):
    version = client.get("/v2/models/lifecycle").json()["versions"][0]
    r = client.get(f"/v2/models/lifecycle/versions/{version}/ready")
    assert r.status_code == 200
    assert r.json() == {"name": "lifecycle", "version": version, "ready": True}
    assert client.get("/v2/models/lifecycle/versions/0000/ready").status_code == 404
    assert client.get("/v2/models/other/versions/{version}/ready").status_code == 404


def test_v2_not_ready_is_a_4xx(client):
    state = client.app.state.serving
    version = state.champion.version
    state.ready = False
    try:
        for url in ("/v2/health/ready", "/v2/models/lifecycle/ready", f"/v2/models/lifecycle/versions/{version}/ready"):
            r = client.get(url)
            assert r.status_code == 400, url
            assert r.json()["ready"] is False
        assert client.get("/health/ready").status_code == 503  # the Kubernetes probe keeps 503
    finally:
        state.ready = True


@pytest.mark.parametrize(
    ("settings", "platform", "engines"),
    [
        (
            {"engine": "auto", "onnx_max_rows": 5},
            "onnxruntime_onnx (1-5 rows), sklearn (6-10000 rows)",
            ["onnx", "sklearn"],
        ),
        ({"engine": "onnx"}, "onnxruntime_onnx", ["onnx"]),
        ({"engine": "sklearn"}, "sklearn", ["sklearn"]),
        ({"engine": "auto", "onnx_max_rows": 10000}, "onnxruntime_onnx", ["onnx"]),
    ],
)
def test_v2_platform_says_what_serves_each_request_size(make_client, records, settings, platform, engines):
    client = make_client(**settings)
    meta = client.get("/v2/models/lifecycle").json()
    assert meta["platform"] == platform
    assert [e["engine"] for e in meta["parameters"]["engines"]] == engines
    assert client.get("/model").json()["champion"]["engines"] == meta["parameters"]["engines"]
    for spec in meta["parameters"]["engines"]:  # the answers agree with the metadata
        for rows in {spec["min_rows"], min(spec["max_rows"], 7)} if spec["min_rows"] <= 7 else set():
            body = v2(client, (records * 2)[:rows])
            answered = client.post("/v2/models/lifecycle/infer", json=body).json()["parameters"]["engine"]
            assert answered == spec["engine"], (rows, spec)
