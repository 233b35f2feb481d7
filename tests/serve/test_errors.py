"""Every bad request gets a 4xx JSON body naming the field, the value and the rule; never a 500; the server keeps
serving. One test per case on /predict (V1 and V2 bodies: their own test modules)."""

from __future__ import annotations

from tests.serve.conftest import assert_rejected


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


def test_not_json(bad_client):
    r = bad_client.post("/predict", content=b'{"records": [', headers={"content-type": "application/json"})
    assert_rejected(bad_client, r, 400, "body", "not valid JSON")


def test_empty_body(bad_client):
    r = bad_client.post("/predict", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert r.json()["errors"][0]["field"] in ("body", "records")


def test_many_errors_are_summarized(bad_client, records):
    r = bad_client.post("/predict", json={"records": [{"a": i} for i in range(5)]})
    body = r.json()
    assert r.status_code == 422
    assert body["error_count"] > 20
    assert len(body["errors"]) == 20
    assert "more error(s)" in body["error"]


def test_unknown_route_is_json_404(client):
    r = client.get("/nope")
    assert r.status_code == 404
    assert "/nope" in r.json()["error"]
    assert client.get("/predict").status_code == 405
