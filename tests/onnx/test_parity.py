"""Parity: a failed comparison is reported with the observed numbers and the thresholds; no rows is refused; the
rows compared are a seeded sample of the test split that covers every class, category and missing feature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from lifecycle.artifact import ModelMetadata
from lifecycle.config import Export
from lifecycle.errors import DataError
from lifecycle.onnx.convert import export_pipeline, package
from lifecycle.onnx.parity import COVER_ROWS, check_parity, parity_sample


def test_failed_parity_is_reported_with_the_numbers(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, _, _ = exported[("telemetry", "logistic_regression")]
    onnx, report = export_pipeline(
        pipeline, schema, test[schema.features], enabled=True, opset=17, max_abs_diff=0.0, min_label_agreement=1.0
    )
    assert onnx is None and report["usable"] is False
    assert report["parity"]["passed"] is False and report["parity"]["max_abs_diff"] > 0
    assert "export.max_abs_diff 0" in report["reason"]


def test_parity_on_no_rows_is_refused(datasets: dict[str, Any], exported: dict) -> None:
    schema, _, test = datasets["telemetry"]
    pipeline, onnx, _ = exported[("telemetry", "hist_gradient_boosting")]
    with pytest.raises(DataError, match="test split is empty"):
        check_parity(pipeline, onnx, test[schema.features].head(0), schema, 1e-4, 0.999)


def strata(X: pd.DataFrame, y: pd.Series, schema) -> dict[str, np.ndarray]:
    """Every class, category (missing included) and missing feature of the rows, as boolean masks."""
    out = {f"class={c}": (y == c).to_numpy() for c in y.unique()}
    for column in schema.categorical:
        out |= {f"{column}={v}": (X[column] == v).fillna(False).to_numpy() for v in X[column].dropna().unique()}
    for column in schema.features:
        out[f"{column} missing"] = X[column].isna().to_numpy()
    return {k: v for k, v in out.items() if v.any()}


@pytest.mark.parametrize(("rows", "seed"), [(50, 0), (50, 1), (200, 7)])
def test_parity_sample_covers_every_class_category_and_missing_feature(datasets, rows: int, seed: int) -> None:
    schema, _, test = datasets["telemetry"]  # 30 rows without charge_mode, 30 of an unseen chemistry
    X, y = test[schema.features], test[schema.target]
    picked = parity_sample(X, schema, rows, seed, y)
    assert np.all(np.diff(picked) > 0) and picked.max() < len(X)
    masks = strata(X, y, schema)
    assert {"charge_mode missing", "chemistry=solid_state"} <= set(masks)
    for name, mask in masks.items():
        assert mask[picked].sum() >= min(COVER_ROWS, mask.sum()), name
    assert rows <= len(picked) <= rows + COVER_ROWS * len(masks)
    order = np.random.default_rng(seed).permutation(len(X))
    assert set(order[:rows]) <= set(picked)  # the uniform part: the first `rows` of the seeded permutation
    np.testing.assert_array_equal(picked, parity_sample(X, schema, rows, seed, y))


def test_parity_sample_of_every_row_or_more_is_the_whole_split(datasets) -> None:
    schema, _, test = datasets["telemetry"]
    X = test[schema.features]
    for rows in (0, len(X), len(X) + 1):
        np.testing.assert_array_equal(parity_sample(X, schema, rows, 3), np.arange(len(X)))
    assert not np.array_equal(parity_sample(X, schema, 100, 1), parity_sample(X, schema, 100, 2))


def test_regression_samples_cover_rare_categories(datasets) -> None:
    schema, _, test = datasets["telemetry_regression"]
    X = test[schema.features].copy()
    X.loc[X.index[-3:], "chemistry"] = "sodium_ion"  # a rare category at the end of the split
    picked = parity_sample(X, schema, 20, 0, test[schema.target])
    assert (X["chemistry"].iloc[picked] == "sodium_ion").sum() == 3


def test_package_records_the_parity_sample(datasets, exported) -> None:
    schema, train, test = datasets["telemetry"]
    pipeline, _, _ = exported[("telemetry", "hist_gradient_boosting")]
    record = ModelMetadata.from_dict(
        {
            "model": {"file": "model.joblib", "sha256": "0" * 64, "bytes": 1, "family": "hist_gradient_boosting",
                      "task": "classification", "hyperparameters": {}, "seed": 5, "search": {}},
            "data": {"file": "train.parquet", "sha256": "0" * 64, "rows": len(train), "target_distribution": {}},
            "packages": {}, "schema": schema.to_dict(), "metrics": {"train": {}},
        }
    )  # fmt: skip
    cfg = Export(enabled=True, opset=17, max_abs_diff=1e-4, min_label_agreement=0.999, parity_rows=100)
    onnx, packaged = package(pipeline, record, schema, test[schema.features], cfg, seed=5, y=test[schema.target])
    parity = packaged.onnx.parity
    expected = len(parity_sample(test[schema.features], schema, 100, 5, test[schema.target]))
    assert onnx is not None and parity["passed"] is True
    assert parity["rows"] == expected and 100 < expected < len(test)
    assert parity["sampled_from"] == len(test) and parity["seed"] == 5
