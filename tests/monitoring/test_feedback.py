"""Feedback labels (lifecycle.monitoring.feedback): read from files, joined to the scored rows on the row id, the
model's metrics on them."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.monitoring.fitted import analyse, labels_of, scored_batch

from lifecycle.errors import DataError
from lifecycle.monitoring.feedback import feedback_metrics, read_feedback, row_id
from lifecycle.schema import Schema


def test_feedback_labels_are_joined_on_the_row_id(setup) -> None:
    scored = scored_batch(setup, "v1", 5)
    labels = labels_of("v1", 5).sample(1000, random_state=0)
    result, _ = analyse(setup, scored, labels)
    fb = result["feedback"]
    assert fb["rows"] == len(set(labels["reading_id"]) & set(scored["reading_id"]))
    assert fb["unmatched"] == 0
    assert set(fb["metrics"]) >= {"accuracy", "f1_macro", "log_loss"}
    assert fb["metrics"]["accuracy"] >= 0.88  # the model reaches 0.90 on these labels: 0.02 of margin
    assert result["retrain"] is False


def test_labels_of_no_scored_row_are_counted_unmatched(setup) -> None:
    schema: Schema = setup["schema"]
    scored = scored_batch(setup, "v1", 5)
    labels = pd.DataFrame({"reading_id": ["no-such-row"], schema.target: ["none"]})
    assert feedback_metrics(scored, labels, schema) == {"rows": 0, "unmatched": 1, "metrics": {}}
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
