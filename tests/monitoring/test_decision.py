"""The retrain decision (lifecycle.monitoring.decision, through lifecycle.monitoring.analysis): drift of a scored
batch, of the predictions, of the server's prediction log, and feedback metrics, against the thresholds."""

from __future__ import annotations

import json
import re

import pytest
from tests.monitoring.fitted import TEST_METRICS, analyse, labels_of, scored_batch

from lifecycle.data import telemetry as tel
from lifecycle.errors import DataError
from lifecycle.io import write_table
from lifecycle.monitoring import analysis
from lifecycle.monitoring.decision import retrain_reasons
from lifecycle.monitoring.drift import FeatureDrift, PredictionDrift
from lifecycle.monitoring.feedback import read_feedback
from lifecycle.predictions import read_records
from lifecycle.schema import Schema


# --------------------------------------------------------------------------------------------- drift
def test_v2_batch_says_retrain_with_the_shifted_features(setup) -> None:
    result, _ = analyse(setup, scored_batch(setup, "v2", 7))
    assert result["retrain"] is True
    assert set(result["drifted_features"]) == set(tel.DRIFTED_FEATURES)
    assert not set(result["drifted_features"]) & set(tel.STABLE_FEATURES)
    assert result["prediction"]["drifted"] is True
    assert any("features drifted" in r for r in result["reasons"])
    json.dumps(result, allow_nan=False)  # serializable as the metrics file


@pytest.mark.parametrize("seed", [5, 6, 8])
def test_fresh_v1_batch_says_no_retrain(setup, seed) -> None:
    result, _ = analyse(setup, scored_batch(setup, "v1", seed))
    assert result["retrain"] is False, result["reasons"]
    assert result["drifted_features"] == []
    assert result["prediction"]["drifted"] is False


def test_min_drifted_features_sets_how_much_drift_triggers(setup) -> None:
    result, _ = analyse(setup, scored_batch(setup, "v2", 7), min_drifted_features=20, prediction_psi_threshold=9.0)
    assert result["n_drifted"] == len(tel.DRIFTED_FEATURES)
    assert result["retrain"] is False


def test_empty_scored_batch_is_a_clear_error(setup) -> None:
    with pytest.raises(DataError, match="the scored batch has no rows"):
        analyse(setup, scored_batch(setup, "v1", 5).iloc[0:0])


# --------------------------------------------------------------------------------------------- feedback
def test_worse_metrics_on_feedback_say_retrain(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5)
    labels[tel.TARGET] = labels[tel.TARGET].sample(frac=1.0, random_state=1).to_numpy()  # labels the model misses
    result, _ = analyse(setup, scored, labels)
    assert result["retrain"] is True
    assert any(re.search(r"accuracy on \d+ labelled rows is .* worse than 0\.89", r) for r in result["reasons"])


def test_too_few_feedback_rows_report_but_do_not_decide(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5).head(20)
    labels[tel.TARGET] = "none" if labels[tel.TARGET].iloc[0] != "none" else "overheating"
    result, _ = analyse(setup, scored, labels)
    assert result["feedback"]["rows"] == 20
    assert result["retrain"] is False


def test_reasons_come_in_a_fixed_order_with_value_and_threshold(setup) -> None:
    cfg = setup["params"].monitor
    drifted = FeatureDrift("x", "numeric", 0.3, 0.2, 0.0, 0.0, 0.1, True, True, ("PSI 0.300 >= 0.2",))
    prediction = PredictionDrift(0.5, 0.3, {}, {}, True, "prediction PSI 0.500 >= monitor.prediction_psi_threshold 0.2")
    feedback = {"rows": 100, "metrics": {"accuracy": 0.5}}
    log_drift = {"drifted_features": [], "prediction": {"drifted": True}}
    reasons = retrain_reasons([drifted], prediction, feedback, {"accuracy": 0.9}, cfg, log_drift, task="classification")
    assert reasons == [
        "1 of 1 features drifted (monitor.min_drifted_features=1): x",
        "missing-value rate changed: x 0.000 -> 0.100",
        "prediction PSI 0.500 >= monitor.prediction_psi_threshold 0.2",
        "accuracy on 100 labelled rows is 0.5000, worse than 0.9000 on the test split by 0.4000 "
        "(> monitor.feedback.classification.max_drop 0.05)",
        "the server's prediction log drifted: predictions",
    ]
    assert retrain_reasons([], None, {"rows": 0, "metrics": {}}, {}, cfg, task="classification") == []


def test_each_task_has_its_own_feedback_rule(setup) -> None:
    cfg = setup["params"].monitor  # the repository's params: accuracy for classification, rmse for regression
    worse = {"rows": 100, "metrics": {"accuracy": 0.5, "rmse": 2.0}}
    test = {"accuracy": 0.9, "rmse": 1.0}
    regression = retrain_reasons([], None, worse, test, cfg, task="regression")
    assert regression == [
        "rmse on 100 labelled rows is 2.0000, worse than 1.0000 on the test split by 1.0000 "
        f"(> monitor.feedback.regression.max_drop {cfg.feedback.regression.max_drop})"
    ]
    within = retrain_reasons([], None, {"rows": 100, "metrics": {"rmse": 1.05}}, test, cfg, task="regression")
    assert within == []


def test_unseen_labels_are_a_reason_with_values_and_counts(setup) -> None:
    cfg = setup["params"].monitor
    feedback = {"rows": 10, "metrics": {}, "unseen_labels": {"thermal_runaway": 3, "Overheating": 1}}
    assert retrain_reasons([], None, feedback, {}, cfg, task="classification") == [
        "4 feedback label(s) of class(es) the model never saw: thermal_runaway (3), Overheating (1); retrain on "
        "data that has them (a classifier predicts only the classes it was trained on)"
    ]


# --------------------------------------------------------------------------------------------- prediction log
def test_prediction_log_json_lines_is_monitored_too(setup, tmp_path) -> None:
    raw = tel.generate(2000, "v2", 9, duplicate_rate=0.0)
    schema: Schema = setup["schema"]
    with (tmp_path / "predictions.jsonl").open("w") as fh:
        for rec in raw[schema.features].head(2000).to_dict(orient="records"):
            fh.write(json.dumps({"features": rec, "prediction": "none"}) + "\n")
    # the server's Parquet log: published files, a hidden file still being written, shadow rows not served
    logged = raw[schema.features].head(500).assign(prediction="none", served=True, model_role="champion")
    write_table(logged, tmp_path / "predictions-20260101T000000-1-0.parquet")
    write_table(
        logged.assign(served=False, model_role="challenger"), tmp_path / "predictions-20260101T000000-1-1.parquet"
    )
    write_table(logged, tmp_path / ".inprogress-predictions-20260101T000500-1-2.parquet")
    log_frame = read_records(tmp_path)
    assert len(log_frame) == 2500
    assert log_frame["served"].all()
    assert "ambient_temp_c" in log_frame
    params = setup["params"]
    result, _ = analysis.analyse(
        scored_batch(setup, "v1", 5), setup["reference"], setup["ref_pred"], schema, params.monitor,
        read_feedback(tmp_path / "none", schema), TEST_METRICS, log_frame,
    )  # fmt: skip
    assert set(result["prediction_log"]["drifted_features"]) == set(tel.DRIFTED_FEATURES)
    assert result["prediction_log"]["prediction"]["drifted"] is True
    assert result["retrain"] is True
    assert any("prediction log drifted" in r for r in result["reasons"])


def test_an_unreadable_log_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "predictions.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match=r"predictions\.jsonl: cannot be read as JSON Lines"):
        read_records(tmp_path)
    with pytest.raises(DataError, match=r"nowhere: prediction log not found"):
        read_records(tmp_path / "nowhere", what="prediction log")
    (tmp_path / "empty").mkdir()
    assert read_records(tmp_path / "empty").empty
