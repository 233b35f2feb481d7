"""Benchmark: SHAP explanations vs scikit-learn predictions of the same model, one row and 100-row batches, in one run.

    python bench/explain.py [--model models/model.joblib --meta models/model.json] [--rounds 200] [--quick]
    python bench/explain.py --background-rows 20   # what a smaller background buys

The model is the pipeline's default (``models/model.joblib`` + ``models/model.json``, as ``dvc repro`` builds them:
params.yaml's HistGradientBoosting, background of ``train.shap_background_rows`` rows from model.json). One
OpenMP thread everywhere. Measured, in rounds that alternate between the sides (a shared machine's drift hits every
side alike; medians and p99 over the rounds):

- in-process: the fitted pipeline's ``predict_proba`` on a one-row DataFrame (the baseline); ``Explainer.explain``
  of one row, and of a 100-row batch (per row);
- over HTTP (this server under uvicorn, 1 worker, ``SERVE_ENGINE=sklearn``, loopback, one client, sequential):
  ``POST /predict`` with one record; ``POST /explain`` with one record, and with 100 records (per row).

Targets (issue 18): one-row explanation over HTTP within 3x of a scikit-learn one-row prediction (reported against
both the in-process ``predict_proba`` and the HTTP ``/predict`` with the sklearn engine); 100-row batches at least
10x faster per row than one-row explanations. Results: bench/results/explain.json and docs/benchmarks.md.
Bounded: a fixed number of rounds; ~7 minutes on the 2 shared cores at load 20 (``--quick``: ~2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import Server, requests_of  # noqa: E402  (bench/serve.py: the uvicorn process, valid records)

BATCH = 100


def summary(seconds: list[float], rows: int = 1) -> dict[str, float]:
    """Median and p99 of per-call ``seconds`` -> ms per call and per row."""
    ordered = sorted(seconds)
    p50, p99 = statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {
        "calls": len(ordered),
        "rows": rows,
        "p50_ms": p50 * 1e3,
        "p99_ms": p99 * 1e3,
        "p50_ms_per_row": p50 * 1e3 / rows,
    }


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def post(client: httpx.Client, path: str, body: bytes) -> Callable[[], None]:
    def call() -> None:
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        if r.status_code != 200:
            raise SystemExit(f"{path}: {r.status_code} {r.text[:500]}")

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "model.joblib")
    parser.add_argument("--meta", type=Path, help="its model.json (default: next to it)")
    parser.add_argument("--rounds", type=int, default=200, help="rounds of one-row calls (batches: a tenth)")
    parser.add_argument(
        "--background-rows",
        type=int,
        help="explain against the first N of model.json's background rows (a copy of model.json, served too): "
        "what a smaller train.shap_background_rows buys",
    )
    parser.add_argument("--quick", action="store_true", help="60 rounds (a smoke run; p99 is noisier)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "explain.json")
    args = parser.parse_args()
    args.meta = args.meta or args.model.with_name("model.json")
    if not args.model.exists() or not args.meta.exists():
        raise SystemExit(f"{args.model} / {args.meta} not found: run `dvc repro` first")
    rounds = 60 if args.quick else args.rounds
    batch_rounds = max(5, rounds // 10)

    import pandas as pd
    from threadpoolctl import threadpool_limits

    from lifecycle.artifact import ModelMetadata, load_model
    from lifecycle.modeling.explain import Explainer, background_frame

    threadpool_limits(1)  # the server runs with OMP_NUM_THREADS=1
    meta = ModelMetadata.read(args.meta)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    if args.background_rows and meta.explainer:
        background = meta.explainer.background[: args.background_rows]
        meta = meta.model_copy(update={"explainer": meta.explainer.model_copy(update={"background": background})})
        args.meta = log_dir / "model.json"
        meta.write(args.meta)
    schema = meta.training_schema
    pipeline = load_model(args.model, meta, source=args.meta)
    started = time.perf_counter()
    explainer = Explainer(
        pipeline, background_frame(meta.explainer.background if meta.explainer else [], schema), schema
    )
    build_s = time.perf_counter() - started
    records = requests_of(args.meta, rounds + BATCH)
    ones = [pd.DataFrame.from_records([r], columns=schema.features) for r in records[:rounds]]
    batch = pd.DataFrame.from_records(records[:BATCH], columns=schema.features)
    one_bodies = [json.dumps({"records": [r]}).encode() for r in records[:rounds]]
    batch_body = json.dumps({"records": records[:BATCH]}).encode()
    print(
        f"model {meta.model.family} ({explainer.method}, {explainer.output_space}); explainer built in "
        f"{build_s:.2f} s on {len(explainer.background)} background rows",
        flush=True,
    )

    env = {
        "SERVE_ENGINE": "sklearn",
        "SERVE_MODEL_PATH": str(args.model),
        "SERVE_META_PATH": str(args.meta),
        "SERVE_ONNX_PATH": str(args.model.with_suffix(".onnx")),
        "SERVE_PREDICTION_LOG_DIR": str(log_dir / "predictions"),
        "SERVE_LOG_LEVEL": "warning",
    }
    server = Server("serve-sklearn", [sys.executable, "-m", "lifecycle.serve"], env, log_dir)
    times: dict[str, list[float]] = {
        k: [] for k in ("predict_in_process", "explain_in_process", "predict_http", "explain_http")
    }
    batch_times: dict[str, list[float]] = {"explain_in_process": [], "explain_http": []}
    try:
        server.wait()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for i in range(10):  # warm-up: first calls import and allocate
                pipeline.predict_proba(ones[i])
                explainer.explain(ones[i])
                post(client, "/predict", one_bodies[i])()
                post(client, "/explain", one_bodies[i])()
            post(client, "/explain", batch_body)()
            for i in range(rounds):
                times["predict_in_process"].append(timed(lambda i=i: pipeline.predict_proba(ones[i])))
                times["explain_in_process"].append(timed(lambda i=i: explainer.explain(ones[i])))
                times["predict_http"].append(timed(post(client, "/predict", one_bodies[i])))
                times["explain_http"].append(timed(post(client, "/explain", one_bodies[i])))
                if i % 10 == 0 and len(batch_times["explain_http"]) < batch_rounds:
                    batch_times["explain_in_process"].append(timed(lambda: explainer.explain(batch)))
                    batch_times["explain_http"].append(timed(post(client, "/explain", batch_body)))
            rss_mb = server.rss_mb()
    finally:
        server.stop()

    one = {k: summary(v) for k, v in times.items()}
    many = {k: summary(v, BATCH) for k, v in batch_times.items()}
    base, base_http = one["predict_in_process"]["p50_ms"], one["predict_http"]["p50_ms"]
    ratios = {
        "explain_http_vs_predict_in_process": one["explain_http"]["p50_ms"] / base,
        "explain_http_vs_predict_http": one["explain_http"]["p50_ms"] / base_http,
        "explain_in_process_vs_predict_in_process": one["explain_in_process"]["p50_ms"] / base,
        "explain_http_p99_vs_predict_http_p99": one["explain_http"]["p99_ms"] / one["predict_http"]["p99_ms"],
        "batch_speedup_per_row_in_process": one["explain_in_process"]["p50_ms"]
        / many["explain_in_process"]["p50_ms_per_row"],
        "batch_speedup_per_row_http": one["explain_http"]["p50_ms"] / many["explain_http"]["p50_ms_per_row"],
    }
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg": os.getloadavg(),
        },
        "model": {
            "family": meta.model.family,
            "sha256": meta.version,
            "method": explainer.method,
            "output_space": explainer.output_space,
            "background_rows": len(explainer.background),
            "explainer_build_s": build_s,
        },
        "rounds": rounds,
        "one_row": one,
        f"batch_{BATCH}": many,
        "ratios": ratios,
        "server_rss_mb": rss_mb,
    }
    print(f"\n{'one row':<22} {'p50 ms':>9} {'p99 ms':>9}")
    for name, row in one.items():
        print(f"{name:<22} {row['p50_ms']:9.2f} {row['p99_ms']:9.2f}")
    for name, row in many.items():
        print(f"{name} x{BATCH:<6} {row['p50_ms']:9.2f} ms per batch, {row['p50_ms_per_row']:.3f} ms per row")
    print("\nratios (targets: explain over HTTP <= 3x a scikit-learn one-row prediction; batches >= 10x per row)")
    for name, value in ratios.items():
        print(f"  {name}: {value:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}; server log in {server.log}")


if __name__ == "__main__":
    main()
