"""Load check of the server as deployed (issue 15's figures): does every request end well and get accounted for?

    python bench/load.py [--model models/model.joblib] [--requests 10000] [--concurrency 32]

One ``python -m lifecycle.serve`` process (``SERVE_ENGINE=auto``, prediction log on, ``SERVE_MAX_ROWS=50``,
``SERVE_MAX_BODY_BYTES=65536`` so that the limits are cheap to reach), on loopback; the load from this process
(httpx's async client, plus raw sockets for clients that leave mid-body):

1. ``--requests`` single-row ``POST /predict`` at ``--concurrency``;
2. ``--requests`` mixed requests at the same concurrency, round robin over :data:`KINDS`: good ones on every
   prediction route (``/predict`` with 1 and 5 rows, KServe V1, Open Inference V2 by column and by position) and
   bad ones (invalid JSON, a non-JSON content type, a value out of range, an unknown category, too many rows, a
   body over the limit, a V2 ``id`` over 128 characters, zero V2 rows, too many positional V2 rows, a wrong V2
   datatype, another model's name, an unknown route, a wrong method, a client that disconnects mid-body).

Checked, each a line of the verdict (exit status 1 when one fails):
- zero server errors: no 5xx answer, no ``Traceback`` in the server's log;
- every request answered with its kind's status (good: 200; bad: its 4xx; a disconnect: no answer);
- RSS of the server from after the warm-up to the end grows less than 10 %;
- Prometheus: the change of ``lifecycle_requests_total`` per route and status over the run equals what the client
  sent and received (a disconnect is counted as 499), and ``lifecycle_predicted_rows_total`` equals the rows of the
  good requests;
- the prediction log (read after the server stopped and published its files): every good request's id with
  exactly its rows, no row of any other request, no dropped or failed rows.

The model: ``--model`` (and its model.json / model.onnx beside it), by default the pipeline's models/model.joblib
when it exists, else params.yaml's model fitted on ``--fit-rows`` simulated rows (``bench/serve.py``'s
``fit_model``). Results: bench/results/load.json and docs/benchmarks.md. Bounded: 2 x ``--requests`` requests;
about 1-3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import Server, fit_model, requests_of  # bench/serve.py: one way to start and stop servers

ROOT = Path(__file__).resolve().parents[1]
MAX_ROWS = 50
MAX_BODY = 64 * 1024
GONE = 0  # the client status of a request whose client left mid-body: no answer to read


@dataclasses.dataclass(frozen=True)
class Call:
    """One request to send: what, where, and what must come back (``status``; ``rows`` predicted when 200)."""

    kind: str
    method: str
    path: str  # the URL's path
    route: str  # the route template the server counts it under ("unmatched": no route)
    body: bytes = b""
    content_type: str = "application/json"
    status: int = 200
    rows: int = 0


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def kinds(records: list[dict[str, Any]], v2_inputs: list[dict[str, Any]], name: str) -> list[Call]:
    """The mixed phase's request kinds, built from valid ``records`` (no missing values) and the V2 metadata."""
    r = records
    v1, v2 = f"/v1/models/{name}:predict", f"/v2/models/{name}/infer"
    numeric = next(i["name"] for i in v2_inputs if i["datatype"] == "FP64")
    categorical = next(i["name"] for i in v2_inputs if i["datatype"] == "BYTES")

    def columns(rows: list[dict[str, Any]], **extra: Any) -> bytes:
        inputs = [
            {"name": i["name"], "datatype": i["datatype"], "shape": [len(rows)], "data": [x[i["name"]] for x in rows]}
            for i in v2_inputs
        ]
        return json_bytes({"inputs": inputs, **extra})

    def positional(rows: list[dict[str, Any]]) -> bytes:
        data = [[x[i["name"]] for i in v2_inputs] for x in rows]  # text and numbers side by side
        tensor = {"name": "input-0", "datatype": "BYTES", "shape": [len(rows), len(v2_inputs)], "data": data}
        return json_bytes({"inputs": [tensor]})

    wrong_type = json.loads(columns(r[:2]))
    wrong_type["inputs"][[i["name"] for i in v2_inputs].index(numeric)]["datatype"] = "BOOL"
    return [
        Call("predict 1 row", "POST", "/predict", "/predict", json_bytes({"records": r[:1]}), rows=1),
        Call("predict 5 rows", "POST", "/predict", "/predict", json_bytes({"records": r[1:6]}), rows=5),
        Call("v1 2 rows", "POST", v1, "/v1/models/{name}:predict", json_bytes({"instances": r[6:8]}), rows=2),
        Call("v2 columns 3 rows", "POST", v2, "/v2/models/{name}/infer", columns(r[8:11]), rows=3),
        Call("v2 positional 2 rows", "POST", v2, "/v2/models/{name}/infer", positional(r[11:13]), rows=2),
        Call("invalid json", "POST", "/predict", "/predict", b'{"records": [', status=400),
        Call("text/plain", "POST", "/predict", "/predict", json_bytes({"records": r[:1]}), "text/plain", 415),
        Call("form content type", "POST", v2, "/v2/models/{name}/infer", columns(r[:1]), "application/x-www-form-urlencoded", 415),
        Call("out of range", "POST", "/predict", "/predict", json_bytes({"records": [r[0] | {numeric: 1e12}]}), status=422),
        Call("unknown category", "POST", v1, "/v1/models/{name}:predict", json_bytes({"instances": [r[0] | {categorical: "no-such-value"}]}), status=422),
        Call("too many rows", "POST", "/predict", "/predict", json_bytes({"records": r[:1] * (MAX_ROWS + 1)}), status=422),
        Call("body over the limit", "POST", "/predict", "/predict", json_bytes({"records": r[:1], "pad": "x" * MAX_BODY}), status=413),
        Call("v2 id too long", "POST", v2, "/v2/models/{name}/infer", columns(r[:1], id="i" * 129), status=400),
        Call("v2 zero rows", "POST", v2, "/v2/models/{name}/infer", columns([]), status=400),
        Call("v2 positional too many rows", "POST", v2, "/v2/models/{name}/infer", positional(r[:1] * (MAX_ROWS + 1)), status=400),
        Call("v2 wrong datatype", "POST", v2, "/v2/models/{name}/infer", json_bytes(wrong_type), status=400),
        Call("other model", "POST", "/v1/models/other:predict", "/v1/models/{name}:predict", json_bytes({"instances": r[:1]}), status=404),
        Call("unknown route", "POST", "/no/such/route", "unmatched", json_bytes({"records": r[:1]}), status=404),
        Call("wrong method", "GET", "/predict", "/predict", status=405),
        Call("disconnect mid-body", "POST", "/predict", "/predict", json_bytes({"records": r[:5]}), status=GONE),
    ]  # fmt: skip


async def disconnect(port: int, call: Call, rid: str) -> int:
    """Send the headers and half of ``call``'s body, then close the connection: a client that leaves."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{call.method} {call.path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {call.content_type}\r\n"
        f"content-length: {len(call.body)}\r\nx-request-id: {rid}\r\n\r\n"
    )
    writer.write(head.encode() + call.body[: len(call.body) // 2])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    return GONE


async def run_phase(port: int, calls: list[Call], prefix: str, concurrency: int) -> dict[str, Any]:
    """Send ``calls`` (request ids ``<prefix>-<i>``) with ``concurrency`` workers; every answer's status kept."""
    answered: list[tuple[str, Call, int]] = []
    pending = iter(enumerate(calls))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for i, call in pending:
            rid = f"{prefix}-{i}"
            if call.status == GONE:
                status = await disconnect(port, call, rid)
            else:
                try:
                    headers = {"x-request-id": rid, "content-type": call.content_type}
                    r = await client.request(call.method, call.path, content=call.body or None, headers=headers)
                    status = r.status_code
                except httpx.HTTPError as exc:
                    status = -1
                    print(f"  {rid} {call.kind}: {type(exc).__name__}: {exc}", flush=True)
            answered.append((rid, call, status))

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"answered": answered, "seconds": seconds, "req_per_s": len(calls) / seconds}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` as {(sample name, sorted labels): value}."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def delta(before: dict, after: dict, name: str) -> Counter:
    """The change of every sample called ``name`` between two scrapes, by its labels."""
    return Counter({labels: after[k] - before.get(k, 0.0) for k in after if (labels := k[1]) and k[0] == name})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model.joblib (default: models/model.joblib if built, else fit)")
    parser.add_argument("--fit-rows", type=int, default=20000, help="rows to fit params.yaml's model on, if fitting")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    if args.model is None and (ROOT / "models" / "model.joblib").exists():
        args.model = ROOT / "models" / "model.joblib"
    if args.model is None:
        print(f"fitting params.yaml's model on {args.fit_rows} telemetry rows (train + export stages' functions)")
        model, meta, onnx = fit_model(work / "model", args.fit_rows)
    else:
        model, meta, onnx = args.model, args.model.with_name("model.json"), args.model.with_suffix(".onnx")
    log_dir = work / "predictions"
    env = {
        "SERVE_ENGINE": "auto",
        "SERVE_MODEL_PATH": str(model),
        "SERVE_META_PATH": str(meta),
        "SERVE_ONNX_PATH": str(onnx),
        "SERVE_PREDICTION_LOG_DIR": str(log_dir),
        "SERVE_MAX_ROWS": str(MAX_ROWS),
        "SERVE_MAX_BODY_BYTES": str(MAX_BODY),
        "SERVE_LOG_LEVEL": "warning",
    }
    records = [r for r in requests_of(meta, 400) if all(v is not None for v in r.values())][:200]
    server = Server("serve-auto", [sys.executable, "-m", "lifecycle.serve"], env, work)
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "requests_per_phase": args.requests,
        "concurrency": args.concurrency,
    }
    try:
        server.wait()
        name = httpx.get(f"{server.url}/v1/models", timeout=10).json()["models"][0]
        v2_inputs = httpx.get(f"{server.url}/v2/models/{name}", timeout=10).json()["inputs"]
        mixed = kinds(records, v2_inputs, name)
        singles = [Call("predict 1 row", "POST", "/predict", "/predict", json_bytes({"records": [r]}), rows=1)
                   for r in records]  # fmt: skip
        asyncio.run(run_phase(server.port, [singles[i % len(singles)] for i in range(300)], "warm", 8))
        asyncio.run(run_phase(server.port, mixed * 5, "warm-mixed", 8))
        rss = [server.rss_mb()]
        before = scrape(server.url)
        phases = {}
        for phase, calls in (
            ("single", [singles[i % len(singles)] for i in range(args.requests)]),
            ("mixed", [mixed[i % len(mixed)] for i in range(args.requests)]),
        ):
            out = asyncio.run(run_phase(server.port, calls, phase, args.concurrency))
            rss.append(server.rss_mb())
            phases[phase] = out
            statuses = Counter(s for _, _, s in out["answered"])
            print(
                f"{phase}: {len(calls)} requests at concurrency {args.concurrency} in {out['seconds']:.1f} s "
                f"({out['req_per_s']:.0f} req/s); statuses {dict(sorted(statuses.items()))}; RSS {rss[-1]:.0f} MB",
                flush=True,
            )
        time.sleep(2)  # the last requests' counts are taken after their answers are sent
        after = scrape(server.url)
    finally:
        server.stop()  # SIGTERM: the prediction log writes what is queued and publishes its file

    answered = [a for p in phases.values() for a in p["answered"]]
    checks: dict[str, tuple[bool, str]] = {}
    server_errors = sum(1 for _, _, s in answered if s >= 500 or s < 0)
    tracebacks = server.log.read_text().count("Traceback")
    checks["zero server errors"] = (
        server_errors == 0 and tracebacks == 0,
        f"{server_errors} 5xx or failed, {tracebacks} tracebacks in the server log",
    )
    wrong = Counter((c.kind, c.status, s) for _, c, s in answered if s != c.status)
    checks["every kind answered as expected"] = (
        not wrong,
        f"mismatches (kind, expected, got): {dict(wrong)}" if wrong else f"{len(mixed)} kinds",
    )
    growth = rss[-1] / rss[0] - 1
    checks["RSS growth < 10 %"] = (growth < 0.10, f"{rss[0]:.0f} -> {rss[1]:.0f} -> {rss[2]:.0f} MB ({growth:+.1%})")

    sent = Counter()
    for _, call, status in answered:
        sent[(("method", call.method), ("route", call.route), ("status", str(status or 499)))] += 1
    counted = delta(before, after, "lifecycle_requests_total")
    counted = Counter({k: v for k, v in counted.items() if v and dict(k)["route"] != "/metrics"})
    diff = {
        str(k): (sent.get(k, 0), counted.get(k, 0))
        for k in set(sent) | set(counted)
        if sent.get(k, 0) != counted.get(k, 0)
    }
    checks["lifecycle_requests_total accounts for every request"] = (
        not diff,
        f"{sum(counted.values()):.0f} counted, {sum(sent.values())} sent"
        + (f"; (sent, counted) differ: {diff}" if diff else ""),
    )
    good = {rid: c.rows for rid, c, s in answered if s == 200}
    rows = delta(before, after, "lifecycle_predicted_rows_total")
    predicted = rows.get((("role", "champion"),), 0)
    checks["lifecycle_predicted_rows_total = rows of the good requests"] = (
        predicted == sum(good.values()),
        f"{predicted:.0f} counted, {sum(good.values())} expected",
    )

    logged = pd.read_parquet(log_dir, columns=["request_id", "row"])
    logged = logged[~logged["request_id"].str.startswith("warm")]
    per_id = logged.groupby("request_id").size().to_dict()
    missing = {k: (v, per_id.get(k, 0)) for k, v in good.items() if per_id.get(k, 0) != v}
    extra = sorted(set(per_id) - set(good))
    dropped = sum(
        v
        for (n, _), v in after.items()
        if n in ("lifecycle_prediction_log_dropped_rows_total", "lifecycle_prediction_log_errors_total")
    )
    checks["prediction log accounts for every good request, nothing else"] = (
        not missing and not extra and not dropped,
        f"{len(logged)} rows of {len(per_id)} requests; {len(missing)} requests with missing rows, {len(extra)} "
        f"unexpected request ids, {dropped:.0f} rows dropped or failed" + (f"; e.g. {list(missing.items())[:3]} {extra[:3]}" if missing or extra else ""),
    )  # fmt: skip

    print("\nverdict")
    for check, (ok, detail) in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {check}: {detail}")
    result |= {
        "phases": {
            p: {"seconds": o["seconds"], "req_per_s": o["req_per_s"], "statuses": dict(Counter(str(s) for _, _, s in o["answered"]))}
            for p, o in phases.items()
        },
        "mixed_kinds": {c.kind: c.status for c in mixed},
        "rss_mb": rss,
        "rss_growth": growth,
        "checks": {k: {"ok": ok, "detail": d} for k, (ok, d) in checks.items()},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}; server log {server.log}")
    sys.exit(0 if all(ok for ok, _ in checks.values()) else 1)


if __name__ == "__main__":
    main()
