"""lifecycle.quality.gx on small frames: the GE suites, the verdict and its messages; and the workarounds for
Great Expectations' cost (one module each), which must fail loudly when the pinned library changes."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from lifecycle.config import load_params
from lifecycle.data import telemetry
from lifecycle.data.ingest import prepare
from lifecycle.errors import GateError
from lifecycle.io import dumps_json
from lifecycle.quality.gx import check_frame, gx_context, validate_frame
from lifecycle.quality.report import report_markdown
from lifecycle.quality.rules import REASON

ROOT = Path(__file__).resolve().parents[2]


def test_gx_context_is_ephemeral_without_progress_bars_or_analytics() -> None:
    context = gx_context()
    assert type(context).__name__ == "EphemeralDataContext"
    assert context.variables.progress_bars.globally is False
    assert context.variables.analytics_enabled is False


def test_messy_telemetry_quarantines_exactly_the_bad_rows(messy, contract, cfg) -> None:
    df, schema = messy
    result = validate_frame(df, schema, contract, cfg, source="messy")
    assert result.success, result.summary()
    q, clean = result.quarantined, result.clean
    assert len(q) + len(clean) == len(df) and len(q) > 40
    for name, (lo, hi) in telemetry.PHYSICAL_LIMITS.items():
        assert clean[name].dropna().between(lo, hi).all(), name
    assert not clean.duplicated().any()
    assert q[REASON].str.len().gt(0).all()
    assert q[REASON].str.contains("outside").any() and q[REASON].str.contains("duplicate of row v1-").any()
    m = result.metrics
    assert m["rows_checked"] == len(df) and m["rows_quarantined"] == len(q)
    assert m["quarantine_fraction"] == pytest.approx(len(q) / len(df), abs=1e-6)
    assert {c.rule: c.unexpected_percent for c in result.checks}["pack_voltage_v.between"] > 0
    assert set(m) == {"success", "rows_checked", "rows_clean", "rows_quarantined", "quarantine_fraction",
                      "rows_unlabeled", "table_failures", "contract_reviewed"}  # headline numbers only: per-rule detail is in the report  # fmt: skip
    # the GE result JSON has both suites, rule ids in meta, nothing volatile
    text = dumps_json(result.gx_result)
    assert "run_time" not in text and "validation_time" not in text and '"id"' not in text
    rules = {r["expectation_config"]["meta"]["rule"] for r in result.gx_result["rows"]["results"]}
    assert "state_of_health_pct.between" in rules and "rows.unique" in rules


def test_great_expectations_on_every_row_agrees_with_the_mask(messy, contract, cfg) -> None:
    """row_expectations_on: all makes GE count every rule over every row; the gate checks they equal the mask's."""
    df, schema = messy
    flagged = validate_frame(df, schema, contract, cfg)
    every = validate_frame(df, schema, contract, cfg.model_copy(update={"row_expectations_on": "all"}))
    assert every.success, every.summary()
    assert every.gx_result["rows_evaluated_by_gx"] == len(df) > flagged.gx_result["rows_evaluated_by_gx"]
    assert every.metrics == flagged.metrics
    for res in every.gx_result["rows"]["results"]:
        rule = res["expectation_config"]["meta"]["rule"]
        percent = {c.rule: c.unexpected_percent for c in every.checks}[rule]
        assert res["result"]["unexpected_count"] == round(percent * len(df) / 100)
    pd.testing.assert_frame_equal(every.quarantined, flagged.quarantined)


def test_failure_raises_a_gate_error_naming_rule_column_count_examples_threshold(messy, contract, cfg) -> None:
    df, schema = messy
    df = df.copy()
    df.loc[df.index[:400], "state_of_charge_pct"] = 255.0
    result = validate_frame(df, schema, contract, cfg, source="batch.parquet")
    assert not result.success and result.metrics["success"] is False
    with pytest.raises(GateError) as err:
        result.raise_if_failed("see reports/validation.md")
    msg = str(err.value)
    for fragment in (
        "batch.parquet: data quality gate FAILED",
        "expect_column_values_to_be_between on state_of_charge_pct",
        "break [0.0, 100.0]; e.g. 255.0",
        "more than validate.max_bad_row_fraction=0.05",
        "see reports/validation.md",
    ):
        assert fragment in msg
    md = report_markdown(result)
    assert "**FAILED**" in md and "## Why it failed" in md


def test_duplicates_fail_policy_fails_instead_of_quarantining(messy, contract, cfg) -> None:
    df, schema = messy
    strict = dataclasses.replace(contract, duplicates="fail")
    result = validate_frame(df, schema, strict, cfg)
    assert not result.success
    assert any("contract duplicates: fail" in f for f in result.table_failures)
    assert not result.quarantined[REASON].str.contains("duplicate").any()


def test_chunk_mode_skips_table_totals(messy, contract, cfg) -> None:
    df, schema = messy
    result = validate_frame(df.head(10), schema, contract, cfg, table_checks=False)
    assert result.success, result.summary()  # 10 rows < validate.min_rows, a class missing: not checked per chunk
    # nor the bad-row fraction: a chunk that is all glitches is the caller's (whole batch's) total to judge
    bad = df.head(10).assign(cell_temp_max_c=999.0)
    result = validate_frame(bad, schema, contract, cfg, table_checks=False)
    assert result.success and len(result.quarantined) == 10, result.summary()
    whole = validate_frame(bad, schema, contract, cfg)
    assert not whole.success
    assert any("more than validate.max_bad_row_fraction" in f for f in whole.table_failures), whole.summary()


def test_check_frame_is_the_gate_in_memory() -> None:
    params = load_params(ROOT / "params.yaml")
    raw = telemetry.generate(3000, seed=3, missing_rate=0.01, glitch_rate=0.0, duplicate_rate=0.0)
    df, schema = prepare(raw, params.ingest, "telemetry")
    clean = check_frame(df, schema, params, contracts_dir=str(ROOT / "data/contracts"))
    assert len(clean) == 3000
    with pytest.raises(GateError, match=r"class 'overheating' has 0 row"):
        check_frame(df[df["fault"] != "overheating"], schema, params, contracts_dir=str(ROOT / "data/contracts"))


# --------------------------------------------------------------------------------------------- workarounds
def fresh_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (nothing imported yet, as the stage starts); its stdout lines."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_great_expectations_is_pinned_to_the_version_the_workarounds_were_written_for() -> None:
    """lifecycle.quality.gx_fingerprint sets a private constant; the other two depend on how GE imports."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = [d for d in deps if re.match(r"great-expectations\b", d)]
    assert len(pinned) == 1 and re.fullmatch(r"great-expectations==[\w.]+", pinned[0]), pinned
    assert metadata.version("great-expectations") == pinned[0].split("==")[1]


def test_gx_batch_fingerprint_is_what_the_workaround_turns_off() -> None:
    """HASH_THRESHOLD exists with the default the workaround assumes, GE fingerprints a batch under it, and not
    after skip_batch_fingerprint()."""
    code = (
        "import json, pandas as pd, great_expectations as gx\n"
        "from great_expectations.execution_engine import pandas_execution_engine as engine\n"
        "from lifecycle.quality import gx_fingerprint\n"
        "from lifecycle.quality.gx import run_suite\n"
        "print(engine.HASH_THRESHOLD == gx_fingerprint.GX_DEFAULT)\n"
        "ctx = gx.get_context(mode='ephemeral')\n"
        "exps = lambda: [gx.expectations.ExpectColumnToExist(column='a', meta={'rule': 'a'})]\n"
        "df = pd.DataFrame({'a': [1.0, 2.0]})\n"
        "print(sorted(run_suite(ctx, 'before', exps(), df)['meta']['batch_markers']))\n"
        "gx_fingerprint.skip_batch_fingerprint()\n"
        "print(sorted(run_suite(ctx, 'after', exps(), df)['meta']['batch_markers']))\n"
    )
    assert fresh_python(code) == ["True", "['pandas_data_fingerprint']", "[]"]


def test_gx_import_leaves_scipy_stats_unexecuted_until_used() -> None:
    """lifecycle.quality.lazy_imports: GE imports without executing scipy.stats (~1 s), and a real use still works
    (the module loads then)."""
    code = (
        "import sys\n"
        "from lifecycle.quality.lazy_imports import defer_imports\n"
        "print(defer_imports())\n"
        "import great_expectations\n"
        "print(type(sys.modules['scipy.stats']).__name__)\n"
        "from scipy import stats\n"
        "print(round(float(stats.entropy([0.5, 0.5])), 4), type(sys.modules['scipy.stats']).__name__)\n"
    )
    assert fresh_python(code) == ["['scipy.stats']", "_LazyModule", "0.6931 module"]


def test_gx_prefetch_imports_with_the_collector_off_then_freezes_and_turns_it_back_on() -> None:
    """lifecycle.quality.gx_import: the background import completes, the collector is on again afterwards, and
    what the import made is frozen (a few hundred thousand objects, out of later collections' way)."""
    code = (
        "import gc, sys\n"
        "from lifecycle.quality.gx_import import prefetch_gx\n"
        "thread = prefetch_gx()\n"
        "print(gc.isenabled())\n"
        "thread.join()\n"
        "print(gc.isenabled(), 'great_expectations' in sys.modules, gc.get_freeze_count() > 100_000)\n"
    )
    assert fresh_python(code) == ["False", "True True True"]
