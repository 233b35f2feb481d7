"""Parity: scikit-learn and onnxruntime on the same rows, compared against the ``export.*`` thresholds.

The scikit-learn side is :func:`lifecycle.artifact.predict`, the one prediction path that evaluate, score and the
server use; the ONNX side is :class:`lifecycle.onnx.runtime.OnnxPredictor` on one thread, so the sums are the same
on every machine and the report is deterministic. The rows are :func:`parity_sample`'s: a seeded sample of the
test split (``export.parity_rows``) that holds rows of every class, every category and every missing feature, so
a test split of millions of rows is not predicted twice more only to compare two engines.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.artifact import predict
from lifecycle.errors import DataError
from lifecycle.onnx.runtime import OnnxPredictor
from lifecycle.schema import Schema

COVER_ROWS = 10  # parity_sample: rows of each class, category and missing feature it holds at least (when present)


def parity_sample(X: pd.DataFrame, schema: Schema, rows: int, seed: int, y: pd.Series | None = None) -> np.ndarray:
    """Positions (sorted, unique) of the rows of ``X`` (raw feature columns of the test split, shape (n, features);
    ``y`` its target, shape (n,), optional) that parity is checked on.

    Every row when ``rows`` (``export.parity_rows``) is 0 or at least n. Otherwise the first ``rows`` positions of
    a permutation drawn with ``seed`` (numpy's ``default_rng(seed).permutation``), plus, for each stratum a uniform
    sample could miss, its first :data:`COVER_ROWS` rows in the same permutation (all of them when it has fewer):
    each class of ``y`` (classification), each category of each categorical feature, and the missing values of
    each feature. So rare classes and categories, and the imputers' path, are compared too; the result has
    between ``rows`` and ``rows + COVER_ROWS x strata`` rows, the same for the same inputs.
    """
    n = len(X)
    if rows == 0 or rows >= n:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    picked = [order[:rows]]
    strata: list[np.ndarray] = []
    if y is not None and schema.task == "classification":
        codes = pd.Categorical(y).codes
        strata += [codes == k for k in np.unique(codes)]  # code -1: a missing label, a stratum of its own
    for column in schema.categorical:
        codes = pd.Categorical(X[column]).codes
        strata += [codes == k for k in np.unique(codes)]  # -1: missing
    for column in schema.numeric:
        missing = X[column].isna().to_numpy()
        if missing.any():
            strata.append(missing)
    for mask in strata:
        in_order = np.flatnonzero(mask[order])  # ranks, in the permutation, of the stratum's rows
        picked.append(order[in_order[:COVER_ROWS]])
    return np.unique(np.concatenate(picked))


@dataclasses.dataclass(frozen=True)
class Parity:
    """scikit-learn vs onnxruntime on the same rows."""

    rows: int
    label_agreement: float | None  # classification only: share of rows with the same label, in [0, 1]
    max_abs_diff: float  # largest |sklearn - onnx| of a class probability (classification) or prediction (regression)
    max_abs_diff_threshold: float  # export.max_abs_diff
    min_label_agreement_threshold: float | None  # export.min_label_agreement (classification only)
    passed: bool
    reason: str  # "" when passed

    def to_dict(self) -> dict[str, Any]:
        """model.json's ``onnx.parity``: rows, label_agreement, max_abs_diff, thresholds, passed."""
        return {
            "rows": self.rows,
            "label_agreement": self.label_agreement,
            "max_abs_diff": self.max_abs_diff,
            "thresholds": {
                "max_abs_diff": self.max_abs_diff_threshold,
                "min_label_agreement": self.min_label_agreement_threshold,
            },
            "passed": self.passed,
        }


def _sig(x: float) -> float:
    """Round to 4 significant digits: the report keeps its meaning and stays stable across CPUs."""
    return float(f"{x:.4g}") if math.isfinite(x) else x


def check_parity(
    pipeline: Any,
    model: bytes,
    X: pd.DataFrame,
    schema: Schema,
    max_abs_diff: float,
    min_label_agreement: float,
) -> Parity:
    """Compare the fitted ``pipeline`` (through :func:`lifecycle.artifact.predict`) with the serialized ONNX
    ``model`` on the rows of ``X`` (raw feature columns, shape (n, features)).

    ``label_agreement`` (classification) and ``max_abs_diff`` are rounded to 4 significant digits; parity passes
    when ``max_abs_diff <= max_abs_diff`` and ``label_agreement >= min_label_agreement``. A failed comparison is
    a result (``passed=False`` and the reason naming the observed value and the threshold), not an error.
    Raises :class:`DataError` for no rows; onnxruntime's errors when it cannot load or run the graph.
    """
    if X.empty:
        raise DataError("parity needs rows; the test split is empty (check split.test_size)")
    predictor = OnnxPredictor.from_bytes(model, schema, threads=1)  # one thread: the same sums on every machine
    labels, proba = predictor.run(X)
    expected, expected_proba = predict(pipeline, X, schema.task)
    classification = schema.task == "classification"
    if classification:
        agreement = _sig(float(np.mean(np.asarray(labels) == np.asarray(expected))))
        diff = float(np.max(np.abs(np.asarray(proba) - expected_proba)))
    else:
        agreement = None
        diff = float(np.max(np.abs(np.asarray(labels, dtype=np.float64) - expected)))
    diff = _sig(diff) if math.isfinite(diff) else float("inf")
    failures = []
    if not diff <= max_abs_diff:
        what = "class probability" if classification else "prediction"
        failures.append(f"largest |sklearn - onnx| {what} difference {diff:g} > export.max_abs_diff {max_abs_diff:g}")
    if agreement is not None and agreement < min_label_agreement:
        failures.append(f"label agreement {agreement:g} < export.min_label_agreement {min_label_agreement:g}")
    return Parity(
        rows=len(X),
        label_agreement=agreement,
        max_abs_diff=diff if math.isfinite(diff) else 1e308,
        max_abs_diff_threshold=max_abs_diff,
        min_label_agreement_threshold=min_label_agreement if classification else None,
        passed=not failures,
        reason="parity failed on the test split: " + "; ".join(failures) if failures else "",
    )
