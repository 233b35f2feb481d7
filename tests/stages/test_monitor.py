"""Stage ``monitor``: drift of a scored batch against the training reference, feedback metrics, retrain decision,
HTML report; bad inputs fail clearly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from tests.conftest import small_params

from lifecycle.batch import predict_chunk, validate_chunk
from lifecycle.config import Params
from lifecycle.data import telemetry as tel
from lifecycle.data.ingest import prepare
from lifecycle.errors import DataError
from lifecycle.io import read_json, write_json, write_table
from lifecycle.modeling.pipeline import fit
from lifecycle.schema import Schema
from lifecycle.stages import monitor as stage

ROOT = Path(__file__).resolve().parents[2]
TEST_METRICS = {"accuracy": 0.89, "f1_macro": 0.85, "log_loss": 0.3}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small model fitted on v1 telemetry; its training rows are the reference."""
    params = small_params()
    reference, schema = prepare(tel.generate(3200, "v1", 42), params.ingest, "telemetry")
    model, _ = fit(reference, schema, params)
    d = tmp_path_factory.mktemp("monitor")
    joblib.dump(model, d / "model.joblib")
    write_table(reference, d / "train.parquet")
    write_json(d / "schema.json", schema.to_dict())
    write_json(d / "test_metrics.json", TEST_METRICS)
    ref_pred = pd.Series(model.predict(reference[schema.features]))
    return {"params": params, "schema": schema, "model": model, "reference": reference, "dir": d, "ref_pred": ref_pred}


def scored_batch(setup: dict[str, Any], version: str, seed: int, rows: int = 3000) -> pd.DataFrame:
    """What the score stage writes for a fresh telemetry batch (labels kept aside)."""
    raw = tel.generate(rows, version, seed, duplicate_rate=0.0)
    schema: Schema = setup["schema"]
    clean = validate_chunk(raw, schema).clean
    return predict_chunk(setup["model"], clean, schema, "v-test").reset_index(drop=True)


def labels_of(version: str, seed: int, rows: int = 3000) -> pd.DataFrame:
    return tel.generate(rows, version, seed, duplicate_rate=0.0)[["reading_id", tel.TARGET]]


def analyse(setup: dict[str, Any], scored: pd.DataFrame, labels: pd.DataFrame | None = None, **cfg: Any):
    params: Params = setup["params"]
    monitor_cfg = params.monitor.model_copy(update=cfg)
    if labels is None:
        labels = stage.read_feedback(setup["dir"] / "no-feedback", setup["schema"])
    return stage.analyse(
        scored, setup["reference"], setup["ref_pred"], setup["schema"], monitor_cfg, labels, TEST_METRICS
    )


# --------------------------------------------------------------------------------------------- decisions
def test_v2_batch_says_retrain_with_the_shifted_features(setup) -> None:
    result, _ = analyse(setup, scored_batch(setup, "v2", 7))
    assert result["retrain"] is True
    assert set(result["drifted_features"]) == set(tel.DRIFTED_FEATURES)
    assert not set(result["drifted_features"]) & set(tel.STABLE_FEATURES)
    assert result["prediction"]["drifted"] is True
    assert any("features drifted" in r for r in result["reasons"])
    json.dumps(result, allow_nan=False)  # serializable as the metrics file


@pytest.mark.parametrize("seed", [5, 6, 8])
def test_fresh_v1_batch_says_no_retrain(setup, seed) -> None:
    result, _ = analyse(setup, scored_batch(setup, "v1", seed))
    assert result["retrain"] is False, result["reasons"]
    assert result["drifted_features"] == []
    assert result["prediction"]["drifted"] is False


def test_min_drifted_features_sets_how_much_drift_triggers(setup) -> None:
    result, _ = analyse(setup, scored_batch(setup, "v2", 7), min_drifted_features=20, prediction_psi_threshold=9.0)
    assert result["n_drifted"] == len(tel.DRIFTED_FEATURES)
    assert result["retrain"] is False


# --------------------------------------------------------------------------------------------- feedback
def test_feedback_labels_are_joined_on_the_row_id(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5).sample(1000, random_state=0)
    result, _ = analyse(setup, scored, labels)
    fb = result["feedback"]
    assert fb["rows"] == len(set(labels["reading_id"]) & set(scored["reading_id"]))
    assert fb["unmatched"] == 0
    assert set(fb["metrics"]) >= {"accuracy", "f1_macro", "log_loss"}
    assert fb["metrics"]["accuracy"] > 0.8
    assert result["retrain"] is False


def test_worse_metrics_on_feedback_say_retrain(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5)
    labels[tel.TARGET] = labels[tel.TARGET].sample(frac=1.0, random_state=1).to_numpy()  # labels the model misses
    result, _ = analyse(setup, scored, labels)
    assert result["retrain"] is True
    assert any(re.search(r"accuracy on \d+ labelled rows is .* worse than 0\.89", r) for r in result["reasons"])


def test_too_few_feedback_rows_report_but_do_not_decide(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5).head(20)
    labels[tel.TARGET] = "none" if labels[tel.TARGET].iloc[0] != "none" else "overheating"
    result, _ = analyse(setup, scored, labels)
    assert result["feedback"]["rows"] == 20
    assert result["retrain"] is False


def test_feedback_files_are_read_from_a_directory_later_files_win(setup, tmp_path) -> None:
    (tmp_path / "a.csv").write_text("reading_id,fault,note\nv1-1,none,x\nv1-2,overheating,y\n")
    pd.DataFrame({"reading_id": ["v1-2"], "fault": ["degradation"]}).to_parquet(tmp_path / "b.parquet")
    (tmp_path / ".gitkeep").touch()
    labels = stage.read_feedback(tmp_path, setup["schema"])
    assert dict(zip(labels["reading_id"], labels["fault"], strict=True)) == {"v1-1": "none", "v1-2": "degradation"}


def test_feedback_file_without_the_label_is_a_clear_error(setup, tmp_path) -> None:
    (tmp_path / "labels.csv").write_text("reading_id,label\nv1-1,none\n")
    with pytest.raises(DataError, match=r"labels\.csv: feedback file lacks column\(s\) \['fault'\]"):
        stage.read_feedback(tmp_path, setup["schema"])


def test_empty_scored_batch_is_a_clear_error(setup) -> None:
    with pytest.raises(DataError, match="the scored batch has no rows"):
        analyse(setup, scored_batch(setup, "v1", 5).iloc[0:0])


# --------------------------------------------------------------------------------------------- prediction log
def test_prediction_log_json_lines_is_monitored_too(setup, tmp_path) -> None:
    raw = tel.generate(2000, "v2", 9, duplicate_rate=0.0)
    schema: Schema = setup["schema"]
    with (tmp_path / "predictions.jsonl").open("w") as fh:
        for rec in raw[schema.features].head(2000).to_dict(orient="records"):
            fh.write(json.dumps({"features": rec, "prediction": "none"}) + "\n")
    # the server's Parquet log: published files, a hidden file still being written, shadow rows not served
    logged = raw[schema.features].head(500).assign(prediction="none", served=True, model_role="champion")
    write_table(logged, tmp_path / "predictions-20260101T000000-1-0.parquet")
    write_table(
        logged.assign(served=False, model_role="challenger"), tmp_path / "predictions-20260101T000000-1-1.parquet"
    )
    write_table(logged, tmp_path / ".inprogress-predictions-20260101T000500-1-2.parquet")
    log_frame = stage.read_prediction_log(tmp_path)
    assert len(log_frame) == 2500
    assert log_frame["served"].all()
    assert "ambient_temp_c" in log_frame
    params = setup["params"]
    result, _ = stage.analyse(
        scored_batch(setup, "v1", 5), setup["reference"], setup["ref_pred"], schema, params.monitor,
        stage.read_feedback(tmp_path / "none", schema), TEST_METRICS, log_frame,
    )  # fmt: skip
    assert set(result["prediction_log"]["drifted_features"]) == set(tel.DRIFTED_FEATURES)
    assert result["prediction_log"]["prediction"]["drifted"] is True
    assert result["retrain"] is True
    assert any("prediction log drifted" in r for r in result["reasons"])


# --------------------------------------------------------------------------------------------- the stage
def run_main(setup: dict[str, Any], tmp_path: Path, scored: pd.DataFrame, params: Path | None = None) -> Path:
    d = setup["dir"]
    write_table(scored, tmp_path / "scored.parquet")
    out = tmp_path / "out"
    stage.main([
        "--params", str(params or ROOT / "params.yaml"), "--scored", str(tmp_path / "scored.parquet"),
        "--reference", str(d / "train.parquet"), "--schema", str(d / "schema.json"), "--model", str(d / "model.joblib"),
        "--test-metrics", str(d / "test_metrics.json"), "--feedback", str(tmp_path / "feedback"),
        "--metrics", str(out / "monitor.json"), "--report", str(out / "drift.html"),
    ])  # fmt: skip
    return out


def test_main_writes_metrics_and_a_report_with_a_plot_per_drifted_feature(setup, tmp_path) -> None:
    out = run_main(setup, tmp_path, scored_batch(setup, "v2", 7))
    metrics = read_json(out / "monitor.json")
    assert metrics["retrain"] is True
    assert metrics["reasons"]
    page = (out / "drift.html").read_text()
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,", page)
    assert sorted(images) == sorted(tel.DRIFTED_FEATURES)
    assert "Decision: retrain" in page
    first = (out / "monitor.json").read_bytes(), (out / "drift.html").read_bytes()
    run_main(setup, tmp_path, scored_batch(setup, "v2", 7))
    assert ((out / "monitor.json").read_bytes(), (out / "drift.html").read_bytes()) == first  # deterministic


def test_fail_on_drift_exits_1_after_writing_the_outputs(setup, tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text().replace("fail_on_drift: false", "fail_on_drift: true"))
    write_table(scored_batch(setup, "v2", 7), tmp_path / "scored.parquet")
    d = setup["dir"]
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.monitor", "--params", str(params),
         "--scored", str(tmp_path / "scored.parquet"), "--reference", str(d / "train.parquet"),
         "--schema", str(d / "schema.json"), "--model", str(d / "model.joblib"),
         "--test-metrics", str(d / "test_metrics.json"), "--feedback", str(tmp_path / "feedback"),
         "--metrics", str(tmp_path / "monitor.json"), "--report", str(tmp_path / "drift.html")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "features drifted" in proc.stderr
    assert "monitor.fail_on_drift is true" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert read_json(tmp_path / "monitor.json")["retrain"] is True
    assert (tmp_path / "drift.html").exists()


def test_missing_scored_batch_is_a_clear_error(setup, tmp_path) -> None:
    d = setup["dir"]
    with pytest.raises(DataError, match=r"scored\.parquet: scored batch not found"):
        stage.main([
            "--params", str(ROOT / "params.yaml"), "--scored", str(tmp_path / "scored.parquet"),
            "--reference", str(d / "train.parquet"), "--schema", str(d / "schema.json"),
            "--model", str(d / "model.joblib"), "--test-metrics", str(d / "test_metrics.json"),
            "--feedback", str(tmp_path), "--metrics", str(tmp_path / "m.json"), "--report", str(tmp_path / "r.html"),
        ])  # fmt: skip
    assert not (tmp_path / "m.json").exists()


def test_drift_sends_a_webhook_message_and_a_dead_webhook_does_not_fail(setup, tmp_path) -> None:
    from tests.stages.test_monitor_notify import Webhook

    hook = Webhook()
    try:
        params = tmp_path / "params.yaml"
        params.write_text((ROOT / "params.yaml").read_text().replace("webhook_url: null", f"webhook_url: {hook.url}"))
        run_main(setup, tmp_path, scored_batch(setup, "v2", 7), params=params)
        assert len(hook.received) == 1
        body = hook.received[0]["body"]
        assert "Drift detected" in body["text"]
        assert "features drifted" in body["text"]
        run_main(setup, tmp_path, scored_batch(setup, "v1", 5), params=params)
        assert len(hook.received) == 1  # no drift, no message
    finally:
        hook.close()
    # the server is gone: the stage still succeeds and writes its outputs
    out = run_main(setup, tmp_path, scored_batch(setup, "v2", 7), params=params)
    assert read_json(out / "monitor.json")["retrain"] is True
