"""A batch's monitoring result: drift of its prediction records against the training reference (features and
predictions), the model's metrics on the feedback labels, the server's prediction log when there is one, and the
retrain decision with its reasons, as the JSON content of ``metrics/monitor.json``. Pure functions, no I/O."""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from lifecycle.errors import DataError
from lifecycle.modeling.metrics import CLASSIFICATION, REGRESSION
from lifecycle.monitoring import drift
from lifecycle.monitoring.decision import DecisionConfig, retrain_reasons
from lifecycle.monitoring.feedback import feedback_metrics
from lifecycle.predictions import PREDICTION, VERSION
from lifecycle.schema import Schema


class MonitorConfig(drift.Thresholds, DecisionConfig, Protocol):
    """What :func:`analyse` needs from ``params.monitor``: the drift and the decision thresholds."""


def reference_sample(df: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of the reference: a sample drawn with ``seed`` (``DataFrame.sample``), re-indexed
    0..rows-1; the whole frame when ``rows`` is 0 or at least its length."""
    if rows and len(df) > rows:
        return df.sample(rows, random_state=seed).reset_index(drop=True)
    return df


def analyse(
    records: pd.DataFrame,
    reference: pd.DataFrame,
    reference_pred: pd.Series,
    schema: Schema,
    cfg: MonitorConfig,
    labels: pd.DataFrame,
    test_metrics: dict[str, Any],
    log_records: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], list[drift.FeatureDrift]]:
    """Everything the monitor stage computes for one batch.

    ``records``: the batch's prediction records (``lifecycle.predictions``: features, ``prediction``,
    ``model_version``); ``reference`` the training rows and ``reference_pred`` the model's predictions on them
    (same length); ``labels`` from :func:`lifecycle.monitoring.feedback.read_feedback`; ``test_metrics`` the
    model's metrics on the test split (the feedback baseline); ``log_records`` the server's prediction log, if any.

    Returns ``(result, features)``: the JSON content of the monitor metrics (``retrain``, ``reasons``, row counts,
    ``model_version``, drifted features, per-feature statistics, ``prediction``, ``feedback`` and, with a
    non-empty log, ``prediction_log``) and the per-feature drift of the batch, in the schema's column order.

    Raises :class:`DataError` when ``records`` has no rows.
    """
    if records.empty:
        raise DataError("the scored batch has no rows; run the score stage on a batch with data")
    features = drift.compare(reference, records, schema.numeric, schema.categorical, cfg)
    prediction = drift.prediction_drift(reference_pred, records[PREDICTION], schema.task, cfg, schema.classes)
    feedback = feedback_metrics(records, labels, schema)
    log_drift = None
    if log_records is not None and not log_records.empty:
        log_drift = prediction_log_drift(log_records, reference, reference_pred, schema, cfg)
    reasons = retrain_reasons(features, prediction, feedback, test_metrics, cfg, log_drift, task=schema.task)
    result: dict[str, Any] = {
        "retrain": bool(reasons),
        "reasons": reasons,
        "rows": {"reference": len(reference), "batch": len(records)},
        "model_version": sorted(records[VERSION].astype(str).unique().tolist()) if VERSION in records else [],
        "drifted_features": [f.feature for f in features if f.drifted],
        "n_drifted": sum(f.drifted for f in features),
        "drift_share": round(sum(f.drifted for f in features) / max(len(features), 1), 6),
        "features": {f.feature: f.to_dict() for f in features},
        "prediction": prediction.to_dict(),
        "feedback": {
            **feedback,
            "metric": cfg.feedback_rule(schema.task).metric,
            "test": {k: v for k, v in test_metrics.items() if k in (*CLASSIFICATION, *REGRESSION)},
        },
    }
    if log_drift is not None:
        result["prediction_log"] = log_drift
    return result, features


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The monitoring numbers worth a column in ``dvc metrics show`` / ``dvc exp show`` (metrics/monitor.json):
    ``retrain``, ``n_drifted`` (features), ``drift_share`` (of features) and ``prediction_psi``, plus the feedback
    metric (``feedback_<metric>``) when labels were joined. The per-feature statistics, reasons and the rest of
    :func:`analyse`'s ``result`` go to the drift report's JSON, a plain output."""
    out: dict[str, Any] = {
        "retrain": result["retrain"],
        "n_drifted": result["n_drifted"],
        "drift_share": result["drift_share"],
        "prediction_psi": result["prediction"]["psi"],
    }
    feedback = result["feedback"]
    metric = feedback.get("metric")
    if feedback.get("rows") and metric in feedback.get("metrics", {}):
        out[f"feedback_{metric}"] = feedback["metrics"][metric]
    return out


def prediction_log_drift(
    log_records: pd.DataFrame,
    reference: pd.DataFrame,
    reference_pred: pd.Series,
    schema: Schema,
    cfg: drift.Thresholds,
) -> dict[str, Any]:
    """Drift of the rows the server answered against the same reference: the schema's features the log has, and
    its ``prediction`` when present.

    Returns ``{"rows", "drifted_features", "features": {name: statistics}, "prediction": statistics or {}}``.
    """
    numeric = [c for c in schema.numeric if c in log_records]
    categorical = [c for c in schema.categorical if c in log_records]
    features = drift.compare(reference, log_records, numeric, categorical, cfg)
    out: dict[str, Any] = {
        "rows": len(log_records),
        "drifted_features": [f.feature for f in features if f.drifted],
        "features": {f.feature: f.to_dict() for f in features},
        "prediction": {},
    }
    if PREDICTION in log_records:
        out["prediction"] = drift.prediction_drift(
            reference_pred, log_records[PREDICTION], schema.task, cfg, schema.classes
        ).to_dict()
    return out
