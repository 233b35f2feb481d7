"""Benchmark: the validate stage (contract + Great Expectations) vs the same checks in vectorized pandas.

    python bench/validate.py [--rows 1000000 10000000] [--repeats 2]

For each size, telemetry with the simulator's default messiness (1 % missing cells, 0.2 % glitches, 0.5 %
duplicates) is generated once (not timed). Then, back to back in one run, each as its own Python process
(interpreter start and imports included, as `dvc repro` runs a stage):

* ``stage``: ``python -m lifecycle.stages.validate`` with the default ``validate.row_expectations_on: flagged``
  (GE: table suite on the clean rows, row suite on the flagged rows; the quarantine mask in pandas);
* ``stage_all``: the same with ``row_expectations_on: all`` (GE evaluates every row-level rule on every row);
* ``pandas``: this script's ``--baseline`` mode: read the Parquet, the same row rules (ranges, value sets,
  datetime window, not-null, duplicates) and table rules (columns, dtypes, null fractions, row count, class
  counts) with vectorized pandas, reasons for the bad rows, write the clean and quarantined Parquet files.

Prints wall time and peak RSS (``ru_maxrss`` of each child) and the ratios stage/pandas. Target (issue 3):
stage <= 2x pandas at 1M rows.
"""

from __future__ import annotations

import argparse
import json
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


# --------------------------------------------------------------------------------------------- baseline
def baseline(data: str, contract_file: str, out: str, quarantine: str, params_file: str) -> None:
    """The same checks as the stage, in plain vectorized pandas (no Great Expectations), read + check + write."""
    import numpy as np
    import pandas as pd

    spec = yaml.safe_load(Path(contract_file).read_text())
    cfg = yaml.safe_load(Path(params_file).read_text())["validate"]
    df = pd.read_parquet(data)
    n = len(df)
    failures: list[str] = []
    cols = spec["columns"]
    dtypes = {"float": "float64", "int": "int64", "str": "str", "bool": "bool", "datetime": "datetime64[ns]"}
    if set(df.columns) != set(cols):
        failures.append(f"columns differ: {sorted(set(df.columns) ^ set(cols))}")
    for name, rule in cols.items():
        if name in df.columns and str(df[name].dtype) != dtypes[rule["type"]]:
            failures.append(f"{name}: dtype {df[name].dtype}")
    reasons = pd.Series("", index=df.index, dtype=object)
    bad = np.zeros(n, dtype=bool)
    for name, rule in cols.items():
        s = df[name]
        masks = []
        if rule.get("nullable", True) is False:
            masks.append((s.isna(), None, f"{name} is null"))
        if "min" in rule or "max" in rule:
            lo, hi = rule.get("min"), rule.get("max")
            if rule["type"] == "datetime":
                lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
            m = s.notna() & ((s < lo) | (s > hi))
            masks.append((m, name, f" outside [{lo}, {hi}]"))
        if "values" in rule:
            masks.append((s.notna() & ~s.isin(rule["values"]), name, f" not in {rule['values']}"))
        for m, col, text in masks:
            hit = m.to_numpy()
            if hit.any():
                bad |= hit
                why = (col + "=" + s[hit].astype(str) + text) if col else pd.Series(text, index=df.index[hit])
                reasons[hit] = np.where(reasons[hit] == "", why, reasons[hit] + "; " + why)
    if spec.get("duplicates", "quarantine") == "quarantine":
        repeats = pd.util.hash_pandas_object(df, index=False).duplicated(keep="first").to_numpy()
        bad |= repeats
        reasons[repeats] = np.where(reasons[repeats] == "", "duplicate", reasons[repeats] + "; duplicate")
    clean = df[~bad]
    for name, rule in cols.items():
        if rule.get("nullable", True) and clean[name].isna().mean() > cfg["max_null_fraction"]:
            failures.append(f"{name}: too many nulls")
    if len(clean) < cfg["min_rows"]:
        failures.append("too few rows")
    counts = clean[spec["target"]].value_counts()
    failures += [f"class {c}" for c in cols[spec["target"]]["values"] if counts.get(c, 0) < cfg["min_class_rows"]]
    if bad.mean() > cfg["max_bad_row_fraction"]:
        failures.append("too many bad rows")
    if failures:
        raise SystemExit("; ".join(failures))
    df[bad].assign(reason=reasons[bad]).to_parquet(quarantine, index=False, compression="zstd")
    clean.to_parquet(out, index=False, compression="zstd")


# --------------------------------------------------------------------------------------------- measuring
def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out}\n{err[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def prepare_workdir(rows: int, work: Path) -> Path:
    from lifecycle.config import load_params
    from lifecycle.data import telemetry
    from lifecycle.data.ingest import prepare
    from lifecycle.io import write_json

    d = work / f"rows-{rows}"
    d.mkdir()
    params = load_params(ROOT / "params.yaml")
    raw = telemetry.generate(rows, seed=params.base.seed)
    df, schema = prepare(raw, params.ingest, "telemetry")
    df.to_parquet(d / "raw.parquet", index=False, compression="zstd")
    write_json(d / "schema.json", schema.to_dict())
    shutil.copytree(ROOT / "data/contracts", d / "contracts")
    for mode in ("flagged", "all"):
        p = yaml.safe_load((ROOT / "params.yaml").read_text())
        p["validate"]["row_expectations_on"] = mode
        (d / f"params-{mode}.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return d


def stage_cmd(d: Path, mode: str) -> list[str]:
    return [
        sys.executable, "-m", "lifecycle.stages.validate", "--params", f"params-{mode}.yaml", "--data", "raw.parquet",
        "--schema", "schema.json", "--contracts", "contracts", "--out", f"validated-{mode}.parquet",
        "--quarantine", f"quarantine-{mode}.parquet", "--metrics", f"metrics-{mode}.json",
        "--report-json", f"validation-{mode}.json", "--report-md", f"validation-{mode}.md",
    ]  # fmt: skip


def baseline_cmd() -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), "--baseline", "--data", "raw.parquet",
        "--contract", "contracts/telemetry.yaml", "--out", "validated-pandas.parquet",
        "--quarantine", "quarantine-pandas.parquet", "--params", "params-flagged.yaml",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=2, help="runs per variant; the fastest counts")
    parser.add_argument(
        "--variants", nargs="+", default=["pandas", "stage", "stage_all"], choices=["pandas", "stage", "stage_all"]
    )
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--contract", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--quarantine", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        baseline(args.data, args.contract, args.out, args.quarantine, args.params)
        return

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    import_s, _ = timed([sys.executable, "-c", "import great_expectations"], ROOT)
    print(f"import great_expectations in a fresh process: {import_s:.2f} s")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        for rows in args.rows:
            started = time.perf_counter()
            d = prepare_workdir(rows, Path(tmp))
            print(f"\n{rows:,} rows (raw Parquet {os.path.getsize(d / 'raw.parquet') / 2**20:.0f} MiB, "
                  f"generated in {time.perf_counter() - started:.0f} s, not timed)")  # fmt: skip
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.repeats):
                for name, cmd in (
                    ("pandas", baseline_cmd()),
                    ("stage", stage_cmd(d, "flagged")),
                    ("stage_all", stage_cmd(d, "all")),
                ):
                    if name not in args.variants:
                        continue
                    wall, rss = timed(cmd, d)
                    print(f"    run: {name} {wall:.2f} s, {rss:.0f} MiB", flush=True)
                    prev = best.get(name)
                    best[name] = (min(wall, prev[0]) if prev else wall, max(rss, prev[1]) if prev else rss)
            m = json.loads((d / "metrics-flagged.json").read_text())
            q_pandas = len(__import__("pandas").read_parquet(d / "quarantine-pandas.parquet"))
            print(f"  quarantined: stage {m['rows_quarantined']}, pandas {q_pandas}")
            if "stage_all" in best:
                same = (d / "validated-flagged.parquet").read_bytes() == (d / "validated-all.parquet").read_bytes()
                print(f"  outputs of row_expectations_on flagged vs all identical: {same}")
            for name, (wall, rss) in best.items():
                print(f"  {name:<10} {wall:7.2f} s  peak RSS {rss:7.0f} MiB")
            p_wall, p_rss = best["pandas"]
            for name in ("stage", "stage_all"):
                if name not in best:
                    continue
                wall, rss = best[name]
                print(f"  ratio {name}/pandas: time {wall / p_wall:.2f}x, peak memory {rss / p_rss:.2f}x")
            results.append(
                {"rows": rows, **{k: {"s": round(v[0], 2), "rss_mib": round(v[1])} for k, v in best.items()}}
            )
            shutil.rmtree(d)
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
