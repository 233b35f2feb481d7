"""The validate stage on the bad-input catalog of issue 3.

Each case starts from a workspace whose outputs hold the result of a good run, feeds the stage one kind of bad
data, and checks the exit status, the message, what was quarantined, and that the last good outputs are
untouched when the gate fails (or replaced by the clean rows when only a few rows were bad).

The good run and two of the cases run the stage as DVC does, in a subprocess. The rest run the same entry
point in-process (``cli.run(main, argv)``: same argv, same exit codes, same log on stderr) so the suite imports
Great Expectations once instead of once per case (~3 s each on 2 cores).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lifecycle import cli
from lifecycle.config import load_params
from lifecycle.data import telemetry
from lifecycle.data.ingest import prepare
from lifecycle.io import write_json
from lifecycle.stages import validate

ROOT = Path(__file__).resolve().parents[2]
ROWS = 3000
OUTPUTS = ("validated.parquet", "quarantine.parquet")


@dataclass
class Workspace:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def outputs(self) -> dict[str, bytes]:
        return {name: self.path(name).read_bytes() for name in OUTPUTS}


def stage_args(ws: Path) -> list[str]:
    return [
        "--params", str(ws / "params.yaml"), "--data", str(ws / "raw.parquet"), "--schema", str(ws / "schema.json"),
        "--contracts", str(ws / "contracts"), "--out", str(ws / "validated.parquet"),
        "--quarantine", str(ws / "quarantine.parquet"), "--metrics", str(ws / "metrics.json"),
        "--report-json", str(ws / "reports/validation.json"), "--report-md", str(ws / "reports/validation.md"),
    ]  # fmt: skip


def run_stage(ws: Path) -> subprocess.CompletedProcess[str]:
    """``python -m lifecycle.stages.validate ...`` in a subprocess, as DVC runs it."""
    return subprocess.run(
        [sys.executable, "-m", "lifecycle.stages.validate", *stage_args(ws)],
        cwd=ws, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture
def stage(capsys: pytest.CaptureFixture[str]) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    """``stage(ws)``: the stage's ``cli.run(main, argv)`` in-process; exit code and stderr like the subprocess."""

    def call(ws: Path) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            cli.run(validate.main, stage_args(ws))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return subprocess.CompletedProcess(["validate"], code, "", capsys.readouterr().err)

    return call


@pytest.fixture(scope="session")
def good(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    """Clean telemetry as ingest writes it, and a workspace where the stage ran once on it (the good outputs)."""
    params = load_params(ROOT / "params.yaml")
    raw = telemetry.generate(ROWS, seed=3, missing_rate=0.01, glitch_rate=0.0, duplicate_rate=0.0)
    df, schema = prepare(raw, params.ingest, "telemetry")
    ws = tmp_path_factory.mktemp("validate-good")
    shutil.copy(ROOT / "params.yaml", ws / "params.yaml")
    shutil.copytree(ROOT / "data/contracts", ws / "contracts")
    df.to_parquet(ws / "raw.parquet", index=False)
    write_json(ws / "schema.json", schema.to_dict())
    proc = run_stage(ws)
    assert proc.returncode == 0, proc.stderr
    return df, ws


@pytest.fixture
def workspace(good: tuple[pd.DataFrame, Path], tmp_path: Path) -> Callable[[pd.DataFrame | bytes], Workspace]:
    """``workspace(bad)``: a copy of the good workspace whose raw data is ``bad`` (a frame or raw bytes)."""

    def make(bad: pd.DataFrame | bytes) -> Workspace:
        ws = tmp_path / "ws"
        shutil.copytree(good[1], ws)
        if isinstance(bad, bytes):
            (ws / "raw.parquet").write_bytes(bad)
        else:
            bad.to_parquet(ws / "raw.parquet", index=False)
        return Workspace(ws)

    return make


def refused(run: Callable, ws: Workspace, before: dict[str, bytes], *fragments: str) -> str:
    """Run the stage: exit 1, every fragment in the message, the last good outputs untouched."""
    proc = run(ws.dir)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, f"{fragment!r} not in:\n{proc.stderr}"
    assert ws.outputs() == before
    assert not list(ws.dir.glob(".*.tmp"))
    return proc.stderr


def passed(run: Callable, ws: Workspace, *fragments: str) -> pd.DataFrame:
    """Run the stage: exit 0, every fragment in the log; returns the quarantined rows."""
    proc = run(ws.dir)
    assert proc.returncode == 0, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, f"{fragment!r} not in:\n{proc.stderr}"
    return pd.read_parquet(ws.path("quarantine.parquet"))


def metrics(ws: Workspace) -> dict:
    return json.loads(ws.path("metrics.json").read_text())


# --------------------------------------------------------------------------------------------- the catalog
def test_missing_column(good, workspace, stage) -> None:
    ws = workspace(good[0].drop(columns=["state_of_health_pct"]))
    before = ws.outputs()
    refused(
        stage,
        ws,
        before,
        "data quality gate FAILED",
        "expect_table_columns_to_match_set",
        "missing ['state_of_health_pct']",
    )
    assert metrics(ws)["success"] is False
    assert "state_of_health_pct" in ws.path("reports/validation.md").read_text()


def test_extra_column(good, workspace, stage) -> None:
    ws = workspace(good[0].assign(firmware="1.2.3"))
    before = ws.outputs()
    refused(stage, ws, before, "unexpected ['firmware']", "add them to the contract or drop them (ingest.drop_columns)")


def test_string_in_numeric_column(good, workspace, stage) -> None:
    df = good[0].copy()
    df["pack_voltage_v"] = df["pack_voltage_v"].astype(str)
    df.loc[[3, 7], "pack_voltage_v"] = "n/a"
    ws = workspace(df)
    before = ws.outputs()
    refused(
        stage, ws, before, "expect_column_values_to_be_of_type on pack_voltage_v", "expected dtype float64", "observed str",
        "2 value(s) are not numbers, e.g. 'n/a'", "ingest.read_options.na_values",
    )  # fmt: skip


def test_out_of_range_under_threshold_is_quarantined(good, workspace, stage) -> None:
    df = good[0].copy()
    df.loc[[10, 20, 30], "state_of_health_pct"] = [250.0, -1.0, 250.0]
    ws = workspace(df)
    q = passed(
        stage, ws, "3 quarantined", "state_of_health_pct: 3 of 3000 rows", "break [0.0, 100.0]; e.g. 250.0, -1.0"
    )
    assert q["reading_id"].tolist() == df.loc[[10, 20, 30], "reading_id"].tolist()
    assert q["reason"].tolist() == [
        "state_of_health_pct=250.0 outside [0.0, 100.0]",
        "state_of_health_pct=-1.0 outside [0.0, 100.0]",
        "state_of_health_pct=250.0 outside [0.0, 100.0]",
    ]
    clean = pd.read_parquet(ws.path("validated.parquet"))
    assert len(clean) == ROWS - 3 and clean["state_of_health_pct"].dropna().between(0, 100).all()
    m = metrics(ws)
    assert m["success"] is True and m["rows_quarantined"] == 3
    checks = json.loads(ws.path("reports/validation.json").read_text())["checks"]
    assert {c["rule"]: c["unexpected_percent"] for c in checks}["state_of_health_pct.between"] == pytest.approx(0.1)


def test_out_of_range_over_threshold_fails(good, workspace) -> None:
    """In a real subprocess: exit status 1 and the message on stderr, as DVC sees them."""
    df = good[0].copy()
    df.loc[df.index[:200], "cell_temp_max_c"] = 999.0  # 6.7 % > validate.max_bad_row_fraction 5 %
    ws = workspace(df)
    before = ws.outputs()
    refused(
        run_stage, ws, before, "200 of 3000 rows (6.67%) break row-level rules, more than validate.max_bad_row_fraction=0.05",
        "expect_column_values_to_be_between on cell_temp_max_c: 200 of 3000 rows", "break [-40.0, 90.0]; e.g. 999.0",
        "reports/validation.md",
    )  # fmt: skip
    assert metrics(ws)["rows_quarantined"] == 200


def test_a_failed_gate_notifies_the_webhook_and_a_passing_one_does_not(good, workspace, stage) -> None:
    """A real HTTP server on loopback as ``notify.webhook_url``: the failed rules reach it once, with the report's
    path; quarantining a few rows (the gate passes) sends nothing."""
    from tests.test_notify import Webhook

    hook = Webhook()
    try:
        df = good[0].copy()
        df.loc[df.index[:200], "cell_temp_max_c"] = 999.0  # over max_bad_row_fraction: the gate fails
        for rows, fails in ((df, True), (good[0].iloc[:2500], False)):
            ws = workspace(rows)
            params = yaml.safe_load(ws.path("params.yaml").read_text())
            params["notify"]["webhook_url"] = hook.url
            ws.path("params.yaml").write_text(yaml.safe_dump(params))
            proc = stage(ws.dir)
            assert proc.returncode == (1 if fails else 0), proc.stderr
            shutil.rmtree(ws.dir)
        (message,) = hook.received
        text = json.dumps(message["body"])
        assert message["body"]["text"].startswith(":x: *Data quality gate failed: the last good data stays in place*")
        assert "200 of 3000 rows" in text and "cell_temp_max_c" in text and "reports/validation.md" in text
    finally:
        hook.close()


def test_unseen_category_is_quarantined(good, workspace, stage) -> None:
    df = good[0].copy()
    df.loc[[5, 6], "charge_mode"] = "turbo"
    ws = workspace(df)
    q = passed(stage, ws, "2 quarantined", "charge_mode")
    assert set(q["reason"]) == {"charge_mode='turbo' not in {'slow', 'normal', 'fast'}"}


def test_all_null_column(good, workspace, stage) -> None:
    df = good[0].copy()
    df["ambient_temp_c"] = np.nan
    ws = workspace(df)
    before = ws.outputs()
    refused(
        stage, ws, before, "expect_column_proportion_of_non_null_values_to_be_between on ambient_temp_c",
        "max null fraction 0.2", "observed non-null fraction 0",
    )  # fmt: skip


def test_duplicated_rows_repeats_are_quarantined(good, workspace, stage) -> None:
    df = good[0]
    dup = pd.concat([df, df.iloc[[1, 2, 2]]], ignore_index=True)
    ws = workspace(dup)
    q = passed(stage, ws, "3 quarantined", "expect_compound_columns_to_be_unique")
    first, second = df.loc[1, "reading_id"], df.loc[2, "reading_id"]
    assert q["reason"].tolist() == [
        f"duplicate of row {first}",
        f"duplicate of row {second}",
        f"duplicate of row {second}",
    ]
    clean = pd.read_parquet(ws.path("validated.parquet"))
    assert len(clean) == ROWS and clean["reading_id"].is_unique  # the first copy of each row goes on


@pytest.mark.parametrize("empty", ["zero_bytes", "no_rows"])
def test_empty_file(good, workspace, stage, empty: str) -> None:
    ws = workspace(b"" if empty == "zero_bytes" else good[0].iloc[:0])
    before = ws.outputs()
    if empty == "zero_bytes":
        refused(stage, ws, before, "raw.parquet: cannot be read as Parquet", "empty or corrupt")
    else:
        refused(stage, ws, before, "no rows to pass on (0 read, 0 quarantined)")


def test_nan_target_rows_are_quarantined(good, workspace, stage) -> None:
    df = good[0].copy()
    df.loc[[0, 9], "fault"] = None
    ws = workspace(df)
    q = passed(stage, ws, "2 quarantined")
    assert q["reason"].tolist() == ["unlabeled: fault is null", "unlabeled: fault is null"]
    m = json.loads(ws.path("metrics.json").read_text())
    assert m["rows_unlabeled"] == 2 and m["contract_reviewed"] is True
    assert "Unlabeled rows (no fault, quarantined): 2" in ws.path("reports/validation.md").read_text()


def test_too_many_unlabeled_rows_fail_the_gate_apart_from_bad_rows(good, workspace, stage) -> None:
    """10 % unlabeled rows pass the bad-row limit (5 %: they are not counted there) and fail their own (5 %)."""
    df = good[0].copy()
    df.loc[df.index[::10], "fault"] = None
    ws = workspace(df)
    params = yaml.safe_load(ws.path("params.yaml").read_text())
    params["validate"]["max_unlabeled_fraction"] = 0.05
    ws.path("params.yaml").write_text(yaml.safe_dump(params))
    before = ws.outputs()
    refused(stage, ws, before, f"{ROWS // 10} of {ROWS} rows (10.00%) have no fault (unlabeled)",
            "validate.max_unlabeled_fraction=0.05", "label them in the source")  # fmt: skip
    params["validate"]["max_unlabeled_fraction"] = 0.2
    ws.path("params.yaml").write_text(yaml.safe_dump(params))
    passed(stage, ws, f"{ROWS // 10} quarantined ({ROWS // 10} unlabeled)")


def test_class_that_disappeared(good, workspace, stage) -> None:
    df = good[0]
    ws = workspace(df[df["fault"] != "overheating"])
    before = ws.outputs()
    refused(
        stage, ws, before, "expect_column_distinct_values_to_contain_set on fault", "missing {'overheating'}",
        "class 'overheating' has 0 row(s)", "validate.min_class_rows",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- contract and paths
def test_without_a_contract_the_checks_that_need_no_review_run_and_say_so(good, workspace, stage) -> None:
    """No contract for the dataset: the gate passes on checks inferred from the schema (the glitches a reviewed
    contract would quarantine go on), names the contract to write and how; a check that needs no review fails."""
    df = good[0].copy()
    df.loc[[0, 9], "fault"] = None
    ws = workspace(df)
    params = yaml.safe_load(ws.path("params.yaml").read_text())
    params["ingest"]["source"] = "data/external/my_fleet.csv"
    ws.path("params.yaml").write_text(yaml.safe_dump(params))
    q = passed(stage, ws, "contract none reviewed", "NO REVIEWED DATA CONTRACT for 'my_fleet'", "make suite",
               "contracts/my_fleet.yaml), review it, commit it", "2 quarantined (2 unlabeled)")  # fmt: skip
    assert q["reason"].tolist() == ["unlabeled: fault is null"] * 2
    m = json.loads(ws.path("metrics.json").read_text())
    assert m["contract_reviewed"] is False and m["success"] is True
    report = ws.path("reports/validation.md").read_text()
    assert "**none reviewed**" in report and "## Notes" in report
    few = df[df["fault"] != "overheating"].iloc[:150]  # a class gone from the data the schema was inferred from
    few.to_parquet(ws.path("raw.parquet"), index=False)
    before = ws.outputs()
    refused(stage, ws, before, "NO REVIEWED DATA CONTRACT", "class 'overheating' has 0 row(s)")


def test_a_bound_changed_in_the_contract_applies_on_the_next_run(good, workspace, stage) -> None:
    ws = workspace(good[0])
    path = ws.path("contracts/telemetry.yaml")
    path.write_text(path.read_text().replace("min: 200.0, max: 500.0", "min: 200.0, max: 380.0"))
    before = ws.outputs()
    refused(stage, ws, before, "pack_voltage_v", "break [200.0, 380.0]")


# --------------------------------------------------------------------------------------------- in the pipeline
@pytest.mark.slow
def test_pipeline_writes_the_validation_metrics_and_reports(built_repo: Path) -> None:
    from tests.conftest import run

    m = json.loads((built_repo / "metrics/validate.json").read_text())
    assert m["success"] is True and m["rows_checked"] == 4000
    assert m["rows_quarantined"] == m["rows_checked"] - m["rows_clean"] > 0  # the simulator's glitches and repeats
    assert "unexpected_percent" not in m  # per-rule detail: reports/validation.json
    report = json.loads((built_repo / "reports/validation.json").read_text())
    assert {c["rule"]: c["unexpected_percent"] for c in report["checks"]}["rows.unique"] > 0
    assert report["great_expectations"]["table"]["success"] is True
    assert "Verdict: **PASSED**" in (built_repo / "reports/validation.md").read_text()
    q = pd.read_parquet(built_repo / "data/quarantine/rows.parquet")
    assert len(q) == m["rows_quarantined"] and q["reason"].str.len().gt(0).all()
    shown = run(["dvc", "metrics", "show", "--json"], built_repo).stdout
    assert "rows_quarantined" in shown


@pytest.mark.slow
def test_failed_gate_under_dvc_stops_downstream_and_keeps_the_last_good_data(repo_factory) -> None:
    """A bound tightened in the contract: `dvc repro` fails at validate, split does not run, the data stays."""
    from tests.conftest import run

    repo = repo_factory()
    run(["dvc", "repro", "validate"], repo)
    good = (repo / "data/interim/validated.parquet").read_bytes()
    contract = repo / "data/contracts/telemetry.yaml"
    contract.write_text(contract.read_text().replace("min: 200.0, max: 500.0", "min: 200.0, max: 380.0"))
    proc = run(["dvc", "repro", "split"], repo, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "data quality gate FAILED" in out and "pack_voltage_v outside [200.0, 380.0]" in out
    assert "Running stage 'split'" not in out
    assert (repo / "data/interim/validated.parquet").read_bytes() == good  # persist: DVC did not delete it
    assert json.loads((repo / "metrics/validate.json").read_text())["success"] is False
