"""Benchmark: the ONNX engine vs scikit-learn in one process, single rows and batches, measured in one run.

    python bench/onnx_latency.py [--rows 20000] [--models hist_gradient_boosting random_forest logistic_regression]

For each model family (params.yaml hyperparameters, trained on ``--rows`` telemetry rows): single-row latency of
(a) scikit-learn as a server calls it (one dict -> one-row DataFrame -> ``lifecycle.artifact.predict``, the one
scikit-learn prediction path), limited to one OpenMP thread (as the server runs it) and to two,
(b) the bare ``pipeline.predict`` on a prebuilt one-row DataFrame (the issue's ~5.7 ms figure), and (c)
``OnnxPredictor.run_one(dict)`` (tensors built from the dict, no DataFrame) and its ``session.run`` alone; then
batches of 1..10000 rows through both engines on equal threads (scikit-learn's OpenMP and onnxruntime's intra-op
pool both limited to 1, then both to 2). Prints median and p99 and the ratios sklearn/onnx, always between equal
thread counts. Both sides run back to back on the same machine, so the ratios hold when absolute times drift. No HTTP here: bench/serve.py measures the server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from lifecycle.artifact import predict
from lifecycle.config import load_params
from lifecycle.data import telemetry
from lifecycle.modeling.estimators import NEEDS_SCALING, build_model
from lifecycle.modeling.features import build_preprocessor
from lifecycle.onnx.convert import convert
from lifecycle.onnx.runtime import OnnxPredictor
from lifecycle.schema import Schema, coerce_frame, infer_schema

BATCHES = (1, 10, 100, 1000, 10000)


def timings(fn: Callable[[], Any], repeats: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
    }


def records(df: pd.DataFrame, schema: Schema, n: int) -> list[dict[str, Any]]:
    """What a validated request body holds: plain Python values, None for missing."""
    rows = df[schema.features].head(n)
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def frame(recs: list[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Validated records as the one-row (or n-row) DataFrame scikit-learn needs: float numerics, missing = NaN."""
    df = pd.DataFrame.from_records(recs, columns=schema.features).astype(dict.fromkeys(schema.numeric, np.float64))
    for name in schema.categorical:
        df[name] = df[name].where(df[name].notna(), np.nan)
    return df


def bench_model(name: str, rows: int, single_repeats: int, params_path: str) -> dict[str, Any]:
    params = load_params(params_path)
    train_cfg = params.train.model_copy(update={"model": name})
    raw = telemetry.generate(rows=rows + 5000, version="v1", seed=params.base.seed)
    schema = infer_schema(raw, telemetry.TARGET, "classification")
    df = coerce_frame(raw, schema)
    train, test = df.iloc[:rows], df.iloc[rows:]
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale_numeric=name in NEEDS_SCALING)),
            ("model", build_model(train_cfg, schema.task, params.base.seed)),
        ]
    ).fit(train[schema.features], train[schema.target])
    model = convert(pipeline, schema, params.export.opset)
    onnx1 = OnnxPredictor.from_bytes(model, schema, threads=1)
    onnx2 = OnnxPredictor.from_bytes(model, schema, threads=2)
    recs = records(test, schema, 200)
    one_frame = test[schema.features].head(1)

    it = iter(range(10**9))

    def pick() -> dict[str, Any]:
        return recs[next(it) % len(recs)]

    result: dict[str, Any] = {"model": name, "train_rows": rows, "onnx_bytes": len(model)}

    def sk_one() -> tuple[np.ndarray, np.ndarray | None]:
        return predict(pipeline, frame([pick()], schema), schema.task)

    with threadpool_limits(limits=2):
        sk_single = timings(sk_one, max(50, single_repeats // 10))
    with threadpool_limits(limits=1):  # what the server does: OpenMP threads cost more than they save on one row
        sk_bare = timings(lambda: pipeline.predict(one_frame), max(50, single_repeats // 10))
        sk_single_1t = timings(sk_one, max(50, single_repeats // 10))
    onnx_single = timings(lambda: onnx1.run_one(pick()), single_repeats)
    feed = onnx1.feed_one(recs[0])
    outputs = [o.name for o in onnx1.session.get_outputs()]
    onnx_session = timings(lambda: onnx1.session.run(outputs, feed), single_repeats)
    result["single"] = {
        "sklearn_from_dict_2_threads": summary(sk_single),
        "sklearn_from_dict_1_thread": summary(sk_single_1t),
        "sklearn_bare_predict": summary(sk_bare),
        "onnx_from_dict": summary(onnx_single),
        "onnx_session_run_only": summary(onnx_session),
    }
    onnx_median = result["single"]["onnx_from_dict"]["median_ms"]
    # onnx1 runs one thread: the like-for-like ratio is against one-thread scikit-learn
    result["single"]["ratio_median_1_thread"] = (
        result["single"]["sklearn_from_dict_1_thread"]["median_ms"] / onnx_median
    )
    batches = []
    for n in BATCHES:
        X = pd.concat([test[schema.features]] * (1 + n // len(test)), ignore_index=True).head(n)
        repeats = max(3, min(100, 5000 // n))
        R = records(X, schema, n)
        with threadpool_limits(limits=1):
            s1 = statistics.median(timings(lambda X=X: predict(pipeline, X, schema.task), repeats, warmup=2))
            o1 = statistics.median(timings(lambda X=X: onnx1.run(X), repeats, warmup=2))
            r1 = statistics.median(timings(lambda R=R: onnx1.run(R), repeats, warmup=2))
        with threadpool_limits(limits=2):
            s2 = statistics.median(timings(lambda X=X: predict(pipeline, X, schema.task), repeats, warmup=2))
            o2 = statistics.median(timings(lambda X=X: onnx2.run(X), repeats, warmup=2))
        batches.append(
            {
                "rows": n,
                "sklearn_1t_ms": s1 * 1e3,
                "onnx_1t_ms": o1 * 1e3,
                "onnx_1t_dicts_ms": r1 * 1e3,
                "sklearn_2t_ms": s2 * 1e3,
                "onnx_2t_ms": o2 * 1e3,
                "ratio_1t": s1 / o1,
                "ratio_2t": s2 / o2,
            }
        )
    result["batches"] = batches
    labels, proba = onnx1.run(test[schema.features])
    expected_labels, expected = predict(pipeline, test[schema.features], schema.task)
    result["parity"] = {
        "rows": len(test),
        "label_agreement": float(np.mean(labels == expected_labels)),
        "max_abs_diff": float(np.abs(proba - expected).max()),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000, help="telemetry rows to train on")
    parser.add_argument(
        "--models", nargs="+", default=["hist_gradient_boosting", "random_forest", "logistic_regression"]
    )
    parser.add_argument("--single-repeats", type=int, default=3000)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--params", default="params.yaml", help="hyperparameters (train.*) and export.opset")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    results = []
    for name in args.models:
        r = bench_model(name, args.rows, args.single_repeats, args.params)
        results.append(r)
        single = r["single"]
        print(f"\n== {name} (trained on {r['train_rows']} rows; model.onnx {r['onnx_bytes'] / 1e6:.2f} MB)")
        print(f"{'single row':32} {'median ms':>10} {'p99 ms':>10}")
        for key in (
            "sklearn_from_dict_2_threads",
            "sklearn_from_dict_1_thread",
            "sklearn_bare_predict",
            "onnx_from_dict",
            "onnx_session_run_only",
        ):
            print(f"{key:32} {single[key]['median_ms']:10.3f} {single[key]['p99_ms']:10.3f}")
        print(f"ratio sklearn/onnx, both 1 thread (from dict, median): {single['ratio_median_1_thread']:.0f}x")
        print("batches (DataFrame in; 'dicts' = the same rows as a list of dicts); ratios between equal threads")
        print(
            f"{'rows':>6} {'sk 1t ms':>9} {'onnx 1t ms':>11} {'dicts 1t ms':>12} {'sk/onnx 1t':>11}"
            f" {'sk 2t ms':>9} {'onnx 2t ms':>11} {'sk/onnx 2t':>11}"
        )
        for b in r["batches"]:
            print(
                f"{b['rows']:6d} {b['sklearn_1t_ms']:9.2f} {b['onnx_1t_ms']:11.2f} {b['onnx_1t_dicts_ms']:12.2f}"
                f" {b['ratio_1t']:10.1f}x {b['sklearn_2t_ms']:9.2f} {b['onnx_2t_ms']:11.2f} {b['ratio_2t']:10.1f}x"
            )
        p = r["parity"]
        print(f"parity on {p['rows']} rows: label agreement {p['label_agreement']}, max |diff| {p['max_abs_diff']:.2g}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
