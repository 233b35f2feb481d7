"""The gate's reports: ``reports/validation.json`` (GE's results and the decision) and ``reports/validation.md``.

Both are deterministic (no run ids, times or uuids: :func:`lifecycle.quality.gx_suite.clean_json`), so the same data and
contract give the same bytes and DVC sees no change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lifecycle.io import dumps_json, write_text
from lifecycle.quality.gx import EXAMPLES, QualityResult
from lifecycle.quality.gx_suite import clean_json
from lifecycle.quality.rules import REASON, format_value


def report_json(result: QualityResult) -> dict[str, Any]:
    """reports/validation.json: GE's results plus the gate's decision, deterministic."""
    return {
        "source": result.source,
        "contract": result.contract_path,
        "contract_reviewed": result.contract_reviewed,
        "success": result.success,
        "metrics": result.metrics,
        "notes": result.notes,
        "failures": result.table_failures,
        "checks": [clean_json(dataclasses.asdict(c)) for c in result.checks],
        "great_expectations": result.gx_result,
    }


def report_markdown(result: QualityResult, quarantine_path: str = "") -> str:
    """reports/validation.md: the verdict, failures, one table row per rule, the most common quarantine reasons."""
    m = result.metrics
    lines = [
        "# Data validation report",
        "",
        f"- Source: `{result.source}`",
        f"- Contract: `{result.contract_path}`"
        + ("" if result.contract_reviewed else " (**none reviewed**: it does not exist)"),
        f"- Verdict: **{'PASSED' if result.success else 'FAILED'}**",
        f"- Rows checked: {m['rows_checked']}; clean: {m['rows_clean']}; quarantined: {m['rows_quarantined']} "
        f"({m['quarantine_fraction']:.4%})" + (f" -> `{quarantine_path}`" if quarantine_path else ""),
        f"- Unlabeled rows (no {_md(str(result.target))}, quarantined): {m.get('rows_unlabeled', 0)}",
        "",
    ]
    if result.notes:
        lines += ["## Notes", "", *[f"- {_md(note)}" for note in result.notes], ""]
    if result.table_failures:
        lines += ["## Why it failed", "", *[f"- {f}" for f in result.table_failures], ""]
    lines += [
        "## Row-level rules (breaking rows are quarantined)",
        "",
        "| rule | expectation | threshold | rows | % | examples |",
        "|---|---|---|---:|---:|---|",
    ]
    for c in (c for c in result.checks if c.level == "row"):
        ex = ", ".join(format_value(v) for v in c.examples[:EXAMPLES])
        lines.append(
            f"| {c.rule} | {c.expectation} | {_md(c.threshold)} | {c.unexpected_count} | {c.unexpected_percent:.4g} | {_md(ex)} |"
        )
    lines += [
        "",
        "## Table-level rules (on the clean rows)",
        "",
        "| rule | status | expected | observed |",
        "|---|---|---|---|",
    ]
    for c in (c for c in result.checks if c.level == "table"):
        observed = "" if c.observed is None else str(c.observed)
        status = "ok" if c.success else f"**FAILED** {c.detail}"
        lines.append(f"| {c.rule} | {_md(status)} | {_md(c.threshold)} | {_md(observed)} |")
    if len(result.quarantined):
        lines += ["", "## Most common quarantine reasons", ""]
        for reason, count in result.quarantined[REASON].value_counts().head(10).items():
            lines.append(f"- {count} x {reason}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_reports(result: QualityResult, json_path: str | Path, md_path: str | Path, quarantine_path: str = "") -> None:
    """Write both reports atomically (``quarantine_path`` is named in the Markdown)."""
    write_text(json_path, dumps_json(report_json(result)))
    write_text(md_path, report_markdown(result, quarantine_path))
