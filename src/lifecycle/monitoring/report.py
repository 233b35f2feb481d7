"""The drift report (``reports/drift.html``): one self-contained HTML page with the retrain decision and its
reasons, a table of every feature's statistics, a plot per drifted feature (reference vs batch, PNG embedded),
the prediction distribution and the feedback metrics.

Deterministic: the PNGs are written without the ``Software`` metadata and the page holds no timestamp, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from lifecycle.monitoring import drift
from lifecycle.predictions import PREDICTION
from lifecycle.schema import Schema

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


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
) -> str:
    """The HTML page for ``result`` and ``features`` (from :func:`lifecycle.monitoring.analysis.analyse`), with
    the plots drawn from the ``reference`` rows and the batch's prediction ``records``."""
    e = html.escape
    decision = "retrain" if result["retrain"] else "no retraining needed"
    rows = []
    for f in features:
        d = f.to_dict()
        stat = d.get("ks", d.get("js"))
        p = d.get("ks_p_value", d.get("chi2_p_value"))
        rows.append(
            f"<tr class='{'drift' if f.drifted else ''}'><td>{e(f.feature)}</td><td>{f.kind}</td>"
            f"<td>{_fmt(d['psi'])}</td><td>{'KS' if f.kind == 'numeric' else 'JS'} {_fmt(stat)}</td>"
            f"<td>{_fmt(p)}</td><td>{_fmt(d['missing_reference'])} → {_fmt(d['missing_current'])}</td>"
            f"<td>{'yes' if f.drifted else 'no'}</td><td>{e('; '.join(f.reasons))}</td></tr>"
        )
    plots = []
    for f in features:
        if f.drifted:
            img = _png(feature_figure(f.feature, f.kind, reference[f.feature], records[f.feature]))
            plots.append(f"<figure><img alt='{e(f.feature)}' src='data:image/png;base64,{img}'></figure>")
    pred_kind = "categorical" if schema.task == "classification" else "numeric"
    pred_img = _png(feature_figure("prediction", pred_kind, reference_pred, records[PREDICTION]))
    fb = result["feedback"]
    fb_html = (
        "<p>No labels for this batch yet (drop CSV/Parquet files of row id + label into the feedback folder).</p>"
        if not fb["rows"]
        else "<table><tr><th>metric</th><th>feedback</th><th>test split</th></tr>"
        + "".join(
            f"<tr><td>{e(k)}</td><td>{_fmt(v)}</td><td>{_fmt(fb['test'].get(k))}</td></tr>"
            for k, v in fb["metrics"].items()
        )
        + f"</table><p>{fb['rows']} labelled rows joined on the row id.</p>"
    )
    unseen = fb.get("unseen_labels") or {}
    if unseen:
        listed = ", ".join(f"{e(str(v))} ({n})" for v, n in unseen.items())
        fb_html += f"<p class='retrain'>Labels of classes the model never saw (not in the metrics): {listed}.</p>"
    reasons = "".join(f"<li>{e(r)}</li>" for r in result["reasons"]) or "<li>nothing crossed a threshold</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:left}}
tr.drift{{background:#fde2e1}}.retrain{{color:#b00}}.ok{{color:#070}}figure{{display:inline-block;margin:4px}}</style>
</head><body>
<h1>Drift report</h1>
<p>Batch of {result["rows"]["batch"]} rows against {result["rows"]["reference"]} reference (training) rows;
model {e(", ".join(result["model_version"]))}.</p>
<h2 class="{"retrain" if result["retrain"] else "ok"}">Decision: {decision}</h2>
<ul>{reasons}</ul>
<h2>Features</h2>
<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>statistic</th><th>p-value</th><th>missing rate</th>
<th>drifted</th><th>reasons</th></tr>{"".join(rows)}</table>
<h2>Drifted features</h2>{"".join(plots) or "<p>None.</p>"}
<h2>Predictions</h2><p>PSI {_fmt(result["prediction"]["psi"])}, drifted: {result["prediction"]["drifted"]}.</p>
<figure><img alt="prediction distribution" src="data:image/png;base64,{pred_img}"></figure>
<h2>Feedback labels</h2>{fb_html}
</body></html>
"""


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.4g}" if isinstance(x, float) else html.escape(str(x))
