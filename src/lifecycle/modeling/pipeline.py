"""The one model artifact, built and fitted: ``Pipeline(preprocess -> model)``, and its metadata.

:func:`build_pipeline` returns the unfitted pipeline (MLflow Recipes' ``estimator_fn`` shape); :func:`fit_with_search`
tunes it by cross-validation when ``train.search`` asks for it (:mod:`lifecycle.modeling.search`), fits it on the
train split with a pinned number of OpenMP threads, and computes its train metrics on a seeded sample of at most
``train.metrics_sample_rows`` train rows (the fit is the work; predicting millions of rows again to estimate the
train metrics is not); :func:`model_metadata` is the record written next to it (train.json, later model.json),
which says how many rows the train metrics come from (``metrics_sample``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from lifecycle import artifact
from lifecycle.config import Params
from lifecycle.errors import DataError
from lifecycle.io import sha256_file
from lifecycle.modeling.estimators import NEEDS_SCALING, build_model, model_params
from lifecycle.modeling.features import build_preprocessor
from lifecycle.modeling.metrics import compute_metrics
from lifecycle.modeling.search import run_search
from lifecycle.progress import heartbeat
from lifecycle.schema import Schema

log = logging.getLogger(__name__)
NO_SEARCH: dict[str, Any] = {"method": "none", "best_params": {}}


def build_pipeline(schema: Schema, params: Params, overrides: dict[str, object] | None = None) -> Pipeline:
    """The unfitted artifact: raw rows with the schema's columns in, predictions out.

    ``overrides`` are hyperparameters replacing those of ``train.<model>`` (the search's best values).
    Raises :class:`~lifecycle.errors.ParamsError` when ``train.model`` does not fit ``schema.task``.
    """
    return Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale_numeric=params.train.model in NEEDS_SCALING)),
            ("model", build_model(params.train, schema.task, params.base.seed, overrides)),
        ]
    )


def fit(df: pd.DataFrame, schema: Schema, params: Params) -> tuple[Pipeline, dict[str, float]]:
    """:func:`fit_with_search` without the search summary: the fitted pipeline and its train metrics."""
    pipeline, train_metrics, _ = fit_with_search(df, schema, params)
    return pipeline, train_metrics


def fit_with_search(
    df: pd.DataFrame, schema: Schema, params: Params
) -> tuple[Pipeline, dict[str, float], dict[str, Any]]:
    """Tune (``train.search``), fit on ``df`` (rows x the schema's columns) and compute the train metrics.

    Returns ``(pipeline, train_metrics, search)``: the fitted pipeline; the metrics of
    :func:`~lifecycle.modeling.metrics.compute_metrics` on the rows of ``df`` that :func:`metrics_sample` picks
    (all of them up to ``train.metrics_sample_rows``, else a sample of that size drawn with ``base.seed``),
    predicted once with :func:`lifecycle.artifact.predict`; the search summary of :func:`~lifecycle.modeling.search.run_search`
    (``{"method": "none", "best_params": {}}`` without a search).

    Runs with exactly ``train.threads`` OpenMP threads: HistGradientBoosting's sums depend on the thread count,
    so pinning it (rather than using the machine's cores) keeps the model byte-identical on any machine.
    Raises :class:`~lifecycle.errors.DataError` when ``df`` lacks the target or (classification) has a single
    class, and :class:`~lifecycle.errors.ParamsError` for a model/task mismatch or a bad search space.
    """
    with threadpool_limits(limits=params.train.threads, user_api="openmp"):
        return _fit_with_search(df, schema, params)


def _fit_with_search(
    df: pd.DataFrame, schema: Schema, params: Params
) -> tuple[Pipeline, dict[str, float], dict[str, Any]]:
    if schema.target not in df.columns:
        raise DataError(f"train data has no target column {schema.target!r}; rerun ingest and split")
    X, y = df[schema.features], df[schema.target]
    if schema.task == "classification" and y.nunique() < 2:
        raise DataError(f"train data has a single class of {schema.target!r}; a classifier needs two or more")
    with heartbeat(f"{params.train.search} search of {params.train.model}", logger=log):
        search = run_search(build_pipeline(schema, params), X, y, params.train, schema.task, params.base.seed)
    pipeline = build_pipeline(schema, params, search["best_params"])
    log.info("fitting %s on %d rows x %d features", params.train.model, len(X), len(schema.features))
    started = time.perf_counter()
    with heartbeat(f"fitting {params.train.model}", logger=log):
        pipeline.fit(X, y)
    log.info("fitted in %.2f s", time.perf_counter() - started)
    rows = metrics_sample(len(X), params.train.metrics_sample_rows, params.base.seed)
    if rows is not None:
        X, y = X.iloc[rows], y.iloc[rows]
        log.info("train metrics on a seeded sample of %d of %d rows (train.metrics_sample_rows)", len(rows), len(df))
    y_pred, proba = artifact.predict(pipeline, X, schema.task)
    return pipeline, compute_metrics(schema.task, y, y_pred, proba, schema.classes), search


def metrics_sample_size(n_rows: int, sample_rows: int) -> int:
    """How many of ``n_rows`` train rows the train metrics are computed on: ``sample_rows``
    (``train.metrics_sample_rows``), or every row when it is 0 or at least ``n_rows``."""
    return n_rows if sample_rows == 0 or sample_rows >= n_rows else sample_rows


def metrics_sample(n_rows: int, sample_rows: int, seed: int) -> np.ndarray | None:
    """The positions (sorted, shape (:func:`metrics_sample_size`,)) of the train rows the train metrics are
    computed on: a uniform sample without replacement drawn with ``seed`` (numpy's ``default_rng(seed).choice``);
    None when that is every row."""
    size = metrics_sample_size(n_rows, sample_rows)
    if size == n_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def model_metadata(
    model_path: str | Path,
    data_path: str | Path,
    df: pd.DataFrame,
    schema: Schema,
    params: Params,
    train_metrics: dict[str, float],
    search: dict[str, Any] | None = None,
) -> artifact.ModelMetadata:
    """The metadata of the model saved at ``model_path``, fitted on ``df`` (read from ``data_path``).

    Records the model file's name, sha256 and size, the family, task, fitted hyperparameters (``train.<model>``
    with ``search``'s best values) and seed, the search summary without its per-candidate scores, the data file's
    name, sha256, row count and (classification) rows per class, the package versions, the schema,
    ``train_metrics`` and the rows they were computed on (``metrics_sample.train``: rows, sampled_from, seed; see
    :func:`metrics_sample`) and the SHAP background (:func:`background_sample`). Deterministic: no timestamps,
    hosts, absolute paths or commits. Raises ``OSError`` when a file cannot be read.
    """
    model_path, data_path = Path(model_path), Path(data_path)
    search = search or NO_SEARCH
    distribution = (
        {str(k): int(v) for k, v in df[schema.target].value_counts().sort_index().items()}
        if schema.task == "classification"
        else {}
    )
    sampled = metrics_sample_size(len(df), params.train.metrics_sample_rows)
    return artifact.ModelMetadata.from_dict(
        {
            "model": {
                "file": model_path.name,
                "sha256": sha256_file(model_path),
                "bytes": model_path.stat().st_size,
                "family": params.train.model,
                "task": schema.task,
                "hyperparameters": model_params(params.train) | search["best_params"],
                "seed": params.base.seed,
                "search": {k: v for k, v in search.items() if k != "candidates"},
            },
            "data": {
                "file": data_path.name,
                "sha256": sha256_file(data_path),
                "rows": len(df),
                "target_distribution": distribution,
            },
            "packages": artifact.package_versions(),
            "schema": schema.to_dict(),
            "metrics": {"train": train_metrics},
            "metrics_sample": {"train": {"rows": sampled, "sampled_from": len(df), "seed": params.base.seed}},
            "explainer": {
                "background": background_sample(df, schema, params.train.shap_background_rows, params.base.seed)
            },
        },
        source="train metadata",
    )


def background_sample(df: pd.DataFrame, schema: Schema, rows: int, seed: int) -> list[dict[str, float | str | None]]:
    """The background of the model's SHAP explanations: ``min(rows, len(df))`` rows of ``df`` (the train split)
    drawn without replacement with ``seed``, the schema's features only, as JSON-ready records (numeric float,
    categorical text, ``None`` for a missing value). Deterministic for the same inputs."""
    sample = df[schema.features].sample(n=min(rows, len(df)), random_state=seed)
    numeric = set(schema.numeric)
    return [
        {
            c: None if pd.isna(v) else (float(v) if c in numeric else str(v))
            for c, v in zip(schema.features, values, strict=True)
        }
        for values in sample.itertuples(index=False, name=None)
    ]
