"""Stage ``score`` as DVC runs it: arguments in, the verified model, metrics and both outputs written; a bad batch or
a model that does not match its metadata exits 1 with one line and writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.scoring import CONTRACTS, batch, train_small_model

from lifecycle.artifact import ModelIntegrityError
from lifecycle.errors import GateError
from lifecycle.io import read_json, write_json, write_table
from lifecycle.stages import score as stage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return train_small_model(tmp_path_factory.mktemp("model"))


def stage_args(d: Path, tmp_path: Path, incoming: Path, params: Path = ROOT / "params.yaml") -> list[str]:
    return [
        "--params", str(params), "--incoming", str(incoming), "--model", str(d / "model.joblib"),
        "--meta", str(d / "model.json"), "--schema", str(d / "schema.json"), "--contracts", CONTRACTS,
        "--out", str(tmp_path / "o.parquet"), "--quarantine", str(tmp_path / "q.parquet"),
        "--metrics", str(tmp_path / "m.json"), "--summary", str(tmp_path / "s.json"),
    ]  # fmt: skip


def test_command_line_exits_1_with_one_line_error(trained, tmp_path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "empty.parquet").write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.score", *stage_args(trained["dir"], tmp_path, tmp_path / "incoming")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "empty.parquet: the file is empty" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.parquet").exists()
    assert not (tmp_path / "m.json").exists()


def test_command_line_writes_outputs_and_metrics(trained, tmp_path) -> None:
    write_table(batch(800), tmp_path / "in.csv")
    argv = stage_args(trained["dir"], tmp_path, tmp_path / "in.csv")
    stage.main(argv)
    first = (tmp_path / "o.parquet").read_bytes(), (tmp_path / "m.json").read_bytes()
    metrics = read_json(tmp_path / "m.json")
    assert metrics == {"rows_read": 800, "rows_scored": metrics["rows_scored"],
                       "rows_quarantined": 800 - metrics["rows_scored"],
                       "quarantine_fraction": metrics["quarantine_fraction"]}  # headline numbers only  # fmt: skip
    summary = read_json(tmp_path / "s.json")
    assert summary["files"] == ["in.csv"]
    assert summary["model_version"] == trained["record"].version
    assert sum(summary["prediction_counts"].values()) == metrics["rows_scored"] == summary["rows_scored"]
    stage.main(argv)
    assert ((tmp_path / "o.parquet").read_bytes(), (tmp_path / "m.json").read_bytes()) == first  # deterministic


def test_model_that_does_not_match_its_metadata_is_refused(trained, tmp_path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.joblib").write_bytes((trained["dir"] / "model.joblib").read_bytes())
    (d / "schema.json").write_bytes((trained["dir"] / "schema.json").read_bytes())
    meta = read_json(trained["dir"] / "model.json")
    meta["model"]["sha256"] = "0" * 64
    write_json(d / "model.json", meta)
    write_table(batch(300), tmp_path / "in.parquet")
    with pytest.raises(ModelIntegrityError, match=r"does not match model\.sha256"):
        stage.main(stage_args(d, tmp_path, tmp_path / "in.parquet"))
    assert not (tmp_path / "o.parquet").exists()


def test_rejected_batch_sends_a_webhook_message(trained, tmp_path) -> None:
    from tests.test_notify import Webhook

    raw = batch(400).astype({"charge_cycles": object})
    raw.loc[:99, "charge_cycles"] = "ERR"
    write_table(raw, tmp_path / "bad.csv")
    hook = Webhook()
    try:
        params = tmp_path / "params.yaml"
        params.write_text((ROOT / "params.yaml").read_text().replace("webhook_url: null", f"webhook_url: {hook.url}"))
        with pytest.raises(GateError):
            stage.main(stage_args(trained["dir"], tmp_path, tmp_path / "bad.csv", params))
    finally:
        hook.close()
    assert len(hook.received) == 1
    assert hook.received[0]["body"]["text"].startswith(":x: *Batch rejected by validation*")
    assert not (tmp_path / "o.parquet").exists()
