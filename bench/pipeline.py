"""Benchmark: the DVC pipeline stage by stage (wall time, peak RSS), against its fit and a single process.

    python bench/pipeline.py [--rows 100000 1000000] [--noop-repeats 5] [--no-baseline]
    python bench/pipeline.py --rows 10000000 --no-baseline --noop-repeats 0     # issue 20's 10M-row run

For each size, in a fresh scratch git repository (a copy of this checkout with ``ingest.rows`` set):

1. ``dvc repro evaluate`` then ``dvc repro promote`` from scratch (ingest, validate, split, train, evaluate, then
   export, promote: one process per stage, Parquet files between them, DVC hashing and locking). Every stage's
   ``python`` is a shim that times the stage's process from outside (interpreter start, imports, work, exit) and
   reads its peak resident set size from ``wait4`` (the process and any child it waited for), so the table shows
   each stage's wall time and peak RSS; "dvc" is the rest (DVC's own start-up, hashing, locking). The fit time is
   the train stage's own log line (``fitted in ... s``, :func:`lifecycle.modeling.pipeline.fit_with_search`), so
   whole pipeline / fit is a ratio measured in one run.
2. Unless ``--no-baseline``: one child Python process doing the compute of ``ingest..evaluate`` with the same
   functions in memory (generate, check, split, fit, the evaluate stage's `evaluate`: metrics, plot data, figures,
   permutation importance, the SHAP view) and no files; the ratio
   ``dvc repro evaluate`` / single process is issue 2's and issue 20's 100k-row target.

Then the no-op: ``dvc repro`` on the complete, up-to-date pipeline, ``--noop-repeats`` times (median).
Both sides run on the same machine back to back, so the ratios hold when absolute times drift.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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
STAGES_BEFORE_EVALUATE = ("ingest", "validate", "split", "train", "evaluate")
FITTED = re.compile(r"fitted in ([0-9.]+) s")
STAGE = re.compile(r"-m lifecycle\.stages\.(\w+)")

# The `python` that dvc.yaml's commands find first on PATH: runs the real interpreter as a child, then appends
# {stage, wall_s, peak_rss_mb, rc} to $BENCH_STAGE_LOG; with $BENCH_PROFILE_DIR, runs each stage under cProfile
# (<dir>/<stage>.prof, read with `python -m pstats`). `-S -E`: no site packages, no PYTHON* variables, so the
# shim's own start-up is ~10 ms. ru_maxrss of wait4 is in KiB on Linux.
SHIM = """#!{python} -SE
import json, os, re, sys, time
real, log = {python!r}, os.environ["BENCH_STAGE_LOG"]
stage = re.search(r"-m lifecycle\\.stages\\.(\\w+)", " ".join(sys.argv))
args = sys.argv[1:]
if stage and os.environ.get("BENCH_PROFILE_DIR"):
    args = ["-m", "cProfile", "-o", os.path.join(os.environ["BENCH_PROFILE_DIR"], stage.group(1) + ".prof"), *args]
started = time.perf_counter()
pid = os.posix_spawn(real, [real, *args], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(log, "a") as fh:
    fh.write(json.dumps({{"stage": stage.group(1) if stage else " ".join(sys.argv[1:3]), "wall_s": wall,
                         "peak_rss_mb": usage.ru_maxrss / 1024, "rc": os.waitstatus_to_exitcode(status)}}) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def env_with(path_first: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of the benchmark's children: this venv's ``bin`` on PATH (after ``path_first``), plus
    ``extra``; ``OMP_NUM_THREADS`` as ``--threads`` sets it (main)."""
    dirs = [str(path_first)] if path_first else []
    return {**os.environ, "PATH": os.pathsep.join([*dirs, str(BIN), os.environ["PATH"]]), **extra}


def sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``cmd`` in ``cwd``; return (wall seconds, stdout + stderr). Exits with the output when it fails."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env or env_with(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout + proc.stderr


def scratch_repo(rows: int, workdir: Path, threads: int | None = None) -> Path:
    """A copy of this checkout in ``workdir`` as a fresh git repository, with ``ingest.rows`` = ``rows`` (and
    ``train.threads`` = ``threads`` when given); no dvc.lock, so every stage runs."""
    repo = workdir / f"repo-{rows}"
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    (repo / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ingest"]["rows"] = rows
    if threads is not None:
        params["train"]["threads"] = threads
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "bench"], repo)
    return repo


def shim_dir(workdir: Path) -> Path:
    """A directory holding the timing ``python`` shim (see :data:`SHIM`)."""
    d = workdir / "shim"
    d.mkdir(exist_ok=True)
    shim = d / "python"
    shim.write_text(SHIM.format(python=str(BIN / "python")))
    shim.chmod(0o755)
    return d


def run_pipeline(repo: Path, shim: Path, profile: Path | None = None) -> dict:
    """``dvc repro evaluate`` then ``dvc repro promote`` with the shim first on PATH; per-stage records. With
    ``profile``: each stage's cProfile in ``profile/<rows>/<stage>.prof``."""
    log = repo.parent / f"stages-{repo.name}.jsonl"
    log.unlink(missing_ok=True)
    extra = {}
    if profile is not None:
        (profile / repo.name).mkdir(parents=True, exist_ok=True)
        extra["BENCH_PROFILE_DIR"] = str((profile / repo.name).resolve())
    env = env_with(shim, BENCH_STAGE_LOG=str(log), **extra)
    to_evaluate, out1 = sh(["dvc", "repro", "evaluate"], repo, env)
    rest, _ = sh(["dvc", "repro", "promote"], repo, env)
    stages = [json.loads(line) for line in log.read_text().splitlines()]
    fitted = FITTED.findall(out1)
    return {
        "to_evaluate_s": to_evaluate,
        "whole_s": to_evaluate + rest,
        "fit_s": float(fitted[-1]) if fitted else float("nan"),
        "stages": stages,
        "evaluate_stages_s": sum(s["wall_s"] for s in stages if s["stage"] in STAGES_BEFORE_EVALUATE),
    }


def baseline(rows: int, threads: int | None = None) -> dict[str, float]:
    """The same compute in one process, in memory (run in a child process by the benchmark)."""

    from lifecycle.config import load_params
    from lifecycle.data.ingest import load_dataset
    from lifecycle.data.split import split
    from lifecycle.modeling.evaluation import evaluate
    from lifecycle.modeling.explain import background_frame
    from lifecycle.modeling.pipeline import background_sample, fit
    from lifecycle.quality.gx import check_frame

    times: dict[str, float] = {}
    t = time.perf_counter()
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(update={"ingest": params.ingest.model_copy(update={"rows": rows})})
    if threads is not None:
        params = params.model_copy(update={"train": params.train.model_copy(update={"threads": threads})})
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
    background = background_sample(train_df, schema, params.train.shap_background_rows, params.base.seed)
    evaluate(model, test_df, schema, params.evaluate, params.base.seed, background_frame(background, schema))
    times["evaluate"] = time.perf_counter() - t  # the evaluate stage's compute: metrics, plot data, figures, SHAP
    return times


def run_baseline(rows: int, threads: int | None = None) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--baseline-only", str(rows), *(["--threads", str(threads)] if threads else [])],
        env=env_with(),
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, json.loads(out.stdout.strip().splitlines()[-1])


def report(rows: int, run: dict) -> None:
    print(f"\nrows={rows:,}: per stage (wall time from outside the process, peak RSS of the process)")
    print(f"  {'stage':<10} {'wall s':>8} {'peak RSS MB':>12}")
    for s in run["stages"]:
        print(f"  {s['stage']:<10} {s['wall_s']:8.1f} {s['peak_rss_mb']:12.0f}")
    staged = sum(s["wall_s"] for s in run["stages"])
    print(f"  {'dvc':<10} {run['whole_s'] - staged:8.1f}             (DVC's start-up, hashing, locking: the rest)")
    print(f"  {'whole':<10} {run['whole_s']:8.1f} {max(s['peak_rss_mb'] for s in run['stages']):12.0f}")
    print(
        f"  fit (train stage's log) {run['fit_s']:.1f} s; whole pipeline / fit = {run['whole_s'] / run['fit_s']:.2f}x; "
        f"dvc repro evaluate {run['to_evaluate_s']:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--noop-repeats", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-process comparison")
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    parser.add_argument("--profile", type=Path, help="run each stage under cProfile; DIR/repo-<rows>/<stage>.prof")
    parser.add_argument(
        "--threads",
        type=int,
        help="train.threads and OMP_NUM_THREADS for both sides (default: params.yaml's, OpenMP's); 1 on a loaded "
        "machine, where OpenMP threads wait for each other at every barrier",
    )
    parser.add_argument("--baseline-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:  # every OpenMP user (predict in evaluate, export, score), not only the fit
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.baseline_only:
        print(json.dumps(baseline(args.baseline_only, args.threads)))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average at start {os.getloadavg()[0]:.1f}")  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        shim = shim_dir(Path(tmp))
        for rows in args.rows:
            repo = scratch_repo(rows, Path(tmp), args.threads)
            run = run_pipeline(repo, shim, args.profile) | {"rows": rows, "load_after": os.getloadavg()[0]}
            report(rows, run)
            if not args.no_baseline:
                base_s, steps = run_baseline(rows, args.threads)
                run |= {"baseline_s": base_s, "baseline_steps": steps}
                print(
                    f"  dvc repro evaluate {run['to_evaluate_s']:.1f} s vs single process {base_s:.1f} s: ratio "
                    f"{run['to_evaluate_s'] / base_s:.2f}x   (baseline steps: "
                    + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
                    + ")",
                    flush=True,
                )
            results.append(run)
            if rows != args.rows[0]:
                shutil.rmtree(repo)  # the large scratch repositories are GBs
        if args.noop_repeats:
            repo = Path(tmp) / f"repo-{args.rows[0]}"
            sh(["dvc", "repro"], repo)  # the rest of the DAG, so that every stage is up to date
            noops = [sh(["dvc", "repro"], repo)[0] for _ in range(args.noop_repeats)]
            print(f"\nno-op dvc repro (all stages up to date): median {statistics.median(noops):.2f} s of {noops}")
            results.append({"noop_s": noops})
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
