"""Every bad request gets a 4xx JSON body naming the field, the value and the rule; never a 500; the server keeps
serving. One test per case, on /predict, and the same contract on KServe V1 and Open Inference V2 bodies."""

from __future__ import annotations

import pytest


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


def test_missing_field(bad_client, records):
    record = {k: v for k, v in records[0].items() if k != "chemistry"}
    r = bad_client.post("/predict", json={"records": [record]})
    assert_rejected(bad_client, r, 422, "records[0].chemistry", "required", None)


def test_wrong_type_string_for_number(bad_client, records):
    r = bad_client.post("/predict", json={"records": [dict(records[0], pack_voltage_v="380")]})
    assert_rejected(bad_client, r, 422, "records[0].pack_voltage_v", "must be a JSON number", "380")


def test_wrong_type_boolean_for_number(bad_client, records):
    r = bad_client.post("/predict", json={"records": [dict(records[0], charge_cycles=True)]})
    assert_rejected(bad_client, r, 422, "records[0].charge_cycles", "must be a JSON number", True)


def test_wrong_type_number_for_category(bad_client, records):
    r = bad_client.post("/predict", json={"records": [dict(records[0], chemistry=1)]})
    assert_rejected(bad_client, r, 422, "records[0].chemistry", "categories seen in training", 1)


def test_out_of_range_high(bad_client, records):
    r = bad_client.post("/predict", json={"records": [dict(records[0], state_of_charge_pct=140.0)]})
    assert_rejected(bad_client, r, 422, "records[0].state_of_charge_pct", "out of range: must be <= 100", 140.0)


def test_out_of_range_low(bad_client, records):
    r = bad_client.post("/predict", json={"records": [records[0], dict(records[0], pack_voltage_v=-5)]})
    assert_rejected(bad_client, r, 422, "records[1].pack_voltage_v", "out of range: must be >= 200", -5)


def test_not_finite_number(bad_client, records):
    body = '{"records": [{"state_of_health_pct": NaN}]}'
    r = bad_client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_rejected(bad_client, r, 422, "records[0].state_of_health_pct", "finite")


def test_unknown_category(bad_client, records):
    r = bad_client.post("/predict", json={"records": [dict(records[0], charge_mode="turbo")]})
    assert_rejected(bad_client, r, 422, "records[0].charge_mode", "'fast', 'normal' or 'slow'", "turbo")


def test_unknown_field(bad_client, records):
    r = bad_client.post("/predict", json={"records": [dict(records[0], fault="none")]})
    assert_rejected(bad_client, r, 422, "records[0].fault", "unknown field", "none")


def test_unknown_top_level_key(bad_client, records):
    r = bad_client.post("/predict", json={"records": [records[0]], "extra": 1})
    assert_rejected(bad_client, r, 422, "extra", "unknown field", 1)


def test_too_many_rows(bad_client, records):
    r = bad_client.post("/predict", json={"records": [records[0]] * 6})
    assert_rejected(bad_client, r, 422, "records", "at most 5 per request (SERVE_MAX_ROWS)")


def test_no_rows(bad_client):
    r = bad_client.post("/predict", json={"records": []})
    assert_rejected(bad_client, r, 422, "records", "at least 1")


def test_records_not_a_list(bad_client, records):
    r = bad_client.post("/predict", json={"records": records[0]})
    assert_rejected(bad_client, r, 422, "records", "JSON array")


def test_record_not_an_object(bad_client):
    r = bad_client.post("/predict", json={"records": [[1, 2, 3]]})
    assert_rejected(bad_client, r, 422, "records[0]", "JSON object")


def test_body_too_large(bad_client, records):
    r = bad_client.post(
        "/predict", content=b'{"records": [' + b" " * 5000 + b"]}", headers={"content-type": "application/json"}
    )
    assert_rejected(bad_client, r, 413, "body", "at most 4096 bytes (SERVE_MAX_BODY_BYTES)")


def test_body_too_large_without_content_length(bad_client):
    def chunks():
        for _ in range(10):
            yield b" " * 1000

    r = bad_client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert_rejected(bad_client, r, 413, "body", "too large")


def test_not_json(bad_client):
    r = bad_client.post("/predict", content=b'{"records": [', headers={"content-type": "application/json"})
    assert_rejected(bad_client, r, 400, "body", "not valid JSON")


def test_not_json_content_type(bad_client):
    r = bad_client.post("/predict", content=b"state_of_health_pct=1", headers={"content-type": "text/plain"})
    assert_rejected(bad_client, r, 400, "body", "not valid JSON")


def test_empty_body(bad_client):
    r = bad_client.post("/predict")
    assert r.status_code in (400, 422), r.text
    assert r.json()["errors"][0]["field"] in ("body", "records")


def test_many_errors_are_summarized(bad_client, records):
    r = bad_client.post("/predict", json={"records": [{"a": i} for i in range(5)]})
    body = r.json()
    assert r.status_code == 422
    assert body["error_count"] > 20
    assert len(body["errors"]) == 20
    assert "more error(s)" in body["error"]


# --------------------------------------------------------------------------------------------- KServe V1
def test_v1_bad_instance_value(bad_client, records):
    r = bad_client.post("/v1/models/lifecycle:predict", json={"instances": [dict(records[0], chemistry="NiCd")]})
    assert_rejected(bad_client, r, 422, "instances[0].chemistry", "categories seen in training", "NiCd")


def test_v1_row_of_wrong_length(bad_client):
    r = bad_client.post("/v1/models/lifecycle:predict", json={"instances": [[1.0, 2.0]]})
    assert_rejected(bad_client, r, 422, "instances[0]", "needs 11 values")


def test_v1_row_value_out_of_range(bad_client, records):
    features = [f["name"] for f in bad_client.get("/model").json()["features"]]
    row = [records[0][f] for f in features]
    row[0] = 250.0  # state_of_health_pct
    r = bad_client.post("/v1/models/lifecycle:predict", json={"instances": [row]})
    assert_rejected(bad_client, r, 422, f"instances[0].{features[0]}", "out of range", 250.0)


def test_v1_missing_instances(bad_client):
    r = bad_client.post("/v1/models/lifecycle:predict", json={"records": []})
    assert_rejected(bad_client, r, 422, "instances", "required")


# --------------------------------------------------------------------------------------------- Open Inference V2
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
