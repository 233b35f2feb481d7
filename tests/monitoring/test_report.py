"""The drift report (lifecycle.monitoring.report): one self-contained, deterministic HTML page from an autoescaped
template, every number formatted by one rule, a plot only where it helps."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest
from tests.monitoring.fitted import analyse, labels_of, scored_batch

from lifecycle.data import telemetry as tel
from lifecycle.monitoring.report import fmt_number, fmt_p_value, fmt_percent, render_report


def page(setup: dict[str, Any], version: str, seed: int, labels: Any = None, **changes: Any) -> str:
    scored = scored_batch(setup, version, seed)
    result, features = analyse(setup, scored, labels)
    result = {**result, **changes.pop("result", {})}
    features = changes.pop("features", features)
    return render_report(result, features, setup["reference"], scored, setup["ref_pred"], setup["schema"])


def test_a_plot_per_drifted_feature_and_the_decision(setup) -> None:
    html = page(setup, "v2", 7)
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,", html)
    assert sorted(images) == sorted(tel.DRIFTED_FEATURES)
    assert "Decision: retrain" in html
    assert "No labels for this batch yet" in html
    assert 'alt="prediction distribution"' in html  # the predictions drifted: their plot helps
    assert re.search(r"<p>Batch of \d+ rows against 3200 reference \(training\) rows;\nmodel v-test\.</p>", html)
    assert page(setup, "v2", 7) == html  # deterministic: same inputs, same bytes


def test_no_drift_no_plots_and_the_feedback_table(setup) -> None:
    html = page(setup, "v1", 5, labels_of("v1", 5))
    assert "Decision: no retraining needed" in html
    assert "<li>nothing crossed a threshold</li>" in html
    assert "<h2>Drifted features</h2>\n<p>None.</p>" in html
    assert "<img" not in html  # nothing drifted, predictions included: the tables say it all
    assert re.search(r'<tr><td>accuracy</td><td class="n">0\.\d{1,3}</td><td class="n">0\.89</td></tr>', html)
    assert "labelled rows joined on the row id" in html


def test_no_python_literals_and_p_values_are_never_rounded_to_zero(setup) -> None:
    html = page(setup, "v2", 7)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"\b(True|False|None|nan)\b", text)
    p_values = re.findall(r'<td class="n">([^<]*)</td>\n<td class="n">[^<]*→', text)
    assert len(p_values) == len(tel.COLUMNS) - 4  # every feature row (not the ids, the time, the target)
    for shown in p_values:
        assert shown not in ("0", "0.0", "0.000"), p_values
    assert any("e-" in p for p in p_values)  # a drifted feature's tiny p-value, as the reasons print it


def test_values_are_escaped(setup) -> None:
    scored = scored_batch(setup, "v2", 7)
    result, features = analyse(setup, scored)
    first = dataclasses.replace(features[0], reasons=("<script>alert(1)</script> & more",))
    html = render_report(
        {**result, "model_version": ["<b>v</b>"]}, [first, *features[1:]], setup["reference"], scored,
        setup["ref_pred"], setup["schema"],
    )  # fmt: skip
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<b>v</b>" not in html and "&lt;b&gt;v&lt;/b&gt;" in html


@pytest.mark.parametrize(
    ("p", "shown"),
    [(0.823304, "0.823"), (0.0123, "0.012"), (0.001, "0.001"), (0.00052, "0.00052"), (1.1e-189, "1.1e-189"),
     (0.0, "< 1e-300"), (None, "–"), (math.nan, "–")],
)  # fmt: skip
def test_p_value_format(p: float | None, shown: str) -> None:
    assert fmt_p_value(p) == shown


@pytest.mark.parametrize(
    ("x", "shown"),
    [(0.257567, "0.258"), (2.2e-05, "2.2e-05"), (12.3456, "12.3"), (3, "3"), (True, "yes"), (False, "no"),
     (None, "–"), (math.inf, "–")],
)  # fmt: skip
def test_number_format(x: Any, shown: str) -> None:
    assert fmt_number(x) == shown


def test_percent_format() -> None:
    assert (fmt_percent(0.0102), fmt_percent(0.0), fmt_percent(None)) == ("1.02 %", "0.00 %", "–")
