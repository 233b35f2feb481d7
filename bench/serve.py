"""Benchmark: the prediction API under real uvicorn vs a bare Starlette endpoint calling the same model, in one run.

    python bench/serve.py [--model models/model.joblib --meta models/model.json] [--engines sklearn onnx] [--quick]

On loopback, every server a separate uvicorn process (1 worker, OMP_NUM_THREADS=1 for all of them), the load from
this process with httpx's async client:

1. single-row requests at concurrency 1 and 16: requests/s, p50 and p99 latency, for the bare endpoint
   (``json -> DataFrame -> predict_proba -> json``, no validation, no metrics, no log) and this server with each
   engine (``SERVE_ENGINE=sklearn`` is the like-for-like comparison; ``onnx`` is issue 8's fast path);
2. 1000-row batches: rows/s of each server vs ``predict_proba`` of the same pipeline in this process (the
   ceiling: no HTTP, no JSON);
3. load check on this server (``SERVE_ENGINE=auto``): 10,000 single-row requests at concurrency 32; errors and
   the server's RSS growth from after warm-up to the end.

Scenarios alternate between servers so that drift of a shared machine hits both sides alike; ratios are the
result. Targets (issue 6): single-row throughput >= 0.7x the bare endpoint, batch >= 0.8x in-process, zero errors
and RSS growth < 10%. Results: bench/results/serve.json and docs/benchmarks.md. Bounded: every loop has a fixed
number of requests; ~3 minutes on 2 cores (``--quick``: ~1 minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from lifecycle.artifact import ModelMetadata

ROOT = Path(__file__).resolve().parents[1]
BARE = "bare"


# --------------------------------------------------------------------------------------------- the bare baseline
def bare_app(model_path: str) -> Any:
    """A Starlette endpoint that does only what any server must: parse JSON, build the frame, predict, answer."""
    import joblib
    import pandas as pd
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pipeline = joblib.load(model_path)
    features = list(pipeline.feature_names_in_)
    classes = [str(c) for c in pipeline.classes_]

    async def predict(request: Request) -> JSONResponse:
        records = (await request.json())["records"]
        X = pd.DataFrame.from_records(records, columns=features)
        proba = pipeline.predict_proba(X)
        labels = pipeline.classes_[proba.argmax(axis=1)].tolist()
        return JSONResponse(
            {"predictions": labels, "probabilities": [dict(zip(classes, p, strict=True)) for p in proba.tolist()]}
        )

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health/ready", ready)])


def run_bare(model_path: str, port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(model_path), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --------------------------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.port = name, free_port()
        self.log = logs / f"{name}.log"  # a file, not a pipe: a pipe nobody reads blocks the server when full
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "SERVE_PORT": str(self.port), **env}
        self.proc = subprocess.Popen(
            [*cmd, str(self.port)] if name == BARE else cmd,
            env=env,
            cwd=ROOT,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"{self.name} not ready after {timeout} s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# --------------------------------------------------------------------------------------------- load
async def load(url: str, bodies: list[bytes], requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` POSTs of ``bodies`` (round robin) by ``concurrency`` workers; latencies, errors, throughput."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            started = time.perf_counter()
            try:
                r = await client.post(
                    "/predict", content=bodies[i % len(bodies)], headers={"content-type": "application/json"}
                )
                if r.status_code != 200:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": elapsed,
        "req_per_s": requests / elapsed,
        "p50_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
        "errors": errors,
    }


def requests_of(meta_path: Path, n: int) -> list[dict[str, Any]]:
    """Valid request records: simulated telemetry (another seed than training), within the served limits."""
    import pandas as pd

    from lifecycle.artifact import ModelMetadata
    from lifecycle.data import telemetry

    schema = ModelMetadata.read(meta_path).training_schema
    df = telemetry.generate(rows=5000, seed=1)
    ok = pd.Series(True, index=df.index)
    for name, (low, high) in telemetry.PHYSICAL_LIMITS.items():
        if name in df.columns:
            ok &= df[name].isna() | df[name].between(low, high)
    rows = df.loc[ok, schema.features].head(n)
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


class InProcess:
    """The ceiling: the same pipeline's predict_proba on a prebuilt DataFrame, one OpenMP thread like the servers."""

    def __init__(self, model_path: Path, records: list[dict[str, Any]]) -> None:
        import joblib
        import pandas as pd
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # the servers run with OMP_NUM_THREADS=1
        self.pipeline = joblib.load(model_path)
        self.X = pd.DataFrame.from_records(records, columns=list(self.pipeline.feature_names_in_))
        self.pipeline.predict_proba(self.X)

    def once(self) -> float:
        started = time.perf_counter()
        self.pipeline.predict_proba(self.X)
        return time.perf_counter() - started


def fit_model(directory: Path, rows: int) -> tuple[Path, Path, Path]:
    """Train params.yaml's model on ``rows`` simulated rows and package it as the pipeline does (train + export)."""
    from threadpoolctl import threadpool_limits

    from lifecycle.artifact import save_model
    from lifecycle.config import load_params
    from lifecycle.data import telemetry
    from lifecycle.io import write_bytes, write_json, write_table
    from lifecycle.modeling.pipeline import fit, model_metadata
    from lifecycle.onnx.convert import package
    from lifecycle.schema import coerce_frame, infer_schema

    params = load_params(ROOT / "params.yaml")
    raw = telemetry.generate(rows=rows + 5000, seed=params.base.seed)
    schema = infer_schema(raw, telemetry.TARGET, "classification", id_columns=telemetry.ID_COLUMNS)
    df = coerce_frame(raw, schema)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {k: directory / f"{k}.parquet" for k in ("train", "test")}
    write_table(df.iloc[:rows], paths["train"])
    write_table(df.iloc[rows:], paths["test"])
    write_json(directory / "schema.json", schema.to_dict())
    with threadpool_limits(1):
        pipeline, metrics = fit(df.iloc[:rows], schema, params)
        model = directory / "model.joblib"
        save_model(pipeline, model)
        train = model_metadata(model, paths["train"], df.iloc[:rows], schema, params, metrics)
        onnx, meta = directory / "model.onnx", directory / "model.json"
        graph, record = package(
            pipeline, train, schema, df.iloc[rows:][schema.features], params.export, seed=params.base.seed
        )
        write_bytes(onnx, graph or b"")
        record.write(meta)
    return model, meta, onnx


# --------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="serve this model.joblib (default: fit one, see --fit-rows)")
    parser.add_argument("--meta", type=Path, help="its model.json (with --model)")
    parser.add_argument("--onnx", type=Path, help="its model.onnx (with --model; default: next to it)")
    parser.add_argument("--fit-rows", type=int, default=20000, help="rows of telemetry to fit params.yaml's model on")
    parser.add_argument("--engines", nargs="+", default=["sklearn", "onnx"], choices=["sklearn", "onnx", "auto"])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run; ratios are noisier)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        run_bare(str(args.model), args.bare_server)
        return
    log_dir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    if args.model is None:
        print(f"fitting params.yaml's model on {args.fit_rows} telemetry rows (train + export stages' functions)")
        args.model, args.meta, args.onnx = fit_model(log_dir / "model", args.fit_rows)
    args.meta = args.meta or args.model.with_name("model.json")
    args.onnx = args.onnx or args.model.with_suffix(".onnx")
    if not args.model.exists() or not args.meta.exists():
        raise SystemExit(f"{args.model} / {args.meta} not found")

    scale = 0.25 if args.quick else 1.0
    n_single = {1: int(600 * scale), 16: int(2000 * scale)}
    n_batch = max(5, int(40 * scale))
    n_load = 10_000

    records = requests_of(args.meta, 1000)
    singles = [json.dumps({"records": [r]}).encode() for r in records[:200]]
    batch = [json.dumps({"records": records}).encode()]

    def ours(engine: str) -> Server:
        env = {
            "SERVE_ENGINE": engine,
            "SERVE_MODEL_PATH": str(args.model),
            "SERVE_META_PATH": str(args.meta),
            "SERVE_ONNX_PATH": str(args.onnx),
            "SERVE_PREDICTION_LOG_DIR": str(log_dir / engine),
            "SERVE_LOG_LEVEL": "warning",
        }
        return Server(f"serve-{engine}", [sys.executable, "-m", "lifecycle.serve"], env, log_dir)

    servers = [Server(BARE, [sys.executable, __file__, "--model", str(args.model), "--bare-server"], {}, log_dir)]
    servers += [ours(e) for e in args.engines]
    load_server = ours("auto")
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "model": {"file": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model)},
        "single": {},
        "batch": {},
    }
    try:
        for s in [*servers, load_server]:
            s.wait()
        for s in [*servers[1:], load_server]:
            info = httpx.get(f"{s.url}/model", timeout=10).json()["champion"]
            result.setdefault("engines", {})[s.name] = {"engine": info["engine"], "note": info["engine_note"]}
            print(f"{s.name}: engine {info['engine']} {info['engine_note']}", flush=True)
        meta = ModelMetadata.read(args.meta)
        result["model"] |= {"family": meta.model.family, "sha256": meta.version}
        for s in [*servers, load_server]:  # warm-up: first requests import and allocate
            asyncio.run(load(s.url, singles, 100, 4))
            asyncio.run(load(s.url, batch, 3, 1))

        for concurrency, n in n_single.items():
            rows = {}
            for s in servers:
                rows[s.name] = asyncio.run(load(s.url, singles, n, concurrency))
                print(
                    f"single c={concurrency:<2} {s.name:<14} {rows[s.name]['req_per_s']:8.1f} req/s  "
                    f"p50 {rows[s.name]['p50_ms']:6.2f} ms  p99 {rows[s.name]['p99_ms']:6.2f} ms  "
                    f"errors {rows[s.name]['errors']}",
                    flush=True,
                )
            for row in rows.values():
                row["ratio_vs_bare"] = row["req_per_s"] / rows[BARE]["req_per_s"]
            result["single"][f"c{concurrency}"] = rows

        # Batches alternate: one in-process predict_proba, then one request to each server, n_batch rounds;
        # medians per side, so the machine's drift during the section hits every side alike.
        in_process = InProcess(args.model, records)
        times: dict[str, list[float]] = {"in_process": [], **{s.name: [] for s in servers}}
        batch_errors: dict[str, dict[str, int]] = {s.name: {} for s in servers}
        for _ in range(n_batch):
            times["in_process"].append(in_process.once())
            for s in servers:
                row = asyncio.run(load(s.url, batch, 1, 1))
                times[s.name].append(row["seconds"])
                for k, v in row["errors"].items():
                    batch_errors[s.name][k] = batch_errors[s.name].get(k, 0) + v
        inproc = len(records) / statistics.median(times["in_process"])
        result["batch"]["in_process_rows_per_s"] = inproc
        print(f"batch 1000 rows in-process predict_proba  {inproc:10.0f} rows/s", flush=True)
        for s in servers:
            rows_per_s = len(records) / statistics.median(times[s.name])
            row = {
                "rounds": n_batch,
                "rows_per_s": rows_per_s,
                "ratio_vs_in_process": rows_per_s / inproc,
                "p50_ms": statistics.median(times[s.name]) * 1e3,
                "errors": batch_errors[s.name],
            }
            result["batch"][s.name] = row
            print(
                f"batch 1000 rows {s.name:<14} {row['rows_per_s']:10.0f} rows/s  "
                f"({row['ratio_vs_in_process']:.2f}x in-process)  errors {row['errors']}",
                flush=True,
            )

        rss_before = load_server.rss_mb()
        row = asyncio.run(load(load_server.url, singles, n_load, 32))
        time.sleep(2)  # let the prediction log drain
        rss_after = load_server.rss_mb()
        row |= {"rss_before_mb": rss_before, "rss_after_mb": rss_after, "rss_growth": rss_after / rss_before - 1}
        result["load"] = row
        print(
            f"load {n_load} req c=32 serve-auto: {row['req_per_s']:.1f} req/s p99 {row['p99_ms']:.1f} ms "
            f"errors {row['errors'] or 0}; RSS {rss_before:.0f} -> {rss_after:.0f} MB "
            f"({row['rss_growth']:+.1%})",
            flush=True,
        )
    finally:
        for s in [*servers, load_server]:
            s.stop()

    print("\nratios (targets: single >= 0.7x bare, batch >= 0.8x in-process, load: 0 errors, RSS < +10%)")
    for key, rows in result["single"].items():
        for name, row in rows.items():
            if name != BARE:
                print(f"  single {key} {name}: {row['ratio_vs_bare']:.2f}x bare")
    for name, row in result["batch"].items():
        if isinstance(row, dict):
            print(f"  batch {name}: {row['ratio_vs_in_process']:.2f}x in-process")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}; server logs in {log_dir}")
    for s in [*servers, load_server]:
        errors = s.log.read_text().count("Traceback")
        if errors:
            print(f"  {s.name}: {errors} traceback(s) in {s.log}")


if __name__ == "__main__":
    main()
