"""Benchmark: 4 queued DVC experiments on 2 workers (`dvc queue start -j 2`) vs the same 4 one after another.

    python bench/experiments.py [--rows 20000] [--threads 1] [--skip-workspace]

One scratch git repository is built and reproduced once (the baseline, committed), then copied so that every arm
starts from the same state with its own DVC cache (no arm can reuse another's run cache). The 4 experiments change
``train.hist_gradient_boosting.learning_rate`` (0.03, 0.06, 0.15, 0.25), so each reruns train -> evaluate -> export
-> promote -> score -> monitor; the data stages are unchanged and skipped.

Arms, back to back in one run:
  sequential-queue   the 4 queued, `dvc queue start -j 1` (the same machinery, one worker)
  parallel-queue     the 4 queued, `dvc queue start -j 2`
  sequential-exp     4 x `dvc exp run -S ...` in the workspace, one after another (what a user types)
Also prints the machine's ceiling before and after the arms (two pure-Python CPU loops together vs one after the
other): on shared virtual cores it is often below 2.0x, and no queue can beat it. Prints each arm's wall time
and the speedups of parallel-queue over the two sequential arms. Every arm runs with
``train.threads`` = ``--threads`` (default 1) and OMP_NUM_THREADS=1: one core per experiment, so two workers do
not oversubscribe the 2 cores (with the repository's default ``train.threads: 2`` a lone experiment already fits
on both cores, and ``--threads 2`` measures that). The queue's end is seen from the experiment refs git writes,
not by polling ``dvc queue status`` (a DVC process per poll would compete with the workers for the cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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
    "*.onnx", "reports", "bench", "tests", "metrics", "logs",
)  # fmt: skip
RATES = (0.03, 0.06, 0.15, 0.25)
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}


def sh(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def commit(repo: Path, message: str) -> None:
    sh(["git", "add", "-A"], repo)
    sh(["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", message], repo)


def baseline_repo(rows: int, threads: int, workdir: Path) -> Path:
    repo = workdir / "baseline"
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    (repo / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ingest"]["rows"] = rows
    params["train"]["threads"] = threads
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q", "-b", "main"], repo)
    commit(repo, "bench")
    sh(["dvc", "repro", "--quiet"], repo)
    commit(repo, "baseline reproduced")
    return repo


def clone(repo: Path, name: str) -> Path:
    dest = repo.parent / name
    shutil.copytree(repo, dest, symlinks=True, ignore=shutil.ignore_patterns("tmp"))
    return dest


def finished_experiments(repo: Path) -> int:
    """Experiments collected so far: DVC writes one ref under refs/exps/ per finished experiment (a git call of a
    few ms; polling `dvc queue status`, a DVC process of ~1 s CPU, would steal a core from the workers)."""
    return len(sh(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], repo).split())


def wait_for_queue(repo: Path, timeout: float = 3600) -> str:
    deadline = time.monotonic() + timeout
    checked = time.monotonic()
    while time.monotonic() < deadline:
        done = finished_experiments(repo) >= len(RATES)
        if done or time.monotonic() - checked > 30:  # every 30 s: did a task fail (it writes no ref)?
            checked = time.monotonic()
            status = sh(["dvc", "queue", "status"], repo)
            if "Queued" not in status and "Running" not in status:
                if status.count("Success") != len(RATES):
                    raise SystemExit(f"queued experiments failed in {repo}:\n{status}")
                return status
        time.sleep(0.2)
    raise SystemExit(f"queue in {repo} did not finish within {timeout:.0f} s")


def queued(repo: Path, jobs: int) -> float:
    """Queue the 4 experiments (not timed), then time `dvc queue start -j jobs` until all succeeded."""
    for rate in RATES:
        sh(["dvc", "exp", "run", "--queue", "-S", f"train.hist_gradient_boosting.learning_rate={rate}"], repo)
    started = time.perf_counter()
    sh(["dvc", "queue", "start", "-j", str(jobs)], repo)
    wait_for_queue(repo)
    return time.perf_counter() - started


def workspace(repo: Path) -> float:
    started = time.perf_counter()
    for rate in RATES:
        sh(["dvc", "exp", "run", "-S", f"train.hist_gradient_boosting.learning_rate={rate}"], repo)
    return time.perf_counter() - started


SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(20_000_000):\n    x += i\nprint(time.perf_counter() - t)"


def ceiling(rounds: int = 3) -> float:
    """The machine's own limit for this benchmark: how much faster two CPU-bound processes finish together than
    one after another (2 x alone / together; 2.0 on two free cores). Shared virtual cores often give less."""
    ratios = []
    for _ in range(rounds):
        alone = float(subprocess.run([sys.executable, "-c", SPIN], capture_output=True, text=True).stdout)
        procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True) for _ in "ab"]
        together = max(float(p.communicate()[0]) for p in procs)
        ratios.append(2 * alone / together)
    return sorted(ratios)[len(ratios) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000, help="telemetry rows (ingest.rows) of the scratch repo")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="train.threads of the scratch repo (default 1: one core per experiment, as a sweep on -j 2 should be)",
    )  # fmt: skip
    parser.add_argument("--skip-workspace", action="store_true", help="skip the sequential `dvc exp run` arm")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"machine ceiling (two CPU-bound processes together vs one after another): {ceiling():.2f}x", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-exp-") as tmp:
        started = time.perf_counter()
        base = baseline_repo(args.rows, args.threads, Path(tmp))
        print(f"baseline: {args.rows} rows, train.threads={args.threads}, "
              f"dvc repro in {time.perf_counter() - started:.1f} s")  # fmt: skip
        arms = {"sequential-queue": clone(base, "seq"), "parallel-queue": clone(base, "par")}
        if not args.skip_workspace:
            arms["sequential-exp"] = clone(base, "ws")
        times = {}
        times["sequential-queue"] = queued(arms["sequential-queue"], jobs=1)
        print(f"sequential-queue (4 queued, -j 1): {times['sequential-queue']:.1f} s", flush=True)
        times["parallel-queue"] = queued(arms["parallel-queue"], jobs=2)
        print(f"parallel-queue   (4 queued, -j 2): {times['parallel-queue']:.1f} s", flush=True)
        if not args.skip_workspace:
            times["sequential-exp"] = workspace(arms["sequential-exp"])
            print(f"sequential-exp   (4 x dvc exp run): {times['sequential-exp']:.1f} s", flush=True)
        for repo in arms.values():
            subprocess.run(["dvc", "queue", "stop"], cwd=repo, env=ENV, capture_output=True, check=False)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"machine ceiling after: {ceiling():.2f}x")
    print(f"speedup parallel-queue vs sequential-queue: {times['sequential-queue'] / times['parallel-queue']:.2f}x")
    if "sequential-exp" in times:
        print(f"speedup parallel-queue vs sequential-exp:   {times['sequential-exp'] / times['parallel-queue']:.2f}x")
    print("target: >= 1.6x on 2 cores")


if __name__ == "__main__":
    main()
