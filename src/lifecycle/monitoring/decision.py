"""The retrain decision: which drift and feedback findings call for retraining, each as a sentence that names the
observed value and the ``monitor.*`` threshold it crossed. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from lifecycle.config import FeedbackRule
from lifecycle.modeling.metrics import higher_is_better
from lifecycle.monitoring.drift import FeatureDrift, PredictionDrift


class DecisionConfig(Protocol):
    """What :func:`retrain_reasons` needs from ``params.monitor``."""

    min_drifted_features: int
    min_feedback_rows: int

    def feedback_rule(self, task: str) -> FeedbackRule:
        """``monitor.feedback.<task>``: the feedback metric and its allowed drop."""
        ...


def retrain_reasons(
    features: Sequence[FeatureDrift],
    prediction: PredictionDrift | None,
    feedback: Mapping[str, Any],
    test_metrics: Mapping[str, Any],
    cfg: DecisionConfig,
    log_drift: Mapping[str, Any] | None = None,
    *,
    task: str,
) -> list[str]:
    """The reasons to retrain, in this order (an empty list: no retraining needed):

    1. at least ``cfg.min_drifted_features`` of ``features`` drifted;
    2. a feature's missing-value rate changed (``FeatureDrift.missing_drifted``);
    3. the predictions drifted (``prediction.drifted``);
    4. feedback labels (``feedback``, from :func:`lifecycle.monitoring.feedback.feedback_metrics`) name classes
       the model never saw (``unseen_labels``, any number of rows: the model cannot predict them);
    5. the metric of ``monitor.feedback.<task>`` on the feedback labels is worse than the same metric on the test
       split (``test_metrics``) by more than its ``max_drop``, in the metric's better direction, with at least
       ``cfg.min_feedback_rows`` labelled rows;
    6. the server's prediction log drifted (``log_drift``, from
       :func:`lifecycle.monitoring.analysis.prediction_log_drift`): a feature, or its predictions.

    ``task``: the model's task (classification or regression), which picks the feedback rule.
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
    unseen = feedback.get("unseen_labels") or {}
    if unseen:
        reasons.append(
            f"{sum(unseen.values())} feedback label(s) of class(es) the model never saw: "
            + ", ".join(f"{value} ({rows})" for value, rows in unseen.items())
            + "; retrain on data that has them (a classifier predicts only the classes it was trained on)"
        )
    rule = cfg.feedback_rule(task)
    name = rule.metric
    observed = feedback.get("metrics", {}).get(name)
    baseline = test_metrics.get(name)
    rows = feedback.get("rows", 0) - sum(unseen.values())  # the rows the metrics are computed on
    if observed is not None and baseline is not None and rows >= cfg.min_feedback_rows:
        drop = (baseline - observed) if higher_is_better(name) else (observed - baseline)
        if drop > rule.max_drop:
            reasons.append(
                f"{name} on {rows} labelled rows is {observed:.4f}, worse than {baseline:.4f} on the "
                f"test split by {drop:.4f} (> monitor.feedback.{task}.max_drop {rule.max_drop})"
            )
    if log_drift and (log_drift["drifted_features"] or log_drift["prediction"].get("drifted")):
        reasons.append(
            "the server's prediction log drifted: " + ", ".join(log_drift["drifted_features"] or ["predictions"])
        )
    return reasons
