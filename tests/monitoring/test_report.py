"""The drift report (lifecycle.monitoring.report): one self-contained, deterministic HTML page."""

from __future__ import annotations

import re
from typing import Any

from tests.monitoring.fitted import analyse, labels_of, scored_batch

from lifecycle.data import telemetry as tel
from lifecycle.monitoring.report import render_report


def page(setup: dict[str, Any], version: str, seed: int, labels: Any = None) -> str:
    scored = scored_batch(setup, version, seed)
    result, features = analyse(setup, scored, labels)
    return render_report(result, features, setup["reference"], scored, setup["ref_pred"], setup["schema"])


def test_a_plot_per_drifted_feature_and_the_decision(setup) -> None:
    html = page(setup, "v2", 7)
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,", html)
    assert sorted(images) == sorted(tel.DRIFTED_FEATURES)
    assert "Decision: retrain" in html
    assert "No labels for this batch yet" in html
    assert 'alt="prediction distribution"' in html
    assert re.search(r"<p>Batch of \d+ rows against 3200 reference \(training\) rows;\nmodel v-test\.</p>", html)
    assert page(setup, "v2", 7) == html  # deterministic: same inputs, same bytes


def test_no_drift_no_plots_and_the_feedback_table(setup) -> None:
    html = page(setup, "v1", 5, labels_of("v1", 5))
    assert "Decision: no retraining needed" in html
    assert "<li>nothing crossed a threshold</li>" in html
    assert "<h2>Drifted features</h2><p>None.</p>" in html
    assert re.search(r"<tr><td>accuracy</td><td>0\.\d+</td><td>0\.89</td></tr>", html)
    assert "labelled rows joined on the row id" in html
