"""The retrain decision: which drift and feedback findings call for retraining, each as a sentence that names the
observed value and the ``monitor.*`` threshold it crossed. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from lifecycle.modeling.metrics import higher_is_better
from lifecycle.monitoring.drift import FeatureDrift, PredictionDrift


class DecisionConfig(Protocol):
    """What :func:`retrain_reasons` needs from ``params.monitor``."""

    min_drifted_features: int
    feedback_metric: str
    max_metric_drop: float
    min_feedback_rows: int


def retrain_reasons(
    features: Sequence[FeatureDrift],
    prediction: PredictionDrift | None,
    feedback: Mapping[str, Any],
    test_metrics: Mapping[str, Any],
    cfg: DecisionConfig,
    log_drift: Mapping[str, Any] | None = None,
) -> list[str]:
    """The reasons to retrain, in this order (an empty list: no retraining needed):

    1. at least ``cfg.min_drifted_features`` of ``features`` drifted;
    2. a feature's missing-value rate changed (``FeatureDrift.missing_drifted``);
    3. the predictions drifted (``prediction.drifted``);
    4. ``cfg.feedback_metric`` on the feedback labels (``feedback``, from
       :func:`lifecycle.monitoring.feedback.feedback_metrics`) is worse than the same metric on the test split
       (``test_metrics``) by more than ``cfg.max_metric_drop``, in the metric's better direction, with at least
       ``cfg.min_feedback_rows`` labelled rows;
    5. the server's prediction log drifted (``log_drift``, from
       :func:`lifecycle.monitoring.analysis.prediction_log_drift`): a feature, or its predictions.
    """
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
    if log_drift and (log_drift["drifted_features"] or log_drift["prediction"].get("drifted")):
        reasons.append(
            "the server's prediction log drifted: " + ", ".join(log_drift["drifted_features"] or ["predictions"])
        )
    return reasons
