"""Benchmark of score + monitor on Dask (issue 17): the dask engine on a 2-worker LocalCluster against the pandas
engine, and the dask engine's cost per row as the batch grows.

    .venv/bin/python bench/scale.py                                  # 10M rows both engines; dask at 1M, 10M, 50M
    .venv/bin/python bench/scale.py --compare-rows 1000000 --sizes 1000000 2000000   # quicker

Each measured run is a fresh process doing what the score and monitor stages do for a v2 telemetry batch (one
Parquet file with row groups of ``score.chunk_rows`` rows, about 4% repeated rows): score it (validation with
data/contracts/telemetry.yaml, rows repeated anywhere in the batch quarantined, prediction, two Parquet outputs),
then monitor it (drift of every feature and of the predictions against a 20,000-row v1 reference). The pandas
engine does it in its own process (``lifecycle.batch.score_batch``, then ``lifecycle.monitoring.analysis.analyse``
on the scored file read whole, as the monitor stage does); the dask engine starts a LocalCluster of
``--workers`` processes x 1 thread (``lifecycle.cluster.dask_client``) and runs ``lifecycle.batch_dask.score_on_dask``
and ``lifecycle.monitoring.dask_analysis.analyse_on_dask``. Reported: seconds (cluster start included), rows/s,
and peak RSS (``ru_maxrss``) of the client process and of each worker process.

The model is params.yaml's HistGradientBoosting with ``--iters`` boosting iterations (memory and the ratios do not
depend on it much; fewer iterations keep 50M rows in minutes). Results: docs/benchmarks.md, "Scale".
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lifecycle.config import Dask, load_params  # noqa: E402
from lifecycle.data import telemetry as tel  # noqa: E402
from lifecycle.data.ingest import prepare  # noqa: E402
from lifecycle.io import write_json, write_table  # noqa: E402
from lifecycle.modeling.pipeline import fit  # noqa: E402
from score import write_batch  # noqa: E402  (bench/score.py: python puts this script's folder first on sys.path)

CONTRACT = ROOT / "data" / "contracts" / "telemetry.yaml"


def prepare_dir(d: Path, iters: int) -> None:
    params = load_params(ROOT / "params.yaml")
    hgb = params.train.hist_gradient_boosting.model_copy(update={"max_iter": iters})
    params = params.model_copy(update={"train": params.train.model_copy(update={"hist_gradient_boosting": hgb})})
    df, schema = prepare(tel.generate(20_000, "v1", 42), params.ingest, "telemetry")
    model, _ = fit(df, schema, params)
    joblib.dump(model, d / "model.joblib")
    write_table(df, d / "train.parquet")
    write_json(d / "schema.json", schema.to_dict())


def child(args: argparse.Namespace) -> None:
    """One measured run in a fresh process: prints JSON with seconds, rows and peak RSS (MB) per process."""
    import pandas as pd

    from lifecycle.artifact import predict
    from lifecycle.monitoring.feedback import read_feedback
    from lifecycle.predictions import PREDICTION, read_records
    from lifecycle.quality.contract import load_contract
    from lifecycle.schema import read_schema

    d = Path(args.dir)
    params = load_params(ROOT / "params.yaml")
    model = joblib.load(d / "model.joblib")
    schema = read_schema(d / "schema.json")
    contract = load_contract(CONTRACT)
    reference = pd.read_parquet(d / "train.parquet")
    reference_pred = pd.Series(predict(model, reference[schema.features], schema.task)[0], name=PREDICTION)
    labels = read_feedback(d / "no-feedback", schema)
    knobs = {
        "chunk_rows": params.score.chunk_rows, "min_rows": 1, "validate": params.validate,
        "read_options": {}, "normalize": True, "contract": contract,
    }  # fmt: skip
    out, q = d / f"scored-{args.child}.parquet", d / f"q-{args.child}.parquet"
    started = time.perf_counter()
    workers: list[float] = []
    if args.child == "pandas":
        from lifecycle.batch import score_batch
        from lifecycle.monitoring.analysis import analyse

        summary = score_batch([d / args.file], model, schema, "bench", out, q, **knobs)
        scored_at = time.perf_counter()
        result, _ = analyse(read_records(out), reference, reference_pred, schema, params.monitor, labels, {})
    else:
        from lifecycle.batch_dask import score_on_dask
        from lifecycle.cluster import dask_client
        from lifecycle.monitoring.dask_analysis import analyse_on_dask

        with dask_client(Dask(scheduler=None, n_workers=args.workers, threads_per_worker=1)) as client:
            summary = score_on_dask(client, [d / args.file], model, schema, "bench", out, q, **knobs)
            scored_at = time.perf_counter()
            result, _, _ = analyse_on_dask(
                client, str(out), reference, reference_pred, schema, params.monitor, labels, {},
                partition_rows=params.score.chunk_rows,
            )  # fmt: skip
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            workers = sorted(peaks.values())
    seconds = time.perf_counter() - started
    print(json.dumps({
        "engine": args.child, "rows": summary.rows_read, "seconds": seconds, "score_s": scored_at - started,
        "monitor_s": seconds - (scored_at - started), "client_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_mb": workers, "quarantined": summary.rows_quarantined, "drifted": result["drifted_features"],
    }))  # fmt: skip


def measure(d: Path, engine: str, file: str, workers: int) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, "--dir", str(d), "--file", file, "--workers", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"measured run failed ({engine}, {file}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare-rows", type=int, default=10_000_000, help="rows of the pandas-vs-dask run (0: skip)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000, 50_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iters", type=int, default=30, help="boosting iterations of the benchmark's model")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    parser.add_argument("--child", choices=["pandas", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    params = load_params(ROOT / "params.yaml")
    results: dict = {"machine": f"{platform.machine()}, Python {platform.python_version()}", "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        d = Path(tmp)
        prepare_dir(d, args.iters)
        for rows in sorted({*args.sizes, *([args.compare_rows] if args.compare_rows else [])}):
            file = f"batch-{rows}.parquet"
            write_batch(d / file, rows, params.score.chunk_rows)
            engines = ["pandas", "dask"] if rows == args.compare_rows else []
            engines += ["dask"] if rows in args.sizes and "dask" not in engines else []
            for engine in engines:
                results["runs"].append(measure(d, engine, file, args.workers))
            (d / file).unlink()
            for p in d.glob("scored-*.parquet"):
                p.unlink()
    runs = results["runs"]
    if args.compare_rows:
        by = {r["engine"]: r for r in runs if r["rows"] == args.compare_rows}
        ratio = (by["dask"]["rows"] / by["dask"]["seconds"]) / (by["pandas"]["rows"] / by["pandas"]["seconds"])
        results["throughput_ratio_dask_over_pandas"] = ratio
        print(f"throughput dask/pandas at {args.compare_rows:,} rows: {ratio:.2f}x (target >= 0.9)")
    dask_runs = sorted((r for r in runs if r["engine"] == "dask" and r["rows"] in args.sizes), key=lambda r: r["rows"])
    if len(dask_runs) >= 2:
        per_row = [r["seconds"] / r["rows"] for r in dask_runs]
        results["time_per_row_ratio_largest_over_smallest"] = per_row[-1] / per_row[0]
        print(f"dask time per row, {dask_runs[-1]['rows']:,} vs {dask_runs[0]['rows']:,} rows: "
              f"{per_row[-1] / per_row[0]:.2f}x (target <= 1.3)")  # fmt: skip
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
