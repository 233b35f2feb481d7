"""Open Inference V2: column tensors or one positional tensor, metadata, health; bad tensors get the same error contract."""

from __future__ import annotations

import numpy as np
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
    assert_rejected(bad_client, r, 422, "inputs.cell_temp_max_c.data[1]", "out of range", 400.0)


def test_v2_missing_tensor(bad_client, records):
    r = bad_client.post("/v2/models/lifecycle/infer", json=v2(bad_client, records[:2], climate_zone=None))
    assert_rejected(bad_client, r, 422, "inputs.climate_zone", "required")


def test_v2_unknown_tensor(bad_client, records):
    body = v2(bad_client, records[:1])
    body["inputs"].append({"name": "fault", "datatype": "BYTES", "shape": [1], "data": ["none"]})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 422, "inputs[11].name", "unknown input", "fault")


def test_v2_wrong_datatype(bad_client, records):
    body = v2(bad_client, records[:1], charge_mode={"datatype": "FP32"})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 422, "inputs.charge_mode.datatype", "use BYTES", "FP32")


def test_v2_shape_mismatch(bad_client, records):
    body = v2(bad_client, records[:2], ambient_temp_c={"shape": [3]})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 422, "inputs.ambient_temp_c.shape", "N values", [3])


def test_v2_rows_differ_between_tensors(bad_client, records):
    body = v2(bad_client, records[:2], ambient_temp_c={"shape": [1], "data": [20.0]})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 422, "inputs.ambient_temp_c.shape", "same number of rows")


def test_v2_too_many_rows(bad_client, records):
    r = bad_client.post("/v2/models/lifecycle/infer", json=v2(bad_client, [records[0]] * 6))
    assert_rejected(bad_client, r, 422, "inputs", "at most 5 per request")


def test_v2_unknown_output(bad_client, records):
    body = v2(bad_client, records[:1]) | {"outputs": [{"name": "logits"}]}
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 422, "outputs", "unknown output", ["logits"])


def test_v2_bad_datatype_name(bad_client, records):
    body = v2(bad_client, records[:1], chemistry={"datatype": "STRING"})
    r = bad_client.post("/v2/models/lifecycle/infer", json=body)
    assert_rejected(bad_client, r, 422, "inputs[9].datatype", "", "STRING")
