"""Feedback labels: ground truth that arrives after a batch was scored, joined to its prediction records on the row
id, and the model's metrics on the rows that got a label.

Labels are CSV/Parquet files of row id + target (``reading_id,fault`` for the telemetry) in one or more folders
(``paths.feedback``, and the demo batch's labels); a later file wins for a repeated id. A classification label that
is none of the classes the model was trained on (a new fault type, a typo) cannot be scored: such rows are counted
per value (``unseen_labels``) and left out of the metrics, and the retrain decision names them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
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


def read_feedback(paths: str | Path | Sequence[str | Path], schema: Schema) -> pd.DataFrame:
    """The labels in ``paths`` (each a CSV/Parquet file, or a folder of them read in name order; other files are
    ignored; folders in the order given), as a frame of two columns, the row id (text) and ``schema.target``: rows
    with a missing value are dropped and a later file wins for a repeated id. A folder that does not exist gives no
    labels.

    Raises :class:`DataError` naming a file that lacks the row id or the target column.
    """
    files: list[Path] = []
    for path in [paths] if isinstance(paths, str | Path) else paths:
        p = Path(path)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += sorted(f for f in p.glob("*") if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES)
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


def _label_key(value: Any) -> str:
    """A label as text that compares across file formats: ``True``/``"true"`` -> ``true``, ``5``/``5.0``/``"5"`` ->
    ``5``, other text stripped."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    return text.lower() if text.lower() in ("true", "false") else text


def match_classes(labels: pd.Series, classes: Sequence[Any]) -> tuple[pd.Series, pd.Series]:
    """Each label as the class of ``classes`` it names, whatever the file made of it (``5``, ``5.0`` and ``"5"``
    name the class 5; ``"True"`` the class True).

    Returns ``(known, matched)``: a boolean mask (True where the label is one of ``classes``) and the matched classes
    for those rows (same index as ``labels[known]``), typed like the classes.
    """
    lookup = {_label_key(c): c for c in classes}
    keys = labels.map(_label_key)
    known = keys.isin(list(lookup))
    matched = keys[known].map(lookup)
    if classes:
        matched = matched.astype(type(classes[0]))
    return known, matched


def unseen_labels(labels: pd.Series, classes: Sequence[Any]) -> dict[str, int]:
    """The labels that are none of ``classes``: value (as text) -> rows, most frequent first, then by value."""
    known, _ = match_classes(labels, classes)
    counts = labels[~known].astype(str).value_counts()
    return {str(v): int(n) for v, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))}


def feedback_metrics(records: pd.DataFrame, labels: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The model's metrics on the prediction ``records`` whose label arrived (inner join on the row id).

    Returns ``{"rows": n joined, "unmatched": labels whose id is in no record, "unseen_labels": {value: rows},
    "metrics": {name: value}}``. ``unseen_labels`` (classification) counts the joined labels that are none of the
    schema's classes: the model cannot predict them, so they are left out of the metrics (which are then on
    ``rows - sum(unseen_labels)`` rows). The metrics are :func:`lifecycle.modeling.metrics.compute_metrics` of
    ``y_true`` (the labels) and ``y_pred`` (the records' ``prediction``), with the ``proba_<class>`` columns for
    classification when every class has one; ``{}`` when no row is left.

    Raises :class:`DataError` when a regression label is not a number (naming the first such values).
    """
    key = row_id(schema)
    if labels.empty:
        return {"rows": 0, "unmatched": 0, "unseen_labels": {}, "metrics": {}}
    left = records.assign(**{key: records[key].astype(str)})
    joined = left.merge(labels, on=key, how="inner", validate="one_to_one" if left[key].is_unique else "many_to_one")
    out: dict[str, Any] = {
        "rows": len(joined),
        "unmatched": int(len(labels) - labels[key].isin(left[key]).sum()),
        "unseen_labels": {},
        "metrics": {},
    }
    if joined.empty:
        return out
    y_true = joined[schema.target]
    if schema.task == "classification":
        classes = list(schema.classes)
        known, y_known = match_classes(y_true, classes)
        out["unseen_labels"] = unseen_labels(y_true, classes)
        if out["unseen_labels"]:
            log.warning(
                "feedback: %d labelled row(s) of class(es) the model never saw: %s",
                int((~known).sum()), ", ".join(f"{v} ({n})" for v, n in out["unseen_labels"].items()),
            )  # fmt: skip
        rows = joined[known.to_numpy()]
        if not rows.empty:
            proba_cols = [proba_column(c) for c in classes]
            proba = rows[proba_cols].to_numpy() if all(c in rows for c in proba_cols) else None
            out["metrics"] = compute_metrics("classification", y_known, rows[PREDICTION], proba, classes)
    else:
        numbers = pd.to_numeric(y_true, errors="coerce")
        bad = y_true[numbers.isna()]
        if not bad.empty:
            raise DataError(
                f"feedback labels: {len(bad)} value(s) of {schema.target!r} are not numbers (e.g. "
                f"{', '.join(map(repr, bad.astype(str).unique()[:3]))}); a regression label is a number: fix those "
                "rows in the feedback files"
            )
        out["metrics"] = compute_metrics("regression", numbers.astype(float), joined[PREDICTION].astype(float))
    log.debug("feedback: %d labelled rows joined, %d labels unmatched", out["rows"], out["unmatched"])
    return out
