"""Feedback labels: ground truth that arrives after a batch was scored, joined to its prediction records on the row
id, and the model's metrics on the rows that got a label.

Labels are CSV/Parquet files of row id + target (``reading_id,fault`` for the telemetry) in a folder
(``paths.feedback``); a later file wins for a repeated id.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from lifecycle.data.readers import read_table
from lifecycle.errors import DataError
from lifecycle.io import TABLE_SUFFIXES
from lifecycle.modeling.metrics import compute_metrics
from lifecycle.predictions import PREDICTION, id_columns, proba_column
from lifecycle.schema import Schema

log = logging.getLogger(__name__)


def row_id(schema: Schema) -> str:
    """The column that joins labels to records: the schema's first identifier (e.g. ``reading_id``), or
    ``row_number`` when it has none."""
    return id_columns(schema)[0]


def read_feedback(path: str | Path, schema: Schema) -> pd.DataFrame:
    """The labels in ``path`` (a CSV/Parquet file, or a folder of them read in name order; other files are
    ignored), as a frame of two columns, the row id (text) and ``schema.target``: rows with a missing value are
    dropped and a later file wins for a repeated id. A folder that does not exist gives no labels.

    Raises :class:`DataError` naming a file that lacks the row id or the target column.
    """
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


def feedback_metrics(records: pd.DataFrame, labels: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The model's metrics on the prediction ``records`` whose label arrived (inner join on the row id).

    Returns ``{"rows": n joined, "unmatched": labels whose id is in no record, "metrics": {name: value}}``; the
    metrics are :func:`lifecycle.modeling.metrics.compute_metrics` of ``y_true`` (the labels) and ``y_pred`` (the
    records' ``prediction``), with the ``proba_<class>`` columns for classification when every class has one;
    ``{}`` when no row joined.
    """
    key = row_id(schema)
    if labels.empty:
        return {"rows": 0, "unmatched": 0, "metrics": {}}
    left = records.assign(**{key: records[key].astype(str)})
    joined = left.merge(labels, on=key, how="inner", validate="one_to_one" if left[key].is_unique else "many_to_one")
    out: dict[str, Any] = {"rows": len(joined), "unmatched": int(len(labels) - labels[key].isin(left[key]).sum())}
    if joined.empty:
        out["metrics"] = {}
        return out
    y_true = joined[schema.target]
    if schema.task == "classification":
        classes = list(schema.classes)
        proba_cols = [proba_column(c) for c in classes]
        proba = joined[proba_cols].to_numpy() if all(c in joined for c in proba_cols) else None
        y_true = y_true.astype(type(classes[0])) if classes else y_true
        out["metrics"] = compute_metrics("classification", y_true, joined[PREDICTION], proba, classes)
    else:
        out["metrics"] = compute_metrics("regression", y_true.astype(float), joined[PREDICTION].astype(float))
    log.debug("feedback: %d labelled rows joined, %d labels unmatched", out["rows"], out["unmatched"])
    return out
