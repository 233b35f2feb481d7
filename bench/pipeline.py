"""Benchmark: the DVC pipeline vs the same compute in one process, in memory, measured in one run.

    python bench/pipeline.py [--rows 100000 1000000] [--noop-repeats 5]

For each size: (a) `dvc repro evaluate` from scratch in a fresh scratch git repository (ingest, validate, split,
train, evaluate: one process per stage, Parquet files between them, DVC hashing and locking), and (b) a single
Python process that does the same compute with the same functions and no files: generate, check, split, fit,
evaluate (metrics + permutation importance). Then the no-op: `dvc repro` on the complete, up-to-date pipeline.
Prints the ratio dvc/baseline per size. Both sides run on the same machine back to back, so the ratio holds
even when absolute times drift.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "tmp", "cache", "*.joblib", "*.parquet",
    "*.onnx", "reports", "bench", "tests",
)  # fmt: skip


def sh(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def scratch_repo(rows: int, workdir: Path) -> Path:
    repo = workdir / f"repo-{rows}"
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    (repo / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ingest"]["rows"] = rows
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "bench"], repo)
    return repo


def baseline(rows: int) -> dict[str, float]:
    """The same compute in one process, in memory (run in a child process by the benchmark)."""

    from lifecycle.artifact import predict
    from lifecycle.config import load_params
    from lifecycle.data.ingest import load_dataset
    from lifecycle.data.split import split
    from lifecycle.modeling.evaluation import importances
    from lifecycle.modeling.metrics import compute_metrics
    from lifecycle.modeling.pipeline import fit
    from lifecycle.quality.gx import check_frame

    times: dict[str, float] = {}
    t = time.perf_counter()
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(update={"ingest": params.ingest.model_copy(update={"rows": rows})})
    df, schema = load_dataset(params.ingest, params.base.seed)
    times["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    clean = check_frame(df, schema, params)
    times["check"] = time.perf_counter() - t
    t = time.perf_counter()
    train_df, test_df = split(clean, schema, params.split, params.base.seed)
    times["split"] = time.perf_counter() - t
    t = time.perf_counter()
    model, _ = fit(train_df, schema, params)
    times["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    X, y = test_df[schema.features], test_df[schema.target]
    y_pred, proba = predict(model, X, schema.task)
    compute_metrics(schema.task, y, y_pred, proba, schema.classes)
    importances(model, X, y, params.evaluate, params.base.seed)
    times["evaluate"] = time.perf_counter() - t
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--noop-repeats", type=int, default=5)
    parser.add_argument("--baseline-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_only:
        print(json.dumps(baseline(args.baseline_only)))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for rows in args.rows:
            repo = scratch_repo(rows, Path(tmp))
            dvc_s = sh(["dvc", "repro", "evaluate"], repo)
            started = time.perf_counter()
            env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
            out = subprocess.run(
                [sys.executable, __file__, "--baseline-only", str(rows)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            base_s = time.perf_counter() - started
            steps = json.loads(out.stdout.strip().splitlines()[-1])
            results.append((rows, dvc_s, base_s))
            print(
                f"rows={rows:>9,}  dvc repro (ingest..evaluate) {dvc_s:7.1f} s   single process {base_s:7.1f} s   "
                f"ratio {dvc_s / base_s:5.2f}x   (baseline steps: "
                + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
                + ")",
                flush=True,
            )
        repo = Path(tmp) / f"repo-{args.rows[0]}"
        sh(["dvc", "repro"], repo)  # the rest of the DAG, so that every stage is up to date
        noops = [sh(["dvc", "repro"], repo) for _ in range(args.noop_repeats)]
        print(f"no-op dvc repro (all stages up to date): median {statistics.median(noops):.2f} s of {noops}")


if __name__ == "__main__":
    main()
