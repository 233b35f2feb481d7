"""Feedback labels (lifecycle.monitoring.feedback): read from files, joined to the scored rows on the row id, the
model's metrics on them."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.monitoring.fitted import analyse, labels_of, scored_batch

from lifecycle.data import telemetry as tel
from lifecycle.errors import DataError
from lifecycle.monitoring.feedback import feedback_metrics, match_classes, read_feedback, row_id
from lifecycle.monitoring.report import render_report
from lifecycle.predictions import PREDICTION
from lifecycle.schema import Schema


def test_feedback_labels_are_joined_on_the_row_id(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5).sample(1000, random_state=0)
    result, _ = analyse(setup, scored, labels)
    fb = result["feedback"]
    assert fb["rows"] == len(set(labels["reading_id"]) & set(scored["reading_id"]))
    assert fb["unmatched"] == 0
    assert set(fb["metrics"]) >= {"accuracy", "f1_macro", "log_loss"}
    assert fb["metrics"]["accuracy"] > 0.8
    assert result["retrain"] is False


def test_labels_of_no_scored_row_are_counted_unmatched(setup) -> None:
    schema: Schema = setup["schema"]
    scored = scored_batch(setup, "v1", 5)
    labels = pd.DataFrame({"reading_id": ["no-such-row"], schema.target: ["none"]})
    assert feedback_metrics(scored, labels, schema) == {"rows": 0, "unmatched": 1, "unseen_labels": {}, "metrics": {}}
    assert row_id(schema) == "reading_id"


def test_feedback_files_are_read_from_a_directory_later_files_win(setup, tmp_path) -> None:
    (tmp_path / "a.csv").write_text("reading_id,fault,note\nv1-1,none,x\nv1-2,overheating,y\n")
    pd.DataFrame({"reading_id": ["v1-2"], "fault": ["degradation"]}).to_parquet(tmp_path / "b.parquet")
    (tmp_path / ".gitkeep").touch()
    labels = read_feedback(tmp_path, setup["schema"])
    assert dict(zip(labels["reading_id"], labels["fault"], strict=True)) == {"v1-1": "none", "v1-2": "degradation"}


def test_feedback_file_without_the_label_is_a_clear_error(setup, tmp_path) -> None:
    (tmp_path / "labels.csv").write_text("reading_id,label\nv1-1,none\n")
    with pytest.raises(DataError, match=r"labels\.csv: feedback file lacks column\(s\) \['fault'\]"):
        read_feedback(tmp_path, setup["schema"])


# --------------------------------------------------------------------------------------------- unseen labels
def test_labels_of_classes_the_model_never_saw_are_counted_and_a_reason(setup, tmp_path) -> None:
    # issue 13 item 11: a new fault type and a misspelt class crashed monitor inside scikit-learn
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5).head(400).copy()
    labels.loc[labels.index[:30], tel.TARGET] = "thermal_runaway"
    labels.loc[labels.index[30:32], tel.TARGET] = "Overheating"
    result, features = analyse(setup, scored, labels)
    fb = result["feedback"]
    assert fb["rows"] == 400
    assert fb["unseen_labels"] == {"thermal_runaway": 30, "Overheating": 2}
    assert set(fb["metrics"]) >= {"accuracy", "f1_macro", "log_loss"}  # on the 368 rows of known classes
    assert fb["metrics"]["accuracy"] > 0.8
    assert result["retrain"] is True
    assert any(r.startswith("32 feedback label(s) of class(es) the model never saw: thermal_runaway (30), Overheating (2)")
               for r in result["reasons"])  # fmt: skip
    page = render_report(result, features, setup["reference"], scored, setup["ref_pred"], setup["schema"])
    assert "never saw (not in the metrics): thermal_runaway (30), Overheating (2)" in page


def test_only_unseen_labels_give_no_metrics_but_the_reason(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5).head(60).assign(**{tel.TARGET: "thermal_runaway"})
    result, _ = analyse(setup, scored, labels)
    assert result["feedback"]["metrics"] == {}
    assert result["feedback"]["unseen_labels"] == {"thermal_runaway": 60}
    assert result["retrain"] is True


@pytest.mark.parametrize(
    ("classes", "labels", "known", "matched"),
    [
        ((3, 4, 5), [4, 5.0, "5", " 3 ", 9, "x"], [True, True, True, True, False, False], [4, 5, 5, 3]),
        ((False, True), [True, "false", "True", 1.5, "yes"], [True, True, True, False, False], [True, False, True]),
        (("a", "b"), ["a", "b ", "A", 1], [True, True, False, False], ["a", "b"]),
    ],
)
def test_labels_match_classes_whatever_the_file_made_of_them(classes, labels, known, matched) -> None:
    mask, values = match_classes(pd.Series(labels, dtype=object), classes)
    assert mask.tolist() == known
    assert values.tolist() == matched
    assert all(type(v) is type(classes[0]) for v in values.tolist())


def test_integer_and_boolean_classes_with_an_unseen_value(setup) -> None:
    # an integer target (wine quality) gets a 9 and a boolean target a "maybe": counted, never a crash
    for classes, values, unseen in (
        ((5, 6, 7), [5, 6, 9, 9, 7], {"9": 2}),
        ((False, True), [True, "maybe"], {"maybe": 1}),
    ):
        target = setup["schema"].target
        schema = Schema(target, "classification", setup["schema"].columns, classes)
        n = len(values)
        records = pd.DataFrame({"reading_id": [f"r{i}" for i in range(n)], PREDICTION: [classes[0]] * n})
        labels = pd.DataFrame({"reading_id": [f"r{i}" for i in range(n)], target: values})
        out = feedback_metrics(records, labels, schema)
        assert out["unseen_labels"] == unseen
        assert out["rows"] == n
        assert "accuracy" in out["metrics"]


def test_regression_labels_that_are_not_numbers_are_a_clear_error(setup) -> None:
    target = setup["schema"].target
    schema = Schema(target, "regression", setup["schema"].columns)
    records = pd.DataFrame({"reading_id": ["a", "b"], PREDICTION: [1.0, 2.0]})
    labels = pd.DataFrame({"reading_id": ["a", "b"], target: ["1.5", "high"]})
    with pytest.raises(DataError, match=r"1 value\(s\) of 'fault' are not numbers \(e\.g\. 'high'\)"):
        feedback_metrics(records, labels, schema)
    ok = feedback_metrics(records, labels.assign(**{target: ["1.5", "2"]}), schema)
    assert ok["metrics"]["mae"] == pytest.approx(0.25)


def test_feedback_is_read_from_several_folders_in_order(setup, tmp_path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "demo" / "a.csv").write_text("reading_id,fault\nv1-1,none\nv1-2,none\n")
    (tmp_path / "mine" / "a.csv").write_text("reading_id,fault\nv1-2,overheating\n")
    labels = read_feedback([tmp_path / "demo", tmp_path / "mine", tmp_path / "absent"], setup["schema"])
    assert dict(zip(labels["reading_id"], labels["fault"], strict=True)) == {"v1-1": "none", "v1-2": "overheating"}
