"""Benchmark of batch scoring (lifecycle.batch): throughput against in-process ``model.predict`` on the
same in-memory frame, and peak memory with chunking.

    .venv/bin/python bench/score.py                       # 1M rows throughput + peak memory at 1M and 10M rows
    .venv/bin/python bench/score.py --rows 200000 --memory-rows 1000000   # quicker

Throughput: the model (params.yaml's train section, fitted on 20,000 v1 rows) predicts a 1M-row v2 frame held
in memory (the baseline, ``model.predict``), then the score code path scores the same rows from a Parquet file:
read by record batches, validated against data/contracts/telemetry.yaml (Great Expectations on the first chunk,
the contract's vectorized rules on every chunk), ``predict_proba``, written to Parquet. The ratio is scoring rows/s over
baseline rows/s (target >= 0.8).

Peak memory: each run is a fresh subprocess whose peak RSS (``ru_maxrss``) is reported, for chunked scoring and
for the naive way (read the whole file, predict, write). The memory runs use a small model
(``--memory-iters`` boosting iterations) so that 10M rows finish in minutes; memory does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lifecycle.batch import score_batch  # noqa: E402
from lifecycle.config import Params, Validate, load_params  # noqa: E402
from lifecycle.data import telemetry as tel  # noqa: E402
from lifecycle.data.ingest import prepare  # noqa: E402
from lifecycle.errors import ParamsError  # noqa: E402
from lifecycle.io import write_json  # noqa: E402
from lifecycle.modeling.pipeline import fit  # noqa: E402
from lifecycle.quality.contract import load_contract  # noqa: E402

CONTRACT = ROOT / "data" / "contracts" / "telemetry.yaml"  # the data contract scoring validates against
PART = 1_000_000  # rows generated per part of a large file


def stable_params() -> Params:
    """params.yaml, loaded once (retrying while someone saves an edit), so every run below uses the same values."""
    for _ in range(10):
        try:
            return load_params(ROOT / "params.yaml")
        except ParamsError:
            time.sleep(3)
    return load_params(ROOT / "params.yaml")


def train_model(out: Path, params: Params, max_iter: int | None) -> None:
    if max_iter is not None:
        hgb = params.train.hist_gradient_boosting.model_copy(update={"max_iter": max_iter})
        params = params.model_copy(update={"train": params.train.model_copy(update={"hist_gradient_boosting": hgb})})
    df, schema = prepare(tel.generate(20_000, "v1", 42), params.ingest, "telemetry")
    model, _ = fit(df, schema, params)
    joblib.dump(model, out / "model.joblib")
    write_json(out / "schema.json", schema.to_dict())


def write_batch(path: Path, rows: int, row_group: int | None = None) -> None:
    """A v2 batch of ``rows`` rows (with the simulator's repeated rows) as one Parquet file, generated 1M rows at a
    time (bounded memory); row groups of ``row_group`` rows (None: pyarrow's default). bench/scale.py uses it too."""
    writer = None
    done, part = 0, 0
    while done < rows:
        n = min(PART, rows - done)
        table = pa.Table.from_pandas(
            tel.generate(n, "v2", 1000 + part).drop(columns=[tel.TARGET]), preserve_index=False
        )
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=row_group)
        done, part = done + n, part + 1
    writer.close()


def child(args: argparse.Namespace) -> None:
    """One measured run in a fresh process: prints seconds and peak RSS as JSON."""
    import pandas as pd

    from lifecycle.schema import read_schema

    d = Path(args.dir)
    model = joblib.load(d / args.model)
    schema = read_schema(d / "schema.json")
    validate = Validate(**json.loads(args.validate_json))
    started = time.perf_counter()
    if args.child == "chunked":
        summary = score_batch(
            [d / args.file], model, schema, "bench", d / "out.parquet", d / "q.parquet",
            chunk_rows=args.chunk_rows, min_rows=1, validate=validate, contract=load_contract(CONTRACT),
        )  # fmt: skip
        rows = summary.rows_scored
    else:  # naive: whole file in memory
        df = pd.read_parquet(d / args.file)
        pred = model.predict(df[schema.features])
        df.assign(prediction=pred).to_parquet(d / "naive.parquet")
        rows = len(df)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb}))


def measure(d: Path, mode: str, file: str, model: str, chunk_rows: int, validate: Validate) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--dir", str(d), "--file", file, "--model", model,
           "--chunk-rows", str(chunk_rows), "--validate-json", validate.model_dump_json()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"measured run failed ({mode}, {file}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the throughput run")
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--memory-iters", type=int, default=20, help="boosting iterations of the memory-run model")
    parser.add_argument("--chunk-rows", type=int, default=None, help="default: params.yaml score.chunk_rows")
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads of predict (default: all)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved throughput rounds (best of)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the whole-file memory runs")
    parser.add_argument("--child", choices=["chunked", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="model.joblib", help=argparse.SUPPRESS)
    parser.add_argument("--validate-json", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    params = stable_params()
    chunk_rows = args.chunk_rows or params.score.chunk_rows
    print(f"machine: {platform.machine()}, {platform.system()}, python {platform.python_version()}, "
          f"cores: {len(__import__('os').sched_getaffinity(0))}; chunk_rows={chunk_rows}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        d = Path(tmp)
        train_model(d, params, None)
        (d / "full").mkdir()
        write_batch(d / "batch.parquet", args.rows)
        # --- throughput: in-process predict on the in-memory frame vs the score path from the file
        import pandas as pd

        from lifecycle.batch import validate_chunk
        from lifecycle.schema import read_schema

        model = joblib.load(d / "model.joblib")
        schema = read_schema(d / "schema.json")
        frame = validate_chunk(pd.read_parquet(d / "batch.parquet"), schema).clean[schema.features]
        base_s, score_s = math.inf, math.inf
        contract = load_contract(CONTRACT)
        with threadpool_limits(limits=args.threads):  # None: the default (all cores)
            for _ in range(args.rounds):  # interleaved, best of N: the machine is shared
                started = time.perf_counter()
                model.predict(frame)
                base_s = min(base_s, time.perf_counter() - started)
                started = time.perf_counter()
                summary = score_batch(
                    [d / "batch.parquet"], model, schema, "bench", d / "out.parquet", d / "q.parquet",
                    chunk_rows=chunk_rows, min_rows=1, validate=params.validate, contract=contract,
                )  # fmt: skip
                score_s = min(score_s, time.perf_counter() - started)
        del frame
        base_rps, score_rps = args.rows / base_s, summary.rows_read / score_s
        threads = args.threads or "all"
        print(f"throughput, {args.rows:,} rows, model {params.train.model} (params.yaml), {threads} OpenMP threads, "
              f"best of {args.rounds}:")  # fmt: skip
        print(f"  in-process model.predict on the in-memory frame: {base_s:8.2f} s  {base_rps:12,.0f} rows/s")
        print(f"  score (read Parquet + validate + predict + write): {score_s:6.2f} s  {score_rps:12,.0f} rows/s")
        print(f"  ratio score / predict: {score_rps / base_rps:.2f}x (target >= 0.8x)")

        # --- peak memory with chunking, in fresh processes
        train_model(d / "full", params, args.memory_iters)
        (d / "full" / "model.joblib").rename(d / "small.joblib")
        (d / "full" / "schema.json").replace(d / "schema.json")
        for rows in args.memory_rows:
            name = f"mem{rows}.parquet"
            write_batch(d / name, rows)
            size_mb = (d / name).stat().st_size / 2**20
            chunked = measure(d, "chunked", name, "small.joblib", chunk_rows, params.validate)
            line = (f"peak memory, {rows:,} rows ({size_mb:.0f} MB Parquet), model with {args.memory_iters} iterations:"
                    f" chunked {chunked['peak_mb']:.0f} MB ({chunked['seconds']:.0f} s)")  # fmt: skip
            if not args.skip_naive:
                naive = measure(d, "naive", name, "small.joblib", chunk_rows, params.validate)
                line += f"; whole file in memory {naive['peak_mb']:.0f} MB ({naive['seconds']:.0f} s)"
            print(line, flush=True)
            (d / name).unlink()


if __name__ == "__main__":
    main()
