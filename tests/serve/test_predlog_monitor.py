"""The monitor reads the prediction log the server itself wrote: a started app (TestClient runs its lifespan and
the log writer) answers drifted v2 telemetry, then fresh v1 telemetry, each into its own log directory; the monitor's
analysis of each log finds exactly the simulator's drifted features in the first and none in the second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from tests.conftest import small_params
from tests.serve.conftest import to_records

from lifecycle.artifact import predict
from lifecycle.batch import predict_chunk, validate_chunk
from lifecycle.data import telemetry as tel
from lifecycle.monitoring import analysis
from lifecycle.monitoring.feedback import read_feedback
from lifecycle.predictions import PREDICTION, read_records

TEST_METRICS = {"accuracy": 0.89, "f1_macro": 0.85, "log_loss": 0.3}


def served_log(make_client, directory: Path, records: list[dict[str, Any]], batch: int = 100) -> list[Any]:
    """POST ``records`` in requests of ``batch`` rows to a started app logging to ``directory``; stop it (the log
    is flushed on shutdown) and return the labels it answered, in order."""
    client = make_client(prediction_log_dir=directory)
    answered = []
    for start in range(0, len(records), batch):
        r = client.post("/predict", json={"records": records[start : start + batch]})
        assert r.status_code == 200, r.text
        answered += r.json()["predictions"]
    client.__exit__(None, None, None)
    return answered


def valid_rows(version: str, seed: int, rows: int, schema: Any) -> pd.DataFrame:
    raw = tel.generate(rows, version, seed, duplicate_rate=0.0)
    ok = pd.Series(True, index=raw.index)
    for name, (low, high) in tel.PHYSICAL_LIMITS.items():
        ok &= raw[name].isna() | raw[name].between(low, high)
    return raw[ok].reset_index(drop=True)


@pytest.mark.parametrize(("version", "drifted"), [("v2", set(tel.DRIFTED_FEATURES)), ("v1", set())])
def test_the_monitor_analyses_the_log_the_server_wrote(
    make_client, champion, telemetry_frames, tmp_path, version, drifted
) -> None:
    _, _, schema = telemetry_frames
    rows = valid_rows(version, 11, 1200, schema)
    sent = to_records(rows, [*schema.identifiers, *schema.datetimes, *schema.features])
    answered = served_log(make_client, tmp_path / "log", sent)

    log = read_records(tmp_path / "log")  # what `python -m lifecycle.stages.monitor --prediction-log` reads
    assert len(log) == len(sent) and log["served"].all()
    assert sorted(log["reading_id"]) == sorted(r["reading_id"] for r in sent)
    by_id = dict(zip(log["reading_id"], log[PREDICTION], strict=True))
    assert [by_id[r["reading_id"]] for r in sent] == answered  # the log holds the answers the clients got

    pipeline = joblib.load(champion.model)
    reference = pd.read_parquet(champion.directory / "train.parquet")
    ref_pred = pd.Series(predict(pipeline, reference[schema.features], schema.task)[0], name=PREDICTION)
    fresh = validate_chunk(tel.generate(2000, "v1", 5, duplicate_rate=0.0), schema).clean
    scored = predict_chunk(pipeline, fresh, schema, "v-test").reset_index(drop=True)  # a v1 batch: no drift
    result, _ = analysis.analyse(
        scored, reference, ref_pred, schema, small_params().monitor, read_feedback(tmp_path / "none", schema),
        TEST_METRICS, log,
    )  # fmt: skip
    assert result["drifted_features"] == []  # the scored batch alone says nothing
    assert set(result["prediction_log"]["drifted_features"]) == drifted
    assert result["retrain"] is bool(drifted)
    assert any("prediction log drifted" in r for r in result["reasons"]) is bool(drifted)
