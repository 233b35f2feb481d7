"""score.engine: dask: the pandas engine's predictions and quarantine, row for row, on a real LocalCluster."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from moto.server import ThreadedMotoServer

from lifecycle import batch as batch_scoring
from lifecycle import cluster as dask_cluster
from lifecycle.batch_dask import score_on_dask
from lifecycle.config import Dask
from lifecycle.data import telemetry as tel
from lifecycle.data.readers import batch_files, batch_sources
from lifecycle.errors import DataError, GateError
from lifecycle.io import write_table
from lifecycle.quality.contract import load_contract
from lifecycle.schema import Schema
from tests.scoring import batch, train_small_model

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = load_contract(ROOT / "data" / "contracts" / "telemetry.yaml")
pytestmark = pytest.mark.xdist_group("dask")  # one LocalCluster per worker process of the suite


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return train_small_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A real 2-worker LocalCluster on loopback, shared by the module's tests."""
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as c:
        yield c


def knobs(trained: dict[str, Any], **kw: Any) -> dict[str, Any]:
    params = trained["params"]
    return {
        "chunk_rows": 500,
        "min_rows": 1,
        "validate": params.validate,
        "read_options": {},
        "contract": CONTRACT,
    } | kw


def both_engines(
    trained: dict[str, Any], client: Client, sources: list[Any], tmp_path: Path, schema: Schema | None = None, **kw: Any
) -> dict[str, tuple[batch_scoring.BatchSummary, pd.DataFrame, pd.DataFrame]]:
    """Score ``sources`` with each engine; (summary, scored, quarantined) per engine."""
    schema = schema or trained["schema"]
    out: dict[str, tuple[batch_scoring.BatchSummary, pd.DataFrame, pd.DataFrame]] = {}
    for engine in ("pandas", "dask"):
        d = tmp_path / engine
        d.mkdir()
        args = (sources, trained["model"], schema, "abc123", d / "scored.parquet", d / "quarantine.parquet")
        if engine == "pandas":
            summary = batch_scoring.score_batch(*args, **knobs(trained, **kw))
        else:
            summary = score_on_dask(client, *args, **knobs(trained, **kw))
        out[engine] = (summary, pd.read_parquet(d / "scored.parquet"), pd.read_parquet(d / "quarantine.parquet"))
    return out


def by_row_key(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.sort_values(key, kind="stable", na_position="first").reset_index(drop=True)


def messy_batch(rows: int, seed: int, version: str = "v2", text: bool = False) -> pd.DataFrame:
    """Glitches, a missing id and rows repeated within the file (the simulator's duplicates); ``text``: also a
    non-number in a numeric column (CSV only: Parquet columns have one type)."""
    raw = tel.generate(rows, version, seed, duplicate_rate=0.04).drop(columns=[tel.TARGET])
    if text:
        raw = raw.astype({"pack_voltage_v": object})
        raw.loc[[3, 70], "pack_voltage_v"] = "n/a volts"
    raw.loc[[10], "reading_id"] = None
    raw.loc[[41], "charge_mode"] = "turbo"
    return raw


# --------------------------------------------------------------------------------------------- parity
def test_same_predictions_and_quarantine_as_pandas_across_files_and_partitions(trained, client, tmp_path) -> None:
    """CSV and Parquet files, a directory of Parquet partitions, rows repeated within a partition, across
    partitions and across files: both engines give the same rows, predictions, reasons and counts."""
    incoming = tmp_path / "incoming"
    (incoming / "day=02").mkdir(parents=True)
    first = messy_batch(1800, seed=3, text=True)
    repeated = first.sample(120, random_state=1)  # rows of a.csv again, in later files
    write_table(first, incoming / "a.csv")
    write_table(pd.concat([messy_batch(900, seed=4), repeated.iloc[:60]]), incoming / "day=02" / "part-0.parquet")
    write_table(pd.concat([repeated.iloc[60:], messy_batch(700, seed=5, version="v1")]), incoming / "z.parquet")
    sources = batch_sources(incoming)
    assert [Path(s).name for s in sources] == ["a.csv", "part-0.parquet", "z.parquet"]
    # ~7% of the rows are repeats (the simulator's 4% within each file, and the 120 above): over the default gate
    validate = trained["params"].validate.model_copy(update={"max_bad_row_fraction": 0.1})
    result = both_engines(trained, client, sources, tmp_path, validate=validate)
    (ps, po, pq_), (ds, do, dq) = result["pandas"], result["dask"]
    assert ps.to_dict() == ds.to_dict()
    assert ps.reasons["duplicate row"] > 120 + 100  # within files and partitions (~136), and the 120 across files
    pd.testing.assert_frame_equal(po, do)  # scored rows: the same, in the same batch order
    key = ["reading_id", "reason"]
    pd.testing.assert_frame_equal(by_row_key(pq_, key), by_row_key(dq, key))


def test_parquet_row_groups_of_chunk_rows_give_byte_identical_outputs(trained, client, tmp_path) -> None:
    raw = messy_batch(2400, seed=8)
    path = tmp_path / "in.parquet"
    raw.to_parquet(path, row_group_size=500, index=False)
    both_engines(trained, client, [path], tmp_path)
    for name in ("scored.parquet", "quarantine.parquet"):
        assert (tmp_path / "pandas" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name


def test_without_identifiers_row_numbers_are_batch_positions_on_both_engines(trained, client, tmp_path) -> None:
    schema: Schema = trained["schema"]
    no_ids = dataclasses.replace(schema, columns=tuple(c for c in schema.columns if c.role != "identifier"))
    write_table(batch(1300, seed=2).drop(columns=list(tel.ID_COLUMNS)), tmp_path / "a.csv")
    write_table(batch(900, seed=3).drop(columns=list(tel.ID_COLUMNS)), tmp_path / "b.parquet")
    sources = [tmp_path / "a.csv", tmp_path / "b.parquet"]
    result = both_engines(trained, client, sources, tmp_path, schema=no_ids, contract=None, chunk_rows=300)
    pd.testing.assert_frame_equal(result["pandas"][1], result["dask"][1])
    assert result["dask"][1]["row_number"].max() > 1300  # counted across files


# --------------------------------------------------------------------------------------------- errors
def test_bad_files_fail_as_on_pandas_and_keep_the_previous_outputs(trained, client, tmp_path) -> None:
    out, q = tmp_path / "scored.parquet", tmp_path / "quarantine.parquet"
    out.write_bytes(b"previous")
    q.write_bytes(b"previous q")
    write_table(batch(600), tmp_path / "good.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "empty.csv").write_bytes(b"")
    args = (trained["model"], trained["schema"], "v", out, q)
    with pytest.raises(DataError, match=r"bad.parquet: cannot be read as PARQUET"):
        score_on_dask(client, [tmp_path / "good.parquet", tmp_path / "bad.parquet"], *args, **knobs(trained))
    with pytest.raises(DataError, match=r"empty.csv: the file is empty"):
        score_on_dask(client, [tmp_path / "empty.csv"], *args, **knobs(trained))
    glitchy = batch(600)
    glitchy.loc[:299, "state_of_health_pct"] = 250.0
    write_table(glitchy, tmp_path / "glitchy.parquet")
    with pytest.raises(GateError, match="max_bad_row_fraction"):
        score_on_dask(client, [tmp_path / "glitchy.parquet"], *args, **knobs(trained))
    write_table(batch(600).drop(columns=["pack_voltage_v"]), tmp_path / "nocol.parquet")
    with pytest.raises(DataError, match="pack_voltage_v"):
        score_on_dask(client, [tmp_path / "nocol.parquet"], *args, **knobs(trained))
    assert out.read_bytes() == b"previous" and q.read_bytes() == b"previous q"


# --------------------------------------------------------------------------------------------- where it runs
def test_scheduler_address_runs_on_that_cluster(trained, cluster, tmp_path, caplog) -> None:
    """score_with_params with engine dask and dask.scheduler = the address of a cluster this test started."""
    params = trained["params"]
    params = params.model_copy(
        update={
            "score": params.score.model_copy(update={"engine": "dask", "chunk_rows": 400}),
            "dask": Dask(scheduler=cluster.scheduler_address, n_workers=None, threads_per_worker=None),
        }
    )
    batch(1000).to_parquet(tmp_path / "in.parquet", row_group_size=400, index=False)
    caplog.set_level("INFO", logger="lifecycle")
    summary = batch_scoring.score_with_params(
        params, batch_files(tmp_path / "in.parquet"), trained["model"], trained["schema"], "v",
        tmp_path / "o.parquet", tmp_path / "q.parquet", CONTRACT,
    )  # fmt: skip
    assert summary.rows_read == 1000
    assert f"the Dask cluster at {cluster.scheduler_address}: 2 workers" in caplog.text
    assert "partitions scored: 3/3" in caplog.text


def test_a_scheduler_that_does_not_answer_is_a_clear_error(monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT_S", 2)
    cfg = Dask(scheduler=f"tcp://127.0.0.1:{port}", n_workers=None, threads_per_worker=None)
    message = rf"dask.scheduler=tcp://127.0.0.1:{port}: no Dask scheduler"
    with pytest.raises(dask_cluster.ClusterError, match=message), dask_cluster.dask_client(cfg):
        pass


def test_environment_address_must_be_an_address(monkeypatch) -> None:
    import dask

    cfg = Dask(scheduler=None, n_workers=None, threads_per_worker=None)
    with (
        dask.config.set({"scheduler-address": "dask-scheduler"}),
        pytest.raises(dask_cluster.ClusterError, match="DASK_SCHEDULER_ADDRESS='dask-scheduler'"),
    ):
        dask_cluster.scheduler_address(cfg)
    with dask.config.set({"scheduler-address": "tcp://10.0.0.5:8786"}):
        assert dask_cluster.scheduler_address(cfg) == "tcp://10.0.0.5:8786"


def test_local_cluster_is_started_logged_and_shut_down(caplog) -> None:
    caplog.set_level("INFO", logger="lifecycle")
    with dask_cluster.dask_client(Dask(scheduler=None, n_workers=1, threads_per_worker=1)) as c:
        assert len(c.scheduler_info()["workers"]) == 1
        cluster = c.cluster
    assert cluster.status.name == "closed"
    assert "a local Dask cluster" in caplog.text and "dashboard http://127.0.0.1:" in caplog.text


# --------------------------------------------------------------------------------------------- s3
@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_s3_prefix_of_partitions_scores_as_the_local_files(trained, client, tmp_path, s3_endpoint) -> None:
    """The workers read s3:// objects themselves (credentials from ingest.read_options.storage_options)."""
    s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
        region_name="us-east-1",
    )  # fmt: skip
    s3.create_bucket(Bucket="lake")
    local = tmp_path / "local"
    local.mkdir()
    write_table(messy_batch(900, seed=6), local / "a.parquet")
    write_table(messy_batch(500, seed=7, text=True), local / "b.csv")
    for name in ("a.parquet", "b.csv"):
        s3.upload_file(str(local / name), "lake", f"batches/2026-06/{name}")
    s3.put_object(Bucket="lake", Key="batches/2026-06/_SUCCESS", Body=b"")
    storage = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3_endpoint}}
    sources = batch_sources("s3://lake/batches/2026-06", {"storage_options": storage})
    assert sources == ["s3://lake/batches/2026-06/a.parquet", "s3://lake/batches/2026-06/b.csv"]
    d = tmp_path / "s3"
    d.mkdir()
    remote = score_on_dask(
        client, sources, trained["model"], trained["schema"], "abc123", d / "scored.parquet", d / "q.parquet",
        **knobs(trained, read_options={"storage_options": storage}),
    )  # fmt: skip
    reference = both_engines(trained, client, batch_files(local), tmp_path)["pandas"]
    assert remote.to_dict() == reference[0].to_dict()
    pd.testing.assert_frame_equal(pd.read_parquet(d / "scored.parquet"), reference[1])
