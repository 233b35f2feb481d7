"""Stage ``monitor``: reads the scored batch, the reference and the verified model, writes the metrics and the
HTML report, notifies and (when asked) fails on drift; bad inputs fail clearly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.monitoring.fitted import fitted, scored_batch

from lifecycle.artifact import ModelIntegrityError
from lifecycle.data import telemetry as tel
from lifecycle.errors import DataError
from lifecycle.io import read_json, write_table
from lifecycle.stages import monitor as stage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small model fitted on v1 telemetry, with model.json; its training rows are the reference."""
    return fitted(tmp_path_factory.mktemp("monitor"))


def stage_args(setup: dict[str, Any], tmp_path: Path, params: Path | None = None, **paths: Path) -> list[str]:
    d = setup["dir"]
    files = {
        "params": params or ROOT / "params.yaml", "scored": tmp_path / "scored.parquet",
        "reference": d / "train.parquet", "schema": d / "schema.json", "model": d / "model.joblib",
        "meta": d / "model.json", "test-metrics": d / "test_metrics.json", "feedback": tmp_path / "feedback",
        "metrics": tmp_path / "out" / "monitor.json", "report": tmp_path / "out" / "drift.html",
        "details": tmp_path / "out" / "drift.json",
    } | {name.replace("_", "-"): path for name, path in paths.items()}  # fmt: skip
    return [arg for name, path in files.items() for arg in (f"--{name}", str(path))]


def run_main(setup: dict[str, Any], tmp_path: Path, scored: pd.DataFrame, params: Path | None = None) -> Path:
    write_table(scored, tmp_path / "scored.parquet")
    stage.main(stage_args(setup, tmp_path, params))
    return tmp_path / "out"


def test_main_writes_metrics_and_a_report_with_a_plot_per_drifted_feature(setup, tmp_path) -> None:
    out = run_main(setup, tmp_path, scored_batch(setup, "v2", 7))
    metrics = read_json(out / "monitor.json")
    assert metrics["retrain"] is True
    assert set(metrics) == {"retrain", "n_drifted", "drift_share", "prediction_psi"}  # the headline: no labels yet
    assert metrics["n_drifted"] == len(tel.DRIFTED_FEATURES) and metrics["prediction_psi"] > 0.2
    assert all(isinstance(v, bool | int | float) for v in metrics.values())
    details = read_json(out / "drift.json")  # every statistic: a plain output
    assert details["reasons"] and set(details["drifted_features"]) == set(tel.DRIFTED_FEATURES)
    assert details["n_drifted"] == metrics["n_drifted"] and details["prediction"]["psi"] == metrics["prediction_psi"]
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
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.monitor", *stage_args(setup, tmp_path, params)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "features drifted" in proc.stderr
    assert "monitor.fail_on_drift is true" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert read_json(tmp_path / "out" / "monitor.json")["retrain"] is True
    assert (tmp_path / "out" / "drift.html").exists()


def test_missing_scored_batch_is_a_clear_error(setup, tmp_path) -> None:
    with pytest.raises(DataError, match=r"scored\.parquet: scored batch not found"):
        stage.main(stage_args(setup, tmp_path, feedback=tmp_path))
    assert not (tmp_path / "out" / "monitor.json").exists()


def test_a_model_that_is_not_the_one_its_metadata_describes_is_refused(setup, tmp_path) -> None:
    write_table(scored_batch(setup, "v1", 5), tmp_path / "scored.parquet")
    other = tmp_path / "model.joblib"
    other.write_bytes(setup["dir"].joinpath("model.joblib").read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match=r"refusing to load .*model\.joblib: its sha256 .* does not match"):
        stage.main(stage_args(setup, tmp_path, model=other))
    assert not (tmp_path / "out" / "monitor.json").exists()


def test_drift_sends_a_webhook_message_and_a_dead_webhook_does_not_fail(setup, tmp_path) -> None:
    from tests.test_notify import Webhook

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
