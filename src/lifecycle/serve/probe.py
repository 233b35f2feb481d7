"""The start-up probe that ties model.onnx to model.joblib: rows generated to make the pipeline predict every class.

model.onnx is a derived copy of the fitted pipeline in model.joblib, and each file's sha256 is checked against
model.json. The probe checks that the two files are the same *model*: both engines predict the same rows, and those
rows must exercise every class, because a pickle whose ``classes_`` were permuted predicts the same probabilities
under other names, which rows of one or two classes cannot show (the old two-row probe passed such a pickle, which
then answered ``overheating`` where ONNX said ``none``).

The rows are **generated** (not read from the training data: the server has only model.json and the model files),
seeded, so the same model gets the same probe on every start:

1. ``candidates`` random records within the served limits: numeric features uniform over their limits (SERVE_*,
   the data contract's bounds), or around the median the pipeline's ``SimpleImputer`` learned when a side is
   unbounded; categories uniform; about one value in ten missing. scikit-learn predicts them in one batch.
2. For each class, the candidate it predicts with the widest margin over the runner-up (at least
   :data:`MIN_MARGIN`, so that float rounding cannot flip the label between engines).
3. A class no candidate reached is searched for by coordinate ascent on its probability from the candidate that
   came closest (every feature over a grid of its range, :data:`ROUNDS` rounds): bounded, one batch per feature.

A class still unreached is reported (the model may never predict it) and the probe covers the others. Regression
gets :data:`REGRESSION_ROWS` candidates spread over the range of their predictions.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lifecycle.schema import Schema

log = logging.getLogger(__name__)
MIN_MARGIN = 1e-3  # a probe row's top probability must beat the runner-up by this much
ROUNDS = 3  # coordinate-ascent rounds for a class no random candidate reached
GRID = 9  # values per numeric feature in one coordinate step
MISSING_RATE = 0.1
REGRESSION_ROWS = 16
Record = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Probe:
    """The probe rows, and which classes they exercise (by the scikit-learn pipeline's prediction)."""

    records: list[Record]
    classes: list[Any]  # the model's classes ([] for regression)
    covered: list[Any]  # the classes some probe row is predicted as

    @property
    def missing(self) -> list[Any]:
        """Classes no probe row reaches."""
        return [c for c in self.classes if c not in self.covered]


def _centers(pipeline: Any, names: Sequence[str]) -> dict[str, float]:
    """Medians learned by a ``SimpleImputer`` in the fitted pipeline (public fitted attributes ``statistics_`` and
    ``feature_names_in_``), by column name; {} when it has none."""
    found: dict[str, float] = {}
    stack = [pipeline]
    while stack:
        node = stack.pop()
        stats, names_in = getattr(node, "statistics_", None), getattr(node, "feature_names_in_", None)
        if stats is not None and names_in is not None and len(stats) == len(names_in):
            for name, value in zip(names_in, stats, strict=True):
                if name in names and isinstance(value, int | float | np.floating) and math.isfinite(value):
                    found[str(name)] = float(value)
        stack += [step for _, step in getattr(node, "steps", [])]
        stack += [t for _, t, *_ in getattr(node, "transformers_", []) if not isinstance(t, str)]
    return found


def _ranges(schema: Schema, limits: Mapping[str, tuple[float, float]], centers: Mapping[str, float]) -> dict:
    """``(low, high)`` to draw each numeric feature from: its limits, or an interval around its median (or 0)
    extended to a finite bound where one side is unbounded."""
    out = {}
    for name in schema.numeric:
        low, high = limits.get(name, (-math.inf, math.inf))
        center = centers.get(name, 0.0 if not math.isfinite(low) else low)
        spread = 2 * max(abs(center), 1.0)
        low = low if math.isfinite(low) else min(center - spread, high if math.isfinite(high) else center)
        high = high if math.isfinite(high) else max(center + spread, low)
        out[name] = (float(low), float(high))
    return out


def _sample(schema: Schema, ranges: Mapping[str, tuple[float, float]], n: int, rng: np.random.Generator) -> list:
    rows: list[Record] = [{} for _ in range(n)]
    for name in schema.numeric:
        low, high = ranges[name]
        values = rng.uniform(low, high, n)
        missing = rng.random(n) < MISSING_RATE
        for row, value, gone in zip(rows, values, missing, strict=True):
            row[name] = None if gone else float(value)
    for name in schema.categorical:
        categories = list(schema.column(name).categories)
        picks = rng.integers(0, max(len(categories), 1), n)
        missing = rng.random(n) < MISSING_RATE
        for row, pick, gone in zip(rows, picks, missing, strict=True):
            row[name] = None if gone or not categories else categories[pick]
    return rows


def _margins(proba: np.ndarray) -> np.ndarray:
    """Top probability minus the runner-up, per row."""
    if proba.shape[1] < 2:
        return np.ones(len(proba))
    top2 = np.sort(proba, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def build_probe(
    predictor: Any,
    schema: Schema,
    limits: Mapping[str, tuple[float, float]],
    classes: Sequence[Any],
    *,
    seed: int = 0,
    candidates: int = 512,
) -> Probe:
    """The probe rows for a model (see the module doc).

    ``predictor``: the scikit-learn engine (``predict(records) -> (y_pred, proba or None)``, with ``.pipeline``);
    ``limits``: the served numeric limits; ``classes``: the pipeline's classes in ``classes_`` order ([] for
    regression). Deterministic for a given model and ``seed``. Costs ``1 + ROUNDS * features`` batch predictions
    per unreached class at most (about 0.1 s for the telemetry model).
    """
    rng = np.random.default_rng(seed)
    ranges = _ranges(schema, limits, _centers(getattr(predictor, "pipeline", None), schema.numeric))
    rows = _sample(schema, ranges, candidates, rng)
    y_pred, proba = predictor.predict(rows)
    if schema.task != "classification" or proba is None:
        order = np.argsort(np.asarray(y_pred, dtype=np.float64), kind="stable")
        picks = order[np.linspace(0, len(order) - 1, REGRESSION_ROWS).round().astype(int)]
        return Probe([rows[i] for i in sorted(set(picks.tolist()))], [], [])
    margins = _margins(proba)
    chosen: list[Record] = []
    covered = []
    y_pred = np.asarray(y_pred).tolist()
    for index, cls in enumerate(classes):
        hits = [i for i, label in enumerate(y_pred) if label == cls and margins[i] >= MIN_MARGIN]
        row = (
            rows[max(hits, key=lambda i: margins[i])] if hits else _climb(predictor, schema, ranges, rows, proba, index)
        )
        if row is not None:
            chosen.append(row)
            covered.append(cls)
    if not chosen:  # a model that predicts nothing with a margin: still compare both engines on some rows
        chosen = rows[:8]
    return Probe(chosen, list(classes), covered)


def _climb(
    predictor: Any,
    schema: Schema,
    ranges: Mapping[str, tuple[float, float]],
    rows: list[Record],
    proba: np.ndarray,
    index: int,
) -> Record | None:
    """Coordinate ascent on the probability of class ``index`` from the candidate closest to it; the first row
    predicted as that class with a margin, or None after :data:`ROUNDS` rounds."""
    current = dict(rows[int(np.argmax(proba[:, index]))])
    for _ in range(ROUNDS):
        for name in schema.features:
            if name in ranges:
                low, high = ranges[name]
                values: list[Any] = [*np.linspace(low, high, GRID).tolist(), None]
            else:
                values = [*schema.column(name).categories, None]
            variants = [{**current, name: v} for v in values]
            _, p = predictor.predict(variants)
            best = int(np.argmax(p[:, index]))
            current = variants[best]
            if int(np.argmax(p[best])) == index and _margins(p[best : best + 1])[0] >= MIN_MARGIN:
                return current
    return None


def compare(onnx: Any, sklearn: Any, records: Sequence[Record], tolerance: float) -> str:
    """ "" when both engines agree on ``records`` (one at a time and as one batch), else the first disagreement:
    a label (with both engines' answers and the row), a probability or a regression prediction further apart than
    ``tolerance`` (absolute for probabilities, relative to max(1, |value|) for regression).

    Exceptions of either engine propagate (the caller tells a broken runtime from a disagreement).
    """
    for batch in [*([r] for r in records), list(records)]:
        y_pred, proba = onnx.predict(batch)
        expected, expected_proba = sklearn.predict(batch)
        if expected_proba is None:
            a, b = np.asarray(y_pred, dtype=np.float64), np.asarray(expected, dtype=np.float64)
            worst = float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))
            if not worst <= tolerance:
                return f"predictions differ by {worst:.3g} (relative) > {tolerance:g}"
            continue
        for i, (got, want) in enumerate(zip(np.asarray(y_pred).tolist(), np.asarray(expected).tolist(), strict=True)):
            if got != want:
                return f"ONNX predicts {got!r} where scikit-learn predicts {want!r} for {batch[i]}"
        diff = float(np.max(np.abs(np.asarray(proba) - expected_proba)))
        if not diff <= tolerance:
            return f"class probabilities differ by {diff:.3g} > {tolerance:g}"
    return ""
