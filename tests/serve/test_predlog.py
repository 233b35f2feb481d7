"""The prediction log: every predicted row as the project's prediction record, written off the request path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lifecycle import predictions
from lifecycle.predictions import read_records
from lifecycle.schema import Schema
from lifecycle.serve.predlog import Entry, PredictionLog


def read_log(directory: Path) -> pd.DataFrame:
    return read_records(directory, served_only=False)


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


def test_prediction_log_is_the_prediction_record_with_datetimes_in_utc(tmp_path, make_client, champion, records):
    """The log's schema is lifecycle.predictions' ``log`` record; a request's timestamps are stored as naive UTC
    ``timestamp[ns]`` like the batch scorer's (an offset is converted, a naive value is taken as UTC)."""
    client = make_client()
    rows = [
        dict(records[0], recorded_at="2024-03-01T10:00:00+02:00"),
        dict(records[1], recorded_at="2024-03-01T10:00:00"),
    ]
    body = client.post("/predict", json={"records": rows}, headers={"x-request-id": "utc"}).json()
    client.__exit__(None, None, None)
    files = sorted((tmp_path / "predictions").glob("*.parquet"))
    meta = json.loads(champion.meta.read_text())
    classes = sorted(body["probabilities"][0])
    expected_schema = predictions.arrow_schema(Schema.from_dict(meta["schema"]), classes, kind="log")
    assert pq.read_schema(files[0]).remove_metadata() == expected_schema
    log = read_log(tmp_path / "predictions").sort_values("row")
    assert log.recorded_at.tolist() == [pd.Timestamp("2024-03-01 08:00:00"), pd.Timestamp("2024-03-01 10:00:00")]


def test_prediction_log_numbers_the_rows_when_the_schema_has_no_identifier(tmp_path, champion):
    meta = json.loads(champion.meta.read_text())
    columns = [c for c in meta["schema"]["columns"] if c["role"] != "identifier"]
    schema = Schema.from_dict(meta["schema"] | {"columns": columns})
    log = PredictionLog(tmp_path, schema, ["a", "b"])
    record = dict.fromkeys(schema.features)
    entry = Entry(time.time(), "r", "/predict", "m", "v", "champion", True, "sklearn", [record] * 3,
                  np.array(["a", "b", "a"]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]), ["a", "b"])  # fmt: skip
    table = log.table([entry])
    assert table.schema == predictions.arrow_schema(schema, ["a", "b"], kind="log")
    assert table.column(predictions.ROW_NUMBER).to_pylist() == [0, 1, 2]
    assert table.column("proba_b").to_pylist() == [0.1, 0.8, 0.3]
