"""GET /model: the served model and the rules of its features."""

from __future__ import annotations


def test_model(client):
    info = client.get("/model").json()
    assert info["champion"]["family"] == "hist_gradient_boosting"
    assert info["challenger"] is None
    assert {"name": "state_of_charge_pct", "role": "numeric", "min": 0.0, "max": 100.0} in info["features"]
