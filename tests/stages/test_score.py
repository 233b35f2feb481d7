"""Stage ``score``: chunked validation + prediction into Parquet; bad batches fail clearly and lose nothing."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from tests.conftest import small_params

from lifecycle.config import Params
from lifecycle.data import telemetry as tel
from lifecycle.errors import DataError, GateError, LifecycleError
from lifecycle.io import read_json, sha256_file, write_json, write_table
from lifecycle.quality import load_contract
from lifecycle.schema import Schema
from lifecycle.stages import score as stage
from lifecycle.stages.ingest import prepare
from lifecycle.stages.train import fit

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = str(ROOT / "data" / "contracts")
CONTRACT = load_contract(ROOT / "data" / "contracts" / "telemetry.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small fitted pipeline on v1 telemetry, saved with its model.json like the pipeline does."""
    params = small_params()
    df, schema = prepare(tel.generate(3200, "v1", 42), params.ingest, "telemetry")
    model, _ = fit(df, schema, params)
    d = tmp_path_factory.mktemp("model")
    joblib.dump(model, d / "model.joblib", compress=3)
    write_json(d / "model.json", {"model": {"sha256": sha256_file(d / "model.joblib")}})
    write_json(d / "schema.json", schema.to_dict())
    return {"model": model, "schema": schema, "params": params, "dir": d, "reference": df}


def run_score(trained: dict[str, Any], incoming: Path, out_dir: Path, **kw: Any) -> stage.BatchSummary:
    params: Params = trained["params"]
    args: dict[str, Any] = {
        "chunk_rows": 700,
        "min_rows": params.score.min_rows,
        "validate": params.validate,
        "read_options": {},
        "contract": CONTRACT,
    } | kw
    return stage.score_batch(
        stage.batch_files(incoming),
        trained["model"],
        trained["schema"],
        "abc123",
        out_dir / "scored.parquet",
        out_dir / "quarantine.parquet",
        **args,
    )


def batch(rows: int = 2500, version: str = "v2", seed: int = 11, **kw: Any) -> pd.DataFrame:
    """A batch without labels and without the simulator's duplicated rows (so reading_id is unique)."""
    return tel.generate(rows, version, seed, duplicate_rate=0.0, **kw).drop(columns=[tel.TARGET])


# --------------------------------------------------------------------------------------------- good batches
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_scores_a_batch_in_chunks_with_ids_and_version(trained, tmp_path, suffix) -> None:
    raw = batch()
    write_table(raw, tmp_path / f"in{suffix}")
    summary = run_score(trained, tmp_path / f"in{suffix}", tmp_path)
    out = pd.read_parquet(tmp_path / "scored.parquet")
    schema: Schema = trained["schema"]
    assert summary.rows_read == len(raw) == summary.rows_scored + summary.rows_quarantined
    assert len(out) == summary.rows_scored
    assert out["reading_id"].is_unique
    assert set(out["reading_id"]) <= set(raw["reading_id"])
    assert (out["model_version"] == "abc123").all()
    proba = out[[f"proba_{c}" for c in schema.classes]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    # the same predictions as the in-memory pipeline on the same rows
    X = raw.set_index("reading_id").loc[out["reading_id"], schema.features].reset_index(drop=True)
    X = X.assign(**{c: X[c].astype(str).where(X[c].notna()) for c in schema.categorical})
    assert (trained["model"].predict(X) == out["prediction"].to_numpy()).all()
    assert pq_row_groups(tmp_path / "scored.parquet") >= 2  # written chunk by chunk


def pq_row_groups(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_row_groups


def test_output_does_not_depend_on_the_chunk_size(trained, tmp_path) -> None:
    write_table(batch(), tmp_path / "in.parquet")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run_score(trained, tmp_path / "in.parquet", tmp_path / "a", chunk_rows=333)
    run_score(trained, tmp_path / "in.parquet", tmp_path / "b", chunk_rows=100_000)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "scored.parquet"), pd.read_parquet(tmp_path / "b" / "scored.parquet")
    )


def test_rows_repeated_across_chunks_are_quarantined_as_in_one_chunk(trained, tmp_path) -> None:
    """Training's gate sees the whole file; scoring sees chunks. A row repeated in a later chunk is quarantined
    all the same, with the same reason, so neither output depends on the chunk size."""
    raw = tel.generate(3000, "v2", 5, duplicate_rate=0.05, glitch_rate=0.0).drop(columns=[tel.TARGET])
    write_table(raw, tmp_path / "in.parquet")
    repeats = int(raw.duplicated().sum())
    assert repeats > 50
    outputs = {}
    for chunk_rows in (250, 100_000):
        out = tmp_path / str(chunk_rows)
        out.mkdir()
        summary = run_score(trained, tmp_path / "in.parquet", out, chunk_rows=chunk_rows)
        assert summary.reasons["duplicate row"] == repeats, chunk_rows
        outputs[chunk_rows] = [pd.read_parquet(out / name) for name in ("scored.parquet", "quarantine.parquet")]
    for small, whole in zip(outputs[250], outputs[100_000], strict=True):
        pd.testing.assert_frame_equal(
            small.sort_values("reading_id", kind="stable").reset_index(drop=True),
            whole.sort_values("reading_id", kind="stable").reset_index(drop=True),
        )
    scored, quarantined = outputs[250]
    assert scored["reading_id"].is_unique
    dup = quarantined[quarantined["reason"].str.startswith("duplicate of row")]
    assert len(dup) == repeats
    assert (dup["reason"] == "duplicate of row " + dup["reading_id"]).all()  # exact copies: the same id


def test_a_directory_of_files_is_one_batch_in_name_order(trained, tmp_path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_table(batch(600, seed=1), incoming / "b.csv")
    write_table(batch(400, version="v1", seed=2), incoming / "a.parquet")
    (incoming / ".gitkeep").touch()
    (incoming / "README.txt").write_text("ignored")
    summary = run_score(trained, incoming, tmp_path)
    out = pd.read_parquet(tmp_path / "scored.parquet")
    assert summary.files == ["a.parquet", "b.csv"]
    assert summary.rows_read == 1000
    assert out["reading_id"].iloc[0].startswith("v1-")
    assert out["reading_id"].iloc[-1].startswith("v2-")


def glitchy_batch() -> pd.DataFrame:
    raw = batch(1000, glitch_rate=0.0).astype({"pack_voltage_v": object})
    raw.loc[[3, 7], "pack_voltage_v"] = "n/a volts"
    raw.loc[[10], "reading_id"] = None
    raw.loc[[20], tel.NUMERIC_COLUMNS + tel.CATEGORICAL_COLUMNS] = None
    raw.loc[[30], "state_of_health_pct"] = 250.0  # a sensor glitch: outside the contract's [0, 100]
    raw.loc[[40], "charge_mode"] = "turbo"  # not a category of the contract
    raw.loc[900] = raw.loc[899]  # a repeated reading
    return raw


def test_bad_rows_are_quarantined_with_the_contracts_reasons(trained, tmp_path) -> None:
    write_table(glitchy_batch(), tmp_path / "in.csv")
    summary = run_score(trained, tmp_path / "in.csv", tmp_path, chunk_rows=500)
    q = pd.read_parquet(tmp_path / "quarantine.parquet")
    assert summary.rows_quarantined == len(q) == 7
    assert sorted(q["reason"]) == [
        "charge_mode='turbo' not in {'slow', 'normal', 'fast'}",
        "duplicate of row v2-00000899",
        "every feature missing",
        "missing identifier reading_id",
        "not a number in pack_voltage_v",
        "not a number in pack_voltage_v",
        "state_of_health_pct=250.0 outside [0.0, 100.0]",
    ]
    assert summary.to_dict()["quarantine_reasons"]["not a number in pack_voltage_v"] == 2


def test_fast_contract_path_quarantines_like_great_expectations(trained) -> None:
    from lifecycle.stages.score import prepare_chunk, scoring_contract, validate_chunk

    schema, cfg = trained["schema"], trained["params"].validate
    chunk = prepare_chunk(glitchy_batch(), schema, True, 0)
    contract = scoring_contract(CONTRACT, schema)
    with_gx = validate_chunk(chunk, schema, contract, cfg, gx=True)
    fast = validate_chunk(chunk, schema, contract, cfg, gx=False)
    pd.testing.assert_frame_equal(with_gx.clean.reset_index(drop=True), fast.clean.reset_index(drop=True))
    pd.testing.assert_frame_equal(with_gx.quarantined.reset_index(drop=True), fast.quarantined.reset_index(drop=True))


def test_extra_columns_and_the_target_are_dropped_and_names_normalized(trained, tmp_path) -> None:
    raw = tel.generate(500, "v2", 3).rename(columns={"ambient_temp_c": "Ambient Temp C"}).assign(extra=1)
    write_table(raw, tmp_path / "in.parquet")
    run_score(trained, tmp_path / "in.parquet", tmp_path)
    out = pd.read_parquet(tmp_path / "scored.parquet")
    assert "ambient_temp_c" in out
    assert "extra" not in out
    assert tel.TARGET not in out


# --------------------------------------------------------------------------------------------- bad batches
@pytest.fixture
def previous(trained, tmp_path) -> tuple[bytes, bytes]:
    """A good earlier scoring run whose outputs must survive every failure below."""
    write_table(batch(300), tmp_path / "good.parquet")
    run_score(trained, tmp_path / "good.parquet", tmp_path, contract=None)  # no GE run: faster, same files
    return (tmp_path / "scored.parquet").read_bytes(), (tmp_path / "quarantine.parquet").read_bytes()


def assert_unchanged(tmp_path: Path, previous: tuple[bytes, bytes]) -> None:
    assert (tmp_path / "scored.parquet").read_bytes() == previous[0]
    assert (tmp_path / "quarantine.parquet").read_bytes() == previous[1]
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_empty_file_is_a_clear_error(trained, tmp_path, previous) -> None:
    (tmp_path / "bad.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"bad\.csv: the file is empty \(0 bytes\)"):
        run_score(trained, tmp_path / "bad.csv", tmp_path)
    assert_unchanged(tmp_path, previous)


def test_header_only_csv_is_a_clear_error(trained, tmp_path, previous) -> None:
    batch(10).iloc[0:0].to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv: the batch has a header but no rows"):
        run_score(trained, tmp_path / "bad.csv", tmp_path)
    assert_unchanged(tmp_path, previous)


def test_corrupt_parquet_is_a_clear_error(trained, tmp_path, previous) -> None:
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "bad.parquet").write_bytes(data[: len(data) // 2])  # truncated: no footer
    with pytest.raises(DataError, match=r"bad\.parquet: cannot be read as PARQUET"):
        run_score(trained, tmp_path / "bad.parquet", tmp_path)
    assert_unchanged(tmp_path, previous)


def test_corrupt_second_file_fails_the_whole_batch(trained, tmp_path, previous) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    write_table(batch(300), incoming / "a.parquet")
    (incoming / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"b\.parquet: cannot be read"):
        run_score(trained, incoming, tmp_path)
    assert_unchanged(tmp_path, previous)


def test_missing_feature_column_is_a_clear_error(trained, tmp_path, previous) -> None:
    write_table(batch(300).drop(columns=["ambient_temp_c"]), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"missing feature column\(s\) \['ambient_temp_c'\]"):
        run_score(trained, tmp_path / "bad.parquet", tmp_path)
    assert_unchanged(tmp_path, previous)


def test_too_many_bad_rows_fail_the_gate(trained, tmp_path, previous) -> None:
    raw = batch(400, glitch_rate=0.0).astype({"charge_cycles": object})
    raw.loc[:99, "charge_cycles"] = "ERR"
    write_table(raw, tmp_path / "bad.csv")
    with pytest.raises(GateError, match=r"100 of 400 rows \(25\.0%\) failed row checks.*max_bad_row_fraction"):
        run_score(trained, tmp_path / "bad.csv", tmp_path)
    assert_unchanged(tmp_path, previous)


def test_mostly_missing_feature_fails_the_gate(trained, tmp_path, previous) -> None:
    raw = batch(400)
    raw.loc[:199, "state_of_charge_pct"] = np.nan
    write_table(raw, tmp_path / "bad.parquet")
    with pytest.raises(GateError, match=r"'state_of_charge_pct' is missing in 50\.\d% .*max_null_fraction"):
        run_score(trained, tmp_path / "bad.parquet", tmp_path)
    assert_unchanged(tmp_path, previous)


def test_no_batch_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / ".gitkeep").touch()
    with pytest.raises(DataError, match=r"no \.csv or \.parquet file to score"):
        stage.batch_files(tmp_path / "incoming")
    with pytest.raises(DataError, match=r"batch not found"):
        stage.batch_files(tmp_path / "nowhere")


def test_model_that_does_not_match_its_card_is_refused(trained, tmp_path) -> None:
    meta = read_json(trained["dir"] / "model.json")
    assert stage.model_version(meta, trained["dir"] / "model.joblib") == meta["model"]["sha256"][:12]
    with pytest.raises(DataError, match=r"does not match model\.json"):
        stage.model_version({"model": {"sha256": "0" * 64}}, trained["dir"] / "model.joblib")


def test_command_line_exits_1_with_one_line_error(trained, tmp_path) -> None:
    d = trained["dir"]
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "empty.parquet").write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.score", "--params", str(ROOT / "params.yaml"),
         "--incoming", str(tmp_path / "incoming"), "--model", str(d / "model.joblib"), "--meta", str(d / "model.json"),
         "--schema", str(d / "schema.json"), "--contracts", CONTRACTS, "--out", str(tmp_path / "o.parquet"),
         "--quarantine", str(tmp_path / "q.parquet"), "--metrics", str(tmp_path / "m.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "empty.parquet: the file is empty" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.parquet").exists()
    assert not (tmp_path / "m.json").exists()


def test_command_line_writes_outputs_and_metrics(trained, tmp_path) -> None:
    d = trained["dir"]
    write_table(batch(800), tmp_path / "in.csv")
    argv = ["--params", str(ROOT / "params.yaml"), "--incoming", str(tmp_path / "in.csv"),
            "--model", str(d / "model.joblib"), "--meta", str(d / "model.json"), "--schema", str(d / "schema.json"), "--contracts", CONTRACTS,
            "--out", str(tmp_path / "o.parquet"), "--quarantine", str(tmp_path / "q.parquet"),
            "--metrics", str(tmp_path / "m.json")]  # fmt: skip
    stage.main(argv)
    first = (tmp_path / "o.parquet").read_bytes(), (tmp_path / "m.json").read_bytes()
    metrics = read_json(tmp_path / "m.json")
    assert metrics["rows_read"] == 800
    assert metrics["files"] == ["in.csv"]
    assert sum(metrics["prediction_counts"].values()) == metrics["rows_scored"]
    stage.main(argv)
    assert ((tmp_path / "o.parquet").read_bytes(), (tmp_path / "m.json").read_bytes()) == first  # deterministic


# --------------------------------------------------------------------------------------------- outside the pipeline
def test_score_prod_command_with_a_model_file(trained, tmp_path) -> None:
    d = tmp_path / "models"
    d.mkdir()
    (d / "model.joblib").write_bytes((trained["dir"] / "model.joblib").read_bytes())
    meta = read_json(trained["dir"] / "model.json") | {"schema": trained["schema"].to_dict()}
    write_json(d / "model.json", meta)
    write_table(batch(900), tmp_path / "new.csv")
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.score_prod", "--params", str(ROOT / "params.yaml"),
         "--batch", str(tmp_path / "new.csv"), "--model", str(d / "model.joblib"), "--out", str(tmp_path / "s.parquet")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows_read"] == 900
    assert summary["model_version"] == meta["model"]["sha256"][:12]
    out = pd.read_parquet(tmp_path / "s.parquet")
    assert len(out) == summary["rows_scored"]
    assert (tmp_path / "s.quarantine.parquet").exists()


def test_score_prod_without_a_prod_model_says_what_to_do(tmp_path) -> None:
    from lifecycle import score_prod

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(LifecycleError, match=r"'prod'.*make release"):
        score_prod.resolve_model("prod", tmp_path, tmp_path / "files")


def test_rejected_batch_sends_a_webhook_message(trained, tmp_path) -> None:
    from tests.test_notify import Webhook

    d = trained["dir"]
    raw = batch(400).astype({"charge_cycles": object})
    raw.loc[:99, "charge_cycles"] = "ERR"
    write_table(raw, tmp_path / "bad.csv")
    hook = Webhook()
    try:
        params = tmp_path / "params.yaml"
        params.write_text((ROOT / "params.yaml").read_text().replace("webhook_url: null", f"webhook_url: {hook.url}"))
        with pytest.raises(GateError):
            stage.main([
                "--params", str(params), "--incoming", str(tmp_path / "bad.csv"), "--model", str(d / "model.joblib"),
                "--meta", str(d / "model.json"), "--schema", str(d / "schema.json"), "--contracts", CONTRACTS, "--out", str(tmp_path / "o.parquet"),
                "--quarantine", str(tmp_path / "q.parquet"), "--metrics", str(tmp_path / "m.json"),
            ])  # fmt: skip
    finally:
        hook.close()
    assert len(hook.received) == 1
    assert hook.received[0]["body"]["text"].startswith(":x: *Batch rejected by validation*")
    assert not (tmp_path / "o.parquet").exists()


def test_without_identifier_columns_the_row_number_is_the_row_id(trained, tmp_path) -> None:
    schema: Schema = trained["schema"]
    no_ids = dataclasses.replace(schema, columns=tuple(c for c in schema.columns if c.role != "identifier"))
    write_table(batch(1500).drop(columns=list(tel.ID_COLUMNS)), tmp_path / "in.parquet")
    summary = stage.score_batch(
        [tmp_path / "in.parquet"], trained["model"], no_ids, "v", tmp_path / "o.parquet", tmp_path / "q.parquet",
        chunk_rows=400, min_rows=1, validate=trained["params"].validate,
    )  # fmt: skip
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert out.columns[0] == "row_number"
    assert out["row_number"].is_monotonic_increasing
    assert set(out["row_number"]) <= set(range(1500))
    assert summary.rows_read == 1500
