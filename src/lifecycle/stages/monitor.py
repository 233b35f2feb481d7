"""Stage ``monitor``: drift of the scored batch against the training reference, feedback metrics, retrain decision.

    python -m lifecycle.stages.monitor --scored data/scored/predictions.parquet --reference TRAIN --schema SCHEMA \
        --model MODEL --test-metrics metrics/evaluate/metrics.json --feedback data/feedback \
        --metrics metrics/monitor.json --report reports/drift.html [--prediction-log PATH]

For every feature: PSI, KS (numeric) or Jensen-Shannon + chi-square (categorical), missing-value rates
(lifecycle.monitoring.drift); the distribution of the predictions against the model's predictions on the reference rows;
when labels arrived (CSV/Parquet files of row id + target in ``--feedback``), the model's metrics on them
next to its test metrics. The decision ``retrain: true|false`` and its reasons go into the metrics JSON; the
HTML report has a plot per drifted feature. On ``retrain: true`` a message goes to ``notify.webhook_url``;
with ``monitor.fail_on_drift: true`` the stage then exits 1 (after writing both outputs).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import matplotlib
import numpy as np
import pandas as pd

from lifecycle import cli
from lifecycle.config import Monitor, load_params
from lifecycle.data.readers import read_parquet, read_table
from lifecycle.errors import DataError, GateError
from lifecycle.io import TABLE_SUFFIXES, read_json, write_json, write_text
from lifecycle.modeling.metrics import CLASSIFICATION, REGRESSION, compute_metrics, higher_is_better
from lifecycle.monitoring import drift
from lifecycle.notify import notify
from lifecycle.schema import Schema, read_schema

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)
PREDICTION = "prediction"  # the column lifecycle.stages.score writes
ROW_NUMBER = "row_number"


# --------------------------------------------------------------------------------------------- inputs
def row_id(schema: Schema) -> str:
    """The column that identifies a row (the first identifier of the schema, e.g. ``reading_id``)."""
    return schema.identifiers[0] if schema.identifiers else ROW_NUMBER


def reference_sample(df: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of the reference (a seeded sample; 0 = all)."""
    if rows and len(df) > rows:
        return df.sample(rows, random_state=seed).reset_index(drop=True)
    return df


def read_feedback(path: str | Path, schema: Schema) -> pd.DataFrame:
    """Every CSV/Parquet file in ``path`` (a file or a directory): row id + target, later files win on repeats."""
    p = Path(path)
    if p.is_file():
        files = [p]
    else:
        files = sorted(f for f in p.glob("*") if f.suffix.lower() in TABLE_SUFFIXES) if p.is_dir() else []
    key = row_id(schema)
    frames = []
    for f in files:
        df = read_table(f)
        missing = [c for c in (key, schema.target) if c not in df.columns]
        if missing:
            raise DataError(
                f"{f}: feedback file lacks column(s) {missing}; it needs the row id {key!r} and the label "
                f"{schema.target!r}"
            )
        frames.append(df[[key, schema.target]])
    if not frames:
        return pd.DataFrame({key: pd.Series(dtype=str), schema.target: pd.Series(dtype=object)})
    labels = pd.concat(frames, ignore_index=True).dropna()
    labels[key] = labels[key].astype(str)
    return labels.drop_duplicates(key, keep="last")


def read_prediction_log(path: str | Path) -> pd.DataFrame:
    """The server's prediction log (docs/serving.md): a directory of Parquet files, one row per predicted row.

    Hidden files (``.inprogress-*``, still being written) are skipped, and only ``served`` rows are kept (shadow
    predictions of a challenger were not answered). CSV and JSON-Lines files are read too; a JSON line may nest
    the inputs under ``features``/``inputs``/``instance``, flattened next to ``prediction``.
    """
    p = Path(path)
    if p.is_file():
        files = [p]
    else:
        files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith((".", "_")))
    frames = []
    for f in files:
        suffix = f.suffix.lower()
        if suffix in TABLE_SUFFIXES:
            frames.append(read_table(f))
        elif suffix in (".jsonl", ".ndjson", ".json"):
            try:
                records = pd.read_json(f, lines=True)
            except ValueError as exc:
                raise DataError(f"{f}: prediction log is not JSON Lines ({exc})") from exc
            for nested in ("features", "inputs", "instance"):
                if nested in records.columns:
                    records = pd.concat(
                        [records.drop(columns=[nested]), pd.json_normalize(records[nested].tolist())], axis=1
                    )
            frames.append(records)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    if "served" in out.columns:
        out = out[out["served"].astype(bool)].reset_index(drop=True)
    return out


# --------------------------------------------------------------------------------------------- analysis
def feedback_metrics(scored: pd.DataFrame, labels: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The model's metrics on the scored rows whose label arrived (joined on the row id)."""
    key = row_id(schema)
    if labels.empty:
        return {"rows": 0, "unmatched": 0, "metrics": {}}
    left = scored.assign(**{key: scored[key].astype(str)})
    joined = left.merge(labels, on=key, how="inner", validate="one_to_one" if left[key].is_unique else "many_to_one")
    out: dict[str, Any] = {"rows": len(joined), "unmatched": int(len(labels) - labels[key].isin(left[key]).sum())}
    if joined.empty:
        out["metrics"] = {}
        return out
    y = joined[schema.target]
    if schema.task == "classification":
        classes = list(schema.classes)
        proba_cols = [f"proba_{c}" for c in classes]
        proba = joined[proba_cols].to_numpy() if all(c in joined for c in proba_cols) else None
        y = y.astype(type(classes[0])) if classes else y
        out["metrics"] = compute_metrics("classification", y, joined[PREDICTION], proba, classes)
    else:
        out["metrics"] = compute_metrics("regression", y.astype(float), joined[PREDICTION].astype(float))
    return out


def decide(
    features: Sequence[drift.FeatureDrift],
    prediction: drift.PredictionDrift | None,
    feedback: dict[str, Any],
    test_metrics: dict[str, Any],
    cfg: Monitor,
) -> list[str]:
    """The reasons to retrain (empty: no retraining needed)."""
    reasons = []
    drifted = [f for f in features if f.drifted]
    if len(drifted) >= cfg.min_drifted_features:
        reasons.append(
            f"{len(drifted)} of {len(features)} features drifted (monitor.min_drifted_features="
            f"{cfg.min_drifted_features}): " + ", ".join(f.feature for f in drifted)
        )
    missing = [f for f in features if f.missing_drifted]
    if missing:
        reasons.append(
            "missing-value rate changed: "
            + ", ".join(f"{f.feature} {f.missing_reference:.3f} -> {f.missing_current:.3f}" for f in missing)
        )
    if prediction is not None and prediction.drifted:
        reasons.append(prediction.reason)
    name = cfg.feedback_metric
    observed = feedback.get("metrics", {}).get(name)
    baseline = test_metrics.get(name)
    if observed is not None and baseline is not None and feedback["rows"] >= cfg.min_feedback_rows:
        drop = (baseline - observed) if higher_is_better(name) else (observed - baseline)
        if drop > cfg.max_metric_drop:
            reasons.append(
                f"{name} on {feedback['rows']} labelled rows is {observed:.4f}, worse than {baseline:.4f} on the "
                f"test split by {drop:.4f} (> monitor.max_metric_drop {cfg.max_metric_drop})"
            )
    return reasons


def analyse(
    scored: pd.DataFrame,
    reference: pd.DataFrame,
    reference_pred: pd.Series,
    schema: Schema,
    cfg: Monitor,
    labels: pd.DataFrame,
    test_metrics: dict[str, Any],
    log_frame: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], list[drift.FeatureDrift]]:
    """Everything the stage computes, as the metrics JSON and the per-feature drift of the batch."""
    if scored.empty:
        raise DataError("the scored batch has no rows; run the score stage on a batch with data")
    features = drift.compare(reference, scored, schema.numeric, schema.categorical, cfg)
    prediction = drift.prediction_drift(reference_pred, scored[PREDICTION], schema.task, cfg, schema.classes)
    feedback = feedback_metrics(scored, labels, schema)
    reasons = decide(features, prediction, feedback, test_metrics, cfg)
    result: dict[str, Any] = {
        "retrain": bool(reasons),
        "reasons": reasons,
        "rows": {"reference": len(reference), "batch": len(scored)},
        "model_version": sorted(scored["model_version"].astype(str).unique().tolist())
        if "model_version" in scored
        else [],
        "drifted_features": [f.feature for f in features if f.drifted],
        "n_drifted": sum(f.drifted for f in features),
        "drift_share": round(sum(f.drifted for f in features) / max(len(features), 1), 6),
        "features": {f.feature: f.to_dict() for f in features},
        "prediction": prediction.to_dict(),
        "feedback": {
            **feedback,
            "metric": cfg.feedback_metric,
            "test": {k: v for k, v in test_metrics.items() if k in (*CLASSIFICATION, *REGRESSION)},
        },
    }
    if log_frame is not None and not log_frame.empty:
        result["prediction_log"] = prediction_log_drift(log_frame, reference, reference_pred, schema, cfg)
        if result["prediction_log"]["drifted_features"] or result["prediction_log"]["prediction"].get("drifted"):
            reasons.append(
                "the server's prediction log drifted: "
                + ", ".join(result["prediction_log"]["drifted_features"] or ["predictions"])
            )
            result["retrain"] = True
    return result, features


def prediction_log_drift(
    log_frame: pd.DataFrame, reference: pd.DataFrame, reference_pred: pd.Series, schema: Schema, cfg: Monitor
) -> dict[str, Any]:
    """Drift of the requests the server answered (the columns it logged) against the same reference."""
    numeric = [c for c in schema.numeric if c in log_frame]
    categorical = [c for c in schema.categorical if c in log_frame]
    features = drift.compare(reference, log_frame, numeric, categorical, cfg)
    out: dict[str, Any] = {
        "rows": len(log_frame),
        "drifted_features": [f.feature for f in features if f.drifted],
        "features": {f.feature: f.to_dict() for f in features},
        "prediction": {},
    }
    if PREDICTION in log_frame:
        out["prediction"] = drift.prediction_drift(
            reference_pred, log_frame[PREDICTION], schema.task, cfg, schema.classes
        ).to_dict()
    return out


# --------------------------------------------------------------------------------------------- report
def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def feature_figure(name: str, kind: str, reference: pd.Series, current: pd.Series) -> plt.Figure:
    """Reference vs batch: overlaid densities (numeric, 1st-99th reference percentile range) or category shares."""
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
    scored: pd.DataFrame,
    reference_pred: pd.Series,
    schema: Schema,
) -> str:
    """A self-contained HTML page: decision, reasons, per-feature table, a plot per drifted feature."""
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
            img = _png(feature_figure(f.feature, f.kind, reference[f.feature], scored[f.feature]))
            plots.append(f"<figure><img alt='{e(f.feature)}' src='data:image/png;base64,{img}'></figure>")
    pred_kind = "categorical" if schema.task == "classification" else "numeric"
    pred_img = _png(feature_figure("prediction", pred_kind, reference_pred, scored[PREDICTION]))
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


# --------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--scored", required=True)
    parser.add_argument("--reference", required=True, help="the training split")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--model", required=True, help="predicts the reference rows for prediction drift")
    parser.add_argument("--test-metrics", required=True, help="evaluate's metrics.json (the feedback baseline)")
    parser.add_argument("--feedback", required=True, help="a file or directory of row id + label tables")
    parser.add_argument("--prediction-log", default=None, help="optional: the server's prediction log")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args(argv)

    params = load_params(args.params)
    cfg = params.monitor
    schema = read_schema(args.schema)
    scored = read_parquet(args.scored, "scored batch")
    reference = reference_sample(
        read_parquet(args.reference, "training reference"), cfg.reference_rows, params.base.seed
    )
    if not Path(args.model).exists():
        raise DataError(f"{args.model}: model not found; run `dvc repro train` first")
    model = joblib.load(args.model)
    reference_pred = pd.Series(model.predict(reference[schema.features]), name=PREDICTION)
    labels = read_feedback(args.feedback, schema)
    test_metrics = read_json(args.test_metrics) if Path(args.test_metrics).exists() else {}
    log_frame = None
    if args.prediction_log and Path(args.prediction_log).exists():
        log_frame = read_prediction_log(args.prediction_log)
        log.info("read %d logged predictions from %s", len(log_frame), args.prediction_log)
    result, features = analyse(scored, reference, reference_pred, schema, cfg, labels, test_metrics, log_frame)
    write_json(args.metrics, result)
    write_text(args.report, render_report(result, features, reference, scored, reference_pred, schema))
    log.info(
        "monitored %d batch rows against %d reference rows: %d drifted feature(s) %s; retrain=%s -> %s, %s",
        len(scored),
        len(reference),
        result["n_drifted"],
        result["drifted_features"],
        result["retrain"],
        args.metrics,
        args.report,
    )
    if result["retrain"]:
        for reason in result["reasons"]:
            log.warning("retrain: %s", reason)
        notify(params.notify, "Drift detected: retraining recommended", result["reasons"], status="warning")
        if cfg.fail_on_drift:
            raise GateError(
                f"{args.scored}: drift against {args.reference}: " + "; ".join(result["reasons"]) + " "
                "(monitor.fail_on_drift is true; see the report " + args.report + ")"
            )


if __name__ == "__main__":
    cli.run(main)
