"""Stage ``score`` as DVC runs it: arguments in, the verified model, metrics and both outputs written; a bad batch or
a model that does not match its metadata exits 1 with one line and writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.scoring import CONTRACTS, batch, train_small_model

from lifecycle.artifact import ModelIntegrityError
from lifecycle.data import telemetry as tel
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


def dask_params(tmp_path: Path) -> Path:
    """params.yaml with ``score.engine: dask`` on a 1-worker local cluster."""
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["score"]["engine"] = "dask"
    raw["dask"].update(n_workers=1, threads_per_worker=1)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_engine_dask_writes_the_same_outputs_and_metrics(trained, tmp_path, caplog) -> None:
    write_table(batch(900), tmp_path / "in.parquet")
    stage.main(stage_args(trained["dir"], tmp_path, tmp_path / "in.parquet"))
    pandas = [(tmp_path / n).read_bytes() for n in ("o.parquet", "q.parquet", "m.json")]
    caplog.set_level("INFO", logger="lifecycle")
    stage.main(stage_args(trained["dir"], tmp_path, tmp_path / "in.parquet", params=dask_params(tmp_path)))
    assert [(tmp_path / n).read_bytes() for n in ("o.parquet", "q.parquet", "m.json")] == pandas
    assert "running on a local Dask cluster" in caplog.text and "partitions scored: 1/1" in caplog.text


@pytest.mark.parametrize("yours_too", [False, True])
def test_engine_dask_scores_your_batch_and_the_demo_batch_as_pandas_does(trained, tmp_path, yours_too) -> None:
    """--incoming (yours; an empty folder adds nothing) then --demo: the same rows, order, quarantine and summary."""
    mine, demo = tmp_path / "incoming", tmp_path / "demo"
    mine.mkdir()
    (demo / "part=1").mkdir(parents=True)
    yours = batch(500, seed=3)
    if yours_too:
        write_table(yours, mine / "b.csv")
    demo_rows = tel.generate(700, "v2", 5).drop(columns=[tel.TARGET])  # the simulator's duplicates and glitches
    write_table(pd.concat([demo_rows.iloc[:300], yours.iloc[:20]], ignore_index=True), demo / "a.parquet")
    write_table(demo_rows.iloc[300:], demo / "part=1" / "c.parquet")  # a repeated id across files: first one kept
    outputs = {}
    for engine, params in (("pandas", ROOT / "params.yaml"), ("dask", dask_params(tmp_path))):
        out = tmp_path / engine
        out.mkdir()
        stage.main([*stage_args(trained["dir"], out, mine, params=params), "--demo", str(demo)])
        outputs[engine] = [(out / n).read_bytes() for n in ("o.parquet", "q.parquet", "m.json", "s.json")]
    assert outputs["dask"] == outputs["pandas"]
    summary = read_json(tmp_path / "dask" / "s.json")
    assert summary["files"] == ["b.csv"] * yours_too + ["a.parquet", "c.parquet"]
    quarantined = pd.read_parquet(tmp_path / "dask" / "q.parquet")
    assert summary["rows_read"] == 500 * yours_too + 720 and not quarantined.empty
