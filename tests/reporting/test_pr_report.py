"""The pull-request report's pure parts (lifecycle.reporting.pr_report): metric rows and gates, the direction of
"better", flattening, and what the library may import. The report on real repositories is tested in
tests/e2e/test_report.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lifecycle.reporting import pr_report
from lifecycle.reporting.pr_report import MetricRow, direction, flatten, metric_rows

EVALUATE = "metrics/evaluate/metrics.json"


def test_metric_rows_apply_the_gates_to_the_gated_file_only() -> None:
    rows = metric_rows({EVALUATE: {"accuracy": {"old": 0.95, "new": 0.85}, "rmse": {"new": 1.0}}}, {})
    assert [(r.name, r.passed, r.delta) for r in rows] == [
        ("accuracy", None, pytest.approx(-0.1)),
        ("rmse", None, None),
    ]
    gates = {"accuracy": (">=", 0.9), "log_loss": ("<=", 0.5)}
    diff = {
        EVALUATE: {"accuracy": {"new": 0.95}, "log_loss": {"new": 0.6}},
        "metrics/train/cv.json": {"accuracy": {"new": 0.5}},  # the CV score: not what promote gates
        "metrics/monitor.json": {"feedback.test.accuracy": {"new": 0.5}, "feedback_accuracy": {"new": 0.5}},
    }
    rows = metric_rows(diff, gates, gated_file=EVALUATE)
    assert {(r.file, r.name): (r.gate, r.passed) for r in rows} == {
        (EVALUATE, "accuracy"): (">= 0.9", True),
        (EVALUATE, "log_loss"): ("<= 0.5", False),
        ("metrics/train/cv.json", "accuracy"): ("-", None),
        ("metrics/monitor.json", "feedback.test.accuracy"): ("-", None),
        ("metrics/monitor.json", "feedback_accuracy"): ("-", None),
    }
    assert flatten({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}


@pytest.mark.parametrize(
    ("name", "base", "new", "shown"),
    [
        ("accuracy", 0.8, 0.85, "+0.05 ▲ better"),
        ("f1_macro", 0.8, 0.7, "-0.1 ▼ worse"),
        ("log_loss", 0.4, 0.6, "+0.2 ▼ worse"),  # a loss: higher is worse
        ("rmse", 2.0, 1.5, "-0.5 ▲ better"),
        ("prediction_psi", 0.1, 0.3, "+0.2 ▼ worse"),  # a higher PSI is not an improvement
        ("drift_share", 0.5, 0.25, "-0.25 ▲ better"),
        ("n_drifted", 3, 5, "+2 ▼ worse"),
        ("quarantine_fraction", 0.01, 0.02, "+0.01 ▼ worse"),
        ("feedback_accuracy", 0.9, 0.95, "+0.05 ▲ better"),  # monitor's feedback metric is the model's metric
        ("feedback.test.log_loss", 0.3, 0.2, "-0.1 ▲ better"),
        ("rows_scored", 100, 200, "+100"),  # a count has no better direction
        ("candidates", 4, 8, "+4"),
        ("accuracy_std", 0.01, 0.02, "+0.01"),
    ],
)
def test_change_is_marked_by_the_metric_direction(name: str, base: float, new: float, shown: str) -> None:
    assert pr_report._delta(MetricRow("m.json", name, base, new, "-", None)) == shown


def test_direction_of_unknown_and_non_numeric_metrics() -> None:
    assert direction("model_version") is None
    assert pr_report._delta(MetricRow("m.json", "retrain", False, True, "-", None)) == "changed"
    assert pr_report._delta(MetricRow("m.json", "accuracy", 0.9, 0.9, "-", None)) == "0"
    assert pr_report._delta(MetricRow("m.json", "accuracy", None, 0.9, "-", None)) == "added"
    assert pr_report._delta(MetricRow("m.json", "accuracy", 0.9, None, "-", None)) == "removed"
    assert pr_report._fmt(True) == "yes"  # not Python's True


def test_the_library_uses_no_cli_and_no_dvc_internals() -> None:
    """The report reads DVC through its command line (`dvc ... --json`) only; the shell is reporting/__main__.py."""
    tree = ast.parse(Path(pr_report.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {
        f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names if n.module
    }
    assert not {m for m in imported if m == "dvc" or m.startswith(("dvc.", "dvc_render"))}, imported
    assert "lifecycle.cli" not in imported and "lifecycle.lifecycle.cli" not in imported
    assert not [m for m in imported if m.startswith("matplotlib")]  # plots are DVC's Vega specs, rendered by vl-convert


def test_metrics_no_longer_reported_are_folded_away_and_gated_ones_stay() -> None:
    diff = {
        EVALUATE: {"accuracy": {"old": 0.9, "new": 0.92}, "log_loss": {"old": 0.3}},
        "metrics/monitor.json": {
            "drift_share": {"old": 0.5, "new": 0.5},
            **{f"features.f{i}.psi": {"old": 0.1 * i} for i in range(5)},  # moved to reports/drift.json
        },
    }
    rows = metric_rows(diff, {"log_loss": ("<=", 0.5)}, gated_file=EVALUATE)
    text = pr_report.render_markdown("main", rows, {}, None, None, [])
    table, details = text.split("## Params changed")[0].split("<details>", 1)
    assert "| accuracy | 0.9 | 0.92 | +0.02 ▲ better | - |" in table
    assert "| log_loss | 0.3 | - | removed | <= 0.5: no value |" in table  # a gate without its value is not hidden
    assert "features.f" not in table and "drift_share" not in table
    assert "1 unchanged metrics" in details
    assert "5 metrics of main no longer reported" in details
    assert details.count("| metrics/monitor.json | features.f") == 5
