"""The drift report (``reports/drift.html``): one self-contained HTML page with the retrain decision and its
reasons, a table of every feature's statistics, a plot per drifted feature (reference vs batch, PNG embedded), the
prediction mix (a plot only when it drifted) and the feedback metrics.

The page is rendered by a jinja2 template with autoescaping on (every value from the data is escaped; only the
embedded PNGs, base64 text, are marked safe). Numbers are formatted by one rule each: statistics to 3 significant
digits, p-values in scientific notation below 0.001 (``< 1e-300`` when the test's p underflows to 0, never a
rounded ``0``), rates as percentages, booleans as yes/no.

Deterministic: the PNGs are written without the ``Software`` metadata and the page holds no timestamp, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import jinja2
import matplotlib
import numpy as np
import pandas as pd
from markupsafe import Markup

from lifecycle.monitoring import drift
from lifecycle.predictions import PREDICTION
from lifecycle.schema import Schema

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DASH = "–"  # an undefined statistic (NaN / missing)


def fmt_number(x: Any) -> str:
    """A statistic: 3 significant digits (``0.258``, ``12.3``, ``1.2e-05``); integers as they are; "–" for
    None/NaN."""
    if x is None or isinstance(x, bool) or (isinstance(x, float) and not math.isfinite(x)):
        return DASH if not isinstance(x, bool) else fmt_yes_no(x)
    if isinstance(x, int | np.integer):
        return str(int(x))
    return f"{float(x):.3g}"


def fmt_p_value(p: Any) -> str:
    """A p-value: 3 decimals from 0.001 up (``0.823``), else scientific with 2 significant digits (``1.1e-189``);
    ``< 1e-300`` when it underflowed to 0 (the test is certain beyond what a float holds); "–" for None/NaN."""
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return DASH
    p = float(p)
    if p == 0.0:
        return "< 1e-300"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.2g}"


def fmt_percent(x: Any) -> str:
    """A rate in [0, 1] as a percentage with 2 decimals (``1.02 %``); "–" for None/NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    return f"{100 * float(x):.2f} %"


def fmt_yes_no(x: Any) -> str:
    """A boolean as the page says it: yes / no."""
    return "yes" if x else "no"


ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(number=fmt_number, p_value=fmt_p_value, percent=fmt_percent, yes_no=fmt_yes_no)
TEMPLATE = ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.drift{background:#fde2e1}.retrain{color:#b00}.ok{color:#070}figure{display:inline-block;margin:4px}</style>
</head><body>
<h1>Drift report</h1>
<p>Batch of {{ rows.batch }} rows against {{ rows.reference }} reference (training) rows;
model {{ model_version | join(", ") }}.</p>
<h2 class="{{ 'retrain' if retrain else 'ok' }}">Decision: {{ 'retrain' if retrain else 'no retraining needed' }}</h2>
<ul>
{% for reason in reasons %}
<li>{{ reason }}</li>
{% else %}
<li>nothing crossed a threshold</li>
{% endfor %}
</ul>
<h2>Features</h2>
<p>{{ n_drifted }} of {{ features | length }} features drifted. PSI: population stability index
(&ge; {{ thresholds.psi }} is drift); statistic: Kolmogorov-Smirnov (numeric) or Jensen-Shannon distance
(categorical); p: KS test or chi-square test.</p>
<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>statistic</th><th>p-value</th>
<th>missing (reference → batch)</th><th>drifted</th><th>reasons</th></tr>
{% for f in features %}
<tr{% if f.drifted %} class="drift"{% endif %}><td>{{ f.feature }}</td><td>{{ f.kind }}</td>
<td class="n">{{ f.psi | number }}</td><td class="n">{{ 'KS' if f.kind == 'numeric' else 'JS' }} {{ f.statistic | number }}</td>
<td class="n">{{ f.p_value | p_value }}</td>
<td class="n">{{ f.missing_reference | percent }} → {{ f.missing_current | percent }}</td>
<td>{{ f.drifted | yes_no }}</td><td>{{ f.reasons | join("; ") }}</td></tr>
{% endfor %}
</table>
<h2>Drifted features</h2>
{% for plot in plots %}
<figure><img alt='{{ plot.name }}' src='data:image/png;base64,{{ plot.png }}'></figure>
{% else %}
<p>None.</p>
{% endfor %}
<h2>Predictions</h2>
<p>Prediction PSI {{ prediction.psi | number }} (&ge; {{ thresholds.prediction_psi }} is drift):
{{ 'drifted' if prediction.drifted else 'not drifted' }}.</p>
<table><tr><th>{{ 'class' if classification else 'statistic' }}</th><th>reference</th><th>batch</th></tr>
{% for key, value in prediction.reference.items() %}
<tr><td>{{ key }}</td><td class="n">{{ (value | percent) if classification else (value | number) }}</td>
<td class="n">{{ (prediction.current.get(key) | percent) if classification else (prediction.current.get(key) | number) }}</td></tr>
{% endfor %}
</table>
{% if prediction_png %}
<figure><img alt="prediction distribution" src="data:image/png;base64,{{ prediction_png }}"></figure>
{% endif %}
<h2>Feedback labels</h2>
{% if feedback.rows %}
<table><tr><th>metric</th><th>feedback</th><th>test split</th></tr>
{% for name, value in feedback.metrics.items() %}
<tr><td>{{ name }}</td><td class="n">{{ value | number }}</td><td class="n">{{ feedback.test.get(name) | number }}</td></tr>
{% endfor %}
</table><p>{{ feedback.rows }} labelled rows joined on the row id.</p>
{% else %}
<p>No labels for this batch yet (drop CSV/Parquet files of row id + label into the feedback folder).</p>
{% endif %}
{% set unseen = feedback.get("unseen_labels") or {} %}
{% if unseen %}
<p class="retrain">Labels of classes the model never saw (not in the metrics): {% for value, count in unseen.items() %}{{ value }} ({{ count }}){{ ", " if not loop.last }}{% endfor %}.</p>
{% endif %}
</body></html>
"""
)


def _png(fig: plt.Figure) -> Markup:
    """The figure as base64 PNG text (safe to embed: only [A-Za-z0-9+/=])."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return Markup(base64.b64encode(buf.getvalue()).decode("ascii"))


def feature_figure(name: str, kind: str, reference: pd.Series, current: pd.Series) -> plt.Figure:
    """Reference vs batch for one column: overlaid densities on 40 bins over the 0.5th-99.5th percentile range of
    both (``kind`` "numeric"), or the category shares side by side (any other ``kind``)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.4), dpi=90)
    if kind == "numeric":
        ref = pd.to_numeric(reference, errors="coerce").dropna().to_numpy()
        cur = pd.to_numeric(current, errors="coerce").dropna().to_numpy()
        both = np.concatenate([ref, cur]) if cur.size else ref
        lo, hi = np.quantile(both, [0.005, 0.995]) if both.size else (0.0, 1.0)
        bins = np.linspace(lo, hi, 41) if hi > lo else 10
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label="reference (training)", color="#4c72b0")
        ax.hist(cur, bins=bins, density=True, alpha=0.5, label="batch", color="#dd8452")
        ax.set(xlabel=name, ylabel="density")
    else:
        levels, r, c = drift.category_counts(reference, current)
        x = np.arange(len(levels))
        ax.bar(x - 0.2, r / max(r.sum(), 1), width=0.4, label="reference (training)", color="#4c72b0")
        ax.bar(x + 0.2, c / max(c.sum(), 1), width=0.4, label="batch", color="#dd8452")
        ax.set_xticks(x, levels, rotation=20)
        ax.set(xlabel=name, ylabel="share")
    ax.set_title(name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def render_report(
    result: dict[str, Any],
    features: Sequence[drift.FeatureDrift],
    reference: pd.DataFrame,
    records: pd.DataFrame,
    reference_pred: pd.Series,
    schema: Schema,
    thresholds: drift.Thresholds | None = None,
) -> str:
    """The HTML page for ``result`` and ``features`` (from :func:`lifecycle.monitoring.analysis.analyse`), with
    the plots drawn from the ``reference`` rows and the batch's prediction ``records``: one per drifted feature,
    and the prediction distribution only when the predictions drifted (otherwise the table of shares says it all).
    ``thresholds`` (params.monitor) are named beside the PSI columns when given.
    """
    plots = [
        {"name": f.feature, "png": _png(feature_figure(f.feature, f.kind, reference[f.feature], records[f.feature]))}
        for f in features
        if f.drifted
    ]
    classification = schema.task == "classification"
    prediction_png = None
    if result["prediction"].get("drifted"):
        kind = "categorical" if classification else "numeric"
        prediction_png = _png(feature_figure("prediction", kind, reference_pred, records[PREDICTION]))
    return TEMPLATE.render(
        rows=result["rows"],
        model_version=result["model_version"],
        retrain=result["retrain"],
        reasons=result["reasons"],
        n_drifted=result["n_drifted"],
        features=features,
        plots=plots,
        prediction=result["prediction"],
        prediction_png=prediction_png,
        classification=classification,
        feedback=result["feedback"],
        thresholds={
            "psi": fmt_number(thresholds.psi_threshold) if thresholds else "the threshold",
            "prediction_psi": fmt_number(thresholds.prediction_psi_threshold) if thresholds else "the threshold",
        },
    )
