"""lifecycle.quality.report: deterministic JSON and Markdown reports of the gate."""

from __future__ import annotations

import json

from lifecycle.io import dumps_json
from lifecycle.quality.gx import validate_frame
from lifecycle.quality.report import report_json, report_markdown, write_reports


def test_reports_are_deterministic(messy, contract, cfg) -> None:
    df, schema = messy
    a, b = (validate_frame(df, schema, contract, cfg, source="x") for _ in range(2))
    assert dumps_json(report_json(a)) == dumps_json(report_json(b))
    assert report_markdown(a) == report_markdown(b)


def test_written_reports_hold_the_verdict_every_rule_and_the_reasons(messy, contract, cfg, tmp_path) -> None:
    df, schema = messy
    result = validate_frame(df, schema, contract, cfg, source="x")
    write_reports(result, tmp_path / "v.json", tmp_path / "v.md", "q.parquet")
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["success"] is True and report["metrics"] == result.metrics
    assert {c["rule"] for c in report["checks"]} >= {"rows.unique", "table.columns"}
    md = (tmp_path / "v.md").read_text()
    assert "Verdict: **PASSED**" in md and "-> `q.parquet`" in md and "## Most common quarantine reasons" in md
